"""Which epoch a fit keeps, and when it stops: a validation criterion named by ``select_on``.

A criterion must move from the first epoch on. Macro-F1 at a fixed 0.5 does not: a model that
ranks a class well but has not yet pushed its probabilities past 0.5 scores 0 there, so epochs are
kept and fits stopped on a flat, jumpy signal. Threshold-free criteria (mean AUROC or AP over the
classes, or the binary cross-entropy against the labels) see every step of progress. The
validation BCE is taken against the labels for every role, so a distilled student is selected on
the labels too, not on how closely it imitates its teacher (``bce`` for labels, ``cross_entropy``
for classes). ``last`` selects nothing: the fit runs its whole epoch budget and keeps the last
epoch, as a published protocol with a fixed budget and no early stopping does.

Plain data (no torch): the config validates ``select_on`` without loading a model library.
"""

from __future__ import annotations

from dataclasses import dataclass

FLAT_TOLERANCE = 1e-4  # a criterion that moved less than this (relative to its size) never moved


@dataclass(frozen=True)
class Criterion:
    name: str  # the key of a validation epoch's metrics
    label: str  # in words, for pages and logs
    higher_is_better: bool

    def score(self, metrics: dict, epoch: int) -> float | None:
        """The criterion's value in a validation epoch's metrics (``last``: the epoch itself)."""
        return float(epoch) if self.name == "last" else metrics.get(self.name)

    def better(self, score: float | None, best: float | None) -> bool:
        if score is None:
            return False
        if best is None:
            return True
        return score > best if self.higher_is_better else score < best

    def flat(self, values: list[float | None]) -> bool:
        """Whether it never moved over two or more epochs: then no epoch was chosen for a reason."""
        present = [v for v in values if v is not None]
        if len(values) < 2:
            return False
        if not present:
            return True
        scale = max(1.0, max(abs(v) for v in present))
        return max(present) - min(present) <= FLAT_TOLERANCE * scale


CRITERIA = {c.name: c for c in (
    Criterion("mean_auroc", "validation AUROC, mean over the classes", True),
    Criterion("mean_ap", "validation average precision, mean over the classes", True),
    Criterion("bce", "validation binary cross-entropy against the labels", False),
    Criterion("cross_entropy", "validation cross-entropy against the classes", False),
    Criterion("macro_f1", "validation macro-F1 at 0.5 (the reference's rule)", True),
    Criterion("last", "none: the last epoch of a fixed budget", True),
)}
MULTILABEL_ONLY, MULTICLASS_ONLY = ("bce",), ("cross_entropy",)
DEFAULT = "mean_auroc"


def criterion(name: str) -> Criterion:
    return CRITERIA[name]
