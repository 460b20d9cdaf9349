"""A pilot's validation numbers, and nothing of its test set: per seed, each teacher's and student's
validation AUROC per label (at the kept epoch, from its evaluation record's ``validation_ranking``)
and its fit's seconds; each teacher's lead over the no-KD student of its seed.

    python tools/pilot_validation.py runs/methods_pilot

A design chosen from a pilot may read these; never the test figures beside them in the records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def validation(record: dict) -> dict[str, float]:
    return {label: v["auroc"] for label, v in record["metrics"]["validation_ranking"].items()}


def rows(output: Path) -> list[dict]:
    out = []
    for path in sorted(output.glob("metrics/**/run_seed_*/*_evaluation.json")):
        if path.name == "final_evaluation.json":  # the seed's summary of the others
            continue
        run = path.parent.parent.relative_to(output / "metrics").as_posix()
        seed = int(path.parent.name.removeprefix("run_seed_"))
        record = json.loads(path.read_text())
        out.append({"run": run, "seed": seed, "role": path.name.removesuffix("_evaluation.json"),
                    "val_auroc": validation(record), "train_s": record["timing"].get("train_s")})
    return out


def main(output: str) -> None:
    found = rows(Path(output))
    no_kd = {r["seed"]: r["val_auroc"] for r in found if r["run"] == "no_kd"}
    print(f"{'run':<28} {'seed':>4} {'role':<8} {'validation AUROC per label':<34} {'lead (fire)':>11} {'fit s':>6}")
    for r in found:
        aurocs = " / ".join(f"{k} {v:.3f}" for k, v in r["val_auroc"].items())
        first = next(iter(r["val_auroc"]))
        lead = (f"{r['val_auroc'][first] - no_kd[r['seed']][first]:+.3f}"
                if r["role"] == "teacher" and r["seed"] in no_kd else "")
        seconds = f"{r['train_s']:.0f}" if r["train_s"] is not None else ""
        print(f"{r['run']:<28} {r['seed']:>4} {r['role']:<8} {aurocs:<34} {lead:>11} {seconds:>6}")


if __name__ == "__main__":
    main(sys.argv[1])
