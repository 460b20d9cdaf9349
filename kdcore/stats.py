"""Across seeds: mean, std, t-based 95% confidence intervals, paired tests with effect sizes."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats


def summarize(values) -> dict:
    """mean, std (ddof 1), ci95 [low, high] from Student's t, min, max and the values themselves."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": [None, None], "min": None, "max": None, "values": []}
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"n": len(v), "mean": mean, "std": std, "ci95": [mean - half, mean + half],
            "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}


def paired_test(a, b) -> dict:
    """a vs b over the same seeds: paired t-test, mean difference, Cohen's d of the differences."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a - b
    out = {"n": len(diff), "mean_difference": float(diff.mean()) if len(diff) else None,
           "t": None, "p_value": None, "cohens_d": None}
    if len(diff) > 1 and diff.std(ddof=1) > 0:
        t, p = stats.ttest_rel(a, b)
        out.update(t=float(t), p_value=float(p), cohens_d=float(diff.mean() / diff.std(ddof=1)))
    return out


def pairwise_tests(series: dict[str, list[float]]) -> list[dict]:
    """Every pair of named series (e.g. teachers' macro-F1 over seeds)."""
    return [{"a": a, "b": b, **paired_test(series[a], series[b])}
            for a, b in itertools.combinations(sorted(series), 2)]
