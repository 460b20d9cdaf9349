"""Decode every frame once: a uint8 array at model resolution, reused across epochs and runs.

The cache lives in a folder keyed by the frames' paths, their files' sizes and modification
times, and the resolution. One process builds a cache file while others wait for it; it is built
atomically, so a killed build leaves nothing that looks finished, and the next build removes what
the killed one left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from kdcore.data.schema import FrameTable, load_rgb
from kdcore.data.splits import HASH_SIZE, difference_hash
from kdcore.errors import KDError
from kdcore.io import atomic_path, exclusive, remove_stray_temporaries
from kdcore.layout import cache_file
from kdcore.progress import progress as progress_bar


def _workers() -> int:
    return min(8, os.cpu_count() or 1)


def cache_key(paths: list[str], size: int) -> str:
    digest = hashlib.sha256(f"size={size}\n".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def decoded_frames(table: FrameTable, modality: str, size: int, cache_dir: str | os.PathLike,
                   progress: bool = True) -> np.ndarray:
    """An (N, size, size, 3) uint8 array, memory-mapped from the cache (built if missing)."""
    paths = table.frames[f"{modality}_path"].tolist()
    path = cache_file(cache_dir, modality, size, cache_key(paths, size))
    if not path.exists():
        with exclusive(path.parent, path.name):  # one builder at a time (two seeds' data stages ask at once)
            if not path.exists():
                remove_stray_temporaries(path.parent, path.name)  # a killed build's, claimed in full
                _build(path, paths, modality, size, progress)
    return np.load(path, mmap_mode="r")


def _build(path: Path, paths: list[str], modality: str, size: int, progress: bool) -> None:
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        _reserve(tmp, path, f"{len(paths)} {modality} frames at {size} px")
        with ThreadPoolExecutor(_workers()) as pool:
            images = pool.map(lambda p: load_rgb(p, size), paths)
            desc = f"caching {modality} at {size}px"
            for i, image in enumerate(progress_bar(images, total=len(paths), desc=desc, enabled=progress)):
                array[i] = image
        array.flush()
        del array


def _reserve(tmp: Path, path: Path, what: str) -> None:
    """Claim the cache file's disk space before filling it: a memory-mapped write to a full disk
    kills the process with SIGBUS instead of raising an error."""
    needed, free = tmp.stat().st_size, shutil.disk_usage(tmp.parent).free  # the file is sparse so far
    fd = os.open(tmp, os.O_RDWR)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, needed)
        elif free < needed:  # no way to claim it here: a check instead
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise KDError(f"{path}: the decoded-frame cache needs {needed / 1e6:,.0f} MB ({what}) and "
                      f"{free / 1e6:,.0f} MB are free there ({os.strerror(e.errno)}; "
                      f"config key 'cache_dir' puts the cache elsewhere)") from None
    finally:
        os.close(fd)


def frame_hashes(paths: list[str], progress: bool = True) -> np.ndarray:
    """Difference hashes of the frames (for the leakage audit), decoded at reduced size."""
    with ThreadPoolExecutor(_workers()) as pool:
        hashes = list(progress_bar(pool.map(_hash_one, paths), total=len(paths), desc="hashing frames",
                           enabled=progress))
    return np.stack(hashes)


def _hash_one(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im.draft("L", (HASH_SIZE * 4, HASH_SIZE * 4))  # JPEG: decode at a fraction of full size
        gray = im.convert("L").resize((HASH_SIZE + 1, HASH_SIZE), Image.BILINEAR)
        return difference_hash(np.asarray(gray, dtype=np.int16))


def normalization_stats(rgb: np.ndarray, ir: np.ndarray | None, train: np.ndarray) -> dict:
    """Per-channel min and max over the training frames only, per modality (as the reference
    implementation does)."""
    stats = {}
    for name, array in (("rgb", rgb), ("ir", ir)):
        if array is None:
            continue
        lo = np.full(3, 255, np.int64)
        hi = np.zeros(3, np.int64)
        for start in range(0, len(train), 512):
            chunk = array[np.sort(train[start:start + 512])]
            lo = np.minimum(lo, chunk.min(axis=(0, 1, 2)))
            hi = np.maximum(hi, chunk.max(axis=(0, 1, 2)))
        stats[name] = {"min": lo.tolist(), "max": np.maximum(hi, lo + 1).tolist()}
    return stats

