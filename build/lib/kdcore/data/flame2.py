"""Import the published FLAME2 layout into the frame CSV the study reads.

Layout: ``254p RGB Images/254p RGB Frame (N).jpg``, ``254p Thermal Images/254p Thermal Frame (N).jpg``
and a label file of frame ranges, ``start<TAB>end<TAB>XY`` (X = fire, Y = smoke, each Y or N),
after a few header lines.

Rules for imperfect data (each case is counted and reported, never dropped silently):
- a frame with only one of its two images is left out;
- a frame with images but inside no label range is left out;
- a frame inside two ranges that agree keeps that label and the first range's group;
- a frame inside two ranges that disagree is left out: its label is unknown.
``group`` is the index of the label range a frame belongs to: a contiguous video segment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kdcore.data.labels import FLAME2
from kdcore.data.schema import FRAME_COLUMNS
from kdcore.errors import KDError
from kdcore.io import atomic_path

RGB_DIR, IR_DIR = "254p RGB Images", "254p Thermal Images"
RGB_NAME, IR_NAME = "254p RGB Frame ({n}).jpg", "254p Thermal Frame ({n}).jpg"
_FRAME_NUMBER = re.compile(r"\((\d+)\)\.jpe?g$", re.IGNORECASE)
_RANGE_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+([YN])([YN])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelRange:
    start: int
    end: int
    fire: int
    smoke: int
    line: int


@dataclass
class ImportReport:
    """What the importer found, beyond the frames it kept."""

    frames: int = 0
    ranges: int = 0
    problems: dict[str, list[int]] = field(default_factory=dict)  # kind -> frame numbers

    def add(self, kind: str, frames) -> None:
        frames = sorted(frames)
        if frames:
            self.problems.setdefault(kind, []).extend(frames)

    def lines(self, examples: int = 5) -> list[str]:
        out = [f"imported {self.frames} frame pairs from {self.ranges} label ranges"]
        for kind, frames in self.problems.items():
            shown = ", ".join(map(str, frames[:examples])) + (", ..." if len(frames) > examples else "")
            out.append(f"warning: {len(frames)} {kind} (frames {shown})")
        return out


def parse_label_ranges(path: str | os.PathLike) -> list[LabelRange]:
    """Read the range label file: header lines first, CRLF or LF, final newline optional."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KDError(f"{path}: cannot read the label file ({e})") from None
    ranges: list[LabelRange] = []
    for number, line in enumerate(lines, start=1):
        match = _RANGE_LINE.match(line)
        if match:
            start, end, fire, smoke = match.groups()
            r = LabelRange(int(start), int(end), int(fire.upper() == "Y"), int(smoke.upper() == "Y"), number)
            if r.start > r.end or r.start < 1:
                raise KDError(f"{path}: line {number}: bad frame range {r.start}..{r.end}")
            ranges.append(r)
        elif ranges and line.strip():
            raise KDError(f"{path}: line {number}: expected 'start<TAB>end<TAB>XY' with X, Y in Y/N, "
                          f"found {line.strip()!r}")
    if not ranges:
        raise KDError(f"{path}: no label ranges found (expected lines 'start<TAB>end<TAB>XY')")
    return sorted(ranges, key=lambda r: (r.start, r.line))


def find_label_file(root: Path) -> Path:
    candidates = sorted(p for p in root.glob("*.txt") if "label" in p.name.lower())
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise KDError(f"{root}: expected exactly one label file (*label*.txt), found {found}; "
                      "name it with --labels")
    return candidates[0]


def _frame_numbers(folder: Path) -> dict[int, str]:
    if not folder.is_dir():
        raise KDError(f"{folder}: image folder not found (expected the FLAME2 layout: "
                      f"'{RGB_DIR}/' and '{IR_DIR}/')")
    found = {}
    for name in os.listdir(folder):
        match = _FRAME_NUMBER.search(name)
        if match:
            found[int(match.group(1))] = name
    return found


def label_frames(ranges: list[LabelRange], report: ImportReport):
    """frame -> (fire, smoke, group) by the module's overlap rules, and the conflicting frames."""
    labels: dict[int, tuple[int, int, int]] = {}
    conflicting, agreeing = set(), set()
    for group, r in enumerate(ranges):
        for frame in range(r.start, r.end + 1):
            previous = labels.get(frame)
            if previous is None:
                labels[frame] = (r.fire, r.smoke, group)
            elif previous[:2] == (r.fire, r.smoke):
                agreeing.add(frame)
            else:
                conflicting.add(frame)
    for frame in conflicting:
        del labels[frame]
    report.add("frames inside two agreeing label ranges, kept with the first range's group", agreeing)
    report.add("frames inside two conflicting label ranges, left out", conflicting)
    return labels, conflicting


def import_flame2(root: str | os.PathLike, out_csv: str | os.PathLike,
                  labels: str | os.PathLike | None = None) -> ImportReport:
    """Write the frame CSV for a FLAME2-layout folder; return what was found on the way."""
    root, out_csv = Path(root), Path(out_csv)
    if not root.is_dir():
        raise KDError(f"{root}: no such folder")
    label_file = Path(labels) if labels else find_label_file(root)
    report = ImportReport()
    ranges = parse_label_ranges(label_file)
    report.ranges = len(ranges)
    frame_labels, conflicting = label_frames(ranges, report)
    rgb, ir = _frame_numbers(root / RGB_DIR), _frame_numbers(root / IR_DIR)
    report.add("frames with an RGB image but no thermal image, left out", rgb.keys() - ir.keys())
    report.add("frames with a thermal image but no RGB image, left out", ir.keys() - rgb.keys())
    paired = rgb.keys() & ir.keys()
    report.add("frame pairs inside no label range, left out", paired - frame_labels.keys() - conflicting)
    report.add("labelled frames with no images", (frame_labels.keys() | conflicting) - rgb.keys() - ir.keys())
    kept = sorted(paired & frame_labels.keys())
    if not kept:
        raise KDError(f"{root}: no labelled frame pairs found")
    relative = Path(os.path.relpath(root.resolve(), out_csv.parent.resolve()))
    table = pd.DataFrame({
        "id": kept,
        "rgb_frame": [(relative / RGB_DIR / rgb[n]).as_posix() for n in kept],
        "ir_frame": [(relative / IR_DIR / ir[n]).as_posix() for n in kept],
        "fire": [frame_labels[n][0] for n in kept],
        "smoke": [frame_labels[n][1] for n in kept],
        "group": [frame_labels[n][2] for n in kept],
    })
    assert list(table.columns[:5]) == [*FRAME_COLUMNS, *FLAME2.names]
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    report.frames = len(table)
    return report
