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
    split = make_split(COMBOS, GROUPS, "group", seed=1, gap_frames=0)
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
    with pytest.raises(KDError, match="needs a 'group' column"):
        make_split(COMBOS, None, "block", 0)


def test_auto_is_block_with_groups_and_stratified_without():
    assert make_split(COMBOS, GROUPS, "auto", 1).mode == "block"
    assert make_split(COMBOS, None, "auto", 1).mode == "stratified"


def test_block_split_cuts_long_ranges_and_leaves_gaps_where_parts_meet():
    # two long ranges, as FLAME2's NN run: whole-range grouping could not put NN in every part
    combos = np.array(["NN"] * 3000 + ["YY"] * 3000)
    groups = np.repeat([0, 1], 3000)
    split = make_split(combos, groups, "block", seed=3, block_frames=200, gap_frames=10)
    part_of = np.full(len(combos), -1)
    for p, ix in enumerate(split.parts().values()):
        part_of[ix] = p
        for combo in ("NN", "YY"):
            assert np.any(combos[ix] == combo)
    assert len(np.unique(split.units)) == 30
    for i in np.flatnonzero(part_of >= 0):  # no frame has a frame of another part within 5 rows
        near = part_of[max(0, i - 5):i + 6]
        assert set(near[near >= 0].tolist()) == {part_of[i]}
    assert 0 < split.left_out <= 10 * 29


def test_block_split_names_a_combination_it_cannot_place():
    combos = np.array(["NN"] * 3000 + ["YN"] * 100)
    with pytest.raises(KDError, match="combination YN has 1 block"):
        make_split(combos, np.repeat([0, 1], [3000, 100]), "block", seed=0, block_frames=200)


def test_label_budget_takes_whole_training_blocks_of_every_combination():
    from kdcore.data.splits import labelled_mask

    split = make_split(COMBOS, GROUPS, "block", seed=1, block_frames=25, gap_frames=0)
    labelled = labelled_mask(split, COMBOS, 0.25, seed=1)
    assert labelled[split.val].all() and labelled[split.test].all()
    train = split.train
    for unit in np.unique(split.units[train]):  # a block is labelled whole or not at all
        assert len(set(labelled[train][split.units[train] == unit].tolist())) == 1
    assert 0.15 < labelled[train].mean() < 0.4
    for combo in ("NN", "YN", "YY", "NY"):
        assert labelled[train][COMBOS[train] == combo].any()
    assert labelled_mask(split, COMBOS, 1.0, seed=1).all()


def test_leakage_counts_near_duplicates():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (10, 16, 17))
    near = [difference_hash(b + rng.integers(-1, 2, b.shape) * (rng.random(b.shape) < 0.02)) for b in base]
    hashes = np.stack([difference_hash(b) for b in base] + near)
    from kdcore.data import Split

    split = Split("x", np.arange(5), np.array([], int), np.arange(10, 20))  # tests 0-4 copied, 5-9 not
    audit = leakage(hashes, split)
    assert audit["near_duplicate_share"] == 0.5
    assert audit["val_near_duplicate_share"] is None  # no val frames: nothing to measure


def test_gap_frames_are_left_out_only_where_parts_meet_inside_one_video():
    combos = np.repeat(np.array(["NN", "YN", "YY"] * 6), 40)  # 18 segments of 40 frames
    groups = np.repeat(np.arange(18), 40)
    one_video = make_split(combos, groups, "block", 0, block_frames=40, gap_frames=10)
    passes = make_split(combos, groups, "block", 0, block_frames=40, gap_frames=10, videos=groups)
    assert one_video.left_out > 0 and passes.left_out == 0  # separate camera passes touch nowhere
    videos = np.repeat([0, 1], 360)  # segments 0-8 are one video, 9-17 another
    whole = make_split(combos, groups, "block", 0, block_frames=40, gap_frames=0, videos=videos)
    part = np.empty(720, int)
    for p, ix in enumerate(whole.parts().values()):
        part[ix] = p
    expected = set()  # five frames each side of every change of part inside one video, within that video
    for row in range(1, 720):
        if part[row] != part[row - 1] and videos[row] == videos[row - 1]:
            expected |= {r for r in range(row - 5, row + 5) if videos[r] == videos[row]}
    split = make_split(combos, groups, "block", 0, block_frames=40, gap_frames=10, videos=videos)
    left = set(range(720)) - set(np.concatenate(list(split.parts().values())).tolist())
    assert left == expected and split.left_out == len(expected) > 0


def test_train_size_takes_exactly_that_many_items_stratified_and_independent_items_do_not_leak():
    from kdcore.data.splits import audit_modes

    classes = np.repeat(np.array(list("abcde")), 100)
    for seed in (1, 2):
        split = make_split(classes, None, "stratified", seed, train_size=50)
        assert len(split.train) == 50 and all(np.sum(classes[split.train] == c) == 10 for c in "abcde")
        assert len(split.val) + len(split.test) == 450 and abs(len(split.val) / 450 - 21 / 51) < 0.01
    assert not np.array_equal(make_split(classes, None, "stratified", 1, train_size=50).train,
                              make_split(classes, None, "stratified", 2, train_size=50).train)  # anew per seed
    assert len(make_split(classes, None, "stratified", 1, train_size=0.1).train) == 50
    with pytest.raises(KDError, match="config key 'train_size'"):
        make_split(classes, np.arange(500) // 10, "block", 1, train_size=50)
    hashes = np.random.default_rng(0).integers(0, 255, (500, 32), dtype=np.uint8)
    (audit,) = audit_modes(classes, None, None, 1, train_size=50)  # independent: no hashes needed
    assert audit["leaks"] is None and audit["parts"]["train"]["frames"] == 50
    assert audit["near_duplicate_share"] is None and audit["not_audited"].startswith("not measured")
    (video,) = audit_modes(classes, None, hashes, 1, videos=np.zeros(500, int))
    assert video["leaks"] and video["near_duplicate_share"] is not None  # frames of one video: measured, leaking


def test_missing_seeds_are_named_by_their_numbers():
    from kdcore.evaluation.stats import paired_difference
    from kdcore.study.analysis import _difference_row

    d = paired_difference([0.1, None, 0.3, 0.4, 0.2], [0.0, 0.1, 0.2, 0.1, None])
    assert _difference_row("x", "macro_f1", d, None, seeds=[7, 8, 9, 10, 11])["missing seeds"] == "8, 11"
