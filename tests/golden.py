"""The smoke pipeline's results as a golden file (resnet-18, seed 1, one torch thread): every
metrics JSON and test-predictions CSV it writes, so that a refactor can show it changed no number.

Set aside: timing and provenance (they vary by run), and the size of ONNX files (the exporter
embeds the source path of kdcore's modules in them). Float kernels differ between CPUs, so the
numbers are compared only on the kind of machine they were recorded on; the record's format (every
key) is compared everywhere.

    python tests/golden.py      re-records it, after a change that is meant to move numbers
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "data" / "smoke_golden.json"
TEACHER, SEED = "resnet-18", 1
VOLATILE = ("timing", "provenance")
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve")


def machine() -> dict:
    """What float results depend on: the CPU's vector features and the numeric libraries."""
    import onnxruntime
    import torch

    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags |= set(line.split(":", 1)[1].split())
    return {"arch": platform.machine(), "cpu_features": sorted(flags & set(CPU_FEATURES)),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _clean(obj, onnx_file: bool = False):
    if isinstance(obj, dict):
        onnx_file = str(obj.get("file", "")).endswith(".onnx")
        return {k: _clean(v) for k, v in obj.items()
                if k not in VOLATILE and not (onnx_file and k == "size_mb")}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def record(output: Path) -> dict:
    """Every metrics file of the teacher's run and the seed's no-KD run, by path under output."""
    from kdcore.layout import NO_KD, Layout

    layout, found = Layout(output), {}
    for run in (TEACHER, NO_KD):
        for path in sorted(layout.metrics(run, SEED).iterdir()):
            name = path.relative_to(output).as_posix()
            if path.suffix == ".json":
                found[name] = _clean(json.loads(path.read_text()))
            elif path.suffix == ".csv":
                found[name] = path.read_text()
    return found


def key_paths(obj, prefix: str = "") -> set[str]:
    """Every key path of a record (list items by position), the shape of its format."""
    if isinstance(obj, dict):
        return {p for k, v in obj.items() for p in {f"{prefix}/{k}"} | key_paths(v, f"{prefix}/{k}")}
    if isinstance(obj, list):
        return {p for i, v in enumerate(obj) for p in key_paths(v, f"{prefix}[{i}]")}
    return set()


def run_smoke(root: Path):
    """The smoke config's pipeline for the golden teacher and seed, as the ``smoke`` fixture runs it."""
    from conftest import SMOKE, one_torch_thread

    from kdcore.study.config import load_config
    from kdcore.study.work import run_teacher_steps

    cfg = load_config(SMOKE, output=str(root / "out"), csv=str(root / "data" / "frame_labels.csv"))
    with one_torch_thread():
        return cfg, run_teacher_steps(cfg, TEACHER, SEED, progress=False)


if __name__ == "__main__":
    import os
    import tempfile

    os.environ["TQDM_DISABLE"] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryDirectory() as tmp:
        cfg, _ = run_smoke(Path(tmp))
        golden = {"machine": machine(), "record": record(Path(cfg.output))}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(golden['record'])} files) on {golden['machine']}")
