"""The vocabulary of the study's records, in one place: where each metric sits in an evaluation
record and what it is called, the roles of a seed's final evaluation, and how latencies are keyed.

Plain data (no torch): the comparison and the reports read records without loading a model library.
"""

from __future__ import annotations

import re

# metric key -> (label, where it sits in an evaluation's "metrics"); every F1 and the Hamming loss
# at the thresholds tuned on validation (the headline), the reference protocol's 0.5 beside them.
# A key names one label or class and a measure: ``<name>_<measure>`` (``fire_auroc``, ``3_f1``).
STUDY_METRICS = {
    "macro_f1": ("macro-F1", ("macro_f1",)),
    "accuracy": ("accuracy", ("accuracy",)),  # multi-class: the argmax is the true class
    "subset_accuracy": ("subset accuracy", ("subset_accuracy",)),  # multi-label: every label right
    "hamming_loss": ("Hamming loss", ("hamming_loss",)),
    "macro_f1_at_0.5": ("macro-F1 at 0.5", ("at_0.5", "macro_f1")),
    "fire_auroc_rgb_hidden": ("fire AUROC, fires RGB hides", ("fire_by_rgb_visibility", "rgb_hidden", "auroc")),
    "fire_auroc_rgb_visible": ("fire AUROC, fires RGB shows", ("fire_by_rgb_visibility", "rgb_visible", "auroc")),
}
PER_OUTPUT = {  # measure -> (its words, where it sits: "{}" is the label or class)
    "auroc": ("AUROC", ("ranking", "{}", "auroc")),
    "ap": ("AP", ("ranking", "{}", "average_precision")),
    "f1_at_0.5": ("F1 at 0.5", ("at_0.5", "{}", "f1")),
    "f1": ("F1", ("{}", "f1")),
    "precision": ("precision", ("{}", "precision")),
    "recall": ("recall", ("{}", "recall")),
}
ROLES = {"teacher": "teacher", "student": "distilled student", "no_kd_student": "no-KD student"}
ALIASES = {"f1_macro": "macro_f1"}  # aggregated results also carry the reference codebase's names


def _split(key: str) -> tuple[str, str] | None:
    """'fire_auroc' -> ('fire', 'auroc'); None for a study-wide key."""
    for measure in sorted(PER_OUTPUT, key=len, reverse=True):
        if key.endswith(f"_{measure}") and len(key) > len(measure) + 1:
            return key[: -len(measure) - 1], measure
    return None


def metric(key: str) -> tuple[str, tuple[str, ...]]:
    """(what it is called, where it sits in an evaluation's "metrics") of metric ``key``."""
    if key in STUDY_METRICS:
        return STUDY_METRICS[key]
    parts = _split(key)
    if parts is None:
        raise KeyError(f"no metric {key!r}: a study-wide one ({', '.join(STUDY_METRICS)}) or "
                       f"<label>_<measure> with a measure of {', '.join(PER_OUTPUT)}")
    name, measure = parts
    words, path = PER_OUTPUT[measure]
    return f"{name} {words}", tuple(step.format(name) for step in path)


def metric_label(key: str) -> str:
    """'fire_auroc' -> 'fire AUROC'."""
    return metric(key)[0]


def metric_keys(labels) -> list[str]:
    """Every metric a study of this label set (``kdcore.data.labels.LabelSet``) records, in the
    order tables show them."""
    names = labels.names
    if labels.multiclass:
        return ["accuracy", "macro_f1", *(f"{n}_{m}" for m in ("auroc", "ap", "f1", "precision", "recall")
                                          for n in names)]
    keys = ["macro_f1", *(f"{n}_auroc" for n in names), *(f"{n}_ap" for n in names), *(f"{n}_f1" for n in names),
            *(f"{n}_recall" for n in names), "subset_accuracy", "hamming_loss", "macro_f1_at_0.5",
            *(f"{n}_f1_at_0.5" for n in names)]
    return keys + (["fire_auroc_rgb_hidden", "fire_auroc_rgb_visible"] if "fire" in names else [])


def default_headline(labels) -> str:
    """The metric a study's answer is read on unless its params say otherwise: a multi-label
    study's first label's AUROC (FLAME2: fire AUROC), a multi-class study's accuracy."""
    return "accuracy" if labels.multiclass else f"{labels.names[0]}_auroc"


# what a constant scorer gets on the same test frames (always "yes" per label; always the most
# frequent class): key -> where it sits in an evaluation's "metrics.baseline"
def baseline_path(key: str) -> tuple[str, ...] | None:
    """Where a constant scorer's value of ``key`` sits in an evaluation's "metrics.baseline"."""
    fixed = {"macro_f1": ("always_positive_macro_f1",), "accuracy": ("majority_accuracy",)}
    if key in fixed:
        return fixed[key]
    parts = _split(key) or (key.rsplit("_", 1) if key.endswith("_prevalence") else None)
    if parts is None:
        return None
    name, measure = parts
    where = {"f1": "always_positive_f1", "ap": "average_precision", "prevalence": "prevalence", "auroc": "auroc"}
    return (name, where[measure]) if measure in where else None


def baseline_keys(labels) -> list[str]:
    """The constant scorer's figures a metrics table shows beside a study's models."""
    names = labels.names
    if labels.multiclass:
        return ["accuracy", "macro_f1"]
    return ["macro_f1", *(f"{n}_f1" for n in names), f"{names[0]}_ap", *(f"{n}_prevalence" for n in names)]


def walk(value, path: tuple[str, ...]):
    """The value at ``path`` in nested dicts, None where a step is missing."""
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


def metric_value(evaluation: dict, key: str):
    """The value of metric ``key`` in an evaluation record (None where the record lacks it)."""
    return walk(evaluation["metrics"], metric(key)[1])


def baseline_value(evaluation: dict, key: str):
    """What a constant scorer gets in ``key`` (``baseline_path``) on the record's test frames."""
    path = baseline_path(key)
    return None if path is None else walk(evaluation["metrics"].get("baseline"), path)


def with_aliases(summaries: dict) -> dict:
    """Aggregated metric summaries, each also under its alias (``ALIASES``)."""
    return {**summaries, **{alias: summaries[key] for alias, key in ALIASES.items() if key in summaries}}


def labelled(evaluation: dict, keys) -> dict:
    """``{label: value}`` of the metrics ``keys`` of an evaluation record, in that order."""
    return {metric_label(k): metric_value(evaluation, k) for k in keys}


def latency_key(size: int, batch: int) -> str:
    """How a latency is keyed in every evaluation record: ``224px_batch1``."""
    return f"{size}px_batch{batch}"


def latency_header(key: str) -> str:
    """'224px_batch1' -> 'latency, ms (224 px, batch 1)'."""
    size, batch = re.fullmatch(r"(\d+)px_batch(\d+)", key).groups()
    return f"latency, ms ({size} px, batch {batch})"
