"""The study's models at full size, profiled without allocating their weights (meta device)."""

from __future__ import annotations

import torch

from kdcore.models.profile import profile
from kdcore.models.stages import stage_shapes
from kdcore.models.student import Student
from kdcore.models.teachers import STUDY_TEACHERS, create_teacher


def _models(img_size: int):
    for name in (*STUDY_TEACHERS, "student"):
        with torch.device("meta"):
            yield name, Student() if name == "student" else create_teacher(name, img_size, freeze=True)


def model_table(img_size: int = 224) -> list[dict]:
    """Each study teacher and the student: what it costs."""
    return [{"name": name, **profile(model, img_size)} for name, model in _models(img_size)]


def stage_table(img_size: int = 224) -> list[dict]:
    """Each study teacher and the student: its named stages and their (C, H, W) at ``img_size``."""
    rows = []
    for name, model in _models(img_size):
        inputs = (torch.zeros(1, 3, img_size, img_size, device="meta"),) * len(model.modalities)
        rows.append({"name": name, "stages": {k: list(v) for k, v in stage_shapes(model, inputs).items()}})
    return rows
