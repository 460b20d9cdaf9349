"""What machine a figure was measured on: a file-safe name, and the CPU's vector features."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch

# measurements land where git ignores them, one file per machine, so a run never dirties the tree;
# results/reference_*.* are the committed figures the README quotes
# in a checkout beside the committed results; from an installed kit (kd bench), in the folder it runs in
_HERE = Path(__file__).resolve().parent
RESULTS = _HERE / "results" / "local" if (_HERE.parent / "kdcore").is_dir() else Path.cwd() / "benchmark-results"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def has_vnni() -> bool:
    """int8 dot-product instructions (AVX-512 VNNI or AVX-VNNI): without them int8 gains far less."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def has_bf16() -> bool:
    """bfloat16 arithmetic (AVX-512 BF16 or AMX): without it autocast to bfloat16 is emulated, and slow."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_summary() -> str:
    """E.g. 'AMD EPYC, 2 cores, AVX2, no AVX-512, no VNNI, no BF16' (every speed figure is quoted beside it)."""
    flags = _cpu_flags()
    model = next((line.partition(":")[2].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine()) if flags else platform.machine()
    features = ["AVX2" if "avx2" in flags else "no AVX2",
                "AVX-512" if "avx512f" in flags else "no AVX-512",
                "VNNI" if has_vnni() else "no VNNI",
                "BF16" if has_bf16() else "no BF16"]
    return f"{model}, {os.cpu_count()} cores, {', '.join(features)}"


def device_summary(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"CPU: {cpu_summary()} (torch {torch.__version__})"


def publish(name: str, result: dict, table: str, folder: Path = RESULTS) -> None:
    """A benchmark's result as JSON and its table as Markdown, one pair per machine; the table printed."""
    from kdcore.io import write_json, write_text

    json_path, md_path = (folder / f"{name}-{machine_name()}.{ext}" for ext in ("json", "md"))
    write_json(json_path, result)
    write_text(md_path, table)
    print(table)
    print(f"wrote {json_path} and {md_path}")


def machine_name() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{platform.node()}-{platform.processor() or platform.machine()}")
