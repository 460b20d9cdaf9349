"""The vocabulary of the study's records, in one place: where each metric sits in an evaluation
record and what it is called, the roles of a seed's final evaluation, and how latencies are keyed.

Plain data (no torch): the comparison and the reports read records without loading a model library.
"""

from __future__ import annotations

import re

# metric key -> (label, where it sits in an evaluation's "metrics"); every F1 and the Hamming loss
# at the thresholds tuned on validation (the headline), the reference protocol's 0.5 beside them
METRICS = {
    "macro_f1": ("macro-F1", ("macro_f1",)),
    "fire_auroc": ("fire AUROC", ("ranking", "fire", "auroc")),
    "fire_ap": ("fire AP", ("ranking", "fire", "average_precision")),
    "smoke_auroc": ("smoke AUROC", ("ranking", "smoke", "auroc")),
    "fire_f1": ("fire F1", ("fire", "f1")),
    "smoke_f1": ("smoke F1", ("smoke", "f1")),
    "hamming_loss": ("Hamming loss", ("hamming_loss",)),
    "macro_f1_at_0.5": ("macro-F1 at 0.5", ("at_0.5", "macro_f1")),
    "fire_f1_at_0.5": ("fire F1 at 0.5", ("at_0.5", "fire", "f1")),
    "smoke_f1_at_0.5": ("smoke F1 at 0.5", ("at_0.5", "smoke", "f1")),
    "fire_auroc_rgb_hidden": ("fire AUROC, fires RGB hides", ("fire_by_rgb_visibility", "rgb_hidden", "auroc")),
    "fire_auroc_rgb_visible": ("fire AUROC, fires RGB shows", ("fire_by_rgb_visibility", "rgb_visible", "auroc")),
}
ROLES = {"teacher": "teacher", "student": "distilled student", "no_kd_student": "no-KD student"}


def metric_value(evaluation: dict, key: str):
    """The value of metric ``key`` in an evaluation record (None where the record lacks it)."""
    value = evaluation["metrics"]
    for step in METRICS[key][1]:
        value = value.get(step) if isinstance(value, dict) else None
    return value


def latency_key(size: int, batch: int) -> str:
    """How a latency is keyed in every evaluation record: ``224px_batch1``."""
    return f"{size}px_batch{batch}"


def latency_header(key: str) -> str:
    """'224px_batch1' -> 'latency, ms (224 px, batch 1)'."""
    size, batch = re.fullmatch(r"(\d+)px_batch(\d+)", key).groups()
    return f"latency, ms ({size} px, batch {batch})"
