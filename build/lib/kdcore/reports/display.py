"""What a reader sees on a page: summary sentences, tables for people, figures, provenance.

The notebooks call these to display what a stage returned; outside a notebook they print. Tables
for people have no index column, readable headers with units and three decimals (the cells'
formats are ``kdcore.evaluation.tables``').
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pandas as pd


def _display(obj) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(obj)
    else:
        display(obj)


def _html(markup: str, text: str):
    """HTML for a notebook; the plain text elsewhere."""
    try:
        from IPython.display import HTML
    except ImportError:
        return text
    return HTML(markup)


def summary(lines: list[str], warnings: list[str] = ()):
    """What the page found, first, in words (marked so that tools/check_reports.py can find it)."""
    markup = "".join(f'<p class="kd-summary"><b>{html.escape(line)}</b></p>' for line in lines)
    markup += "".join(f'<p class="kd-warning">warning: {html.escape(w)}</p>' for w in warnings)
    return _html(markup, "\n".join([*lines, *(f"warning: {w}" for w in warnings)]))










def table(frame: pd.DataFrame):
    """No index column, three decimals (one for a column in %): a table for people."""
    formats = {c: (lambda v: f"{v:.1f}") for c in frame.columns  # percentages: one decimal
               if "%" in str(c) and pd.api.types.is_float_dtype(frame[c])}
    markup = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", formatters=formats, na_rep="n/a")
    return _html(markup, frame.to_string(index=False))


def _png(fig):
    """A figure as PNG for IPython, whatever matplotlib backend the kernel has."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    try:
        from IPython.display import Image
    except ImportError:
        return f"<figure: {fig.get_suptitle() or 'untitled'}>"
    return Image(data=buffer.getvalue(), format="png")


def figures(named: dict) -> None:
    """Display each figure of a {name: Figure} mapping."""
    for fig in named.values():
        _display(_png(fig))


def provenance(origin: dict) -> None:
    """One line to read, and the whole record (config, data fingerprint, ...) folded below it."""
    code, env = origin["code"], origin.get("environment")
    dirty = " (uncommitted changes)" if code["git_dirty"] else ""
    ran = (f"; {env['device']}, {env['threads']} thread(s), world size {env['world_size']}, deterministic kernels "
           f"{'on' if origin['config'].get('deterministic') else 'off'}" if env else "")
    print(f"kdcore {code['kdcore']}, commit {code['git_commit'] or 'unknown'}{dirty}; "
          + ", ".join(f"{k} {v}" for k, v in origin["packages"].items() if v)
          + f"; config digest {origin['config_digest']}; seed {origin['seed']}{ran}")
    record = json.dumps(origin, indent=1, sort_keys=True, default=str)
    _display(_html(f"<details><summary>provenance: the full record</summary><pre>{html.escape(record)}</pre>"
                   "</details>", record))


def files(paths: list[Path], root: Path | None = None):
    """A list of written files (the paper tables), relative to ``root``."""
    names = [str(p.relative_to(root) if root else p) for p in paths]
    markup = "<ul>" + "".join(f"<li><code>{html.escape(n)}</code></li>" for n in names) + "</ul>"
    return _html(markup, "\n".join(names))





