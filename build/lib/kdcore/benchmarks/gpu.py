"""The GPU check: what the default study's models and loops do on this device, and what the whole
study would cost. One command, no network, no papermill; a few minutes on one GPU.

1. models: training and inference images/s and peak memory of every teacher of the params file
   and the student, model only (random inputs already on the device), bf16 + channels_last, eager
   and torch.compile, at the params' batch sizes (and EfficientNet-B7 at 32 beside its 8);
2. loop: kdcore's own fit on synthetic frames from the decoded cache, two epochs per model; loop
   images/s over model-only images/s is the loader's efficiency;
3. pipeline: one teacher's whole pipeline (teacher, cached outputs, distilled student, compression)
   through ``python -m kdcore.study.work``, and again under ``torchrun --nproc_per_node 1`` (smoke mode:
   under torchrun only);
4. projection: GPU-hours of the params' study on FLAME2's frame counts, at the full epoch budget
   and at an assumed early stop, per teacher and in total.

    python benchmarks/gpu.py                          # on a GPU: params/default.yaml at 224
    python benchmarks/gpu.py --device cpu --size 64   # smoke mode: every part, tiny, on the CPU

Results: benchmarks/results/local/gpu-<machine>.{json,md} (or --out).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout: benchmarks and kdcore importable

from benchmarks.machine import RESULTS, device_summary, publish  # noqa: E402
from kdcore.study.config import Config, load_config  # noqa: E402
from kdcore.study.work import build_student, build_teacher, fit_settings, prepare_data  # noqa: E402
from kdcore.training.loop import FitPaths, fit, resolve_device  # noqa: E402

# FLAME2's default block split (seed 42; tests/test_flame2.py builds it from the published label file)
FLAME2_FRAMES = {"train": 25_559, "val": 11_062, "test": 15_359, "all": 53_447}
STUDENT = "student"


def study_config(params: Path, size: int, smoke: bool, **overrides) -> Config:
    """The params' study at ``size``, teachers from random weights (the check needs no weights files)."""
    raw = yaml.safe_load(params.read_text())
    teachers = [{k: v for k, v in t.items() if k != "pretrained"} if isinstance(t, dict) else t
                for t in overrides.pop("teachers", raw.get("teachers", []))]
    shrink = {"eval_batch_size": 8, "latency_repeats": 1, "latency_batches": [1], "num_workers": 0} if smoke else {}
    return load_config(params, teachers=teachers, image_size=size, **{**shrink, **overrides})


