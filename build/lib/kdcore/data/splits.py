"""Train/val/test splits per seed, and an audit of how much a split leaks.

Frames of a video are near-duplicates of their neighbours, so which frames may share a part
matters more than the fractions. Three modes:

- ``block`` (the default when the CSV has groups): each group (a label range, a contiguous stretch
  of video in the table's row order) is cut into contiguous blocks of about ``block_frames``
  frames; whole blocks go to one part, every part gets every label combination present, and
  ``gap_frames`` frames are left out at every boundary where the part changes inside one video
  (the CSV's ``video`` column; without it, the whole table is one video in row order, as FLAME2's
  label ranges are), so no test frame has a training frame right beside it in the video.
- ``group``: whole groups to one part. On FLAME2 (one fire-negative range) this leaves val and
  test without a single negative frame; kept for data with many short groups.
- ``stratified``: the reference codebase's 49/21/30 frame-level split by stratum (label
  combination or class), or exactly ``train_size`` training items (a count, or a share) with the
  rest shared 21:30 between val and test, as a published protocol of N random training items
  asks. On video it leaks: near-copies of test frames are in train (the audit measures how many);
  on independent items (a CSV with neither ``group`` nor ``video``) it leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.seeds import numpy_rng

FRACTIONS = {"train": 0.49, "val": 0.21, "test": 0.30}
PARTS = tuple(FRACTIONS)
SPLIT_MODES = ("auto", "block", "group", "stratified")
# Chosen on FLAME2's published label file (19 ranges, 53,450 labelled frames), seeds 42-1024:
# every part holds NN, YN and YY; fractions within 1 point of 49/21/30 (300: 0.6, 1000: 1.8,
# 2000: 4.1 points); 3% of frames fall in gaps (300: 6.6%, 2000: 1.2%).
BLOCK_FRAMES = 600
GAP_FRAMES = 30
LEAKY = {"stratified": "frame-level: near-duplicates of val/test frames are in train"}


@dataclass(frozen=True)
class Split:
    mode: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    units: np.ndarray | None = None  # per frame of the table: the block/group/frame it was drawn as

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def left_out(self) -> int:
        """Frames in no part (the gaps between blocks)."""
        return 0 if self.units is None else len(self.units) - sum(len(ix) for ix in self.parts().values())


def make_split(combos: np.ndarray, groups: np.ndarray | None, mode: str, seed: int,
               block_frames: int = BLOCK_FRAMES, gap_frames: int = GAP_FRAMES,
               videos: np.ndarray | None = None, train_size: float | None = None) -> Split:
    """Indices of each part; the same inputs and seed always give the same split. ``combos``:
    each row's stratum. ``videos`` says which rows are one continuous video (None: all of them, in
    row order): gap frames are left out only where two parts meet inside one video, never between
    separate camera passes. ``train_size`` (stratified mode): the training items, a count or a share."""
    if mode not in SPLIT_MODES:
        raise KDError(f"split must be one of {', '.join(SPLIT_MODES)} (got {mode!r})")
    combos = np.asarray(combos)
    if mode == "auto":
        mode = "block" if groups is not None else "stratified"
    if mode == "stratified":
        return _stratified_split(combos, seed, train_size)
    if train_size is not None:
        raise KDError(f"config key 'train_size': sets the stratified split's training items; the {mode} "
                      "split places whole blocks or groups (set split: stratified, or leave train_size out)")
    if groups is None:
        raise KDError(f"split {mode!r} needs a 'group' column in the CSV")
    groups = np.asarray(groups)
    units = cut_blocks(groups, block_frames) if mode == "block" else _dense(groups)
    part_of = _assign(units, combos, seed, strict=mode == "block")
    part_of = _leave_gaps(part_of, gap_frames, videos)
    split = Split(mode, *(np.flatnonzero(part_of == p) for p in range(len(PARTS))), units=units)
    empty = [part for part, ix in split.parts().items() if not len(ix)]
    if empty:
        fixes = [f"lower gap_frames (now {gap_frames}: frames left out where parts meet inside one video), or "
                 "give the CSV a 'video' column saying which frames are separate camera passes"] if gap_frames else []
        fixes += [f"lower block_frames (now {block_frames})"] if mode == "block" else \
            [f"use the block split (the data has {len(np.unique(groups))} groups)"]
        fix = "; or ".join(fixes)
        raise KDError(f"the {mode} split leaves {' and '.join(empty)} without a frame: {fix}")
    return split


def _stratified_split(combos: np.ndarray, seed: int, train_size: float | None = None) -> Split:
    index = np.arange(len(combos))
    from sklearn.model_selection import train_test_split

    if train_size is not None:  # the training items first, the rest to val and test
        size = int(train_size) if train_size >= 1 else train_size
        if train_size >= 1 and (size != train_size or size >= len(combos) - 1):
            raise KDError(f"config key 'train_size': {train_size:g} training items of {len(combos)} leaves too few "
                          "for val and test (give a count below the data's size, or a share below 1)")
        train, rest = train_test_split(index, train_size=size, stratify=_stratifiable(combos, size),
                                       random_state=seed)
        test_share = FRACTIONS["test"] / (FRACTIONS["val"] + FRACTIONS["test"])
        val, test = train_test_split(rest, test_size=test_share, stratify=_stratifiable(combos[rest]),
                                     random_state=seed)
        return Split("stratified", np.sort(train), np.sort(val), np.sort(test), units=index)
    rest, test = train_test_split(index, test_size=FRACTIONS["test"], stratify=_stratifiable(combos),
                                  random_state=seed)
    val_share = FRACTIONS["val"] / (FRACTIONS["train"] + FRACTIONS["val"])
    train, val = train_test_split(rest, test_size=val_share, stratify=_stratifiable(combos[rest]),
                                  random_state=seed)
    return Split("stratified", np.sort(train), np.sort(val), np.sort(test), units=index)


def _stratifiable(combos: np.ndarray, train_items: int | float | None = None) -> np.ndarray | None:
    """Stratify when every stratum has enough frames to be split (and, for a small training part,
    when it can hold one of each); plain random otherwise."""
    strata, counts = np.unique(combos, return_counts=True)
    if train_items is not None and train_items >= 1 and train_items < len(strata):
        return None
    return combos if counts.min() >= 4 else None


def _dense(groups: np.ndarray) -> np.ndarray:
    return np.unique(groups, return_inverse=True)[1]


def cut_blocks(groups: np.ndarray, block_frames: int) -> np.ndarray:
    """Per frame, its block: each group's frames, in row order, cut into round(n / block_frames)
    near-equal contiguous runs (at least one)."""
    if block_frames < 1:
        raise KDError(f"config key 'block_frames': must be at least 1 (got {block_frames})")
    blocks = np.empty(len(groups), np.int64)
    next_id = 0
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        count = max(1, round(len(rows) / block_frames))
        for piece in np.array_split(rows, count):
            blocks[piece] = next_id
            next_id += 1
    return blocks


def _assign(units: np.ndarray, combos: np.ndarray, seed: int, strict: bool) -> np.ndarray:
    """Part index per frame. Per label combination, in a seeded random order: one unit to each
    part first (val, test, train), then each further unit to the part furthest below its share of
    that combination. ``strict``: a combination with fewer than three units is an error."""
    ids, first, sizes = np.unique(units, return_index=True, return_counts=True)
    if len(ids) < len(PARTS):
        raise KDError(f"a split needs at least {len(PARTS)} groups or blocks, found {len(ids)}")
    combo_of = {u: _most_common(combos[units == u]) for u in ids.tolist()}
    size = dict(zip(ids.tolist(), sizes.tolist(), strict=True))
    order = sorted(range(len(PARTS)), key=lambda p: FRACTIONS[PARTS[p]])  # smallest part first
    rng = numpy_rng(seed, "split")
    part_of_unit = {}
    for combo in sorted(set(combo_of.values())):
        members = [u for u in ids.tolist() if combo_of[u] == combo]
        if strict and len(members) < len(PARTS):
            raise KDError(f"label combination {combo} has {len(members)} block(s) of frames, too few to "
                          f"place in train, val and test: lower block_frames")
        members = [members[i] for i in rng.permutation(len(members))]
        total, filled = sum(size[u] for u in members), np.zeros(len(PARTS))
        coverage = order if len(members) >= len(PARTS) else order[::-1][:len(members)]
        for i, u in enumerate(members):
            shares = np.array([FRACTIONS[p] for p in PARTS]) * total - filled
            part = coverage[i] if i < len(coverage) else int(np.argmax(shares))
            part_of_unit[u] = part
            filled[part] += size[u]
    _ensure_every_part(part_of_unit, size)
    return np.array([part_of_unit[u] for u in units.tolist()])


def _ensure_every_part(part_of_unit: dict, sizes: dict) -> None:
    """Move the smallest unit of a crowded part into an empty one."""
    for part in range(len(PARTS)):
        if part not in part_of_unit.values():
            counts = np.bincount(list(part_of_unit.values()), minlength=len(PARTS))
            donors = [u for u, p in part_of_unit.items() if counts[p] > 1]
            part_of_unit[min(donors, key=lambda u: sizes[u])] = part


def _leave_gaps(part_of: np.ndarray, gap_frames: int, videos: np.ndarray | None = None) -> np.ndarray:
    """Mark ``gap_frames`` frames (-1) around every row where the part changes inside one video,
    half on each side (within that video)."""
    part_of = part_of.copy()
    if gap_frames <= 0:
        return part_of
    videos = np.zeros(len(part_of), int) if videos is None else np.asarray(videos)
    before, after = (gap_frames + 1) // 2, gap_frames // 2
    changes = np.flatnonzero((part_of[1:] != part_of[:-1]) & (videos[1:] == videos[:-1])) + 1
    for row in changes:
        rows = np.arange(max(0, row - before), min(len(part_of), row + after))
        part_of[rows[videos[rows] == videos[row]]] = -1
    return part_of


def _most_common(values: np.ndarray):
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[np.argmax(counts)]


def labelled_mask(split: Split, combos: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Per frame, whether its label may be used: every val and test frame, and in train whole blocks
    (never single frames), ``fraction`` of each label combination's training blocks (at least one),
    drawn with ``seed``. The rest of train is frames without labels, as most of a drone's video is."""
    labelled = np.ones(len(split.units), bool)
    if fraction >= 1:
        return labelled
    train_units = split.units[split.train]
    labelled[split.train] = False
    rng = numpy_rng(seed, "label_budget")
    combo_of = {u: _most_common(combos[split.train][train_units == u]) for u in np.unique(train_units).tolist()}
    for combo in sorted(set(combo_of.values())):
        members = sorted(u for u, c in combo_of.items() if c == combo)
        chosen = rng.choice(members, size=max(1, round(fraction * len(members))), replace=False)
        labelled[split.train[np.isin(train_units, chosen)]] = True
    return labelled


