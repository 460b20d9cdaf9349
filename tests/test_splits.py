import numpy as np
import pytest

from kdcore.data import leakage, make_split
from kdcore.data.splits import difference_hash
from kdcore.errors import KDError

COMBOS = np.array(["NN"] * 400 + ["YN"] * 300 + ["YY"] * 200 + ["NY"] * 100)
GROUPS = np.repeat(np.arange(40), 25)  # 40 segments of 25 frames, one combination each


def test_stratified_is_the_seeds_49_21_30_by_combination():
    split = make_split(COMBOS, None, "auto", seed=1)
    assert split.mode == "stratified"
    assert (len(split.train), len(split.val), len(split.test)) == (490, 210, 300)
    for combo, n in (("NN", 400), ("NY", 100)):
        assert np.sum(COMBOS[split.test] == combo) == pytest.approx(0.3 * n, abs=1)
    assert len(np.unique(np.concatenate([split.train, split.val, split.test]))) == 1000


def test_group_split_keeps_segments_whole_and_close_to_shares():
    split = make_split(COMBOS, GROUPS, "auto", seed=1)
    assert split.mode == "group"
    parts = [set(GROUPS[ix]) for ix in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(split.train) == pytest.approx(490, abs=75)
    assert len(split.test) == pytest.approx(300, abs=75)
    for combo in ("NN", "YN", "YY", "NY"):  # every combination reaches the test set
        assert np.any(COMBOS[split.test] == combo)


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (make_split(COMBOS, GROUPS, "group", s) for s in (7, 7, 8))
    assert all(np.array_equal(x, y) for x, y in zip(a.parts().values(), b.parts().values(), strict=True))
    assert not np.array_equal(a.test, c.test)


def test_bad_modes():
    with pytest.raises(KDError, match="split must be one of"):
        make_split(COMBOS, GROUPS, "random", 0)
    with pytest.raises(KDError, match="needs a 'group' column"):
        make_split(COMBOS, None, "group", 0)


def test_leakage_counts_near_duplicates():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (10, 16, 17))
    near = [difference_hash(b + rng.integers(-1, 2, b.shape) * (rng.random(b.shape) < 0.02)) for b in base]
    hashes = np.stack([difference_hash(b) for b in base] + near)
    from kdcore.data import Split

    split = Split("x", np.arange(5), np.array([], int), np.arange(10, 20))  # tests 0-4 copied, 5-9 not
    audit = leakage(hashes, split)
    assert audit["near_duplicate_share"] == 0.5
