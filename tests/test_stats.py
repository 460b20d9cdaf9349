import numpy as np
import pytest

from kdcore.evaluation.stats import FEW_SEEDS, block_bootstrap, holm, paired_difference, summarize


def test_interval_stays_inside_the_metrics_range_and_needs_three_seeds():
    near_one = summarize([0.99, 1.0, 0.9, 1.0])
    assert near_one["ci95"][1] == 1.0 and near_one["ci_note"] == "clipped to the metric's range"
    two = summarize([0.2, 0.9])
    assert two["ci95"] == [None, None] and two["ci_note"] == FEW_SEEDS and two["n"] == 2


def test_missing_values_are_kept_in_place_and_named():
    s = summarize([0.5, None, 0.7, 0.6])
    assert s["n"] == 3 and s["missing"] == [1] and s["values"][1] is None
    assert s["mean"] == pytest.approx(0.6)


def test_paired_difference_has_its_interval_and_d_z():
    a, b = [0.8, 0.7, 0.9, 0.85], [0.7, 0.65, 0.8, 0.8]
    d = paired_difference(a, b)
    diffs = np.subtract(a, b)
    assert d["mean_difference"] == pytest.approx(diffs.mean())
    assert d["d_z"] == pytest.approx(diffs.mean() / diffs.std(ddof=1))
    assert d["ci95"][0] < diffs.mean() < d["ci95"][1] and d["ci95"][0] > 0
    assert paired_difference([0.5, None, 0.7], [0.4, 0.3, 0.6])["missing"] == [1]


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None], nan_ok=True)


def test_block_bootstrap_resamples_blocks_and_finds_a_real_difference():
    rng = np.random.default_rng(0)
    seeds = []
    for _ in range(2):
        units = np.repeat(np.arange(20), 10)
        y = np.repeat(rng.integers(0, 2, 20), 10)  # labels constant within a block, as video runs are
        good = y + rng.normal(0, 0.6, len(y))
        bad = y + rng.normal(0, 2.0, len(y))
        seeds.append({"a": good, "b": bad, "y": y, "units": units})

    def accuracy(scores, y, weights):  # one value per resample (row of frame weights)
        return weights @ ((scores > 0.5) == y) / weights.sum(1)

    out = block_bootstrap(seeds, accuracy, resamples=300)
    assert out["blocks"] == [20, 20] and out["resamples"] == 300
    assert 0 < out["ci95"][0] < out["estimate"] < out["ci95"][1]
    assert out == block_bootstrap(seeds, accuracy, resamples=300)  # seeded


def test_two_seeds_give_no_test_and_no_effect_size():
    d = paired_difference([0.90, 0.91], [0.80, 0.8101])
    assert d["mean_difference"] == pytest.approx(0.09995) and d["n"] == 2
    assert d["p_value"] is None and d["d_z"] is None and d["ci95"] == [None, None] and d["ci_note"] == FEW_SEEDS


def test_the_detectable_difference_is_what_a_paired_t_test_finds_80_percent_of_the_time():
    from scipy import stats

    from kdcore.evaluation.stats import detectable_difference, seeds_needed

    planted = np.array([0.03, -0.02, 0.05, 0.01, -0.04, 0.02])  # six seeds' paired differences
    d = paired_difference(0.5 + planted, np.full(6, 0.5))
    sd = planted.std(ddof=1)
    assert d["sd"] == pytest.approx(sd) and d["detectable"] == pytest.approx(detectable_difference(sd, 6))
    # by hand: draw six differences with that mean and SD, test, count the rejections
    rng = np.random.default_rng(0)
    draws = rng.normal(d["detectable"], sd, (40_000, 6))
    t = draws.mean(1) / (draws.std(1, ddof=1) / np.sqrt(6))
    rejected = np.mean(np.abs(t) > stats.t.ppf(0.975, 5))
    assert rejected == pytest.approx(0.80, abs=0.01)
    normal_bound = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / np.sqrt(6)
    assert d["detectable"] > normal_bound  # the t-test with 5 degrees of freedom needs more than z's
    assert seeds_needed(d["detectable"], sd) == 6 and seeds_needed(d["detectable"] / 2, sd) > 6
    assert paired_difference([0.5, 0.6], [0.4, 0.5])["detectable"] is None  # two seeds: no spread to read
