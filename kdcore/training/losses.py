"""Privileged distillation: losses, and the teacher's outputs computed once and reused.

For labels (multi-label), the student loss per label is ``alpha * T^2 * KL(sigmoid(z_t/T) ||
sigmoid(z_s/T)) + (1 - alpha) * BCE(z_s, y)``, the binary KL of the two temperature-softened
Bernoulli distributions, computed from log-sigmoids so that no probability is ever rounded to 0 or
1. For classes (multi-class), Hinton's: ``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) +
(1 - alpha) * CE(z_s, y)``, from log-softmaxes. ``T^2`` keeps the soft term's gradients on the
scale of the hard one as T grows (Hinton et al.).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.io import atomic_path

ORACLE_LOGIT = 6.0  # the oracle's confidence: p = 0.998 at T = 1, 0.82 at T = 4


def binary_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Elementwise KL(Bernoulli(sigmoid(z_t/T)) || Bernoulli(sigmoid(z_s/T)))."""
    zt, zs = teacher_logits / temperature, student_logits / temperature
    pt = torch.sigmoid(zt)
    return (pt * (F.logsigmoid(zt) - F.logsigmoid(zs))
            + (1 - pt) * (F.logsigmoid(-zt) - F.logsigmoid(-zs)))


def softmax_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per item, KL(softmax(z_t/T) || softmax(z_s/T)) over the classes."""
    log_pt = F.log_softmax(teacher_logits / temperature, dim=1)
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(1)


def hard_loss(logits: torch.Tensor, targets: torch.Tensor, multiclass: bool = False,
              labelled: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against the labels: binary per label, averaged over the labels, or over the
    classes (``targets`` one-hot); averaged over the ``labelled`` items only (all if None; zero in a
    batch without one)."""
    if multiclass:
        per_item = F.cross_entropy(logits, targets, reduction="none")
    else:
        per_item = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1)
    if labelled is None:
        return per_item.mean()
    return (per_item * labelled).sum() / labelled.sum().clamp(min=1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 4.0, alpha: float = 0.7, labelled: torch.Tensor | None = None,
                     multiclass: bool = False) -> torch.Tensor:
    """Hinton's distillation loss (the ``kd`` entry of ``LOSSES``): the soft term on every frame; the
    hard term on the ``labelled`` frames only (all if None), averaged over them (zero in a batch
    without one)."""
    if multiclass:
        soft = softmax_kl(teacher_logits, student_logits, temperature).mean()
    else:
        soft = binary_kl(teacher_logits, student_logits, temperature).mean()
    if labelled is None and not multiclass:  # the original form: the same numbers, bit for bit
        hard = F.binary_cross_entropy_with_logits(student_logits, targets)
    else:
        hard = hard_loss(student_logits, targets, multiclass, labelled)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def model_inputs(model: nn.Module, rgb: torch.Tensor, ir: torch.Tensor) -> tuple:
    """The images a model reads: teachers take (rgb, ir), the student and RGB-only models rgb."""
    modalities = getattr(getattr(model, "module", model), "modalities", ("rgb",))
    return (rgb, ir) if "ir" in modalities else (rgb,)