NOT_AUDITED = ("not measured: the items are independent (no group or video column), and a difference hash "
               "finds look-alikes among them, not copies")


def independent(groups: np.ndarray | None, videos: np.ndarray | None) -> bool:
    """Items with neither groups nor videos: no two are frames of one scene, so none can leak."""
    return groups is None and videos is None


def audit_modes(combos: np.ndarray, groups: np.ndarray | None, hashes: np.ndarray | None, seed: int,
                block_frames: int = BLOCK_FRAMES, gap_frames: int = GAP_FRAMES,
                videos: np.ndarray | None = None, train_size: float | None = None) -> list[dict]:
    """Every split mode the data allows: realized fractions per part and stratum, and the share of
    val and test frames with a near-duplicate in train. A mode that cannot be made says why. Items
    of a table with neither groups nor videos are independent: no mode is marked as leaking there,
    and near-duplicates are not measured (``hashes`` may be None): on small images of one
    background colour (digits) the difference hash calls most pairs near, a number that means
    nothing."""
    modes = ["stratified", "group", "block"] if groups is not None else ["stratified"]
    unrelated = independent(groups, videos)
    out = []
    for mode in modes:
        try:
            split = make_split(combos, groups, mode, seed, block_frames, gap_frames, videos,
                               train_size if mode == "stratified" else None)
        except KDError as e:
            out.append({"mode": mode, "not_possible": str(e)})
            continue
        near = ({"near_duplicate_share": None, "val_near_duplicate_share": None, "not_audited": NOT_AUDITED}
                if unrelated else leakage(hashes, split))
        out.append({**near, **realized(split, combos), "leaks": None if unrelated else LEAKY.get(mode)})
    return out


