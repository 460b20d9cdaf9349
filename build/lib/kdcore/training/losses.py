"""Privileged distillation: the losses on logits, and the teacher's outputs computed once and reused.

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
    """Hinton's distillation loss (the ``kd`` method): the soft term on every frame; the
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
