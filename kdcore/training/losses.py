"""Privileged distillation: losses, and the teacher's outputs computed once and reused.

The student loss per label is ``alpha * T^2 * KL(sigmoid(z_t/T) || sigmoid(z_s/T)) + (1 - alpha) *
BCE(z_s, y)``, the binary KL of the two temperature-softened Bernoulli distributions, computed from
log-sigmoids so that no probability is ever rounded to 0 or 1. ``T^2`` keeps the soft term's
gradients on the scale of the hard one as T grows (Hinton et al.).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.io import atomic_path

ORACLE_LOGIT = 6.0  # the oracle's confidence: p = 0.998 at T = 1, 0.82 at T = 4


def binary_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Elementwise KL(Bernoulli(sigmoid(z_t/T)) || Bernoulli(sigmoid(z_s/T)))."""
    zt, zs = teacher_logits / temperature, student_logits / temperature
    pt = torch.sigmoid(zt)
    return (pt * (F.logsigmoid(zt) - F.logsigmoid(zs))
            + (1 - pt) * (F.logsigmoid(-zt) - F.logsigmoid(-zs)))


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 4.0, alpha: float = 0.7, labelled: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton's distillation loss (the ``kd`` entry of ``LOSSES``): the soft term on every frame; the
    hard term on the ``labelled`` frames only (all if None), averaged over them (zero in a batch
    without one)."""
    soft = binary_kl(teacher_logits, student_logits, temperature).mean()
    if labelled is None:
        hard = F.binary_cross_entropy_with_logits(student_logits, targets)
    else:
        per_frame = F.binary_cross_entropy_with_logits(student_logits, targets, reduction="none").mean(1)
        hard = (per_frame * labelled).sum() / labelled.sum().clamp(min=1)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def model_inputs(model: nn.Module, rgb: torch.Tensor, ir: torch.Tensor) -> tuple:
    """The images a model reads: teachers take (rgb, ir), the student and RGB-only models rgb."""
    modalities = getattr(getattr(model, "module", model), "modalities", ("rgb",))
    return (rgb, ir) if "ir" in modalities else (rgb,)


class BCE(nn.Module):
    """The hard-label objective: teachers and the no-KD student."""

    def forward(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, ir, targets, _ = batch
        logits = model(*model_inputs(model, rgb, ir))
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
    """The objective of a student fit: BCE without a teacher, else the config's KD loss."""
    if teacher is None:
        return BCE()
    return LOSSES[cfg.kd_loss].from_config(cfg, teacher, student_dim, teacher_dim, labelled_ids)


@register("kd")
class Distill(nn.Module):
    """The student objective: soft targets from the teacher, cached or computed online, plus the
    optional feature hint (student features, through a learned projection, regressed onto the
    teacher's)."""

    def __init__(self, teacher: TeacherOutputs | nn.Module, temperature: float, alpha: float,
                 feature_weight: float = 0.0, student_dim: int = 0, teacher_dim: int = 0,
                 labelled_ids: set[str] | None = None):
        super().__init__()
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight
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
                   labelled_ids)

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
        loss = soft_target_loss(logits, teacher_logits, targets, self.temperature, self.alpha, self.labelled(ids, rgb.device))
        if self.hint is not None:
            loss = loss + self.feature_weight * F.mse_loss(self.hint(features.float()), teacher_features)
        return loss, logits
