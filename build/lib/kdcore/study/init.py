"""``kd init``: a study folder for one's own data.

Its params file holds every config key with its comment, taken from the Config's own source (the
comment on each field's line, and the comment lines above it), so the file documents itself and
never drifts from the code. The values start from one of the kit's params files (``like``: the
demo's small CPU-sized teachers by default); with a CSV, its label set is read from its columns.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import yaml

from kdcore import kit
from kdcore.data.labels import RESERVED
from kdcore.data.schema import FRAME_COLUMNS, TRUTH_COLUMNS
from kdcore.errors import KDError
from kdcore.io import write_text
from kdcore.study.config import Config, SlurmConfig, load_config

PARAMS = "study.yaml"  # the params file kd init writes, and kd study runs in a folder that has one
DATA_ONLY = ("synth_frames", "synth_size", "synth_options")  # keys of generated data, dropped for a CSV
NOT_LABELS = set(RESERVED) | set(FRAME_COLUMNS) | set(TRUTH_COLUMNS)


def field_notes(cls) -> dict[str, tuple[list[str], str]]:
    """Per field of a config dataclass: the comment lines above it and the comment on its line."""
    notes, above = {}, []
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# "))
            continue
        match = re.match(r"(\w+): [^=#]+(?:=[^#]*)?(?:#\s*(.*))?$", text)
        if match and not text.startswith(("def ", "@")):
            notes[match.group(1)] = (above, (match.group(2) or "").strip())
        above = []
    return notes


def render(values: dict) -> str:
    """Every key of the Config, with ``values`` where given and the defaults elsewhere, each with its
    comment (nested: the slurm block's keys under it)."""
    lines = ["# A study's params file: every config key, its value and what it means (kd init wrote it;",
             "# docs/study.md says more). Relative paths are relative to this file. `kd study` in this",
             "# folder runs it; `kd check --params study.yaml` checks it first.", ""]
    defaults = dataclasses.asdict(Config())
    for key, (above, note) in field_notes(Config).items():
        value = values.get(key, defaults[key])
        lines += [f"# {a}" for a in above]
        if key == "slurm":
            lines.append(f"slurm:{'  # ' + note if note else ''}")
            slurm = {**dataclasses.asdict(SlurmConfig()), **(value or {})}
            for sub, (_, sub_note) in field_notes(SlurmConfig).items():
                lines.append(_line(sub, slurm[sub], sub_note, indent="  "))
        elif key == "teachers" and value:
            lines.append(f"teachers:{'  # ' + note if note else ''}")
            lines += ["  " + row for row in yaml.safe_dump(value, sort_keys=False, default_flow_style=None,
                                                           width=100).splitlines()]
        else:
            lines.append(_line(key, value, note))
    return "\n".join(lines) + "\n"


def _line(key: str, value, note: str, indent: str = "") -> str:
    text = yaml.safe_dump({key: value}, default_flow_style=True, width=1000).strip()[1:-1]  # "{k: v}" -> "k: v"
    return f"{indent}{text}{'  # ' + note if note else ''}"


def label_set_of(csv: Path) -> dict:
    """The label set a CSV's columns declare: FLAME2's ``fire``/``smoke`` ({}), other 0/1 columns
    (labels), or one column of other values (classes, sorted)."""
    import pandas as pd

    frame = pd.read_csv(csv, nrows=100_000)
    candidates = [c for c in frame.columns if c not in NOT_LABELS]
    if not candidates:
        raise KDError(f"{csv}: no label column beside {', '.join(sorted(NOT_LABELS & set(frame.columns)))}")
    binary = [c for c in candidates if set(frame[c].dropna().unique()) <= {0, 1}]
    if set(binary) == {"fire", "smoke"} and binary == candidates:
        return {}
    if binary == candidates:
        return {"kind": "multilabel", "columns": binary}
    if len(candidates) == 1:
        classes = sorted(frame[candidates[0]].dropna().unique().tolist())
        return {"kind": "multiclass", "column": candidates[0], "classes": classes}
    raise KDError(f"{csv}: cannot tell the labels from columns {', '.join(candidates)}: 0/1 columns are labels, "
                  "one other column holds classes; edit 'labels' in the params file")


def init(folder: str | Path, csv: str | Path | None = None, like: str = "demo") -> Path:
    """Write ``folder/study.yaml``: the values of the kit's params file ``like``, its paths made
    this folder's, and with ``csv`` that data and its label set. Never overwrites a params file."""
    folder = Path(folder)
    target = folder / PARAMS
    if target.exists():
        raise KDError(f"{target} exists: kd init never overwrites a study's params file")
    source = kit.params_file(like)
    if not source.is_file():
        raise KDError(f"--like {like!r}: no such params file of the kit; it has {', '.join(kit.names())}")
    values = yaml.safe_load(source.read_text()) or {}
    values.pop("sweep", None)
    values["output"] = "runs"
    if csv is not None:
        csv = Path(csv).resolve()
        if not csv.is_file():
            raise KDError(f"--csv {csv}: no such file")
        values = {k: v for k, v in values.items() if k not in DATA_ONLY}
        values.update(csv=str(csv), labels=label_set_of(csv))
    else:
        values["csv"] = "runs/data/frame_labels.csv"  # generated there by the first kd study
    text = render(values)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(target, text)
    load_config(target)  # what it wrote must load: a bug if not
    return target
