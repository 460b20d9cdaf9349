"""A sweep: one sub-study per combination of the values a params file lists under ``sweep:``.

Each sub-study is an ordinary study (its own output folder and reports) with the swept settings
set; the stages a swept setting cannot reach (``Step.ignores``) run once and are shared by
hard links. At the end, the sweep page: the KD gain (distilled - no-KD student, 95% CI over
seeds) against the swept value, and against the teacher's lead over the no-KD student, for every
teacher of every sub-study.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kdcore.config import Config, load_config, typed
from kdcore.execution import run_stage
from kdcore.layout import Layout, Reports
from kdcore.study import NOTEBOOKS, Study

PAGE = "05_sweep"  # the sweep page's notebook
GAIN, LEAD = "gain", "lead"  # the answer table's columns (compare.answer_table)


def point_label(point: dict) -> str:
    """A sub-study's name: ``labelled_fraction=0.15`` (several keys joined by commas)."""
    def text(value) -> str:
        raw = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")

    return ",".join(f"{key}={text(value)}" for key, value in point.items())


def sweep_points(cfg: Config) -> list[dict]:
    """Every combination of the swept values, typed as the config types them ([{}] without a sweep)."""
    keys = list(cfg.sweep)
    return [{k: typed(k, v) for k, v in zip(keys, combo, strict=True)}
            for combo in itertools.product(*cfg.sweep.values())]


class Sweep:
    """The sub-studies of a params file with ``sweep:``, run one after another."""

    def __init__(self, params: str | Path, reports: str | Path = "reports", overrides: dict | None = None,
                 force: bool = False, **study_options):
        self.params = Path(params).resolve()
        self.overrides = overrides or {}
        self.cfg = load_config(self.params, **self.overrides)
        self.name, self.force, self.show_code = self.params.stem, force, study_options.get("show_code", False)
        self.compare = study_options.get("compare", True)  # kd run: one teacher's stages, no comparison or page
        self.pages, self.layout = Reports(reports, self.name), Layout(self.cfg.output)
        self.points = sweep_points(self.cfg)
        cache = self.cfg.cache_dir or str(self.layout.cache())  # one decoded-frame cache for all
        self.studies: list[Study] = []
        for point in self.points:
            label = point_label(point)
            self.studies.append(Study(
                self.params, reports=reports, force=force, name=f"{self.name}/{label}", donors=list(self.studies),
                overrides={**self.overrides, **point, "sweep": {}, "output": str(self.layout.root / label),
                           "cache_dir": cache}, **study_options))

    @property
    def stages(self) -> list:
        return [stage for study in self.studies for stage in study.stages]

    def plan_table(self) -> list[dict]:
        return [{**row, "stage": f"{point_label(point)}/{row['stage']}"}
                for point, study in zip(self.points, self.studies, strict=True) for row in study.plan_table()]

    def run(self, progress=print) -> list[dict]:
        """Every sub-study in turn (a later one shares what an earlier one ran), then the page;
        under the sweep's writer lock."""
        from kdcore.io import writer_lock

        for study in self.studies:  # bad params are refused before any lock is taken
            study.check()
        with writer_lock(self.layout.root, "kd study", self.studies[0].wait if self.studies else True):
            return self._run(progress)

    def _run(self, progress) -> list[dict]:
        ran = []
        for point, study in zip(self.points, self.studies, strict=True):
            progress(f"sweep: {point_label(point)}")
            ran += [{**r, "stage": f"{point_label(point)}/{r['stage']}"} for r in study.run_checked(progress)]
        if self.compare and (ran or self.force or not self.page().exists()):
            run_stage({"notebook": str(NOTEBOOKS / f"{PAGE}.ipynb"), "executed": str(self.layout.executed(PAGE)),
                       "report": str(self.page()), "key": PAGE, "show_code": self.show_code,
                       "parameters": {"params": str(self.params), "overrides": self.overrides}})
            progress(f"wrote the sweep page {self.page()}")
        self.write_index()
        return ran

    def page(self) -> Path:
        return self.pages.folder / "sweep.html"

    def index(self) -> Path:
        return self.pages.index()

    def write_index(self) -> Path:
        """The sweep's index: its page, and each sub-study's index and comparison."""
        items = "".join(
            f"<li><a href=\"{html.escape(Path(s.name).name)}/index.html\">{html.escape(point_label(p))}</a>"
            + (f" (<a href=\"{html.escape(Path(s.name).name)}/compare.html\">comparison</a>)"
               if s.pages.page(None).exists() else "") + "</li>"
            for p, s in zip(self.points, self.studies, strict=True))
        page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kdcore sweep "
                f"{html.escape(self.name)}</title><style>body{{font-family:sans-serif;margin:2em}}</style></head>"
                f"<body><h1>kdcore sweep: {html.escape(self.name)}</h1><p>params: <code>"
                f"{html.escape(str(self.params))}</code>; outputs: <code>{html.escape(str(self.cfg.output))}</code>.</p>"
                + ("<p>Start with the <a href=\"sweep.html\">sweep page</a>.</p>" if self.page().exists() else "")
                + f"<h2>Sub-studies</h2><ul>{items}</ul><p><a href=\"../index.html\">all studies</a></p></body></html>")
        from kdcore.io import write_text

        return write_text(self.index(), page)


