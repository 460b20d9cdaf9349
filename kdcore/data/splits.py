"""Train/val/test splits per seed, and an audit of how much a split leaks.

``stratified`` is the seed's 49/21/30 frame-level split, stratified by label combination.
``group`` sends whole video segments to one split, as stratified as segments allow: with
near-duplicate adjacent frames, it is the split that does not leak. ``auto`` picks ``group``
when the table has groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from kdcore.errors import KDError

FRACTIONS = {"train": 0.49, "val": 0.21, "test": 0.30}
SPLIT_MODES = ("auto", "group", "stratified")


@dataclass(frozen=True)
class Split:
    mode: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


def make_split(combos: np.ndarray, groups: np.ndarray | None, mode: str, seed: int) -> Split:
    """Indices of each part; the same inputs and seed always give the same split."""
    if mode not in SPLIT_MODES:
        raise KDError(f"split must be one of {', '.join(SPLIT_MODES)} (got {mode!r})")
    if mode == "auto":
        mode = "group" if groups is not None else "stratified"
    if mode == "group":
        if groups is None:
            raise KDError("split 'group' needs a 'group' column in the CSV")
        return _group_split(np.asarray(combos), np.asarray(groups), seed)
    return _stratified_split(np.asarray(combos), seed)


def _stratified_split(combos: np.ndarray, seed: int) -> Split:
    index = np.arange(len(combos))
    rest, test = train_test_split(index, test_size=FRACTIONS["test"], stratify=_stratifiable(combos),
                                  random_state=seed)
    val_share = FRACTIONS["val"] / (FRACTIONS["train"] + FRACTIONS["val"])
    train, val = train_test_split(rest, test_size=val_share, stratify=_stratifiable(combos[rest]),
                                  random_state=seed)
    return Split("stratified", np.sort(train), np.sort(val), np.sort(test))


def _stratifiable(combos: np.ndarray) -> np.ndarray | None:
    """Stratify when every combination has enough frames to be split; plain random otherwise."""
    _, counts = np.unique(combos, return_counts=True)
    return combos if counts.min() >= 4 else None


def _group_split(combos: np.ndarray, groups: np.ndarray, seed: int) -> Split:
    """Per label combination, in a seeded random order: one segment to each part first (smallest
    part first, so a combination with three segments reaches all three), then each further
    segment to the part furthest below its share of that combination."""
    names = list(FRACTIONS)
    unique_groups, sizes = np.unique(groups, return_counts=True)
    if len(unique_groups) < 3:
        raise KDError(f"split 'group' needs at least 3 groups, found {len(unique_groups)}")
    size = dict(zip(unique_groups.tolist(), sizes.tolist(), strict=True))
    dominant = {g: _most_common(combos[groups == g]) for g in size}
    rng = np.random.default_rng(seed)
    assignment = {}
    for combo in sorted(set(dominant.values())):
        members = [g for g in size if dominant[g] == combo]
        members = [members[i] for i in rng.permutation(len(members))]
        total = sum(size[g] for g in members)
        filled = dict.fromkeys(names, 0)
        coverage = sorted(names, key=FRACTIONS.get)[:len(members)]
        if len(members) < len(names):  # too few to cover: keep the largest parts
            coverage = sorted(names, key=FRACTIONS.get, reverse=True)[:len(members)]
        for i, g in enumerate(members):
            part = coverage[i] if i < len(coverage) else \
                max(names, key=lambda p: FRACTIONS[p] * total - filled[p])
            assignment[g] = part
            filled[part] += size[g]
    _ensure_every_part(assignment, size, names)
    part_of = np.array([assignment[g] for g in groups.tolist()])
    return Split("group", *(np.flatnonzero(part_of == p) for p in names))


def _ensure_every_part(assignment: dict, sizes: dict, names: list[str]) -> None:
    """Move the smallest segments of crowded parts into empty ones."""
    for part in names:
        if part not in assignment.values():
            donors = [g for g in assignment if list(assignment.values()).count(assignment[g]) > 1]
            assignment[min(donors, key=lambda g: sizes[g])] = part


def _most_common(values: np.ndarray):
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[np.argmax(counts)]


# --- leakage audit ---------------------------------------------------------------------------

HASH_SIZE = 16  # a 16x16 difference hash: 256 bits
NEAR_DUPLICATE_BITS = 26  # about 10% of the bits; unrelated frames differ in about half


def difference_hash(gray: np.ndarray) -> np.ndarray:
    """A (HASH_SIZE) x (HASH_SIZE + 1) grayscale thumbnail -> packed bits of its horizontal gradient."""
    bits = gray[:, 1:] > gray[:, :-1]
    return np.packbits(bits.ravel())


def leakage(hashes: np.ndarray, split: Split, max_bits: int = NEAR_DUPLICATE_BITS) -> dict:
    """Share of test frames with a near-duplicate (Hamming distance <= max_bits) in train."""
    train, test = hashes[split.train], hashes[split.test]
    nearest = np.empty(len(test), dtype=np.int64)
    for start in range(0, len(test), 64):
        chunk = test[start:start + 64]
        distance = np.bitwise_count(chunk[:, None, :] ^ train[None, :, :]).sum(-1)
        nearest[start:start + 64] = distance.min(1)
    return {
        "mode": split.mode,
        "sizes": {p: len(ix) for p, ix in split.parts().items()},
        "near_duplicate_share": float(np.mean(nearest <= max_bits)),
        "median_nearest_bits": float(np.median(nearest)),
        "threshold_bits": max_bits,
        "hash_bits": HASH_SIZE * HASH_SIZE,
    }
