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
    "fire_recall": ("fire recall", ("fire", "recall")),
    "subset_accuracy": ("subset accuracy", ("subset_accuracy",)),
    "hamming_loss": ("Hamming loss", ("hamming_loss",)),
    "macro_f1_at_0.5": ("macro-F1 at 0.5", ("at_0.5", "macro_f1")),
    "fire_f1_at_0.5": ("fire F1 at 0.5", ("at_0.5", "fire", "f1")),
    "smoke_f1_at_0.5": ("smoke F1 at 0.5", ("at_0.5", "smoke", "f1")),
    "fire_auroc_rgb_hidden": ("fire AUROC, fires RGB hides", ("fire_by_rgb_visibility", "rgb_hidden", "auroc")),
    "fire_auroc_rgb_visible": ("fire AUROC, fires RGB shows", ("fire_by_rgb_visibility", "rgb_visible", "auroc")),
}
ROLES = {"teacher": "teacher", "student": "distilled student", "no_kd_student": "no-KD student"}
ALIASES = {"f1_macro": "macro_f1"}  # aggregated results also carry the reference codebase's names


# what a constant scorer (always "yes") gets on the same test frames: key -> where it sits in an
# evaluation's "metrics.baseline"
BASELINE = {
    "macro_f1": ("always_positive_macro_f1",),
    "fire_f1": ("fire", "always_positive_f1"),
    "smoke_f1": ("smoke", "always_positive_f1"),
    "fire_ap": ("fire", "average_precision"),
    "fire_prevalence": ("fire", "prevalence"),
    "smoke_prevalence": ("smoke", "prevalence"),
}


def _walk(value, path: tuple[str, ...]):
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


def metric_value(evaluation: dict, key: str):
    """The value of metric ``key`` in an evaluation record (None where the record lacks it)."""
    return _walk(evaluation["metrics"], METRICS[key][1])


def baseline_value(evaluation: dict, key: str):
    """What always answering "yes" scores in ``key`` (``BASELINE``) on the record's test frames."""
    return _walk(evaluation["metrics"].get("baseline"), BASELINE[key])


def with_aliases(summaries: dict) -> dict:
    """Aggregated metric summaries, each also under its alias (``ALIASES``)."""
    return {**summaries, **{alias: summaries[key] for alias, key in ALIASES.items() if key in summaries}}


def labelled(evaluation: dict, keys) -> dict:
    """``{label: value}`` of the metrics ``keys`` of an evaluation record, in that order."""
    return {METRICS[k][0]: metric_value(evaluation, k) for k in keys}


def latency_key(size: int, batch: int) -> str:
    """How a latency is keyed in every evaluation record: ``224px_batch1``."""
    return f"{size}px_batch{batch}"


def latency_header(key: str) -> str:
    """'224px_batch1' -> 'latency, ms (224 px, batch 1)'."""
    size, batch = re.fullmatch(r"(\d+)px_batch(\d+)", key).groups()
    return f"latency, ms ({size} px, batch {batch})"
