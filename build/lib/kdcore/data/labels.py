"""What a study predicts: its label set, declared in the params file (``labels:``).

Two kinds:

- ``multilabel``: several 0/1 columns (FLAME2's ``fire`` and ``smoke``, the default): one sigmoid
  output per label, binary cross-entropy, per-label distillation, per-label thresholds tuned on
  validation.
- ``multiclass``: one column holding each row's class (``digit``, classes ``0`` ... ``9``): one
  softmax over the classes, cross-entropy, Hinton's softmax distillation, decisions by argmax.

Either way the kit carries targets as an (items x outputs) 0/1 matrix, the labels or the one-hot
class, so that splits, metrics, bootstraps and soft targets read one shape; what the kind decides
is how logits become probabilities and decisions, and the loss.

Plain numpy and pandas: a params file is checked without a model library.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kdcore.errors import KDError

KINDS = ("multilabel", "multiclass")
RESERVED = ("id", "rgb_frame", "ir_frame", "group", "video")  # the CSV's other columns


@dataclass(frozen=True)
class LabelSet:
    kind: str = "multilabel"
    names: tuple[str, ...] = ("fire", "smoke")  # multilabel: its 0/1 columns; multiclass: its classes
    column: str = ""  # multiclass: the CSV column that holds each row's class

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        where = "config key 'labels'"
        if self.kind not in KINDS:
            raise KDError(f"{where}: kind must be {' or '.join(KINDS)} (got {self.kind!r})")
        if len(set(self.names)) != len(self.names) or not all(n.strip() for n in self.names):
            raise KDError(f"{where}: names must be distinct and non-blank (got {list(self.names)})")
        if self.multiclass:
            if len(self.names) < 2:
                raise KDError(f"{where}: a multiclass label needs at least two classes (got {list(self.names)})")
            if not self.column or self.column in RESERVED:
                raise KDError(f"{where}: a multiclass label needs its column, not one of {', '.join(RESERVED)} "
                              f"(got {self.column!r})")
        else:
            if not self.names or self.column:
                raise KDError(f"{where}: a multilabel set names its 0/1 columns under 'columns' and has no "
                              f"'column' (got columns {list(self.names)}, column {self.column!r})")
            if clash := [n for n in self.names if n in RESERVED]:
                raise KDError(f"{where}: {clash[0]!r} is one of the CSV's own columns ({', '.join(RESERVED)})")

    # --- from and to a params file or a record ---

    @classmethod
    def from_config(cls, value: dict | None) -> LabelSet:
        """``{kind: multilabel, columns: [fire, smoke]}`` or ``{kind: multiclass, column: digit,
        classes: [0, 1, ...]}``; None: FLAME2's two labels."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise KDError(f"config key 'labels': expected a mapping with 'kind', got {value!r}")
        kind = value.get("kind", "multilabel")
        keys = {"multilabel": {"kind", "columns"}, "multiclass": {"kind", "column", "classes"}}.get(kind, {"kind"})
        if unknown := set(value) - keys:
            raise KDError(f"config key 'labels.{sorted(unknown)[0]}': not a setting of a {kind} label set "
                          f"(its keys: {', '.join(sorted(keys))})")
        names = value.get("columns" if kind == "multilabel" else "classes")
        if not isinstance(names, list) or not names:
            key = "columns" if kind == "multilabel" else "classes"
            raise KDError(f"config key 'labels.{key}': expected a non-empty list, got {names!r}")
        return cls(kind, tuple(names), str(value.get("column", "")))

    def to_dict(self) -> dict:
        if self.multiclass:
            return {"kind": self.kind, "column": self.column, "classes": list(self.names)}
        return {"kind": self.kind, "columns": list(self.names)}

    # --- shape ---

    @property
    def multiclass(self) -> bool:
        return self.kind == "multiclass"

    @property
    def outputs(self) -> int:
        """Logits per item: one per label, or one per class."""
        return len(self.names)

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV columns that hold the labels."""
        return (self.column,) if self.multiclass else self.names

    @property
    def noun(self) -> str:
        """What one output is called on a page."""
        return "class" if self.multiclass else "label"

    # --- reading a CSV ---

    def read(self, df: pd.DataFrame, csv: Path, rows) -> pd.DataFrame:
        """The label columns of a CSV (strings, as read) checked and typed: 0/1 integers per label,
        or each row's class name. Errors name the file, the row and the column."""
        out = pd.DataFrame(index=df.index)
        if self.multiclass:
            values = df[self.column].str.strip()
            bad = ~values.isin(self.names)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise KDError(f"{csv}: row {rows[i]}: column {self.column!r} holds {df[self.column].iloc[i]!r}, "
                              f"not one of the declared classes ({', '.join(self.names)})")
            out[self.column] = values
            return out
        for name in self.names:
            values = df[name].str.strip()
            bad = ~values.isin(["0", "1"])
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise KDError(f"{csv}: row {rows[i]}: column {name!r} must be 0 or 1, found {df[name].iloc[i]!r}")
            out[name] = values.astype(int)
        return out

    def targets(self, frames: pd.DataFrame) -> np.ndarray:
        """The (items x outputs) 0/1 matrix: the labels, or the one-hot class."""
        if self.multiclass:
            index = pd.Categorical(frames[self.column], categories=list(self.names)).codes
            return np.eye(self.outputs, dtype=np.float32)[index]
        return frames[list(self.names)].to_numpy(dtype=np.float32)

    # --- strata: what a split keeps balanced and a page breaks results down by ---

    def strata(self, targets: np.ndarray) -> np.ndarray:
        """Per item, its label combination ('YN': the first label yes, the second no) or its class."""
        targets = np.asarray(targets)
        if self.multiclass:
            return np.asarray(self.names)[targets.argmax(1)]
        yn = np.where(targets > 0.5, "Y", "N")
        return np.array(["".join(row) for row in yn]) if len(yn) else np.array([], dtype=str)

    def all_strata(self) -> tuple[str, ...]:
        """Every stratum there can be, in order: the classes, or the 2^k combinations with the
        first label changing fastest (FLAME2's NN, YN, NY, YY)."""
        if self.multiclass:
            return self.names
        return tuple("".join(reversed(p)) for p in itertools.product("NY", repeat=self.outputs))

    def stratum_title(self) -> str:
        """What a stratum is called in a table's header."""
        if self.multiclass:
            return f"class ({self.column})"
        return f"label combination ({', '.join(self.names)}: Y/N)"


FLAME2 = LabelSet()  # the default: FLAME2's fire and smoke
