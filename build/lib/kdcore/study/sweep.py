"""A sweep: one sub-study per combination of the values a params file lists under ``sweep:``.

Each sub-study is an ordinary study (its own output folder and reports) with the swept settings
set; the stages a swept setting cannot reach (``Step.ignores``) run once and are shared by
hard links. At the end, the sweep page's notebook (``kdcore.reports.sweep`` says what it shows).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from kdcore.layout import Layout, Reports
from kdcore.study.config import Config, load_config, typed
from kdcore.study.notebooks import NOTEBOOKS, run_stage
from kdcore.study.scheduler import Study, report_folder

PAGE = "05_sweep"  # the sweep page's notebook


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
        self.name = report_folder(reports, self.params, self.cfg.output)
        self.force, self.show_code = force, study_options.get("show_code", False)
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
        under the sweep's writer lock. Bad params are refused before any lock is taken."""
        self.check()
        return self.run_checked(progress)

    def check(self) -> None:
        """Every sub-study's preflight, before the first one starts."""
        for study in self.studies:
            study.check()

    def run_checked(self, progress=print) -> list[dict]:
        """``run`` after ``check``."""
        from kdcore.io import writer_lock

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
        return ran

    def page(self) -> Path:
        return self.pages.folder / "sweep.html"

    def index(self) -> Path:
        return self.pages.index()

