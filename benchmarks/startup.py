"""What a stage costs before its work: each piece timed in a fresh interpreter, the way every stage
notebook pays it (a kernel started by papermill, then the imports of its first cell).

The imports are cumulative, in the order a training stage loads them, so each row's increment is
what that piece adds. Every module measured is one the stage that imports it uses: the figures
say what a process per stage costs, not what could be cut.

    python -m benchmarks.startup [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import cpu_summary, publish

# (what, the statement that loads it): row i runs the statements of rows 0..i in one fresh interpreter
IMPORTS = [
    ("python itself", "pass"),
    ("kdcore.reports.display, kdcore.reports.stages (pandas, sklearn, matplotlib)", "import kdcore.reports.display, kdcore.reports.stages"),
    ("torch", "import torch"),
    ("torch.optim's first optimizer (imports torch._dynamo)", "torch.optim.AdamW([torch.zeros(1, requires_grad=True)])"),
    ("timm (stages that build a teacher)", "import timm"),
]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def median_wall(command: list[str], repeats: int) -> float:
    return statistics.median(wall(command) for _ in range(repeats))


def kernel_command(folder: Path) -> list[str]:
    """papermill running a one-cell notebook: a kernel started, one cell run, the kernel stopped."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell("x = 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "one_cell.ipynb")
    code = (f"import papermill; papermill.execute_notebook({str(folder / 'one_cell.ipynb')!r}, "
            f"{str(folder / 'out.ipynb')!r}, kernel_name='python3', progress_bar=False)")
    return [sys.executable, "-c", code]


def measure(repeats: int, imports: list[tuple[str, str]] = IMPORTS, kernel: bool = True) -> dict:
    """``kernel=False`` leaves out the papermill kernel (a few seconds a repeat)."""
    kd = [sys.executable, "-m", "kdcore", "--help"]
    rows, before = [], 0.0
    for i, (what, _) in enumerate(imports):
        code = "; ".join(statement for _, statement in imports[:i + 1])
        seconds = median_wall([sys.executable, "-c", code], repeats)
        rows.append({"what": what, "seconds": seconds, "adds": seconds - before})
        before = seconds
    result = {"machine": cpu_summary(), "repeats": repeats, "kd_help_s": median_wall(kd, repeats), "imports": rows}
    if kernel:
        with tempfile.TemporaryDirectory() as folder:
            papermill_alone = median_wall([sys.executable, "-c", "import papermill"], repeats)
            result["kernel_s"] = median_wall(kernel_command(Path(folder)), repeats) - papermill_alone
    return result


def table(result: dict) -> str:
    lines = [f"Start-up of one stage, median of {result['repeats']} fresh processes; {result['machine']}",
             "", "| piece | s (cumulative) | adds s |", "|---|---|---|",
             f"| `kd --help` | {result['kd_help_s']:.2f} | |"]
    if "kernel_s" in result:
        lines.append(f"| a kernel through papermill (one cell; papermill's own import left out) | {result['kernel_s']:.2f} | |")
    lines += [f"| {row['what']} | {row['seconds']:.2f} | {row['adds']:+.2f} |" for row in result["imports"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    result = measure(parser.parse_args(argv).repeats)
    publish("startup", result, table(result))


if __name__ == "__main__":
    main()
