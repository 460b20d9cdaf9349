"""The student's ONNX export, side by side in one run: through torch.export (the path kdcore took
before) against torch's TorchScript exporter (``kdcore.compression.onnx.export_onnx`` now), for the
demo's student (stride-2 stem, 32 px) and the study's (224 px); seconds per export (median of
interleaved repeats, the first export of each path timed apart: it pays for lazy imports) and the
largest logit gap between each file and the model. A compression stage exports twice (fp32 and
pruned), so this is most of what one costs.

    python -m benchmarks.compression [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from benchmarks.machine import RESULTS, cpu_summary, publish
from kdcore.compression.onnx import OnnxModel, export_onnx
from kdcore.models import Student

MODELS = {"demo student (stride 2, 32 px)": (2, 32), "study student (stride 1, 224 px)": (1, 224)}


def torch_export(model: torch.nn.Module, path: Path, img_size: int) -> Path:
    """The path before: torch.export with dynamic batch and image sides, ONNX from its program."""
    example = (torch.randn(2, 3, img_size, img_size),)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=32), 3: torch.export.Dim("width", min=32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model.eval(), example, input_names=["rgb"], output_names=["logits"],
                                    dynamic_shapes={"rgb": dims}, dynamo=True, verbose=False)
    program.save(str(path))
    return path


PATHS = {"torch.export (before)": torch_export, "TorchScript exporter (now)": export_onnx}


def _gap(model: torch.nn.Module, path: Path, img_size: int) -> float:
    x = torch.randn(4, 3, img_size, img_size)
    with torch.no_grad():
        return (model(x) - OnnxModel(path)(x)).abs().max().item()


def run(repeats: int, models: dict = MODELS) -> dict:
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (stride, size) in models.items():
            torch.manual_seed(0)
            model = Student(stem_stride=stride).eval()
            times = {path: [] for path in PATHS}
            first, gaps = {}, {}
            for r in range(repeats + 1):  # interleaved: the machine's drift falls on both paths
                for label, export in PATHS.items():
                    file = Path(tmp) / f"{len(rows)}-{r}-{len(times[label])}.onnx"
                    start = time.perf_counter()
                    export(model, file, size)
                    seconds = time.perf_counter() - start
                    if r == 0 and not rows:
                        first[label] = seconds  # the very first export of a process
                    else:
                        times[label].append(seconds)
                    gaps[label] = _gap(model, file, size)
            rows.append({"model": name, **{label: statistics.median(v) for label, v in times.items()},
                         "first": first, "gap": gaps})
    return {"cpu": cpu_summary(), "torch": torch.__version__, "threads": 1, "repeats": repeats, "rows": rows}


def markdown(result: dict) -> str:
    before, now = PATHS
    lines = [f"ONNX export of the student, seconds (median of {result['repeats']} interleaved exports, one thread); "
             f"CPU: {result['cpu']}; torch {result['torch']}.", "",
             f"| model | {before} | {now} | speed-up | logit gap {before} | logit gap {now} |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r[before]:.2f} | {r[now]:.3f} | {r[before] / r[now]:.0f}x "
              f"| {r['gap'][before]:.1e} | {r['gap'][now]:.1e} |" for r in result["rows"]]
    first = result["rows"][0]["first"]
    lines += ["", "The first export of a process, which imports what the path needs: "
              + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in first.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.repeats)
    publish("compression", result, markdown(result), args.out)
    return result


if __name__ == "__main__":
    main()