def _batch_sizes(cfg: Config) -> list[tuple[str, int]]:
    """(model, batch) rows: each teacher at its batch, EfficientNet-B7 also at 32, then the student."""
    rows = []
    for t in cfg.teachers:
        batch = fit_settings(cfg, 0, "teacher", t.name).batch_size
        rows.append((t.name, batch))
        if t.name == "efficientnet-b7" and batch != 32:
            rows.append((t.name, 32))
    return rows + [(STUDENT, cfg.batch_size)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the warm-up, which includes compiling; median seconds of one timed step)."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def model_rates(model: torch.nn.Module, batch: int, size: int, device: torch.device, compiled: bool,
                warmup: int, steps: int, eval_batch: int) -> dict:
    """Model-only training step (AdamW, BCE) and inference rates, in images (pairs) per second."""
    model = model.to(device, memory_format=torch.channels_last).train()
    runner = torch.compile(model) if compiled else model
    inputs = [torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
              for _ in getattr(model, "modalities", ("rgb",))]
    targets = torch.rand(batch, 2, device=device).round()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train_step():
        with autocast:
            loss = F.binary_cross_entropy_with_logits(runner(*inputs).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    eval_inputs = [x[:1].expand(eval_batch, -1, -1, -1).contiguous(memory_format=torch.channels_last)
                   for x in inputs]

    def infer_step():
        with torch.no_grad(), autocast:
            runner(*eval_inputs)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_first, train_s = _timed(train_step, device, warmup, steps)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    model.eval()
    _, infer_s = _timed(infer_step, device, warmup, steps)
    return {"train_images_per_s": batch / train_s, "infer_images_per_s": eval_batch / infer_s,
            "peak_gib": peak, "warmup_s": train_first}


def _build(cfg: Config, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_student(cfg) if name == STUDENT else build_teacher(cfg, name)


def part_models(cfg: Config, device: torch.device, smoke: bool, compile_models: bool) -> list[dict]:
    warmup, steps = (1, 1) if smoke else (3, 10)
    rows = []
    for name, batch in _batch_sizes(cfg):
        batch = min(batch, 2) if smoke else batch  # smoke: every model, tiny steps
        if any(r["model"] == name and r["batch"] == batch for r in rows):
            continue
        row = {"model": name, "batch": batch}
        for mode in ("eager", "compiled") if compile_models else ("eager",):
            try:
                row[mode] = model_rates(_build(cfg, name), batch, cfg.image_size, device, mode == "compiled",
                                        warmup, steps, cfg.eval_batch_size)
            except torch.OutOfMemoryError:
                row[mode] = {"error": "out of memory"}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if "train_images_per_s" in row.get("compiled", {}) and "train_images_per_s" in row["eager"]:
            row["compile_speedup"] = row["compiled"]["train_images_per_s"] / row["eager"]["train_images_per_s"]
        rows.append(row)
        print(f"  {name} at batch {batch}: {_rate_text(row)}", flush=True)
    return rows


def peak_rows(cfg: Config, peak_tflops: float) -> list[dict]:
    """Every model of the study at a GPU's peak compute (6 FLOPs per multiply-add in training, 2 in
    inference), for a projection no device has measured: an upper bound on speed, so a lower bound
    on GPU-hours. Memory is not projected."""
    from kdcore.models.profile import count_macs, example_inputs

    rows = []
    for name, batch in _batch_sizes(cfg):
        if any(r["model"] == name for r in rows):
            continue
        with torch.device("meta"):
            model = _build(cfg, name)
        macs = count_macs(model, example_inputs(model, cfg.image_size, device="meta"))
        rows.append({"model": name, "batch": batch, "macs": macs,
                     "eager": {"train_images_per_s": peak_tflops * 1e12 / (6 * macs),
                               "infer_images_per_s": peak_tflops * 1e12 / (2 * macs), "peak_gib": None}})
    return rows


def _rate_text(row: dict) -> str:
    eager = row["eager"]
    if "error" in eager:
        return eager["error"]
    text = f"train {eager['train_images_per_s']:.1f}/s, inference {eager['infer_images_per_s']:.1f}/s"
    return text + (f", compiled x{row['compile_speedup']:.2f}" if "compile_speedup" in row else "")


def _loop_rate(log: dict, train_frames: int, val_frames: int) -> float:
    """Training frames per second of the last epoch, its validation pass taken out."""
    last = log["epochs"][-1]["timing"]
    train_s = last["epoch_s"] - val_frames / last["eval_frames_per_s"]
    return train_frames / max(train_s, 1e-9)


def part_loop(cfg: Config, work: Path, smoke: bool) -> list[dict]:
    """Two epochs of kdcore's fit per model on synthetic frames (BCE; the KD term adds a lookup);
    smoke mode: batches of 2, two of them per epoch."""
    data = prepare_data(cfg, 1, progress=False)
    rows = []
    for name, batch in _batch_sizes(cfg):
        if any(r["model"] == name for r in rows):
            continue  # one loop per model, at its study batch size
        batch = min(batch, 2) if smoke else batch
        model = _build(cfg, name)
        with_ir = "ir" in getattr(model, "modalities", ("rgb",))
        settings = fit_settings(cfg, 1, STUDENT if name == STUDENT else "teacher",
                                None if name == STUDENT else name)
        settings.epochs, settings.patience, settings.batch_size, settings.progress = 2, 2, batch, False
        settings.select_on = "bce"  # defined on any validation frames, the smoke mode's few included
        train, val = (data.indices(p)[:2 * batch] if smoke else data.indices(p) for p in ("train", "val"))
        folder = work / "loop" / name
        from kdcore.training.losses import HardLabels

        log = fit(model, HardLabels(), data.dataset(train, with_ir), data.dataset(val, with_ir), settings,
                  FitPaths(folder / "best.pth", folder / "last.pth", folder / "log.json"), desc=name)
        rate = _loop_rate(log, len(train), len(val))
        rows.append({"model": name, "batch": batch, "loop_images_per_s": rate,
                     "frames": {"train": len(train), "val": len(val)}})
        print(f"  {name}: loop {rate:.1f} images/s", flush=True)
    return rows


def _compresses(smoke: bool) -> bool:
    """Compression needs torch-pruning and onnxscript (carry their wheels to a GPU machine); smoke
    mode leaves it out (the CPU tests cover it)."""
    return not smoke and all(importlib.util.find_spec(m) for m in ("torch_pruning", "onnxscript"))


def _pipeline_params(cfg: Config, work: Path, teacher: str, output: str, smoke: bool) -> Path:
    """A params file for one teacher's short pipeline on the loop's data (smoke: one epoch a fit)."""
    epochs, compress = (1 if smoke else 2), _compresses(smoke)
    values = {"csv": cfg.csv, "cache_dir": str(work / "cache"), "output": str(work / output),
              "image_size": cfg.image_size, "gap_frames": 0, "seeds": [1],
              "teachers": [{"name": teacher, "batch_size": cfg.teacher(teacher).batch_size}],
              "epochs_teacher": epochs, "epochs_student": epochs, "finetune_epochs": 1, "batch_size": cfg.batch_size,
              "eval_batch_size": cfg.eval_batch_size, "latency_repeats": cfg.latency_repeats,
              "latency_batches": cfg.latency_batches, "num_workers": cfg.num_workers,
              "compress": compress}
    path = work / f"{output}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def part_pipeline(cfg: Config, work: Path, smoke: bool, models: list[dict] | None) -> dict:
    """One teacher's pipeline as a separate process, plain and under torchrun (NCCL on a GPU): the
    teacher that trained fastest model-only (the first one when the models part did not run)."""
    rates = {r["model"]: r["eager"].get("train_images_per_s", 0) for r in models or [] if r["model"] != STUDENT}
    teacher = max(rates, key=rates.get) if rates else cfg.teachers[0].name
    runs = {"python -m kdcore.study.work": [sys.executable, "-m", "kdcore.study.work"],
            "torchrun --nproc_per_node 1": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                                            "-m", "kdcore.study.work"]}
    if smoke:  # one process runs the same code either way: smoke mode checks the launcher, once
        runs = {label: command for label, command in runs.items() if label.startswith("torchrun")}
    result = {"teacher": teacher, "compress": _compresses(smoke),
              "compress_note": "" if _compresses(smoke) else "smoke mode" if smoke else "torch-pruning or onnxscript not installed"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TQDM_DISABLE": "1"}
    for i, (label, command) in enumerate(runs.items()):
        params = _pipeline_params(cfg, work, teacher, f"pipeline_{i}", smoke)
        start = time.perf_counter()
        done = subprocess.run([*command, "--params", str(params), "--teacher", teacher, "--seed", "1"],
                              cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        metrics = work / f"pipeline_{i}" / "metrics" / teacher / "run_seed_1"
        ok = done.returncode == 0 and (metrics / "final_evaluation.json").exists()
        result[label] = {"ok": ok, "wall_s": wall, "returncode": done.returncode,
                         "compressed": (metrics / "compression.json").exists(),
                         **({} if ok else {"stderr_tail": done.stderr[-2000:]})}
        print(f"  {label}: {'ok' if ok else 'FAILED'} in {wall:.0f} s", flush=True)
    return result


def _rates(models: list[dict], loops: list[dict], name: str) -> tuple[float, float] | None:
    """(training, inference) images/s of a model inside the study: model-only training times the
    loop's efficiency (measured at the same batch; never above 1), model-only inference."""
    row = _row(models, name)
    eager = row["eager"]
    if "train_images_per_s" not in eager:
        return None
    loop = next((r for r in loops if r["model"] == name and r["batch"] == row["batch"]), None)
    efficiency = min(loop["loop_images_per_s"] / eager["train_images_per_s"], 1.0) if loop else 1.0
    return eager["train_images_per_s"] * efficiency, eager["infer_images_per_s"]


def _fit_hours(epochs: int, rates: tuple[float, float], train_frames: float, frames: dict = FLAME2_FRAMES) -> float:
    """A fit: each epoch trains on ``train_frames`` and evaluates the validation frames; then the
    best model is evaluated on validation and test."""
    train, infer = rates
    per_epoch = train_frames / train + frames["val"] / infer
    return (epochs * per_epoch + (frames["val"] + frames["test"]) / infer) / 3600


def arms(cfg: Config) -> list[tuple[str, Config]]:
    """The study's arms: one per sweep point (its settings applied), or the study itself."""
    import dataclasses

    from kdcore.study.sweep import point_label, sweep_points

    if not cfg.sweep:
        return [("study", cfg)]
    return [(point_label(p), dataclasses.replace(cfg, **p, sweep={}).validate()) for p in sweep_points(cfg)]


def projection(cfg: Config, models: list[dict], loops: list[dict], stop: dict) -> dict:
    """GPU-hours of the study on FLAME2's frame counts, per arm (sweep point) and teacher. Per seed:
    the no-KD student; per teacher (RGB twins too) and seed: the teacher on the labelled training
    frames, its outputs on every frame, the distilled student on every training frame and (where it
    is compressed) the pruned student's fine-tune. Under a label budget the teacher and the no-KD
    student see ``labelled_fraction`` of the training frames. Compression's CPU measurements are
    not counted."""
    student = _rates(models, loops, STUDENT)
    seeds = len(cfg.seeds)
    out = {"frames": FLAME2_FRAMES, "seeds": seeds, "arms": {}, "jobs": {}}
    for budget, epochs in (("full budget", None), ("early stop", stop)):
        te = epochs["teacher"] if epochs else cfg.epochs_teacher
        se = epochs["student"] if epochs else cfg.epochs_student
        total = 0.0
        for label, arm in arms(cfg):
            labelled = FLAME2_FRAMES["train"] * arm.labelled_fraction
            own = out["arms"].setdefault(label, {"labelled_frames": labelled, "teachers": {}})
            hours = seeds * _fit_hours(se, student, labelled)  # the no-KD student
            _job(out, label, "00_data", "every teacher", seeds, budget, hours / seeds)
            for t in arm.teachers:
                rates = _rates(models, loops, t.name)
                if rates is None:  # out of memory at its batch: no projection
                    continue
                teacher_h = _fit_hours(te, rates, labelled) + FLAME2_FRAMES["all"] / rates[1] / 3600
                student_h = _fit_hours(se, student, FLAME2_FRAMES["train"])
                finetune_h = _fit_hours(min(arm.finetune_epochs, se), student, FLAME2_FRAMES["train"]) \
                    if arm.compresses(t.name) else 0.0
                own["teachers"].setdefault(t.name, {})[budget] = seeds * (teacher_h + student_h + finetune_h)
                for stage, job_h in (("01_teacher", teacher_h), ("02_student", student_h), ("03_compress", finetune_h)):
                    if stage != "03_compress" or arm.compresses(t.name):
                        _job(out, label, stage, t.name, seeds, budget, job_h)
                hours += own["teachers"][t.name][budget]
            own[budget] = hours
            total += hours
        out[budget] = {"teacher_epochs": te, "student_epochs": se, "gpu_hours": total}
    return out


def _job(out: dict, arm: str, stage: str, teacher: str, count: int, budget: str, hours: float) -> None:
    """One kind of Slurm job (a stage for one teacher, ``count`` of them: one per seed) and the
    GPU-hours one of them takes."""
    row = out["jobs"].setdefault(f"{arm}/{teacher}/{stage}", {"arm": arm, "stage": stage, "teacher": teacher, "jobs": count})
    row[budget] = hours


def _row(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r["model"] == name)


def markdown(result: dict) -> str:
    lines = [f"Device: {result['device']}; image {result['image_size']} px; parts took "
             + ", ".join(f"{k} {v:.0f} s" for k, v in result["part_s"].items())
             + (" (SMOKE MODE: tiny sizes, figures not comparable to a GPU's)" if result["smoke"] else "") + ".", "",
             "| model | batch | train img/s | inference img/s | peak GiB | compiled train img/s | compile speed-up | loop img/s | loop / model |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    loops = {r["model"]: r for r in result.get("loop", [])}
    for row in result.get("models", []):
        eager, compiled = row["eager"], row.get("compiled", {})
        if "error" in eager:
            lines.append(f"| {row['model']} | {row['batch']} | {eager['error']} | | | | | | |")
            continue
        loop = loops.get(row["model"])
        same_batch = loop is not None and loop["batch"] == row["batch"]
        cells = [row["model"], row["batch"], f"{eager['train_images_per_s']:,.1f}", f"{eager['infer_images_per_s']:,.1f}",
                 "n/a" if eager["peak_gib"] is None else f"{eager['peak_gib']:.1f}",
                 f"{compiled['train_images_per_s']:,.1f}" if "train_images_per_s" in compiled else "not run",
                 f"{row['compile_speedup']:.2f}x" if "compile_speedup" in row else "",
                 (f"{loop['loop_images_per_s']:,.1f}" + ("" if same_batch else f" (batch {loop['batch']})")) if loop else "",
                 f"{loop['loop_images_per_s'] / eager['train_images_per_s']:.2f}" if same_batch else ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if "pipeline" in result:
        p = result["pipeline"]
        lines += ["", f"Pipeline of {p['teacher']} (compression {'on' if p['compress'] else 'off: ' + p['compress_note']}): "
                  + "; ".join(f"{k}: {'ok' if v['ok'] else 'FAILED'}, {v['wall_s']:.0f} s"
                              for k, v in p.items() if isinstance(v, dict))]
    if "projection" in result:
        lines += _projection_lines(result["projection"])
    return "\n".join(lines) + "\n"


def _projection_lines(p: dict) -> list[str]:
    full, early = p["full budget"], p["early stop"]
    lines = ["", f"Projected GPU-hours of the study on FLAME2 ({p['frames']['train']:,} training frames, "
             f"{p['seeds']} seeds; compression's CPU measurements not counted):", "",
             f"| arm | teacher | full budget ({full['teacher_epochs']}/{full['student_epochs']} epochs) "
             f"| early stop ({early['teacher_epochs']}/{early['student_epochs']} epochs, assumed) |", "|---|---|---:|---:|"]
    for arm, own in p["arms"].items():
        for name, hours in own["teachers"].items():
            lines.append(f"| {arm} | {name} | {hours['full budget']:.1f} | {hours['early stop']:.1f} |")
        lines.append(f"| {arm} | all, with the no-KD students ({own['labelled_frames']:,.0f} labelled training frames) "
                     f"| {own['full budget']:.1f} | {own['early stop']:.1f} |")
    lines.append(f"| total | | {full['gpu_hours']:.1f} | {early['gpu_hours']:.1f} |")
    jobs = p.get("jobs", {}).values()
    lines += ["", f"On Slurm, one job per stage ({sum(j['jobs'] for j in jobs) + len(p['arms'])} with the comparisons, "
              "which need no GPU); GPU-minutes of one job (compression's CPU work not counted):", "",
              "| arm | stage | teacher | jobs | full budget | early stop |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {j['arm']} | {j['stage']} | {j['teacher']} | {j['jobs']} | {60 * j['full budget']:.1f} "
              f"| {60 * j['early stop']:.1f} |" for j in jobs]
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "default.yaml")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=None, help="synthetic frames for the loop (default 2048; smoke 240)")
    parser.add_argument("--parts", nargs="+", default=["models", "loop", "pipeline", "projection"],
                        choices=("models", "loop", "pipeline", "projection"))
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also time torch.compile (default: on a GPU only; compiling on a CPU takes minutes)")
    parser.add_argument("--stop-epochs", type=int, nargs=2, default=None, metavar=("TEACHER", "STUDENT"),
                        help="assumed early-stopping epochs for the projection (default: twice each patience)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="no device: project from compute alone, every model at this many TFLOP/s "
                             "(989: an H100 SXM's dense bf16); the projection part only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.peak_tflops:
        return planning(args)
    device = resolve_device(args.device)
    smoke = device.type == "cpu"
    compile_models = args.compile if args.compile is not None else not smoke
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        frames = args.frames or (240 if smoke else 2048)
        cfg = study_config(args.params, args.size, smoke, csv=str(work / "data" / "frame_labels.csv"),
                           output=str(work / "out"), synth_frames=frames, synth_size=args.size, gap_frames=0,
                           device=device.type)
        result = {"device": device_summary(device), "image_size": args.size, "smoke": smoke,
                  "params": str(args.params), "torch": torch.__version__}
        parts = {"models": ("models (model only)", lambda: part_models(cfg, device, smoke, compile_models)),
                 "loop": ("loop (kdcore's fit on cached frames)", lambda: part_loop(cfg, work, smoke)),
                 "pipeline": ("pipeline", lambda: part_pipeline(cfg, work, smoke, result.get("models")))}
        wanted = set(args.parts) | ({"models", "loop"} if "projection" in args.parts else set())
        result["part_s"] = {}
        for key, (title, run) in parts.items():
            if key in wanted:
                print(f"{title}:", flush=True)
                start = time.perf_counter()
                result[key] = run()
                result["part_s"][key] = time.perf_counter() - start
        if "projection" in args.parts:
            teacher, student = args.stop_epochs or (2 * cfg.patience_teacher, 2 * cfg.patience_student)
            stop = {"teacher": min(teacher, cfg.epochs_teacher), "student": min(student, cfg.epochs_student)}
            result["projection"] = projection(cfg, result["models"], result["loop"], stop)
    publish("gpu", result, markdown(result), args.out)
    return result


def planning(args) -> dict:
    """The projection from compute alone: every model at ``--peak-tflops``, the loader at full speed."""
    cfg = study_config(args.params, args.size, smoke=False)
    teacher, student = args.stop_epochs or (2 * cfg.patience_teacher, 2 * cfg.patience_student)
    stop = {"teacher": min(teacher, cfg.epochs_teacher), "student": min(student, cfg.epochs_student)}
    models = peak_rows(cfg, args.peak_tflops)
    result = {"device": f"none: every model at {args.peak_tflops:g} TFLOP/s (planning, from compute alone)",
              "image_size": args.size, "smoke": False, "params": str(args.params), "torch": torch.__version__,
              "part_s": {}, "projection": projection(cfg, models, [], stop)}
    publish("gpu-planning", result, "\n".join([result["device"] + "."] + _projection_lines(result["projection"])) + "\n",
            args.out)
    return result


if __name__ == "__main__":
    main()
