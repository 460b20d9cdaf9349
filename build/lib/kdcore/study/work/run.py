"""Running the steps' work for one seed (and teacher), step by step, as the stage notebooks call it.

The steps, what each reads and makes, and the function that does its work are declared in
``kdcore.study.steps``. ``run_step`` checks that what a step reads is there, runs it, and, where it
is the last of the teacher's steps, writes the seed's final evaluation. Every fit resumes and
every file is written atomically; a step whose outputs exist does nothing again.

Under torchrun every rank trains; rank 0 alone evaluates and writes, and each step begins with a
barrier so that every rank sees what rank 0 wrote in the step before.
"""

from __future__ import annotations

from kdcore.errors import KDError
from kdcore.layout import Layout
from kdcore.study import steps
from kdcore.study.config import Config
from kdcore.study.work.evaluation import final_evaluation
from kdcore.study.work.fits import train_student
from kdcore.study.work.seed_data import SeedData, audit, prepare_data
from kdcore.training.loop import synchronize


def data_step(cfg: Config, data: SeedData, teacher: str | None = None) -> dict:
    """The seed's leakage audit, and its no-KD student (RGB only, BCE), shared by every teacher."""
    audit(cfg, data)
    return train_student(cfg, data, None)


def run_step(cfg: Config, notebook: str, data: SeedData, teacher: str | None = None, method: str | None = None) -> dict:
    """One step for one seed (and teacher, and method of the methods axis), once what it reads is there."""
    step = steps.step(notebook)
    if not step.applies(cfg, teacher):
        raise KDError(f"{notebook} does not run for teacher {teacher!r} in this config: {step.skipped_when}")
    synchronize()
    missing = Layout(cfg.output).missing(step.reads, teacher, data.seed)
    if missing:
        product, path = missing[0]
        raise KDError(f"{notebook} reads the {product.replace('_', ' ')} ({path}), which is not there: "
                      f"run {' or '.join(steps.makers(product))} first (kd study runs every step in order)")
    if method:
        if not step.per_method:
            raise KDError(f"{notebook} has no stage per method (method {method!r} given)")
        return step.function()(cfg, data, teacher, method=method)
    record = step.function()(cfg, data, teacher)
    if teacher and steps.finishes(cfg, teacher, notebook):
        return final_evaluation(cfg, data, teacher)
    return record


def run_teacher_steps(cfg: Config, name: str, seed: int, progress: bool = True) -> dict:
    """Every step of one teacher and seed, reusing whatever already finished; the final evaluation."""
    data = prepare_data(cfg, seed, progress)
    for step in steps.chain(cfg, name):
        record = run_step(cfg, step.notebook, data, name)
    return record
