"""Where `make setup`'s minutes go: its own commands (as `make --dry-run` prints them) run one by one
into a scratch venv, each timed, with what it wrote to disk; before each pip install, the same
command with `--dry-run`, which resolves and finds the wheels but installs nothing, so that the rest
of the install is unpacking and copying.

    python -m benchmarks.setup
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.machine import cpu_summary, publish
from benchmarks.startup import wall

ROOT = Path(__file__).resolve().parents[1]


def commands(venv: Path) -> list[str]:
    """`make setup`'s recipe for a fresh venv at ``venv``, one shell command a line, comments dropped."""
    # run under make (as `make test` runs the tests), make would print its directory and inherit flags
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    text = subprocess.run(["make", "--no-print-directory", "--always-make", "--dry-run", "setup", f"VENV={venv}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _megabytes(folder: Path) -> float:
    if not folder.exists():
        return 0.0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def _timed(command: str) -> float:
    return wall(command, shell=True, cwd=ROOT)


def measure(venv: Path) -> dict:
    rows, size = [], _megabytes(venv)
    for command in commands(venv):
        resolve_s = _timed(command + " --dry-run") if "pip install " in command else None
        seconds = _timed(command)
        size, before = _megabytes(venv), size
        rows.append({"command": command.replace(f"{venv}/bin/", "").replace(str(venv), "$VENV"),
                     "seconds": seconds, "resolve_s": resolve_s, "written_mb": size - before})
    return {"machine": cpu_summary(), "steps": rows, "total_s": sum(r["seconds"] for r in rows)}


def table(result: dict) -> str:
    lines = [f"`make setup` command by command into a fresh venv; {result['machine']}", "",
             "| command | s | of it, resolving (`--dry-run`) | MB written |", "|---|---:|---:|---:|"]
    for row in result["steps"]:
        resolve = "" if row["resolve_s"] is None else f"{row['resolve_s']:.1f}"
        lines.append(f"| `{row['command']}` | {row['seconds']:.1f} | {resolve} | {row['written_mb']:.0f} |")
    lines += ["", f"Together {result['total_s']:.0f} s (the dry runs not counted)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="kd-setup-"))
    try:
        result = measure(folder / "venv")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    publish("setup", result, table(result))


if __name__ == "__main__":
    main()
