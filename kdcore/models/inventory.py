"""The study's models at full size, profiled without allocating their weights (meta device)."""

from __future__ import annotations

import torch

from kdcore.models.profile import profile
from kdcore.models.student import Student
from kdcore.models.teachers import STUDY_TEACHERS, create_teacher


def model_table(img_size: int = 224) -> list[dict]:
    rows = []
    for name in (*STUDY_TEACHERS, "student"):
        with torch.device("meta"):
            model = Student() if name == "student" else create_teacher(name, img_size, freeze=True)
        rows.append({"name": name, **profile(model, img_size)})
    return rows
