"""The study's steps, each declared once: what it reads, what it makes, the function that does its
work, and which settings cannot change what it makes.

A step runs as one stage notebook per seed (``seed`` scope), per teacher and seed (``teacher``), or
once (``study``). ``study.plan`` orders the stages from these declarations alone; ``kdcore.study.work``
runs one step after checking that what it reads is there; ``Layout.product_files`` says which files
a product is. A stage's digest leaves out the settings its step ``ignores``, so that the sub-studies
of a sweep share the stages a swept setting cannot reach (a temperature sweep trains each teacher
once). Ignoring a setting a step does read would reuse a wrong result: when in doubt, depend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from kdcore.study.config import Config


def _always(cfg: Config, teacher: str | None) -> bool:
    return True


def _compressed(cfg: Config, teacher: str | None) -> bool:
    return cfg.compresses(teacher)


@dataclass(frozen=True)
class Step:
    notebook: str  # the stage notebook that runs it
    title: str
    scope: str  # seed | teacher | study
    reads: tuple[str, ...]  # products of earlier steps
    makes: tuple[str, ...]
    applies: Callable[[Config, str | None], bool] = _always
    skipped_when: str = ""  # in words: when ``applies`` says no
    ignores: tuple[str, ...] = ()  # settings that cannot change what it makes (config keys)
    trains: bool = True  # fits a model: on a cluster its job asks for the GPUs (slurm.gpus)
    per_method: bool = False  # also once per entry of ``methods`` (the methods axis), beside its own stage
    # "module:function" doing the work, imported when it runs: (cfg, data, teacher) -> record; a
    # study-scope step's (cfg, **the notebook's options) -> what its page shows
    work: str = ""

    def function(self) -> Callable:
        """The function that does the step's work (its module loads only now: planning needs no torch)."""
        module, name = self.work.split(":")
        return getattr(importlib.import_module(module), name)


TEACHER_FIT = ("epochs_teacher", "patience_teacher", "lr_teacher", "teacher_outputs", "crossfit_folds")
STUDENT_FIT = ("epochs_student", "patience_student", "lr_student", "student_stem_stride")
DISTILLATION = ("kd_temperature", "kd_alpha", "kd_feature_weight", "kd_loss")
COMPRESSION = ("compress", "prune_sparsity", "finetune_epochs")
ARMS = ("rgb_teacher_arm",)  # which teachers a study has, not how any one is trained
METHODS = ("methods",)  # a method's stage reads its own entry alone (stage_digest); no other stage reads any

FINAL_EVALUATION = "final_evaluation"  # a seed's record of a teacher's run: its chain's last step writes it
METHOD_STUDENT = "method_student"  # what a per-method stage makes: a student of one method, teacher and seed

# the steps' notebooks, named once: code that means a particular step says which by these
DATA_STEP, TEACHER_STEP, STUDENT_STEP, COMPRESS_STEP, COMPARE_STEP = (
    "00_data", "01_teacher", "02_student", "03_compress", "04_compare")

STEPS = (
    Step(DATA_STEP, "data", "seed", reads=(), makes=("split", "no_kd_student"),
         ignores=TEACHER_FIT + DISTILLATION + COMPRESSION + ARMS + METHODS + ("embeddings",),
         work="kdcore.study.work.run:data_step"),
    Step(TEACHER_STEP, "teacher", "teacher", reads=("split",), makes=("teacher",),
         ignores=STUDENT_FIT + DISTILLATION + COMPRESSION + ARMS + METHODS, work="kdcore.study.work.fits:train_teacher"),
    # whether it is the last, and so writes the final evaluation, depends on `compress`: not ignored
    Step(STUDENT_STEP, "student", "teacher", reads=("split", "teacher", "no_kd_student"),
         makes=("student",), ignores=("prune_sparsity", "finetune_epochs") + ARMS + METHODS,
         work="kdcore.study.work.fits:train_student", per_method=True),
    Step(COMPRESS_STEP, "compression", "teacher", reads=("split", "student"),
         makes=("compressed_students",), applies=_compressed,
         skipped_when="compress: false, or the teacher is an RGB twin (a control arm, not a model to deploy)",
         ignores=ARMS + METHODS, work="kdcore.study.work.compression:compress_student"),
    Step(COMPARE_STEP, "comparison", "study", reads=(FINAL_EVALUATION, METHOD_STUDENT), makes=("comparison",),
         trains=False, work="kdcore.study.work.compare:compare_runs"),
)
BY_NOTEBOOK = {s.notebook: s for s in STEPS}


def step(notebook: str) -> Step:
    return BY_NOTEBOOK[notebook]


def chain(cfg: Config, teacher: str) -> list[Step]:
    """The steps one teacher's seed runs, in order (the seed's data step first)."""
    return [s for s in STEPS if s.scope in ("seed", "teacher") and s.applies(cfg, teacher)]


def finishes(cfg: Config, teacher: str, notebook: str) -> bool:
    """Whether ``notebook`` is the last step of the teacher's chain: the one that writes the
    seed's final evaluation."""
    return chain(cfg, teacher)[-1].notebook == notebook


def products(cfg: Config, teacher: str | None, step: Step, method: str | None = None) -> tuple[str, ...]:
    """What ``step`` makes for ``teacher``: what it declares, and the final evaluation where it is
    the last of the teacher's steps (so a step added at the end of the chain needs no word on it);
    a method's stage, its method's student alone."""
    if method is not None:
        return (METHOD_STUDENT,)
    last = step.scope == "teacher" and finishes(cfg, teacher, step.notebook)
    return step.makes + ((FINAL_EVALUATION,) if last else ())


def makers(product: str) -> list[str]:
    """The steps that make ``product`` (the final evaluation: whichever is a teacher's last)."""
    if product == METHOD_STUDENT:
        return [s.notebook for s in STEPS if s.per_method]
    return [s.notebook for s in STEPS if product in s.makes] or ["the teacher's last step"]
