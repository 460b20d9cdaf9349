"""The CSV the study reads: ``id, rgb_frame, ir_frame``, the label columns the study declares
(``kdcore.data.labels``; FLAME2's ``fire, smoke`` by default), an optional ``group`` (the label range
a frame belongs to) and an optional ``video`` (the continuous camera pass it belongs to: frames of
different videos never touch in time; without it, the whole table is one video).

Image paths are relative to a base folder (by default the CSV's own folder) or absolute.
Validation follows scikit-learn's habit: check at the boundary, and say what was expected,
what was found, and where.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.progress import progress as progress_bar

FRAME_COLUMNS = ("id", "rgb_frame", "ir_frame")
TRUTH_COLUMNS = ("fire_rgb_visible",)  # optional per-frame truth (kd synth writes it): for breakdowns


@dataclass
class FrameTable:
    """A validated frame table with resolved image paths."""

    frames: pd.DataFrame  # id (str), rgb_path, ir_path, the label columns, group and video (int or absent)
    csv: Path
    base_path: Path
    label_set: LabelSet = FLAME2
    image_sizes: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def targets(self) -> np.ndarray:
        """(frames x outputs) 0/1: the labels, or the one-hot class."""
        return self.label_set.targets(self.frames)

    @property
    def strata(self) -> np.ndarray:
        """Per frame, its label combination ('YN') or its class."""
        return self.label_set.strata(self.targets)

    @property
    def groups(self) -> np.ndarray | None:
        return self.frames["group"].to_numpy() if "group" in self.frames else None

    @property
    def videos(self) -> np.ndarray | None:
        return self.frames["video"].to_numpy() if "video" in self.frames else None

    def __len__(self) -> int:
        return len(self.frames)


def read_frame_csv(csv: str | os.PathLike, base_path: str | os.PathLike | None = None,
                   check_images: bool = True, progress: bool = True, labels: LabelSet = FLAME2) -> FrameTable:
    """Read and validate a frame CSV with the label columns of ``labels``; raise :class:`KDError`
    naming the first problem found."""
    csv = Path(csv)
    base = Path(base_path) if base_path is not None else csv.parent
    df = _read_csv(csv, labels)
    _check_columns(df, csv, labels)
    rows = df.index + 2  # the line number a user sees in an editor (header is line 1)
    label_columns = labels.read(df, csv, rows)
    ids = df["id"].astype(str).str.strip()
    blank = (ids == "").to_numpy()
    if blank.any():
        raise KDError(f"{csv}: row {rows[int(np.flatnonzero(blank)[0])]}: blank id (every frame needs one)")
    dup = ids.duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
        raise KDError(f"{csv}: row {rows[i]}: duplicate id {ids.iloc[i]!r} (first at row {rows[first]})")
    frames = pd.DataFrame({
        "id": ids,
        "rgb_path": [str(_resolve(base, p)) for p in df["rgb_frame"]],
        "ir_path": [str(_resolve(base, p)) for p in df["ir_frame"]],
        **{column: label_columns[column] for column in labels.columns},
    })
    for column in ("group", "video"):
        if column in df:
            frames[column] = _check_integers(df[column], column, rows, csv)
    for column in TRUTH_COLUMNS:
        if column in df:
            _check_binary(df[column], column, rows, csv)
            frames[column] = df[column].astype(int).to_numpy()
    table = FrameTable(frames.reset_index(drop=True), csv, base, labels)
    if check_images:
        table.image_sizes = check_image_pairs(table, progress=progress)
    return table


def _read_csv(csv: Path, labels: LabelSet) -> pd.DataFrame:
    if not csv.is_file():
        raise KDError(f"{csv}: no such CSV file")
    try:
        df = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise KDError(f"{csv}: the CSV is empty (expected a header "
                      f"{','.join(FRAME_COLUMNS + labels.columns)})") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise KDError(f"{csv}: not a readable CSV ({str(e).strip().splitlines()[-1]})") from None
    df.columns = [c.strip() for c in df.columns]
    if df.empty:
        raise KDError(f"{csv}: the CSV has a header but no rows")
    return df


def _check_columns(df: pd.DataFrame, csv: Path, labels: LabelSet) -> None:
    required = FRAME_COLUMNS + labels.columns
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise KDError(f"{csv}: missing column(s) {', '.join(missing)} "
                      f"(expected {', '.join(required)}[, group, video]; found {', '.join(df.columns)})")


def _check_binary(values: pd.Series, name: str, rows, csv: Path) -> None:
    bad = ~values.str.strip().isin(["0", "1"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise KDError(f"{csv}: row {rows[i]}: column {name!r} must be 0 or 1, found {values.iloc[i]!r}")
    values.update(values.str.strip())


def _check_integers(values: pd.Series, name: str, rows, csv: Path) -> pd.Series:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    bad = numbers.isna() | (numbers != numbers.round())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise KDError(f"{csv}: row {rows[i]}: column {name!r} must be an integer, found {values.iloc[i]!r}")
    return numbers.astype(int).to_numpy()


def _resolve(base: Path, value: str) -> Path:
    p = Path(value.strip())
    return p if p.is_absolute() else base / p


def check_image_pairs(table: FrameTable, progress: bool = True) -> dict[tuple[int, int], int]:
    """Decode every image; error on a missing or corrupt file or a pair of unequal sizes.

    Returns how many pairs there are of each (width, height).
    """
    df = table.frames
    pairs = list(zip(df["rgb_path"], df["ir_path"], strict=True))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(_pair_sizes, pairs)
        sizes: dict[tuple[int, int], int] = {}
        bar = progress_bar(results, total=len(pairs), desc="checking images", unit="pair", enabled=progress)
        for row, (rgb_size, ir_size, problem) in enumerate(bar):
            where = _row(table, row)
            if problem:
                raise KDError(f"{where}: {problem}")
            if rgb_size != ir_size:
                raise KDError(f"{where}: RGB image is {rgb_size[0]}x{rgb_size[1]} but IR image is "
                              f"{ir_size[0]}x{ir_size[1]}; a pair must have one size")
            sizes[rgb_size] = sizes.get(rgb_size, 0) + 1
    return sizes


def check_image_files(table: FrameTable) -> None:
    """Every image is there (without decoding it, which ``check_image_pairs`` does): the first
    missing one is an error naming its row and id, as ``kd check`` names it."""
    df = table.frames
    for row, (rgb, ir) in enumerate(zip(df["rgb_path"], df["ir_path"], strict=True)):
        for path in (rgb, ir):
            if not os.path.isfile(path):
                raise KDError(f"{_row(table, row)}: image not found: {path}")


def _row(table: FrameTable, row: int) -> str:
    """Where a frame is in its CSV, as a reader finds it: the file, the line (after the header), the id."""
    return f"{table.csv}: row {row + 2} (id {table.frames['id'].iloc[row]!r})"


def _pair_sizes(pair: tuple[str, str]):
    sizes = []
    for path in pair:
        try:
            sizes.append(image_size(path))
        except KDError as e:
            return None, None, str(e)
    return sizes[0], sizes[1], None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Fully decode ``path`` (a truncated JPEG fails only on decode) and return (width, height)."""
    if not os.path.isfile(path):
        raise KDError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise KDError(f"unreadable or corrupt image {path} ({e})") from None


def load_rgb(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """Decode to an HxWx3 uint8 array, optionally resized to ``size`` x ``size``."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise KDError(f"image not found: {path}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise KDError(f"unreadable or corrupt image {path} ({e})") from None


def describe(table: FrameTable) -> dict:
    """Rows, strata (label combinations or classes), groups and image sizes, as plain data for
    printing or JSON."""
    labels = table.label_set
    strata = pd.Series(table.strata).value_counts()
    return {
        "csv": str(table.csv),
        "rows": len(table),
        "labels": labels.to_dict(),
        "strata": {s: int(strata.get(s, 0)) for s in labels.all_strata()},
        "positives": dict(zip(labels.names, table.targets.sum(0).astype(int).tolist(), strict=True)),
        "groups": int(table.frames["group"].nunique()) if "group" in table.frames else None,
        "image_sizes": {f"{w}x{h}": n for (w, h), n in sorted(table.image_sizes.items())},
    }
