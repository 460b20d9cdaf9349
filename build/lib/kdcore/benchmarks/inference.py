"""Inference of the reference-size student at 224, batch 1, on this machine's CPU: every variant in one
run, as medians with ratios to eager fp32, beside the compute floor (MACs over the measured fp32
GEMM rate; a quarter of that for int8).

    kd bench            (or: python -m benchmarks.inference)
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import has_vnni, publish
from kdcore.compression.onnx import OnnxModel, export_onnx, quantize_onnx
from kdcore.compression.pruning import prune_student
from kdcore.models import Student
from kdcore.models.profile import count_macs, latency_ms


def gemm_gflops(n: int = 1024, repeats: int = 10) -> float:
    """The machine's fp32 matrix-multiply rate (median of repeats), in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / float(np.median(times[2:])) / 1e9


def dynamic_qint8(model: torch.nn.Module) -> torch.nn.Module:
    """The reference recipe, kept as a labelled comparison: it quantizes Linear layers only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Conv2d, torch.nn.Linear}, dtype=torch.qint8)


def run(size: int = 224, repeats: int = 30) -> dict:
    torch.manual_seed(0)
    student = Student().eval()
    pruned = prune_student(student, 0.4, size).eval()
    x = (torch.randn(1, 3, size, size),)
    calibration = np.random.default_rng(0).random((32, 3, size, size), dtype=np.float32)
    rate = gemm_gflops()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        files = {}
        for name, model in (("fp32", student), ("pruned", pruned)):
            files[name] = export_onnx(model, work / f"{name}.onnx", size)
            files[f"{name}_int8"] = quantize_onnx(files[name], work / f"{name}_int8.onnx", calibration)
        # name: (model, its fp32 architecture for MACs, its file, inputs, runs its convs in int8)
        x_last = (x[0].contiguous(memory_format=torch.channels_last),)
        student_last = Student().eval().to(memory_format=torch.channels_last)
        student_last.load_state_dict(student.state_dict())
        variants = {
            "eager fp32": (student, student, None, x, False),
            "eager fp32, channels_last": (student_last, student, None, x_last, False),
            "dynamic qint8 (reference recipe)": (dynamic_qint8(student), student, None, x, False),
            "static int8 (ONNX Runtime QDQ)": (OnnxModel(files["fp32_int8"]), student, files["fp32_int8"], x, True),
            "pruned 0.4, eager fp32": (pruned, pruned, None, x, False),
            "pruned 0.4 + static int8": (OnnxModel(files["pruned_int8"]), pruned, files["pruned_int8"], x, True),
            "ONNX Runtime fp32": (OnnxModel(files["fp32"]), student, files["fp32"], x, False),
        }
        rows = {}
        for name, (model, architecture, file, inputs, int8) in variants.items():
            macs = count_macs(architecture, x)
            floor_ms = macs * 2 / (rate * (4 if int8 else 1)) / 1e6
            rows[name] = {**latency_ms(model, inputs, repeats=repeats, warmup=5), "gmacs": macs / 1e9,
                          "floor_ms": floor_ms, "size_mb": _size_mb(model, file)}
    base = rows["eager fp32"]["median_ms"]
    for row in rows.values():
        row["speedup_vs_eager"] = base / row["median_ms"]
    return {"img_size": size, "batch": 1, "gemm_gflops": rate, "threads": torch.get_num_threads(),
            "cpu_int8_dot_product": has_vnni(), "variants": rows}


def _size_mb(model: torch.nn.Module, file: Path | None) -> float:
    if file is not None:
        return file.stat().st_size / 1e6
    from kdcore.models.profile import size_mb

    return size_mb(model)


def markdown(result: dict) -> str:
    vnni = "with" if result["cpu_int8_dot_product"] else "without"
    lines = [f"Student at {result['img_size']}x{result['img_size']}, batch 1, {result['threads']} threads, "
             f"a CPU {vnni} int8 dot-product instructions (VNNI); fp32 GEMM rate "
             f"{result['gemm_gflops']:.0f} GFLOP/s. Floor: MACs over that rate (a quarter for int8).", "",
             "| variant | median ms | vs eager fp32 | floor ms | GMACs | size MB |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in result["variants"].items():
        lines.append(f"| {name} | {r['median_ms']:.1f} | {r['speedup_vs_eager']:.2f}x | {r['floor_ms']:.1f} "
                     f"| {r['gmacs']:.2f} | {r['size_mb']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    result = run()
    publish("inference", result, markdown(result))


if __name__ == "__main__":
    main()
