"""Distillation methods as registered parts: one small class each, one registry for all.

A method says what it reads of the student and the teacher (``LOGITS``, pooled ``FEATURES``, named
``STAGES``: intermediate maps, ``kdcore.models.stages``), owns its learnable parts (adapters,
projectors, a memory bank), which ``setup`` sizes from one dry forward pass, and returns its term
for a batch. ``kdcore.training.objective.Distill`` adds the terms to the labels' hard term, or to
Hinton's loss, and trains the parts with the student; they live in the fit's checkpoint, never in
the student's own files.

A *complete* method (``kd``, ``generalized``) is a whole objective on its own, its hard term
included: the ones ``kd_loss`` names. Every other method is a term, added to the labels alone or to
Hinton's loss with its own weight.

Class-defined methods (DKD, DIST) read a distribution over classes. For 0/1 labels (FLAME2's fire
and smoke) that is the distribution over the label combinations, each label independent given the
frame as the per-label sigmoids have it: ``class_log_probs``. (Per label, DKD's non-target part is
empty and DKD is KD; over the four combinations of fire and smoke it is not.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.training.losses import hard_loss, soft_target_loss

LOGITS, FEATURES, STAGES = "logits", "features", "stages"
MAX_COMBINATION_LABELS = 10  # 2^10 label combinations: beyond that a class-defined method refuses


@dataclass
class Views:
    """What a model showed of one batch: its logits, pooled features and stage maps."""

    logits: torch.Tensor
    features: torch.Tensor | None = None
    stages: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    """What a term may need of the batch beyond the two models' views."""

    targets: torch.Tensor
    labelled: torch.Tensor | None  # 1 where a frame's label may be used (None: every frame's)
    rows: torch.Tensor | None = None  # each frame's row in the study's frames (a memory bank's index)


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a method to the registry under its ``name``: ``methods: [{name: ...}]`` then finds it."""
    METHODS[cls.name] = cls
    return cls


class Method(nn.Module):
    """One distillation method. Subclasses set the class attributes and ``forward``."""

    name: ClassVar[str]
    reads: ClassVar[frozenset[str]] = frozenset({LOGITS})
    weight: ClassVar[float] = 1.0  # its term's default weight (the paper's, or mdistiller's)
    options: ClassVar[dict] = {}  # its own settings and their defaults
    complete: ClassVar[bool] = False  # a whole objective, hard term included (kd_loss may name it)
    classes: ClassVar[bool] = False  # reads a distribution over classes (see class_log_probs)
    paper: ClassVar[str] = ""
    transfers: ClassVar[str] = ""  # what it passes on, in words

    def __init__(self, labels: LabelSet = FLAME2, student_stage: str | None = None,
                 teacher_stage: str | None = None, **options):
        super().__init__()
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise KDError(f"method {self.name!r} has no option {unknown[0]!r}; its options: "
                          f"{', '.join(self.options) or 'none'}")
        self.labels = labels
        self.student_stage, self.teacher_stage = student_stage, teacher_stage
        for key, default in self.options.items():
            setattr(self, key, options.get(key, default))
        if self.classes:
            _check_combinations(labels, self.name)

    @property
    def stage_pair(self) -> tuple[str, str] | None:
        """(student stage, teacher stage) for a method that reads stages."""
        return (self.student_stage, self.teacher_stage) if STAGES in self.reads else None

    def setup(self, student: Views, teacher: Views) -> None:
        """Size the learnable parts from one dry batch of both models' views."""

    def set_epoch(self, epoch: int) -> None:
        """Told at the start of each training epoch (0-based): for schedules such as DKD's warm-up."""

    def forward(self, student: Views, teacher: Views, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


def _check_combinations(labels: LabelSet, name: str) -> None:
    if not labels.multiclass and len(labels.names) > MAX_COMBINATION_LABELS:
        raise KDError(f"method {name!r} reads a distribution over classes; {len(labels.names)} 0/1 labels have "
                      f"2^{len(labels.names)} combinations, over its limit of 2^{MAX_COMBINATION_LABELS}")


def combinations(n: int, device=None) -> torch.Tensor:
    """Every 0/1 combination of ``n`` labels, one per row, in binary order (row k holds k's bits)."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), device=device).flip(1)


def class_log_probs(logits: torch.Tensor, labels: LabelSet, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities over the classes at temperature T: the softmax for classes; for 0/1 labels
    over their 2^L combinations, each label's sigmoid independent of the others."""
    z = logits.float() / temperature
    if labels.multiclass:
        return F.log_softmax(z, dim=1)
    combos = combinations(z.shape[1], z.device)
    return F.logsigmoid(z) @ combos.T + F.logsigmoid(-z) @ (1 - combos).T


def class_index(targets: torch.Tensor, labels: LabelSet) -> torch.Tensor:
    """Each item's class: the one-hot's argmax, or the row of its label combination."""
    if labels.multiclass:
        return targets.argmax(1)
    bits = 2 ** torch.arange(targets.shape[1], device=targets.device)
    return (targets.round().long() * bits).sum(1)


def target_class(student: Views, teacher: Views, batch: Batch, labels: LabelSet) -> torch.Tensor:
    """The class a class-defined method treats as the target: the label where the frame is
    labelled, else the teacher's most likely class (an unlabelled frame has no other)."""
    guessed = class_log_probs(teacher.logits, labels).argmax(1)
    if batch.labelled is None:
        return class_index(batch.targets, labels)
    known = class_index(batch.targets, labels)
    return torch.where(batch.labelled.bool(), known, guessed)


def _resized(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.adaptive_avg_pool2d(x, size)


def common_size(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
    """The smaller of two maps' sizes: the larger is average-pooled down to it."""
    return min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1])


# --- complete objectives on logits -------------------------------------------------------------

@register
class KD(Method):
    """Hinton's loss: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * hard``."""

    name, complete = "kd", True
    options = {"temperature": 4.0, "alpha": 0.7}
    paper = "Hinton, Vinyals and Dean, Distilling the knowledge in a neural network (2015)"
    transfers = "the teacher's softened outputs: how likely it finds each label or class"

    def forward(self, student, teacher, batch):
        return soft_target_loss(student.logits, teacher.logits, batch.targets, self.temperature, self.alpha,
                                batch.labelled, self.labels.multiclass)


@register
class Generalized(Method):
    """Lopez-Paz et al.'s loss: ``(1 - alpha) * CE(y, softmax(z_s)) + T^2 * alpha * CE(softmax(z_t / T),
    softmax(z_s))``; only the teacher's targets are softened. Classes only."""

    name, complete = "generalized", True
    options = {"temperature": 4.0, "alpha": 0.7}
    paper = "Lopez-Paz, Bottou, Schölkopf and Vapnik, Unifying distillation and privileged information (ICLR 2016)"
    transfers = "the teacher's softened class distribution, against the student's unsoftened one"

    def __init__(self, labels: LabelSet = FLAME2, **options):
        super().__init__(labels, **options)
        if not labels.multiclass:
            raise KDError("method 'generalized' (Lopez-Paz et al.'s softmax loss) is for classes "
                          "(labels: {kind: multiclass, ...})")

    def forward(self, student, teacher, batch):
        soft_targets = F.softmax(teacher.logits / self.temperature, dim=1)
        soft = F.cross_entropy(student.logits, soft_targets)
        hard = hard_loss(student.logits, batch.targets, True, batch.labelled)
        return self.temperature**2 * self.alpha * soft + (1 - self.alpha) * hard


# --- terms on logits ----------------------------------------------------------------------------

@register
class DKD(Method):
    """Decoupled KD: the target class's share (TCKD) and the distribution among the other classes
    (NCKD), weighted apart: ``warm-up * T^2 * (alpha * TCKD + beta * NCKD)``."""

    name, classes = "dkd", True
    options = {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 1}
    paper = "Zhao, Cui, Song, Qiu and Liang, Decoupled knowledge distillation (CVPR 2022)"
    transfers = "the teacher's confidence in the target, and apart from it how it ranks the other classes"

    def set_epoch(self, epoch: int) -> None:
        self.ramp = min((epoch + 1) / max(self.warmup, 1), 1.0)

    def forward(self, student, teacher, batch):
        log_s, log_t = (class_log_probs(v.logits, self.labels, self.temperature) for v in (student, teacher))
        target = F.one_hot(target_class(student, teacher, batch, self.labels), log_s.shape[1]).bool()
        tckd = _kl_binary(*(_target_split(lp, target) for lp in (log_t, log_s)))
        nckd = _kl_rest(log_t, log_s, target)
        return getattr(self, "ramp", 1.0) * self.temperature**2 * (self.alpha * tckd + self.beta * nckd).mean()


def _target_split(log_p: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(target) and log p(not the target), per item."""
    rest = torch.logsumexp(log_p.masked_fill(target, float("-inf")), dim=1)
    return log_p[target], rest


def _kl_binary(teacher: tuple, student: tuple) -> torch.Tensor:
    return sum(lt.exp() * (lt - ls) for lt, ls in zip(teacher, student, strict=True))


def _kl_rest(log_t: torch.Tensor, log_s: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL between the two distributions renormalized over the non-target classes."""
    t = F.log_softmax(log_t.masked_fill(target, float("-inf")), dim=1)
    s = F.log_softmax(log_s.masked_fill(target, float("-inf")), dim=1)
    return (t.exp() * (t - s).masked_fill(target, 0.0)).sum(1)


@register
class DIST(Method):
    """DIST: the Pearson correlation of student and teacher probabilities, across the classes of
    each item (inter-class) and across the items of each class (intra-class), ``tau^2 * (beta *
    (1 - inter) + gamma * (1 - intra))``."""

    name, classes = "dist", True
    options = {"beta": 1.0, "gamma": 1.0, "temperature": 1.0}
    paper = "Huang, You, Wang, Qian and Xu, Knowledge distillation from a stronger teacher (NeurIPS 2022)"
    transfers = "the teacher's relations, not its values: how classes rank within a frame and frames within a class"

    def forward(self, student, teacher, batch):
        p_s, p_t = (class_log_probs(v.logits, self.labels, self.temperature).exp() for v in (student, teacher))
        inter = 1 - _pearson(p_s, p_t).mean()
        intra = 1 - _pearson(p_s.T, p_t.T).mean()
        return self.temperature**2 * (self.beta * inter + self.gamma * intra)


def _pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row by row."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


# --- terms on pooled features -------------------------------------------------------------------

@register
class RKD(Method):
    """Relational KD: the student's pairwise distances (normalized by their mean) and the angles of
    its triplets match the teacher's, by Huber loss; no adapter, so any two widths meet."""

    name, reads = "rkd", frozenset({FEATURES})
    options = {"distance": 25.0, "angle": 50.0}
    paper = "Park, Kim, Lu and Cho, Relational knowledge distillation (CVPR 2019)"
    transfers = "the geometry of the teacher's feature space: which frames lie near each other"

    def forward(self, student, teacher, batch):
        s, t = student.features.float(), teacher.features.float()
        return self.distance * F.smooth_l1_loss(_distances(s), _distances(t)) + \
            self.angle * F.smooth_l1_loss(_angles(s), _angles(t))


def _distances(x: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d / d[d > 0].mean().clamp(min=1e-12)


def _angles(x: torch.Tensor) -> torch.Tensor:
    e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), dim=2)
    return torch.bmm(e, e.transpose(1, 2)).flatten()


@register
class CRD(Method):
    """Contrastive representation distillation, in its softmax (InfoNCE) form: the student's
    embedding of a frame must pick the teacher's embedding of the same frame out of ``negatives``
    others, and the other way round. Both embeddings (linear, then unit length) are learned; the
    negatives come from two memory banks over every frame, moved towards each new embedding with
    ``momentum``. Negatives are drawn at random, with replacement, from every other frame."""

    name, reads = "crd", frozenset({FEATURES})
    weight = 0.8
    options = {"dim": 128, "negatives": 4096, "temperature": 0.07, "momentum": 0.5}
    paper = "Tian, Krishnan and Isola, Contrastive representation distillation (ICLR 2020)"
    transfers = "what the teacher's features can tell apart: each frame's embedding against many others'"

    def setup(self, student, teacher):
        self.embed_s = nn.Linear(student.features.shape[1], self.dim)
        self.embed_t = nn.Linear(teacher.features.shape[1], self.dim)

    def set_frames(self, frames: int) -> None:
        """Memory banks for ``frames`` frames, unit vectors at random (kept in the fit's checkpoint)."""
        for name in ("memory_s", "memory_t"):
            self.register_buffer(name, F.normalize(torch.rand(frames, self.dim) - 0.5, dim=1))

    def forward(self, student, teacher, batch):
        v_s = F.normalize(self.embed_s(student.features.float()), dim=1)
        v_t = F.normalize(self.embed_t(teacher.features.float()), dim=1)
        frames = self.memory_s.shape[0]
        drawn = torch.randint(0, frames - 1, (len(batch.rows), min(self.negatives, frames - 1)), device=v_s.device)
        negatives = drawn + (drawn >= batch.rows.unsqueeze(1)).long()  # any frame but the positive itself
        candidates = torch.cat([batch.rows.unsqueeze(1), negatives], dim=1)  # the positive first
        loss = self._nce(v_s, self.memory_t[candidates]) + self._nce(v_t, self.memory_s[candidates])
        if self.training:
            self._remember(batch.rows, v_s, v_t)
        return loss

    def _nce(self, anchor: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bd,bkd->bk", anchor, candidates) / self.temperature
        return F.cross_entropy(scores, torch.zeros(len(anchor), dtype=torch.long, device=anchor.device))

    @torch.no_grad()
    def _remember(self, rows: torch.Tensor, v_s: torch.Tensor, v_t: torch.Tensor) -> None:
        for memory, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
            memory[rows] = F.normalize(self.momentum * memory[rows] + (1 - self.momentum) * v.detach(), dim=1)


# --- terms on stage maps ------------------------------------------------------------------------

@register
class FitNets(Method):
    """FitNets' hint: the student's stage, through a learned 1x1 convolution (the regressor), regressed
    onto the teacher's stage by mean squared error; the larger map is average-pooled to the smaller."""

    name, reads = "fitnets", frozenset({STAGES})
    weight = 100.0
    paper = "Romero, Ballas, Kahou, Chassang, Gatta and Bengio, FitNets: hints for thin deep nets (ICLR 2015)"
    transfers = "the teacher's intermediate map itself, channel by channel"

    def setup(self, student, teacher):
        s, t = student.stages[self.student_stage], teacher.stages[self.teacher_stage]
        self.adapter = nn.Conv2d(s.shape[1], t.shape[1], 1)

    def forward(self, student, teacher, batch):
        s, t = self.adapter(student.stages[self.student_stage].float()), teacher.stages[self.teacher_stage].float()
        size = common_size(s, t)
        return F.mse_loss(_resized(s, size), _resized(t, size))


@register
class AT(Method):
    """Attention transfer: where each map is active (the channel mean of its p-th power, flattened
    and made unit length) matches the teacher's; widths need not meet, so no adapter."""

    name, reads = "at", frozenset({STAGES})
    weight = 1000.0
    options = {"p": 2}
    paper = "Zagoruyko and Komodakis, Paying more attention to attention (ICLR 2017)"
    transfers = "where in the frame the teacher's stage responds, not what it computes there"

    def forward(self, student, teacher, batch):
        s, t = (v.stages[n].float().pow(self.p).mean(1, keepdim=True)
                for v, n in ((student, self.student_stage), (teacher, self.teacher_stage)))
        size = common_size(s, t)
        a_s, a_t = (F.normalize(_resized(x, size).flatten(1), dim=1) for x in (s, t))
        return (a_s - a_t).pow(2).mean()


def complete_methods() -> tuple[str, ...]:
    """The methods ``kd_loss`` may name."""
    return tuple(name for name, cls in METHODS.items() if cls.complete)