class HardLabels(nn.Module):
    """The hard-label objective of teachers and the no-KD student: binary cross-entropy per label,
    or cross-entropy over the classes of a multi-class label set."""

    def __init__(self, labels: LabelSet = FLAME2):
        super().__init__()
        self.labels = labels  # an objective knows what its logits mean: the fit loop reads it

    @property
    def multiclass(self) -> bool:
        return self.labels.multiclass

    def forward(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, ir, targets, _ = batch
        logits = model(*model_inputs(model, rgb, ir))
        if self.multiclass:
            return F.cross_entropy(logits.float(), targets), logits
        return F.binary_cross_entropy_with_logits(logits.float(), targets), logits


@dataclass
class TeacherOutputs:
    """A teacher's logits and pooled features for every frame, from the un-augmented pair."""

    ids: list[str]
    logits: torch.Tensor
    features: torch.Tensor

    def __post_init__(self):
        self._row = {frame_id: i for i, frame_id in enumerate(self.ids)}

    def lookup(self, ids, device) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.tensor([self._row[i] for i in ids])
        return self.logits[rows].to(device), self.features[rows].to(device)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            torch.save({"ids": self.ids, "logits": self.logits, "features": self.features}, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TeacherOutputs:
        return cls(**torch.load(path, weights_only=True))

    @classmethod
    def oracle(cls, ids: list[str], labels: torch.Tensor, logit: float = ORACLE_LOGIT) -> TeacherOutputs:
        """A teacher known to be right: confident logits of the true labels on every frame,
        labelled or not (its "features" are its logits)."""
        logits = (2 * labels.float() - 1) * logit
        return cls(list(ids), logits, logits.clone())


LOSSES: dict[str, type[nn.Module]] = {}  # config ``kd_loss`` -> the student objective's class


def register(name: str):
    """A KD loss for config ``kd_loss: name``: a module ``(model, batch) -> (loss, logits)`` with a
    ``from_config(cfg, teacher, student_dim, teacher_dim, labelled_ids)`` constructor."""
    def add(cls):
        LOSSES[name] = cls
        return cls
    return add


def build_criterion(cfg, teacher: TeacherOutputs | nn.Module | None, student_dim: int = 0, teacher_dim: int = 0,
                    labelled_ids: set[str] | None = None) -> nn.Module:
    """The objective of a student fit: the labels alone without a teacher, else the config's KD loss."""
    if teacher is None:
        return HardLabels(cfg.label_set)
    return LOSSES[cfg.kd_loss].from_config(cfg, teacher, student_dim, teacher_dim, labelled_ids)


@register("kd")
class Distill(nn.Module):
    """The student objective: soft targets from the teacher, cached or computed online, plus the
    optional feature hint (student features, through a learned projection, regressed onto the
    teacher's)."""

    def __init__(self, teacher: TeacherOutputs | nn.Module, temperature: float, alpha: float,
                 feature_weight: float = 0.0, student_dim: int = 0, teacher_dim: int = 0,
                 labelled_ids: set[str] | None = None, labels: LabelSet = FLAME2):
        super().__init__()
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight
        self.labels = labels
        self.labelled_ids = labelled_ids  # None: every frame's label is used
        if isinstance(teacher, nn.Module):
            teacher.eval().requires_grad_(False)
            self._teacher = [teacher]  # a list: not a submodule, so never in the optimizer or state
        else:
            self._teacher = teacher
        self.hint = nn.Linear(student_dim, teacher_dim) if feature_weight > 0 else None

    @classmethod
    def from_config(cls, cfg, teacher, student_dim: int, teacher_dim: int, labelled_ids) -> Distill:
        return cls(teacher, cfg.kd_temperature, cfg.kd_alpha, cfg.kd_feature_weight, student_dim, teacher_dim,
                   labelled_ids, cfg.label_set)

    @property
    def multiclass(self) -> bool:
        return self.labels.multiclass

    def teacher_logits_and_features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, ir, _, ids = batch
        if isinstance(self._teacher, TeacherOutputs):
            return self._teacher.lookup(ids, rgb.device)
        teacher = self._teacher[0]
        # fp32, as the cached outputs are: the soft targets must not depend on the training precision
        with torch.no_grad(), torch.autocast(rgb.device.type, enabled=False):
            features = teacher.forward_features(rgb.float(), ir.float())
            return teacher.head(features).float(), features.float()

    def labelled(self, ids, device) -> torch.Tensor | None:
        if self.labelled_ids is None:
            return None
        return torch.tensor([i in self.labelled_ids for i in ids], dtype=torch.float32, device=device)

    def forward(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, _, targets, ids = batch
        teacher_logits, teacher_features = self.teacher_logits_and_features(batch)
        if self.hint is None:
            logits = model(rgb).float()
        else:  # one pass through the (possibly DDP-wrapped) model for both outputs
            logits, features = model(rgb, with_features=True)
            logits = logits.float()
        loss = self.objective(logits, teacher_logits, targets, self.labelled(ids, rgb.device))
        if self.hint is not None:
            loss = loss + self.feature_weight * F.mse_loss(self.hint(features.float()), teacher_features)
        return loss, logits

    def objective(self, logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                  labelled: torch.Tensor | None) -> torch.Tensor:
        """The loss between the student's logits, the teacher's and the labels (Hinton's)."""
        return soft_target_loss(logits, teacher_logits, targets, self.temperature, self.alpha, labelled,
                                self.multiclass)


@register("generalized")
class GeneralizedDistill(Distill):
    """The distillation loss of Lopez-Paz et al.'s MNIST code (ICLR 2016, "generalized
    distillation"): ``(1 - alpha) * CE(y, softmax(z_s)) + T^2 * alpha * CE(softmax(z_t / T),
    softmax(z_s))``. Unlike Hinton's, the student's soft output is not divided by T: only the
    teacher's targets are softened, and T^2 scales the whole soft term. Classes only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.multiclass:
            raise ValueError("the generalized distillation loss is for classes (labels: {kind: multiclass})")

    def objective(self, logits, teacher_logits, targets, labelled):
        soft_targets = F.softmax(teacher_logits / self.temperature, dim=1)
        soft = F.cross_entropy(logits, soft_targets)
        hard = hard_loss(logits, targets, True, labelled)
        return self.temperature**2 * self.alpha * soft + (1 - self.alpha) * hard