# --- the sweep page ---------------------------------------------------------------------------

@dataclass
class SweepResult:
    """Every sub-study's answer rows (``compare.answer_table``), with the swept values as columns."""

    cfg: Config
    keys: list[str]
    answers: pd.DataFrame


def collect(params: str, overrides: dict | None = None) -> SweepResult:
    """Read each finished sub-study's answer table (its comparison's numbers)."""
    sweep = Sweep(params, overrides=overrides)
    frames = []
    for point, study in zip(sweep.points, sweep.studies, strict=True):
        path = study.layout.paper_table("answer", ".csv")
        if path.exists():
            frames.append(pd.read_csv(path).assign(**{k: str(v) for k, v in point.items()}))
    answers = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return SweepResult(sweep.cfg, list(sweep.cfg.sweep), answers)


def _kd_rows(result: SweepResult) -> pd.DataFrame:
    from kdcore.compare import KD_QUESTION

    a = result.answers
    return a[a["question"] == KD_QUESTION] if len(a) else a


def summary(result: SweepResult) -> list[str]:
    """Per teacher, the gain at each swept value, in one line."""
    rows = _kd_rows(result)
    if not len(rows):
        return ["No sub-study has finished its comparison yet."]
    from kdcore.report import mean_ci

    lines = []
    for teacher, own in rows.groupby("teacher", sort=False):
        at = "; ".join(f"{_point(r, result.keys)}: {mean_ci(r[f'{GAIN} mean difference'], r[f'{GAIN} CI low'], r[f'{GAIN} CI high'], signed=True)}"
                       for _, r in own.iterrows())
        lines.append(f"{teacher}: distilled - no-KD student, test fire AUROC (95% CI over seeds): {at}.")
    return lines


def _point(row, keys: list[str]) -> str:
    return ", ".join(f"{k} = {row[k]}" for k in keys)


def gain_table(result: SweepResult) -> pd.DataFrame:
    """Per swept value and teacher: the teacher's lead and the KD gain (mean [95% CI over seeds]),
    what the sub-study could have detected, and its verdict."""
    from kdcore.report import mean_ci, number

    rows = _kd_rows(result)
    if not len(rows):
        return rows
    def ci(part):
        return [mean_ci(*r, signed=True) for r in zip(rows[f"{part} mean difference"], rows[f"{part} CI low"],
                                                      rows[f"{part} CI high"], strict=True)]

    return pd.DataFrame({**{k: rows[k] for k in result.keys}, "teacher": rows["teacher"], "seeds": rows["seeds"],
                         "teacher - no-KD student": ci(LEAD), "distilled - no-KD student": ci(GAIN),
                         "detectable at 80% power": [number(x) for x in rows["detectable at 80% power"]],
                         "verdict": rows["verdict"]})


def figures(result: SweepResult) -> dict:
    """The gain against the swept value (one line per teacher), and against the teacher's lead
    (every teacher at every value); saved as PNG under the sweep's output folder."""
    from kdcore import plots

    rows = _kd_rows(result)
    if not len(rows):
        return {}
    layout = Layout(result.cfg.output)
    made = {"gain_by_value": plots.sweep_gain(rows, result.keys, GAIN),
            "gain_by_lead": plots.gain_against_lead(rows, result.keys, GAIN, LEAD)}
    for name, fig in made.items():
        plots.save(fig, layout.sweep_figure(name))
    return made
