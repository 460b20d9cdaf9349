import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from kdcore.data import decoded_frames, make_split, read_frame_csv, synth
from kdcore.data.synth import SMOKE_VISIBLE, Segment


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_deterministic_and_in_flame2_layout(tmp_path, synth_csv):
    again = synth(tmp_path / "again", frames=400, size=64, seed=0, progress=False, workers=1)
    assert _digest(again.parent) == _digest(synth_csv.parent)  # same bytes, whatever the workers
    label_file = (again.parent / "Frame Pair Labels.txt").read_bytes()
    assert b"\r\n" in label_file and not label_file.endswith(b"\n")


def test_labels_come_in_long_runs_with_every_combination(synth_csv):
    df = pd.read_csv(synth_csv)
    assert len(df) == 400 and df["id"].tolist() == list(range(1, 401))
    combos = df["fire"].astype(str) + df["smoke"].astype(str)
    assert set(combos) == {"00", "10", "01", "11"}
    runs = (combos != combos.shift()).sum()
    assert runs <= df["group"].nunique() and len(df) / df["group"].nunique() >= 20
    assert (df.groupby("group")[["fire", "smoke"]].nunique() == 1).all().all()  # one label per segment


@pytest.mark.parametrize("smoke", [True, False])
def test_smoke_covers_half_the_frame_exactly_when_labelled(smoke):
    rng = np.random.default_rng(3)
    for _ in range(10):
        seg = Segment(rng, 64, 20, fire=False, smoke=smoke)
        covered = min(np.mean(seg.frame(t).smoke_alpha > SMOKE_VISIBLE) for t in (0, 10, 19))
        assert (covered >= 0.5) if smoke else (covered < 0.5)


def test_fire_is_hot_in_ir_and_distractors_are_cold():
    rng = np.random.default_rng(5)
    hot = [Segment(rng, 64, 5, fire=True, smoke=True).frame(2).ir for _ in range(10)]
    cold = [Segment(rng, 64, 5, fire=False, smoke=False).frame(2).ir for _ in range(10)]
    # the palette's top end (yellow-white) appears only where there is fire
    assert all(ir[..., 1].max() > 150 for ir in hot)
    assert all(ir[..., 1].max() < 60 for ir in cold)


def _features(frames: np.ndarray) -> np.ndarray:
    pixels = frames.reshape(len(frames), -1, 3).astype(np.float32) / 255
    return np.concatenate([pixels.mean(1), pixels.std(1), np.percentile(pixels, 99, axis=1)], 1)


def test_ir_knows_what_rgb_does_not(tmp_path):
    """The study's premise: on a leak-free split, RGB+IR detects fire far better than RGB alone."""
    table = read_frame_csv(synth(tmp_path, frames=1500, size=64, seed=0, progress=False), progress=False)
    rgb = _features(decoded_frames(table, "rgb", 32, tmp_path / "cache", progress=False))
    ir = _features(decoded_frames(table, "ir", 32, tmp_path / "cache", progress=False))
    fire = table.targets[:, 0]
    scores = {"rgb": [], "rgb+ir": []}
    for seed in range(3):
        split = make_split(table.strata, table.groups, "group", seed, gap_frames=0)
        for name, x in (("rgb", rgb), ("rgb+ir", np.hstack([rgb, ir]))):
            model = LogisticRegression(max_iter=5000).fit(x[split.train], fire[split.train])
            scores[name].append(f1_score(fire[split.test], model.predict(x[split.test])))
    assert np.mean(scores["rgb+ir"]) >= 0.9
    assert np.mean(scores["rgb+ir"]) - np.mean(scores["rgb"]) >= 0.2


def test_knobs_change_what_rgb_and_ir_show_and_truth_is_written(tmp_path):
    from kdcore.data.synth import SynthOptions

    rng = np.random.default_rng(0)
    shown = [Segment(rng, 64, 3, fire=True, smoke=False, options=SynthOptions(rgb_fire=1.0)).frame(1) for _ in range(8)]
    assert all(f.fire_rgb_visible for f in shown)
    hidden = [Segment(rng, 64, 3, fire=True, smoke=False, options=SynthOptions(rgb_fire=0.0)).frame(1) for _ in range(8)]
    assert not any(f.fire_rgb_visible for f in hidden)
    cold = [Segment(rng, 64, 3, fire=True, smoke=True, options=SynthOptions(ir_fire=False)).frame(1).ir for _ in range(8)]
    assert all(ir[..., 1].max() < 60 for ir in cold)  # the negative control: IR sees no fire
    table = read_frame_csv(synth(tmp_path, frames=480, size=32, seed=1, progress=False,
                                 options={"rgb_fire": 0.5}), progress=False)
    visible = table.frames["fire_rgb_visible"]
    assert visible[table.frames["fire"] == 0].sum() == 0 and 0 < visible.sum() < table.frames["fire"].sum()
    with pytest.raises(Exception, match="unknown synth option 'rgb'"):
        SynthOptions.from_dict({"rgb": 1})


def test_passes_cut_the_frames_into_that_many_camera_passes():
    import numpy as np

    from kdcore.data.synth import plan_segments

    segments = plan_segments(np.random.default_rng(0), 3000, passes=300)
    assert len(segments) == 300 and sum(n for _, n in segments) == 3000
    assert {c for c, _ in segments} == {"NN", "YN", "NY", "YY"}
    assert len(plan_segments(np.random.default_rng(0), 3000)) == 100  # the default: one per 30 frames, at most 100