def one_valued_labels(labels: np.ndarray, split: Split | None = None, label_set: LabelSet = FLAME2) -> list[str]:
    """Warnings for every label (or class) with a single value, in the data or in a part: its F1,
    AUROC and AP there are meaningless or undefined. ``labels``: the (frames x outputs) targets."""
    where = {"the data": np.arange(len(labels))}
    if split is not None:
        where.update(split.parts())
    out = []
    for name, ix in where.items():
        for k, label in enumerate(label_set.names):
            values = np.unique(labels[ix, k])
            if not len(ix) or len(values) > 1:
                continue
            if label_set.multiclass:
                which = f"has none of the {len(ix)} frames" if values[0] == 0 else f"holds all {len(ix)} frames"
                out.append(f"class {label!r} {which} of {name}: its F1, AUROC and AP there mean nothing")
            else:
                out.append(f"label {label!r} is {int(values[0])} on all {len(ix)} frames of {name}: "
                           f"its F1, AUROC and AP there mean nothing")
    return out


def absent_labels(targets: np.ndarray, label_set: LabelSet, where: str) -> str | None:
    """Why a declared label set does not fit the data: a class no row has, or a 0/1 label with one
    value on every row (None: every one occurs)."""
    for k, name in enumerate(label_set.names):
        values = np.unique(targets[:, k])
        if label_set.multiclass and 1 not in values:
            return (f"{where}: class {name!r} of labels.classes is on no row of column {label_set.column!r}; "
                    "drop it from the classes, or add rows of it")
        if not label_set.multiclass and len(values) < 2:
            return f"{where}: label {name!r} is {int(values[0])} on every row: nothing to learn or to measure"
    return None


