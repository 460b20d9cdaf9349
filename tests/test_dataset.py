import numpy as np
import torch

from kdcore.data import (
    FrameDataset,
    decoded_frames,
    make_split,
    normalization_stats,
    read_frame_csv,
)


def test_cache_is_built_once_and_reused(synth_csv, tmp_path):
    table = read_frame_csv(synth_csv, check_images=False)
    first = decoded_frames(table, "rgb", 32, tmp_path, progress=False)
    files = list(tmp_path.glob("*.npy"))
    stamp = files[0].stat().st_mtime_ns
    again = decoded_frames(table, "rgb", 32, tmp_path, progress=False)
    assert first.shape == (400, 32, 32, 3) and first.dtype == np.uint8
    assert files[0].stat().st_mtime_ns == stamp and np.array_equal(first, again)
    assert len(list(tmp_path.glob("*"))) == 1  # no temporary files left behind
    decoded_frames(table, "rgb", 48, tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # a new size is a new entry


def test_normalization_uses_training_frames_only():
    rgb = np.zeros((4, 2, 2, 3), np.uint8)
    rgb[0] = 10
    rgb[1] = 200
    rgb[3] = 255  # a test frame: must not count
    stats = normalization_stats(rgb, None, train=np.array([0, 1]))
    assert stats == {"rgb": {"min": [10, 10, 10], "max": [200, 200, 200]}}


def _dataset(synth_csv, tmp_path, ir=True, augment=False):
    table = read_frame_csv(synth_csv, check_images=False)
    rgb = decoded_frames(table, "rgb", 32, tmp_path, progress=False)
    irs = decoded_frames(table, "ir", 32, tmp_path, progress=False) if ir else None
    split = make_split(table.combos, table.groups, "group", 0)
    stats = normalization_stats(rgb, irs, split.train)
    return FrameDataset(rgb, irs, table.labels, table.frames["id"].tolist(), split.train, stats, augment)


def test_items_are_normalized_pairs(synth_csv, tmp_path):
    ds = _dataset(synth_csv, tmp_path)
    rgb, ir, labels, frame_id = ds[0]
    assert rgb.shape == ir.shape == (3, 32, 32) and rgb.dtype == torch.float32
    assert labels.tolist() in ([0, 0], [1, 0], [0, 1], [1, 1]) and isinstance(frame_id, str)
    values = torch.stack([ds[i][0] for i in range(len(ds))])
    assert values.min() >= 0 and values.max() <= 1


def test_rgb_only_mode(synth_csv, tmp_path):
    rgb, ir, _, _ = _dataset(synth_csv, tmp_path, ir=False)[0]
    assert rgb.shape == (3, 32, 32) and ir.numel() == 0


def test_augmentation_moves_both_images_together(synth_csv, tmp_path):
    ds = _dataset(synth_csv, tmp_path, augment=True)
    ds.ir, ds.stats["ir"] = ds.rgb, ds.stats["rgb"]  # an identical pair must stay identical
    plain = _dataset(synth_csv, tmp_path)
    torch.manual_seed(0)
    changed = 0
    for i in range(8):
        rgb, ir, _, _ = ds[i]
        assert torch.equal(rgb, ir) and rgb.shape == (3, 32, 32)
        changed += not torch.equal(rgb, plain[i][0])
    assert changed >= 4
