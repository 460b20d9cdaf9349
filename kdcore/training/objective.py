"""A distilled student's objective: a base (Hinton's loss, or the labels alone) plus the terms of
registered methods (``kdcore.training.methods``), each with its weight.

What the terms read decides what is computed: a fit on logits reads the teacher's cached outputs
and runs the student once, as it always did; pooled features come from the same student pass and
the teacher's cache; stage maps come from the trained teacher, run beside the student (under no
gradient, in fp32, stopped once its last needed stage is out), and from the student's own stages
through forward hooks that come off after each pass.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.models.stages import StageTap, model_stages, stage_shapes
from kdcore.training.losses import HardLabels, TeacherOutputs, hard_loss
from kdcore.training.methods import (
    FEATURES,
    METHODS,
    STAGES,
    Batch,
    Method,
    Views,
    complete_methods,
)


class _Enough(Exception):
    """Raised by a hook once every stage the teacher is asked for is out: the rest is not run."""


class Distill(nn.Module):
    """The student objective: ``base + sum(weight * term)`` (+ the optional feature hint: student
    features, through a learned projection, regressed onto the teacher's). ``base`` is a complete
    method (Hinton's loss, ``kd``) or None, the labels' hard term alone."""

    def __init__(self, teacher: TeacherOutputs | nn.Module, base: Method | None, terms: list[tuple[float, Method]] = (),
                 labelled_ids: set[str] | None = None, labels: LabelSet = FLAME2, feature_weight: float = 0.0,
                 student_dim: int = 0, teacher_dim: int = 0, stage_teacher: nn.Module | None = None,
                 frame_ids: list[str] | None = None):
        super().__init__()
        self.labels, self.labelled_ids = labels, labelled_ids  # None: every frame's label is used
        self.base = base
        self.terms = nn.ModuleList(method for _, method in terms)
        self.weights = [float(w) for w, _ in terms]
        self.feature_weight = feature_weight
        if isinstance(teacher, nn.Module):
            teacher.eval().requires_grad_(False)
            self._teacher = [teacher]  # a list: not a submodule, so never in the optimizer or state
        else:
            self._teacher = teacher
        if stage_teacher is not None:
            stage_teacher.eval().requires_grad_(False)
        self._stage_teacher = [stage_teacher]
        self.hint = nn.Linear(student_dim, teacher_dim) if feature_weight > 0 else None
        ids = frame_ids if frame_ids is not None else getattr(teacher, "ids", None)
        self._row = {frame_id: i for i, frame_id in enumerate(ids)} if ids is not None else None
        self._remembers = any(hasattr(m, "set_frames") for m in self.terms)  # a memory of every frame (CRD)
        self.last_terms: dict[str, torch.Tensor] = {}  # each term of the last batch, for the fit's log

    @property
    def multiclass(self) -> bool:
        return self.labels.multiclass

    @property
    def methods(self) -> list[Method]:
        return ([self.base] if self.base is not None else []) + list(self.terms)

    def _reading(self, what: str) -> list[Method]:
        return [m for m in self.terms if what in m.reads]

    @property
    def student_stages(self) -> list[str]:
        return list(dict.fromkeys(m.student_stage for m in self._reading(STAGES)))

    @property
    def teacher_stages(self) -> list[str]:
        return list(dict.fromkeys(m.teacher_stage for m in self._reading(STAGES)))

    def set_epoch(self, epoch: int) -> None:
        for method in self.methods:
            method.set_epoch(epoch)

    # --- what each model shows of a batch ---

    def teacher_logits_and_features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, ir, _, ids = batch
        if isinstance(self._teacher, TeacherOutputs):
            return self._teacher.lookup(ids, rgb.device)
        teacher = self._teacher[0]
        # fp32, as the cached outputs are: the soft targets must not depend on the training precision
        with torch.no_grad(), torch.autocast(rgb.device.type, enabled=False):
            features = teacher.forward_features(rgb.float(), ir.float())
            return teacher.head(features).float(), features.float()

    def teacher_views(self, batch) -> Views:
        logits, features = self.teacher_logits_and_features(batch)
        return Views(logits, features, self.teacher_maps(batch[0], batch[1]) if self.teacher_stages else {})

    def teacher_maps(self, rgb: torch.Tensor, ir: torch.Tensor) -> dict[str, torch.Tensor]:
        """The teacher's stage maps, from a pass stopped once the last of them is out."""
        teacher, names = self._stage_teacher[0], self.teacher_stages
        with torch.no_grad(), torch.autocast(rgb.device.type, enabled=False), StageTap(teacher, names) as tap:
            def enough(module, inputs, output):
                if len(tap.maps) == len(names):
                    raise _Enough
            handles = [m.register_forward_hook(enough) for m in {teacher.get_submodule(s.path) for s in tap.stages.values()}]
            try:
                teacher(*_pair(teacher, rgb.float(), ir.float()))
            except _Enough:
                pass
            finally:
                for handle in handles:
                    handle.remove()
        return {n: m.float() for n, m in tap.maps.items()}

    def student_views(self, model: nn.Module, rgb: torch.Tensor) -> Views:
        names = self.student_stages
        features = self.hint is not None or bool(self._reading(FEATURES))
        with StageTap(model, names) if names else nullcontext() as tap:
            if features:  # one pass through the (possibly DDP-wrapped) model for both outputs
                logits, pooled = model(rgb, with_features=True)
            else:
                logits, pooled = model(rgb), None
        return Views(logits.float(), pooled, tap.maps if names else {})

    # --- the loss ---

    def labelled(self, ids, device) -> torch.Tensor | None:
        if self.labelled_ids is None:
            return None
        return torch.tensor([i in self.labelled_ids for i in ids], dtype=torch.float32, device=device)

    def rows(self, ids, device) -> torch.Tensor | None:
        """Each frame's row among the study's frames, for a method that keeps a memory of them."""
        if self._row is None or not self._remembers:
            return None
        return torch.tensor([self._row[i] for i in ids], device=device)

    def forward(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, _, targets, ids = batch
        teacher = self.teacher_views(batch)
        student = self.student_views(model, rgb)
        context = Batch(targets, self.labelled(ids, rgb.device), self.rows(ids, rgb.device))
        if self.base is None:
            loss = hard_loss(student.logits, targets, self.multiclass, context.labelled)
            terms = {"hard": loss}
        else:
            loss = self.base(student, teacher, context)
            terms = {self.base.name: loss}
        for weight, method in zip(self.weights, self.terms, strict=True):
            value = method(student, teacher, context)
            loss = loss + weight * value
            terms[method.name] = value
        if self.hint is not None:
            hint = F.mse_loss(self.hint(student.features.float()), teacher.features)
            loss = loss + self.feature_weight * hint
            terms["feature_hint"] = hint
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        return loss, student.logits


def _pair(model: nn.Module, rgb: torch.Tensor, ir: torch.Tensor) -> tuple:
    return (rgb, ir) if "ir" in getattr(model, "modalities", ("rgb",)) else (rgb,)


# --- building an objective from a study's settings --------------------------------------------

def complete_method(cfg, name: str | None = None, options: dict | None = None) -> Method:
    """A complete method (``kd_loss``'s by default) at the study's temperature and alpha unless
    ``options`` say otherwise."""
    name = name or cfg.kd_loss
    settings = {"temperature": cfg.kd_temperature, "alpha": cfg.kd_alpha, **(options or {})}
    return METHODS[name](cfg.label_set, **settings)


def make_method(spec, labels: LabelSet) -> Method:
    """A term from its settings (``MethodConfig``: name, stages, options)."""
    return METHODS[spec.name](labels, spec.student_stage, spec.teacher_stage, **spec.options)


def build_criterion(cfg, teacher: TeacherOutputs | nn.Module | None, student: nn.Module | None = None,
                    labelled_ids: set[str] | None = None, method=None, stage_teacher: nn.Module | None = None,
                    frame_ids: list[str] | None = None) -> nn.Module:
    """The objective of a student fit: the labels alone without a teacher; else the config's
    ``kd_loss``, or ``method`` (a ``MethodConfig``: a term on the labels or on Hinton's loss, or a
    complete method with its own options). Learnable parts are sized by one dry pass of
    ``student`` and ``stage_teacher`` at the study's image size."""
    if teacher is None:
        return HardLabels(cfg.label_set)
    student_dim = student.num_features if student is not None else 0
    teacher_dim = teacher.features.shape[1] if isinstance(teacher, TeacherOutputs) else getattr(teacher, "num_features", 0)
    terms, base = [], complete_method(cfg)
    if method is not None:
        if METHODS[method.name].complete:
            base = complete_method(cfg, method.name, method.options)
        else:
            term = make_method(method, cfg.label_set)
            terms = [(method.weight if method.weight is not None else term.weight, term)]
            base = base if method.kd else None
    criterion = Distill(teacher, base, terms, labelled_ids, cfg.label_set, cfg.kd_feature_weight, student_dim,
                        teacher_dim, stage_teacher, frame_ids)
    if terms:
        setup(criterion, student, teacher, stage_teacher, cfg.image_size)
    return criterion


def setup(criterion: Distill, student: nn.Module, teacher, stage_teacher: nn.Module | None, image_size: int) -> None:
    """Resolve each term's stages, then size its parts from one dry batch of two frames (in eval
    mode: no running statistic moves, no random number is drawn)."""
    rgb = torch.zeros(2, 3, image_size, image_size)
    stage_methods = [m for m in criterion.terms if STAGES in m.reads]
    for method in stage_methods:
        if problem := stage_problem(method.name, method.student_stage, method.teacher_stage, student, stage_teacher):
            raise KDError(problem)
    if stage_methods:
        shapes = (stage_shapes(student, (rgb,)), stage_shapes(stage_teacher, _pair(stage_teacher, rgb, rgb)))
        for method in stage_methods:
            resolve_stages(method, *shapes)
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            views_s = criterion.student_views(student, rgb)
            views_t = _dry_teacher_views(criterion, teacher, rgb)
    finally:
        student.train(was_training)
    for method in criterion.terms:
        method.setup(views_s, views_t)
        if hasattr(method, "set_frames"):
            if criterion._row is None:
                raise KDError(f"method {method.name!r} keeps a memory of every frame: it needs the frames' ids")
            method.set_frames(len(criterion._row))


def _dry_teacher_views(criterion: Distill, teacher, rgb: torch.Tensor) -> Views:
    if isinstance(teacher, TeacherOutputs):
        logits, features = teacher.logits[:2], teacher.features[:2]
    else:
        logits, features = criterion.teacher_logits_and_features((rgb, rgb, None, []))
    maps = criterion.teacher_maps(rgb, rgb) if criterion.teacher_stages else {}
    return Views(logits, features, maps)


def resolve_stages(method: Method, shapes_s: dict, shapes_t: dict) -> None:
    """A stage method's defaults where it names no stage: the teacher's deepest stage still at
    least 2x2 (its fused map in a CNN teacher), and the student's stage nearest it in size (the
    deeper on a tie). ``shapes_*``: (C, H, W) per stage (``stage_shapes``)."""
    if method.teacher_stage is None:
        maps = [n for n, s in shapes_t.items() if min(s[1:]) >= 2]
        method.teacher_stage = maps[-1] if maps else list(shapes_t)[0]
    if method.student_stage is None:
        size = shapes_t[method.teacher_stage][1]
        method.student_stage = min(reversed(list(shapes_s)), key=lambda n: abs(shapes_s[n][1] - size))


def stage_problem(method: str, student_stage: str | None, teacher_stage: str | None, student: nn.Module | None,
                  teacher: nn.Module | None, teacher_name: str = "the teacher") -> str | None:
    """Why a method cannot read these stages of these models (None: it can)."""
    if STAGES not in METHODS[method].reads:
        return None
    if teacher is None or not model_stages(teacher):
        return (f"method {method!r} reads stage maps, and {teacher_name} has none (the oracle's outputs are "
                "labels; an MLP's layers are vectors)")
    if student is None or not model_stages(student):
        return f"method {method!r} reads stage maps, and the student has none (an MLP's layers are vectors)"
    for who, model, name in (("student", student, student_stage), (teacher_name, teacher, teacher_stage)):
        stages = model_stages(model)
        if name is not None and name not in stages:
            return f"{who} has no stage {name!r}; its stages: {', '.join(stages)}"
    return None


__all__ = ["Distill", "build_criterion", "complete_methods", "stage_problem"]
