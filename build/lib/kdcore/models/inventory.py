"""The study's models at full size, profiled without allocating their weights (meta device)."""

from __future__ import annotations

import torch

from kdcore.models.profile import profile
from kdcore.models.stages import stage_shapes
from kdcore.models.student import Student
from kdcore.models.teachers import STUDY_TEACHERS, create_teacher


def model_table(img_size: int = 224, stages: bool = False) -> list[dict]:
    """Each study teacher and the student: cost, and with ``stages`` each named stage's (C, H, W)."""
    rows = []
    for name in (*STUDY_TEACHERS, "student"):
        with torch.device("meta"):
            model = Student() if name == "student" else create_teacher(name, img_size, freeze=True)
        rows.append({"name": name, **profile(model, img_size)})
        if stages:
            inputs = (torch.zeros(1, 3, img_size, img_size, device="meta"),) * len(getattr(model, "modalities", "x"))
            rows[-1]["stages"] = {k: list(v) for k, v in stage_shapes(model, inputs).items()}
    return rows
