"""Today's logit objectives (``kd_loss: kd`` and ``generalized``) as a golden file: the loss of a
small student over a few AdamW steps, per objective and label kind, recorded as exact float hex.
A change to the objectives' code that moves a single bit shows here; numbers are compared bit for
bit on the kind of machine they were recorded on (float kernels differ between CPUs), and within
1e-5 elsewhere.

    python tests/objectives_golden.py      re-records it, after a change that is meant to move numbers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "data" / "objectives_golden.json"
STEPS = 3

# (name, kd_loss, label kind, every frame labelled, feature hint weight)
CASES = (("kd, labels, all labelled", "kd", "multilabel", True, 0.0),
         ("kd, labels, label budget", "kd", "multilabel", False, 0.0),
         ("kd, labels, feature hint", "kd", "multilabel", False, 0.5),
         ("kd, classes, label budget", "kd", "multiclass", False, 0.0),
         ("generalized, classes, label budget", "generalized", "multiclass", False, 0.0))


def _batch(multiclass: bool):
    import torch

    g = torch.Generator().manual_seed(7)
    rgb = torch.rand(12, 3, 32, 32, generator=g)
    outputs = 3 if multiclass else 2
    if multiclass:
        classes = torch.randint(0, 3, (12,), generator=g)
        targets = torch.nn.functional.one_hot(classes, 3).float()
    else:
        targets = torch.randint(0, 2, (12, 2), generator=g).float()
    ids = [f"f{i}" for i in range(12)]
    teacher_logits = torch.randn(12, outputs, generator=g) * 2
    teacher_features = torch.randn(12, 16, generator=g)
    return (rgb, torch.zeros(12), targets, ids), teacher_logits, teacher_features


def run_case(kd_loss: str, kind: str, all_labelled: bool, feature_weight: float) -> list[float]:
    """The loss at each of ``STEPS`` AdamW steps of a small student distilled from fixed outputs."""
    import torch

    from kdcore.models.student import Student
    from kdcore.study.config import from_dict
    from kdcore.training.losses import TeacherOutputs
    from kdcore.training.objective import build_criterion

    multiclass = kind == "multiclass"
    labels = {"kind": "multiclass", "column": "digit", "classes": [0, 1, 2]} if multiclass else {}
    cfg = from_dict({"kd_loss": kd_loss, "labels": labels, "kd_feature_weight": feature_weight,
                     "kd_temperature": 4.0, "kd_alpha": 0.7})
    batch, logits, features = _batch(multiclass)
    torch.manual_seed(3)
    student = Student(widths=(8, 8, 16, 16), hidden=16, num_classes=3 if multiclass else 2)
    ids = batch[3]
    labelled = None if all_labelled else set(ids[::3])
    criterion = build_criterion(cfg, TeacherOutputs(ids, logits, features), student, labelled)
    optimizer = torch.optim.AdamW([*student.parameters(), *criterion.parameters()], lr=1e-3)
    losses = []
    for _ in range(STEPS):
        loss, _ = criterion(student, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def record() -> dict:
    import torch

    torch.set_num_threads(1)
    return {name: [x.hex() for x in run_case(*case)] for name, *case in CASES}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from golden import machine

    GOLDEN.write_text(json.dumps({"machine": machine(), "record": record()}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} on {machine()}")
