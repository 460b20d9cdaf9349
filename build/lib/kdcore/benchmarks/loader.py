"""How fast the host can feed a GPU: RGB+IR training pairs per second out of the decoded cache at
224 px, through kdcore's Dataset and torch's DataLoader, with 0, 2 and 8 workers.

Two item formats side by side in one run:
- float32 per item: every frame scaled to float32 on the CPU, item by item (kdcore's loader before
  the uint8 change; kept here as the comparison);
- uint8 per item: the frame copied out of the cache as it is; whole batches are scaled on the
  device (``FrameDataset.on_device``), so that work leaves the host.

The rate to beat is the fastest default teacher's training rate. It is bounded by compute: a
training step costs about 3 forward passes, so a GPU with P bf16 FLOP/s trains at most
P / (6 * MACs per pair) pairs/s. ``--peak-tflops`` (default 989, an H100 SXM's dense bf16) sets P;
benchmarks/gpu.py measures the real rate on a GPU.

    python -m benchmarks.loader [--frames 2048] [--workers 0 2 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from benchmarks.machine import RESULTS, cpu_summary, publish
from kdcore.data.dataset import FrameDataset, normalize
from kdcore.models.profile import count_macs, example_inputs
from kdcore.models.teachers import STUDY_TEACHERS, create_teacher


class FloatItems(FrameDataset):
    """Items scaled to float32 on the CPU, one by one: the loader as it was before uint8 items."""

    __getitems__ = None  # the DataLoader then asks item by item, and stacks them itself
    collate = staticmethod(default_collate)

    def __getitem__(self, item: int):
        rgb, ir, labels, frame_id = super().__getitem__(item)
        return (normalize(rgb, self.stats["rgb"]), normalize(ir, self.stats["ir"]), labels, frame_id)

    def on_device(self, batch, device, memory_format=torch.contiguous_format):
        rgb, ir, targets, ids = batch
        return (rgb.to(device, non_blocking=True), ir.to(device, non_blocking=True),
                targets.to(device, non_blocking=True), ids)


def fake_cache(folder: Path, frames: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 frames written as the cache writes them (.npy), then memory-mapped."""
    rng = np.random.default_rng(0)
    arrays = []
    for name in ("rgb", "ir"):
        path = folder / f"{name}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(frames, size, size, 3))
        for start in range(0, frames, 256):
            stop = min(frames, start + 256)
            array[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), dtype=np.uint8)
        array.flush()
        del array
        arrays.append(np.load(path, mmap_mode="r"))
    return arrays[0], arrays[1]


def pairs_per_second(dataset: FrameDataset, workers: int, batch_size: int, repeats: int) -> float:
    """The host's share: collated batches out of the loader (the scaling of uint8 batches is the
    device's work). Median over ``repeats`` passes of the whole set, after one warm-up pass."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0),
                        collate_fn=dataset.collate)
    rates = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        for _ in loader:
            pass
        if i:
            rates.append(len(dataset) / (time.perf_counter() - start))
    return statistics.median(rates)


def training_ceiling(peak_tflops: float, size: int = 224) -> dict[str, float]:
    """Pairs/s each default teacher could train at if the GPU ran at its peak (6 FLOPs per MAC)."""
    ceilings = {}
    for name in STUDY_TEACHERS:
        with torch.device("meta"):
            model = create_teacher(name, size, freeze=True)
        macs = count_macs(model, example_inputs(model, size, device="meta"))
        ceilings[name] = peak_tflops * 1e12 / (6 * macs)
    return ceilings


def run(frames: int, size: int, workers: list[int], batch_size: int, repeats: int, peak_tflops: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        rgb, ir = fake_cache(Path(folder), frames, size)
        stats = {m: {"min": [0, 0, 0], "max": [255, 255, 255]} for m in ("rgb", "ir")}
        labels = np.zeros((frames, 2), np.float32)
        ids = [str(i) for i in range(frames)]
        rows = []
        for n in workers:
            row = {"workers": n}
            for name, cls in (("float32 items", FloatItems), ("uint8 items", FrameDataset)):
                dataset = cls(rgb, ir, labels, ids, np.arange(frames), stats)
                row[name] = pairs_per_second(dataset, n, batch_size, repeats)
            row["speed-up"] = row["uint8 items"] / row["float32 items"]
            rows.append(row)
    ceilings = training_ceiling(peak_tflops, size)
    return {"cpu": cpu_summary(), "frames": frames, "img_size": size, "batch_size": batch_size,
            "bytes_per_pair": {"float32 items": 2 * 3 * size * size * 4, "uint8 items": 2 * 3 * size * size},
            "rows": rows, "peak_tflops": peak_tflops, "training_ceiling_pairs_per_s": ceilings,
            "rate_to_beat": max(ceilings.values()), "fastest_teacher": max(ceilings, key=ceilings.get)}


def markdown(result: dict) -> str:
    lines = [f"RGB+IR pairs/s out of the cache at {result['img_size']} px, batch {result['batch_size']}, "
             f"{result['frames']} pairs, median of passes; CPU: {result['cpu']}.", "",
             "| workers | float32 items | uint8 items | uint8 / float32 |", "|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['workers']} | {row['float32 items']:,.0f} | {row['uint8 items']:,.0f} "
                     f"| {row['speed-up']:.2f}x |")
    bytes_ = result["bytes_per_pair"]
    lines += ["", f"Bytes per pair moved to the device: {bytes_['float32 items']:,} (float32) vs "
              f"{bytes_['uint8 items']:,} (uint8).", "",
              f"Rate to beat: {result['rate_to_beat']:,.0f} pairs/s, the compute ceiling of the fastest "
              f"default teacher ({result['fastest_teacher']}) on a GPU at {result['peak_tflops']:.0f} "
              "bf16 TFLOP/s (6 FLOPs per forward MAC per pair); per teacher: "
              + ", ".join(f"{k} {v:,.0f}" for k, v in result["training_ceiling_pairs_per_s"].items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2048)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 8])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.frames, args.size, args.workers, args.batch_size, args.repeats, args.peak_tflops)
    publish("loader", result, markdown(result), args.out)


if __name__ == "__main__":
    main()