def missing_in_training(targets: np.ndarray, rows: np.ndarray, label_set: LabelSet, seed: int) -> str | None:
    """Why a seed's training frames (those whose labels are used) cannot teach every label: a class
    none of them has, or a 0/1 label with one value on all of them (None: they can)."""
    for k, name in enumerate(label_set.names):
        values = np.unique(targets[rows, k])
        if label_set.multiclass and 1 not in values:
            return (f"seed {seed}: none of the {len(rows)} labelled training items is of class {name!r}: "
                    "more training items (train_size) or a larger labelled_fraction")
        if not label_set.multiclass and len(values) < 2:
            return (f"seed {seed}: label {name!r} is {int(values[0])} on all {len(rows)} labelled training frames: "
                    "a larger labelled_fraction, or more data")
    return None


def realized(split: Split, combos: np.ndarray) -> dict:
    """Frames and share of each part, per label combination and overall, and the frames left out."""
    combos = np.asarray(combos)
    present = sorted(set(combos.tolist()))
    out = {"mode": split.mode, "left_out": split.left_out, "parts": {}}
    total = sum(len(ix) for ix in split.parts().values())
    for part, ix in split.parts().items():
        counts = {c: int(np.sum(combos[ix] == c)) for c in present}
        out["parts"][part] = {"frames": len(ix), "share": len(ix) / max(total, 1), "combos": counts}
    return out

# --- leakage audit ---------------------------------------------------------------------------

HASH_SIZE = 16  # a 16x16 difference hash: 256 bits
NEAR_DUPLICATE_BITS = 26  # about 10% of the bits; unrelated frames differ in about half


def difference_hash(gray: np.ndarray) -> np.ndarray:
    """A (HASH_SIZE) x (HASH_SIZE + 1) grayscale thumbnail -> packed bits of its horizontal gradient."""
    bits = gray[:, 1:] > gray[:, :-1]
    return np.packbits(bits.ravel())


def _nearest_bits(queries: np.ndarray, train: np.ndarray) -> np.ndarray:
    nearest = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), 64):
        chunk = queries[start:start + 64]
        nearest[start:start + 64] = np.bitwise_count(chunk[:, None, :] ^ train[None, :, :]).sum(-1).min(1)
    return nearest


def leakage(hashes: np.ndarray, split: Split, max_bits: int = NEAR_DUPLICATE_BITS) -> dict:
    """Share of test (and of val) frames with a near-duplicate (Hamming distance <= max_bits) in train."""
    train = hashes[split.train]
    out = {"mode": split.mode, "sizes": {p: len(ix) for p, ix in split.parts().items()},
           "left_out": split.left_out, "threshold_bits": max_bits, "hash_bits": HASH_SIZE * HASH_SIZE}
    for part in ("test", "val"):
        ix = split.parts()[part]
        nearest = _nearest_bits(hashes[ix], train) if len(ix) and len(train) else np.array([])
        prefix = "" if part == "test" else "val_"
        out[f"{prefix}near_duplicate_share"] = float(np.mean(nearest <= max_bits)) if len(nearest) else None
        out[f"{prefix}median_nearest_bits"] = float(np.median(nearest)) if len(nearest) else None
    return out
