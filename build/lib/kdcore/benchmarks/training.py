"""The training loop, side by side in one run, one thread, 32 px, batch 16: what kdcore's ``fit``
costs over a bare loop, and what the GPU path's settings do on this CPU.

1. ``fit`` (validation every epoch, checkpoints, its log) against a bare PyTorch loop of the same
   model, data, batch, optimizer and schedule (AdamW, cosine), for the student and the resnet-18
   teacher: training samples/s over the whole run, the bare loop's validation-free. A change to the
   loop shows its cost here.
2. ``fit`` in fp32 against ``bf16: true, channels_last: true`` (autocast to bfloat16, NHWC): the
   samples/s of the same fit, and its kept model's validation mean AUROC in each. bfloat16 is fast
   only on a CPU with bfloat16 instructions (AVX-512 BF16, AMX); elsewhere it is emulated.
3. fp32 training steps of each teacher of the demo (``params/demo.yaml``), contiguous against
   channels_last (NHWC): oneDNN's depthwise convolutions (EfficientNet) run faster in NHWC, plain
   convolutions (ResNet) slower, so a teacher chooses (``channels_last:`` per teacher).
4. ``fit`` of many short epochs, checkpointed after every epoch (before) against after the first,
   at most every ``CHECKPOINT_EVERY_S`` and after the last (now): the MNIST experiments' MLP
   student (a 7x7 view, 300 items, 200 epochs) and the demo's CNN student (stride 2, 32 px).
5. ``fit`` of the MNIST experiments' shape (the MLP student, 300 training items, 1,900 validated
   every epoch), its batches fetched item by item and scaled out of place (before) against gathered
   in one indexing and scaled in place (now): seconds, and whether the two fits end with the same
   weights.

    python -m benchmarks.training [--frames 512] [--epochs 3] [--repeats 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, default_collate

from benchmarks.machine import RESULTS, cpu_summary, has_bf16, publish
from kdcore.data.dataset import FrameDataset
from kdcore.models import Student, create_teacher
from kdcore.models.student import make_student
from kdcore.study.config import Config, load_config
from kdcore.training.loop import FitPaths, FitSettings, fit
from kdcore.training.losses import HardLabels, model_inputs

SIZE, BATCH, LR = 32, 16, 1e-3
MODELS = {"student": Student, "resnet-18": lambda: create_teacher("resnet-18", img_size=SIZE)}


def frames(n: int, seed: int) -> FrameDataset:
    """Noise pairs with a warm square in IR on fire frames and a reddish one in RGB on smoke frames:
    something to learn, so that the two precisions' kept models can be compared."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 160, (n, SIZE, SIZE, 3), dtype=np.uint8)
    ir = rng.integers(0, 160, (n, SIZE, SIZE, 3), dtype=np.uint8)
    labels = rng.random((n, 2)) < 0.5
    for i in range(n):
        y, x = rng.integers(0, SIZE - 8, 2)
        if labels[i, 0]:
            ir[i, y:y + 8, x:x + 8] += 90
        if labels[i, 1]:
            rgb[i, y:y + 8, x:x + 8, 0] += 60
    stats = {m: {"min": [0, 0, 0], "max": [255, 255, 255]} for m in ("rgb", "ir")}
    return FrameDataset(rgb, ir, labels.astype(np.float32), [str(i) for i in range(n)], np.arange(n), stats)


def settings(epochs: int, **gpu_path) -> FitSettings:
    return FitSettings.from_config(Config(), epochs=epochs, patience=epochs, lr=LR, batch_size=BATCH, seed=0,
                                   eval_batch_size=64, device="cpu", progress=False, **gpu_path)


