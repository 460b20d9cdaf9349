"""The steps' work: what each step does for one seed (and teacher), one module per concern.

``seed_data`` (the split, normalization, the leakage audit), ``fits`` (teachers, crossfit folds,
students), ``evaluation`` (the one record every model and variant gets, the seed's final
evaluation), ``compression`` (the variants), ``compare`` (the compare step), and ``run``: running a
step once what it reads is there (``run_step``), and a teacher's whole chain (``run_teacher_steps``;
``python -m kdcore.study.work`` under torchrun).

Names load their module on first use, so that the compare step reads records without torch.
"""

from importlib import import_module

_WHERE = {
    "SeedData": "seed_data", "ensure_data": "seed_data", "prepare_data": "seed_data", "audit": "seed_data",
    "build_student": "fits", "build_teacher": "fits", "crossfit_folds": "fits", "fit_settings": "fits",
    "predict_teacher_outputs": "fits", "train_student": "fits", "train_teacher": "fits",
    "final_evaluation": "evaluation", "provenance": "evaluation",
    "data_step": "run", "run_step": "run", "run_teacher_steps": "run",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'kdcore.study.work' has no attribute {name!r}")
    return getattr(import_module(f"kdcore.study.work.{_WHERE[name]}"), name)
