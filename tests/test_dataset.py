import errno
import os

import numpy as np
import pytest
import torch

from kdcore.data import (
    FrameDataset,
    decoded_frames,
    make_split,
    normalization_stats,
    read_frame_csv,
)
from kdcore.data.schema import load_rgb
from kdcore.errors import KDError


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


def test_two_processes_asking_for_one_cache_decode_it_once(synth_csv, tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from kdcore.data import cache

    decoded = []
    monkeypatch.setattr(cache, "load_rgb", lambda path, size: decoded.append(path) or load_rgb(path, size))
    table = read_frame_csv(synth_csv, check_images=False)
    with ThreadPoolExecutor(2) as pool:  # a lock per open file, so threads contend as processes do
        first, second = pool.map(lambda _: decoded_frames(table, "rgb", 32, tmp_path, progress=False), range(2))
    assert len(decoded) == len(table) and np.array_equal(first, second)


def test_a_killed_build_leaves_a_temporary_the_next_build_removes(synth_csv, tmp_path):
    from kdcore.data.cache import cache_key
    from kdcore.layout import cache_file

    table = read_frame_csv(synth_csv, check_images=False)
    path = cache_file(tmp_path, "rgb", 32, cache_key(table.frames["rgb_path"].tolist(), 32))
    stray = tmp_path / f".{path.name}.k1ll3d.tmp"  # as SIGKILL leaves atomic_path's file
    stray.write_bytes(bytes(1000))
    decoded_frames(table, "rgb", 32, tmp_path, progress=False)
    assert path.exists() and not stray.exists()


def test_a_cache_the_disk_cannot_hold_is_an_error_not_a_crash(synth_csv, tmp_path, monkeypatch):
    # filling a memory map on a full disk ends the process with SIGBUS: the space is claimed first
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    table = read_frame_csv(synth_csv, check_images=False)
    with pytest.raises(KDError, match=r"rgb_32px_\w+\.npy: the decoded-frame cache needs 1 MB "
                                      r"\(400 rgb frames at 32 px\) and [\d,]+ MB are free there"):
        decoded_frames(table, "rgb", 32, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the cache nor its temporary file


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
    split = make_split(table.strata, table.groups, "group", 0)
    stats = normalization_stats(rgb, irs, split.train)
    return FrameDataset(rgb, irs, table.targets, table.frames["id"].tolist(), split.train, stats, augment)


def test_items_are_uint8_pairs_scaled_on_the_device(synth_csv, tmp_path):
    from torch.utils.data import default_collate

    ds = _dataset(synth_csv, tmp_path)
    rgb, ir, labels, frame_id = ds[0]
    assert rgb.shape == ir.shape == (32, 32, 3) and rgb.dtype == ir.dtype == torch.uint8
    assert labels.tolist() in ([0, 0], [1, 0], [0, 1], [1, 1]) and isinstance(frame_id, str)
    batch = ds.on_device(default_collate([ds[i] for i in range(len(ds))]), torch.device("cpu"))
    images, irs = batch[0], batch[1]
    assert images.dtype == torch.float32 and images.shape == (len(ds), 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1
    # the scaling is the training split's min-max, channel by channel, for each modality
    i = int(ds.indices[5])
    lo, hi = np.array(ds.stats["ir"]["min"]), np.array(ds.stats["ir"]["max"])
    expected = (ds.ir[i].astype(np.float32) - lo) / (hi - lo)
    assert np.allclose(irs[5].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    assert torch.equal(ds.normalized([5]), images[5:6])


@pytest.mark.parametrize("ir, augment", [(True, False), (False, False), (True, True)], ids=["pairs", "rgb only", "augmented"])
def test_a_loader_gathers_whole_batches_equal_to_the_items_stacked(synth_csv, tmp_path, monkeypatch, ir, augment):
    from torch.utils.data import DataLoader, default_collate

    ds = _dataset(synth_csv, tmp_path, ir=ir, augment=augment)
    order = [7, 3, 11, 0, 5]

    def first_batch(collate):
        torch.manual_seed(0)  # the same flips and crops for both loaders
        return next(iter(DataLoader(ds, batch_size=len(order), sampler=order, collate_fn=collate)))

    with monkeypatch.context() as item_by_item:
        item_by_item.setattr(FrameDataset, "__getitems__", None)
        items = first_batch(default_collate)
    batch = first_batch(ds.collate)
    for got, expected in zip(batch, items, strict=True):
        if isinstance(got, torch.Tensor):
            assert got.dtype == expected.dtype and torch.equal(got, expected)
        else:  # the frames' ids
            assert list(got) == list(expected)


def test_rgb_only_mode(synth_csv, tmp_path):
    ds = _dataset(synth_csv, tmp_path, ir=False)
    rgb, ir, _, _ = ds[0]
    assert rgb.shape == (32, 32, 3) and ir.numel() == 0
    _, ir, _, _ = ds.on_device((rgb[None], ir[None], torch.zeros(1, 2), ["x"]), torch.device("cpu"))
    assert ir.numel() == 0


def test_augmentation_moves_both_images_together(synth_csv, tmp_path):
    ds = _dataset(synth_csv, tmp_path, augment=True)
    ds.ir, ds.stats["ir"] = ds.rgb, ds.stats["rgb"]  # an identical pair must stay identical
    plain = _dataset(synth_csv, tmp_path)
    torch.manual_seed(0)
    changed = 0
    for i in range(8):
        rgb, ir, _, _ = ds[i]
        assert torch.equal(rgb, ir) and rgb.shape == (32, 32, 3)
        changed += not torch.equal(rgb, plain[i][0])
    assert changed >= 4
