"""Numbers as a reader reads them: three decimals, signed differences, "mean [95% CI]" cells, "n/a"
for a missing value; and the tables for a paper, written as CSV (the numbers), Markdown and LaTeX
(as shown)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kdcore.io import write_text
from kdcore.layout import PAPER_TABLE_FORMATS, Layout


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value, digits: int = 3) -> str:
    return "n/a" if _missing(value) else f"{value:.{digits}f}"


def pvalue(p) -> str:
    return "n/a" if _missing(p) else f"{p:.3g}"


def mean_ci(mean, low, high, signed: bool = False) -> str:
    """'0.943 [0.912, 0.971]'; the mean alone where there is no interval (fewer than 3 seeds)."""
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if _missing(mean):
        return "n/a"
    text = fmt.format(mean)
    if _missing(low) or _missing(high):
        return text
    return f"{text} [{fmt.format(low)}, {fmt.format(high)}]"


def grouped(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The group's name on its first row only, as a paper table shows it."""
    out = frame.copy()
    out[column] = out[column].where(out[column].ne(out[column].shift()), "")
    return out


def _cell(value) -> str:
    """As a table for people shows it: three decimals, 'n/a' for a missing number."""
    if isinstance(value, float):
        return number(value)
    return "" if value is None else str(value)


def write_paper_tables(layout: Layout, numbers: dict[str, pd.DataFrame], shown: dict[str, pd.DataFrame]) -> list[Path]:
    """Each table as CSV (the numbers, for a spreadsheet) and as Markdown and LaTeX (as shown)."""
    written = []
    for name in shown:
        text = shown[name].astype(object).map(_cell)
        contents = {".csv": numbers[name].to_csv(index=False, float_format="%.4g"),
                    ".md": text.to_markdown(index=False, disable_numparse=True) + "\n",
                    ".tex": text.to_latex(index=False, escape=True)}
        written += [write_text(layout.paper_table(name, suffix), contents[suffix]) for suffix in PAPER_TABLE_FORMATS]
    return written