def bare_loop(model: torch.nn.Module, train: FrameDataset, epochs: int) -> float:
    """The loop without kdcore: shuffled batches, BCE, AdamW and a cosine schedule; samples/s."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=Config().weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loader = DataLoader(train, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0),
                        collate_fn=FrameDataset.collate)
    device = torch.device("cpu")
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            rgb, ir, targets, _ = train.on_device(batch, device)
            loss = F.binary_cross_entropy_with_logits(model(*model_inputs(model, rgb, ir)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
    return len(train) * epochs / (time.perf_counter() - start)


def timed_fit(model: torch.nn.Module, train: FrameDataset, val: FrameDataset, fit_settings: FitSettings,
              folder: Path) -> tuple[float, dict]:
    """``fit`` from scratch in a new ``folder``: its seconds and its log."""
    folder.mkdir(parents=True)
    paths = FitPaths(folder / "best.pth", folder / "last.pth", folder / "log.json")
    start = time.perf_counter()
    log = fit(model, HardLabels(), train, val, fit_settings, paths)
    return time.perf_counter() - start, log


def kdcore_fit(model: torch.nn.Module, train: FrameDataset, val: FrameDataset, fit_settings: FitSettings,
               folder: Path) -> tuple[float, float]:
    """``fit`` from scratch in ``folder``: (samples/s, the kept model's validation mean AUROC)."""
    seconds, log = timed_fit(model, train, val, fit_settings, folder)
    return len(train) * fit_settings.epochs / seconds, log["epochs"][log["best_epoch"] - 1]["val"]["mean_auroc"]


DEMO = Path(__file__).resolve().parents[1] / "params" / "demo.yaml"


def step_seconds(model: torch.nn.Module, channels_last: bool, steps: int) -> float:
    """Seconds of one fp32 training step (forward, BCE, backward, AdamW) at batch 16, 32 px."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    images = [torch.randn(BATCH, 3, SIZE, SIZE).contiguous(memory_format=fmt) for _ in model_inputs(model, 0, 0)]
    targets = (torch.rand(BATCH, 2) < 0.5).float()

    def step():
        loss = F.binary_cross_entropy_with_logits(model(*images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def memory_formats(repeats: int, steps: int) -> list[dict]:
    """Each demo teacher's training step, contiguous and channels_last, interleaved."""
    from kdcore.study.work import build_teacher

    cfg = load_config(DEMO, image_size=SIZE)
    rows = []
    for teacher in cfg.teachers:
        if teacher.twin_of:
            continue
        times = {False: [], True: []}
        for _ in range(repeats):
            for channels_last in (False, True):
                torch.manual_seed(0)
                times[channels_last].append(step_seconds(build_teacher(cfg, teacher.name), channels_last, steps))
        contiguous, nhwc = (statistics.median(times[k]) for k in (False, True))
        rows.append({"model": teacher.name, "contiguous_ms": 1000 * contiguous, "channels_last_ms": 1000 * nhwc,
                     "speed-up": contiguous / nhwc, "demo_channels_last": bool(teacher.channels_last)})
    return rows


CADENCE = {"MLP student (7x7, 300 items)": (lambda: make_student({"family": "mlp", "input_size": 7}), 300, 200),
           "CNN student (stride 2, 32 px)": (lambda: Student(stem_stride=2), 256, 20)}


def checkpoint_cadence(repeats: int, epochs_scale: float = 1.0) -> list[dict]:
    """Seconds of a whole fit with a checkpoint after every epoch and at the cadence, interleaved."""
    from kdcore.training import loop

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (build, items, epochs) in CADENCE.items():
            epochs = max(2, round(epochs * epochs_scale))
            train, val = frames(items, 0), frames(items // 2, 1)
            seconds = {"every epoch": [], "cadence": []}
            for r in range(repeats):
                for arm, every in (("every epoch", 0.0), ("cadence", loop.CHECKPOINT_EVERY_S)):
                    torch.manual_seed(0)
                    folder = Path(tmp) / f"{name}-{arm}-{r}".replace(" ", "_")
                    with mock.patch.object(loop, "CHECKPOINT_EVERY_S", every):
                        seconds[arm].append(timed_fit(build(), train, val, settings(epochs), folder)[0])
            before, now = (statistics.median(seconds[k]) for k in ("every epoch", "cadence"))
            rows.append({"model": name, "epochs": epochs, "every_epoch_s": before, "cadence_s": now,
                         "speed-up": before / now})
    return rows


def _scaled_out_of_place(images: torch.Tensor, stats: dict) -> torch.Tensor:
    """``normalize`` as it was: channels moved first, then two more batch-sized buffers."""
    lo = torch.tensor(stats["min"], dtype=torch.float32, device=images.device).view(3, 1, 1)
    hi = torch.tensor(stats["max"], dtype=torch.float32, device=images.device).view(3, 1, 1)
    return (images.movedim(-1, -3).float() - lo) / (hi - lo)


@contextlib.contextmanager
def _fetching_as_before():
    """FrameDataset's batches fetched item by item, stacked by the DataLoader, scaled out of place."""
    from kdcore.data import dataset

    with mock.patch.object(FrameDataset, "__getitems__", None), \
            mock.patch.object(FrameDataset, "collate", staticmethod(default_collate)), \
            mock.patch.object(dataset, "normalize", _scaled_out_of_place):
        yield


def batch_fetching(repeats: int, epochs_scale: float = 1.0) -> dict:
    """Seconds of a whole MLP fit with batches fetched and scaled as before, and now, interleaved."""
    epochs = max(2, round(100 * epochs_scale))
    train, val = frames(300, 0), frames(1900, 1)
    arms = {"item by item": _fetching_as_before, "whole batches": contextlib.nullcontext}
    seconds, weights = {arm: [] for arm in arms}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for arm, fetching in arms.items():
                torch.manual_seed(0)
                model = make_student({"family": "mlp", "input_size": 7})
                with fetching():
                    seconds[arm].append(timed_fit(model, train, val, settings(epochs), Path(tmp) / f"{arm}-{r}")[0])
                weights[arm] = list(model.state_dict().values())
    before, now = (statistics.median(seconds[arm]) for arm in arms)
    same = all(torch.equal(a, b) for a, b in zip(*weights.values(), strict=True))
    return {"epochs": epochs, "item_by_item_s": before, "whole_batches_s": now, "speed-up": before / now,
            "same_weights": same}


def run(n_frames: int, epochs: int, repeats: int, steps: int = 10) -> dict:
    torch.set_num_threads(1)
    train, val = frames(n_frames, 0), frames(n_frames // 4, 1)
    loop_rows, precision_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in MODELS.items():
            rates = {"bare loop": [], "fit": [], "fit, bf16 + channels_last": []}
            aurocs = {}
            for r in range(repeats):  # interleaved, so that the machine's drift falls on all three
                torch.manual_seed(0)
                rates["bare loop"].append(bare_loop(build(), train, epochs))
                for arm, gpu_path in (("fit", {}), ("fit, bf16 + channels_last", {"bf16": True, "channels_last": True})):
                    torch.manual_seed(0)
                    rate, aurocs[arm] = kdcore_fit(build(), train, val, settings(epochs, **gpu_path),
                                                   Path(tmp) / f"{name}-{arm}-{r}")
                    rates[arm].append(rate)
            median = {arm: statistics.median(values) for arm, values in rates.items()}
            loop_rows.append({"model": name, "bare loop": median["bare loop"], "fit": median["fit"],
                              "ratio": median["fit"] / median["bare loop"]})
            precision_rows.append({"model": name, "fp32": median["fit"], "bf16": median["fit, bf16 + channels_last"],
                                   "speed-up": median["fit, bf16 + channels_last"] / median["fit"],
                                   "val AUROC fp32": aurocs["fit"], "val AUROC bf16": aurocs["fit, bf16 + channels_last"]})
    return {"cpu": cpu_summary(), "bf16_instructions": has_bf16(), "torch": torch.__version__, "threads": 1,
            "img_size": SIZE, "batch_size": BATCH, "frames": n_frames, "epochs": epochs, "repeats": repeats,
            "loop": loop_rows, "precision": precision_rows, "steps": steps,
            "memory_format": memory_formats(repeats, steps),
            "checkpoints": checkpoint_cadence(repeats, 1.0 if steps >= 10 else 0.05),
            "fetching": batch_fetching(repeats, 1.0 if steps >= 10 else 0.05)}


def markdown(result: dict) -> str:
    head = (f"{result['frames']} training frames at {result['img_size']} px, batch {result['batch_size']}, "
            f"{result['epochs']} epochs, one thread, median of {result['repeats']} interleaved runs; "
            f"CPU: {result['cpu']}; torch {result['torch']}.")
    lines = [head, "", "fit (validation, checkpoints and log included) against a bare loop, training samples/s:", "",
             "| model | bare loop | fit | fit / bare |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['bare loop']:,.0f} | {r['fit']:,.0f} | {r['ratio']:.2f} |" for r in result["loop"]]
    lines += ["", "fit in fp32 against bf16 autocast + channels_last, samples/s and the kept model's validation "
              "mean AUROC:", "", "| model | fp32 | bf16 | bf16 / fp32 | val AUROC fp32 | val AUROC bf16 | difference |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['fp32']:,.0f} | {r['bf16']:,.0f} | {r['speed-up']:.2f}x | {r['val AUROC fp32']:.3f} "
              f"| {r['val AUROC bf16']:.3f} | {r['val AUROC bf16'] - r['val AUROC fp32']:+.3f} |"
              for r in result["precision"]]
    if not result["bf16_instructions"]:
        lines += ["", "This CPU has no bfloat16 instructions: bf16 is emulated here, and slow."]
    lines += ["", f"The demo's teachers (RGB + IR), one fp32 training step, ms (median of {result['repeats']} interleaved "
              f"runs of {result['steps']} steps), contiguous against channels_last:", "",
              "| teacher | contiguous | channels_last | speed-up | the demo's choice |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r['model']} | {r['contiguous_ms']:.1f} | {r['channels_last_ms']:.1f} | {r['speed-up']:.2f}x "
              f"| {'channels_last' if r['demo_channels_last'] else 'contiguous'} |" for r in result["memory_format"]]
    lines += ["", f"A whole fit of short epochs, seconds (median of {result['repeats']} interleaved runs): a checkpoint "
              "and log after every epoch (before) against after the first, every 30 s and after the last (now):", "",
              "| model | epochs | every epoch | now | speed-up |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['epochs']} | {r['every_epoch_s']:.1f} | {r['cadence_s']:.1f} | {r['speed-up']:.2f}x |"
              for r in result["checkpoints"]]
    f = result["fetching"]
    lines += ["", f"The MNIST experiments' MLP fit (300 items, 1,900 validated every epoch, {f['epochs']} epochs), seconds "
              f"(median of {result['repeats']} interleaved runs): batches fetched item by item and scaled out of place "
              f"(before) against gathered at once and scaled in place (now): {f['item_by_item_s']:.1f} s against "
              f"{f['whole_batches_s']:.1f} s, {f['speed-up']:.2f}x; the same weights at the end: "
              f"{'yes' if f['same_weights'] else 'NO'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timing of a demo teacher")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.frames, args.epochs, args.repeats, args.steps)
    publish("training", result, markdown(result), args.out)
    return result


if __name__ == "__main__":
    main()
