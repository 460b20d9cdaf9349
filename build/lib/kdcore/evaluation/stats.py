"""Across seeds and within a seed: what an interval can honestly say.

- ``summarize``: mean, std and a t-based 95% interval over seeds, clipped to the metric's range;
  no interval below three seeds (with two, t = 12.7 and the interval spans any bounded metric).
- ``paired_difference``: a minus b over the seeds both have, with its t-interval, p-value and
  d_z (the mean difference over the standard deviation of the differences); below three seeds
  none of the three (two near-equal differences give d_z in the hundreds and p near 0).
- ``detectable_difference`` / ``seeds_needed``: the power of a paired t-test at the observed spread
  of the differences: the smallest true difference it would find 80% of the time, and how many
  seeds a given difference would need. A null result is read against the first: "no effect
  found" means little when only a large one could have been.
- ``holm``: Holm's step-down adjustment of a family of p-values.
- ``block_bootstrap``: the same difference, resampling test blocks (not frames: neighbouring frames
  are near-copies) within each seed. It measures test-set uncertainty only, not seed-to-seed
  variation, but it says something even with two seeds.

Missing values (None) are never dropped silently: every record says which positions were missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

FEW_SEEDS = "too few seeds for an interval (n < 3)"
UNIT_RANGE = (0.0, 1.0)


def _present(values) -> tuple[np.ndarray, list[int]]:
    missing = [i for i, x in enumerate(values) if x is None or (isinstance(x, float) and np.isnan(x))]
    return np.asarray([x for i, x in enumerate(values) if i not in missing], dtype=float), missing


def _t_interval(v: np.ndarray, bounds: tuple[float, float]) -> tuple[list, str | None]:
    if len(v) < 3:
        return [None, None], FEW_SEEDS
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    low, high = v.mean() - half, v.mean() + half
    clipped = low < bounds[0] or high > bounds[1]
    return [float(max(low, bounds[0])), float(min(high, bounds[1]))], "clipped to the metric's range" if clipped else None


def summarize(values: Sequence, bounds: tuple[float, float] = UNIT_RANGE) -> dict:
    """n, mean, std (ddof 1), ci95 [low, high] within ``bounds``, min, max, the values (None kept in
    place) and the positions of the missing ones."""
    v, missing = _present(values)
    out = {"n": len(v), "mean": None, "std": None, "ci95": [None, None], "ci_note": None, "min": None,
           "max": None, "values": list(values), "missing": missing}
    if len(v) == 0:
        return out
    out.update(mean=float(v.mean()), std=float(v.std(ddof=1)) if len(v) > 1 else None,
               min=float(v.min()), max=float(v.max()))
    out["ci95"], out["ci_note"] = _t_interval(v, bounds)
    return out


def paired_difference(a: Sequence, b: Sequence, bounds: tuple[float, float] = UNIT_RANGE) -> dict:
    """a - b over the positions (seeds) where both exist: mean, t-interval, paired t-test, d_z."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    missing = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x is None or y is None]
    diff = np.array([x - y for x, y in pairs], dtype=float)
    width = bounds[1] - bounds[0]
    out = {"n": len(diff), "mean_difference": float(diff.mean()) if len(diff) else None,
           "ci95": [None, None], "ci_note": None, "t": None, "p_value": None, "d_z": None, "sd": None,
           "detectable": None, "differences": diff.tolist(), "missing": missing}
    if len(diff) == 0:
        return out
    out["ci95"], out["ci_note"] = _t_interval(diff, (-width, width))
    if len(diff) >= 3 and diff.std(ddof=1) > 0:  # with two pairs, t has one degree of freedom: no test
        t, p = stats.ttest_rel([x for x, _ in pairs], [y for _, y in pairs])
        sd = float(diff.std(ddof=1))
        out.update(t=float(t), p_value=float(p), d_z=float(diff.mean() / sd), sd=sd,
                   detectable=detectable_difference(sd, len(diff)))
    return out


ALPHA, POWER = 0.05, 0.8


def t_test_power(difference: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The chance that a two-sided paired t-test at level ``alpha`` on ``n`` pairs rejects "no
    difference" when the true mean difference is ``difference`` and the differences' SD is ``sd``
    (the noncentral t distribution)."""
    df, critical = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
    shift = difference * np.sqrt(n) / sd
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def detectable_difference(sd: float | None, n: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest true mean difference the paired t-test on ``n`` seeds detects with probability
    ``power``, at differences spread with SD ``sd``; None below three seeds or without a spread."""
    if n < 3 or not sd:
        return None
    from scipy.optimize import brentq

    high = sd
    while t_test_power(high, sd, n, alpha) < power:  # bracket the root (far shifts overflow nct)
        high *= 2
    return float(brentq(lambda d: t_test_power(d, sd, n, alpha) - power, 0.0, high))


def seeds_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                 most: int = 10_000) -> int | None:
    """The fewest seeds (at least three) whose paired t-test detects ``difference`` with probability
    ``power`` at differences spread with SD ``sd``; None if not within ``most``."""
    if not difference or not sd:
        return None
    return next((n for n in range(3, most + 1) if t_test_power(abs(difference), sd, n, alpha) >= power), None)


def holm(p_values: Sequence) -> list:
    """Holm-adjusted p-values, in the input order; None stays None and is not counted."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    adjusted: list = [None] * len(p_values)
    running, m = 0.0, len(present)
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def block_bootstrap(seeds: Sequence[dict], metric: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                    resamples: int = 1000, rng_seed: int = 0) -> dict:
    """The mean over seeds of metric(a) - metric(b), with a percentile 95% interval from resampling
    each seed's test blocks with replacement. Each seed: {"a": scores, "b": scores, "y": targets,
    "units": block per frame}. A resample is frame weights (how often each frame's block was
    drawn), and ``metric(scores, y, weights)`` gives one value per resample at once (NaN where
    undefined, e.g. one class only: such a resample is skipped and counted)."""
    if not seeds:
        return {"estimate": None, "ci95": [None, None], "resamples": 0, "undefined": 0, "seeds": 0, "blocks": []}
    rng = np.random.default_rng(rng_seed)
    per_seed, point, blocks = [], [], []
    for s in seeds:
        _, block = np.unique(s["units"], return_inverse=True)
        n = int(block.max()) + 1
        picked = rng.integers(0, n, (resamples, n)) + n * np.arange(resamples)[:, None]
        drawn = np.bincount(picked.ravel(), minlength=resamples * n).reshape(resamples, n)
        per_seed.append(_difference(metric, s, drawn[:, block]))
        point.append(_difference(metric, s, np.ones((1, len(block))))[0])
        blocks.append(n)
    draws = np.mean(per_seed, axis=0)
    draws = draws[~np.isnan(draws)]
    estimate = None if np.isnan(point).any() else float(np.mean(point))
    ci = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if len(draws) else [None, None]
    return {"estimate": estimate, "ci95": ci, "resamples": len(draws), "undefined": resamples - len(draws),
            "seeds": len(seeds), "blocks": blocks}


def _difference(metric, s: dict, weights: np.ndarray) -> np.ndarray:
    return metric(s["a"], s["y"], weights) - metric(s["b"], s["y"], weights)
