"""Where a finished study's minutes went, read from what it recorded: per stage kind, its seconds
(from each stage's record), of them its work's (the notebook's work cells) and, within the work, the
fits' training (each fit's log), the embeddings (t-SNE, UMAP), the figures and tables, and the rest
of the step (data, evaluation, outputs, compression). Nothing is run again.

    python -m benchmarks.minutes runs/demo [--executed runs/demo/executed]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from benchmarks.machine import RESULTS, cpu_summary, publish

# the first line of a stage notebook's cell -> what it does (cells not named: "pages")
CELLS = {"cfg = stages.configure": "step", "embeddings = stages.embeddings": "embeddings"}


def _kind(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def fits(output: Path) -> dict[str, float]:
    """Training seconds per stage kind, from every fit's log (the pruned student's fine-tune is
    compression's, the no-KD student's the data stage's)."""
    out: dict[str, float] = defaultdict(float)
    for log in output.glob("metrics/*/run_seed_*/*_train_log.json"):
        role = log.name.removesuffix("_train_log.json")
        kind = {"teacher": "01_teacher", "student_pruned": "03_compress"}.get(role, "02_student")
        if log.parent.parent.name == "no_kd":
            kind = "00_data"
        out[kind] += json.loads(log.read_text())["timing"]["train_s"]
    return out


def cells(executed: Path) -> dict[str, dict[str, float]]:
    """Per stage kind, the seconds of its work cells by what they do (papermill timed each)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for notebook in executed.rglob("*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            meta = cell.get("metadata", {})
            tags = set(meta.get("tags", []))
            if cell["cell_type"] != "code" or tags & {"parameters", "injected-parameters", "imports"}:
                continue
            first = "".join(cell["source"]).split("\n")[0]
            what = next((name for start, name in CELLS.items() if first.startswith(start)), "pages")
            out[notebook.stem][what] += meta.get("papermill", {}).get("duration") or 0.0
    return out


def run(output: Path, executed: Path | None = None) -> dict:
    executed = executed or output / "executed"
    by_kind: dict[str, dict] = defaultdict(lambda: {"stages": 0, "seconds": 0.0, "work_s": 0.0})
    for record in output.glob("stages/**/*.json"):
        r = json.loads(record.read_text())
        if r.get("status") != "finished":
            continue
        kind = _kind(record.relative_to(output / "stages").with_suffix("").as_posix())
        by_kind[kind]["stages"] += 1
        by_kind[kind]["seconds"] += r["seconds"]
        by_kind[kind]["work_s"] += r["work_s"]
    trained, timed = fits(output), cells(executed)
    rows = []
    for kind, row in sorted(by_kind.items()):
        parts = timed.get(kind, {})
        rows.append({"kind": kind, **row, "fits_s": trained.get(kind, 0.0), "step_s": parts.get("step", 0.0),
                     "embeddings_s": parts.get("embeddings", 0.0), "pages_s": parts.get("pages", 0.0)})
    return {"output": str(output), "cpu": cpu_summary(), "rows": rows}


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [f"Where the minutes of {result['output']} went (seconds summed over stages; stages run side by side, "
             f"so the sum exceeds the wall time). Read on: {result['cpu']}.", "",
             "| stage kind | stages | seconds | work | fits | rest of the step | embeddings | figures, tables | "
             "beyond work |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rest = r["step_s"] - r["fits_s"]
        lines.append(f"| {r['kind']} | {r['stages']} | {r['seconds']:.0f} | {r['work_s']:.0f} | {r['fits_s']:.0f} "
                     f"| {rest:.0f} | {r['embeddings_s']:.0f} | {r['pages_s']:.0f} | {r['seconds'] - r['work_s']:.0f} |")
    total = {k: sum(r[k] for r in rows) for k in ("stages", "seconds", "work_s", "fits_s", "step_s", "embeddings_s", "pages_s")}
    lines.append(f"| all | {total['stages']} | {total['seconds']:.0f} | {total['work_s']:.0f} | {total['fits_s']:.0f} "
                 f"| {total['step_s'] - total['fits_s']:.0f} | {total['embeddings_s']:.0f} | {total['pages_s']:.0f} "
                 f"| {total['seconds'] - total['work_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.minutes", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="a finished study's output folder (runs/demo)")
    parser.add_argument("--executed", type=Path, help="its executed notebooks (default: OUTPUT/executed)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.output, args.executed)
    publish("minutes", result, markdown(result), args.out)
    return result


if __name__ == "__main__":
    main()
