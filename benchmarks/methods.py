"""What each distillation method costs a training step of the learned control's student (the
stride-2 CNN at 32 px, batch 16, one thread), against Hinton's kd, side by side in one run.

1. Step time: a step is the objective (the teacher's cached logits and features, its stage maps
   from the resnet-18-narrow teacher run beside the student for the stage methods, the student's
   pass), backward and AdamW. The methods take turns, ``--steps`` steps each per round, for
   ``--rounds`` rounds: medians per step and the ratio to kd's, all from the same minutes of the
   machine.
2. Peak memory: each method's steps in a fresh process, the high-water mark of its resident memory
   above what the process held once everything was built and one step had run (Linux's VmHWM, reset
   then): what a step needs on top of the models, optimizer and teacher (the allocator keeps what it
   freed, so a process of its own per method).

    python -m benchmarks.methods [--steps 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from benchmarks.machine import cpu_summary, publish
from benchmarks.training import BATCH, LR, SIZE, frames
from kdcore.models import Student, create_teacher
from kdcore.study.config import Config, MethodConfig, load_config
from kdcore.study.work import predict_teacher_outputs
from kdcore.training.methods import METHODS
from kdcore.training.objective import build_criterion

FRAMES = 3000  # the methods study's: CRD's memory, and its negatives, grow with the frames
NARROW = {"family": "resnet", "backbone": "resnet18", "backbone_kwargs": {"channels": [32, 64, 128, 256],
                                                                          "stem_width": 32}}


def methods() -> list[str]:
    return ["kd"] + [name for name, cls in METHODS.items() if not cls.complete]


def setup(method: str, n_frames: int = FRAMES):
    """The control's student, its objective for ``method`` and a batch (the control's settings)."""
    torch.manual_seed(0)
    cfg = load_config(None, image_size=SIZE, teachers=[{"name": "resnet-18-narrow", **NARROW}])
    data = frames(n_frames, seed=0)
    teacher = create_teacher("resnet-18-narrow", SIZE, **{k: NARROW[k] for k in ("family", "backbone")},
                             backbone_kwargs=NARROW["backbone_kwargs"]).eval()
    outputs = predict_teacher_outputs(teacher, data, batch_size=64, device="cpu")
    student = Student(stem_stride=2)
    spec = None if method == "kd" else MethodConfig(method)
    criterion = build_criterion(cfg, outputs, student, set(data.ids[::5]), spec, teacher, list(data.ids))
    optimizer = torch.optim.AdamW([*student.parameters(), *criterion.parameters()], lr=LR,
                                  weight_decay=Config().weight_decay)
    batch = data.on_device(data.__getitems__(list(range(BATCH))), torch.device("cpu"), torch.contiguous_format)
    return student.train(), criterion.train(), optimizer, batch


def steps(student, criterion, optimizer, batch, n: int) -> float:
    """Seconds per step over ``n`` steps."""
    start = time.perf_counter()
    for _ in range(n):
        loss, _ = criterion(student, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / n


def step_times(n: int, rounds: int, n_frames: int = FRAMES) -> dict[str, float]:
    """Median seconds per step of each method, the methods taking turns."""
    parts = {m: setup(m, n_frames) for m in methods()}
    for part in parts.values():
        steps(*part, 2)  # warm-up
    times = {m: [] for m in parts}
    for _ in range(rounds):
        for m, part in parts.items():
            times[m].append(steps(*part, n))
    return {m: statistics.median(t) for m, t in times.items()}


def _status_kb(field: str) -> int:
    line = next(x for x in open("/proc/self/status").read().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def measure_peak(method: str, n: int) -> float:
    """In this process: the peak resident memory of ``n`` steps above the resident memory once
    everything was built (Linux's high-water mark, reset after the build), in MB."""
    part = setup(method)
    steps(*part, 1)
    with open("/proc/self/clear_refs", "w") as f:  # "5": reset the high-water mark to the current RSS
        f.write("5")
    base = _status_kb("VmRSS")
    steps(*part, n)
    return (_status_kb("VmHWM") - base) / 1024


def peak_mb(method: str, n: int) -> float:
    """``measure_peak`` in a fresh process, so that no other method's memory is counted."""
    code = (f"import json, torch; torch.set_num_threads(1); from benchmarks.methods import measure_peak; "
            f"print(json.dumps(measure_peak({method!r}, {n})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(n: int = 10, rounds: int = 5, n_frames: int = FRAMES, peaks: bool = True) -> dict:
    torch.set_num_threads(1)
    times = step_times(n, rounds, n_frames)
    rows = [{"method": m, "reads": ", ".join(sorted(METHODS[m].reads)), "ms_per_step": 1e3 * t,
             "ratio_to_kd": t / times["kd"], "peak_mb": peak_mb(m, n) if peaks else None} for m, t in times.items()]
    return {"cpu": cpu_summary(), "size": SIZE, "batch": BATCH, "steps": n, "rounds": rounds, "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"Each method's training step of the control's student ({result['size']} px, batch {result['batch']}, "
             f"one thread; median of {result['rounds']} rounds of {result['steps']} steps, the methods taking turns), "
             f"on {result['cpu']}.", "",
             "| method | reads | ms per step | x kd | peak memory above the built process, MB |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['reads']} | {r['ms_per_step']:.1f} | {r['ratio_to_kd']:.2f} | "
              f"{'n/a' if r['peak_mb'] is None else round(r['peak_mb'])} |" for r in result["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.steps, args.rounds)
    publish("methods", result, markdown(result))


if __name__ == "__main__":
    main()
