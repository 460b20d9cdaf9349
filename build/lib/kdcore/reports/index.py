"""The index pages: a study's (a row per teacher, a column per seed, each cell its stages' pages and
status, then the tables for a paper), a sweep's (its page and its sub-studies), and the page listing
every study under the reports folder. ``publish`` writes them after a run, whatever its outcome."""

from __future__ import annotations

import html
import os
from pathlib import Path

from kdcore.io import read_json, write_json, write_text
from kdcore.layout import PAPER_TABLE_FORMATS, PAPER_TABLES, Reports
from kdcore.study.scheduler import Study
from kdcore.study.sweep import Sweep, point_label


def run_and_publish(runner: Study | Sweep, progress=print) -> list[dict]:
    """Run a study or a sweep, then write its index pages, also when a stage failed (the index
    says how far each stage got). Params refused by the preflight write nothing, pages included."""
    runner.check()
    claim(runner)  # before any page: a killed run's pages are still found as this study's
    try:
        return runner.run_checked(progress)
    finally:
        publish(runner)


def claim(runner: Study | Sweep) -> None:
    """Mark the runner's report folder as holding its pages: its params file, overrides and output
    (``report_folder`` finds it again by the output; another output gets a folder of its own)."""
    write_json(runner.pages.claim(), {"params": str(runner.params), "overrides": runner.overrides,
                                      "output": str(Path(runner.cfg.output).resolve())})


def publish(runner: Study | Sweep) -> Path:
    """The index of a study, or of a sweep and each of its sub-studies; then the list of all studies."""
    claim(runner)
    if isinstance(runner, Sweep):
        for study in runner.studies:
            write(study)
        index = write_sweep(runner)
    else:
        index = write(runner)
    write_studies(runner.pages)
    return index


def write(study: Study) -> Path:
    """This study's index, then the index of every study under the reports folder."""
    pages = study.pages
    comparison = pages.page(None)
    start = f"Start with the {link(comparison, pages.folder, 'comparison')}; " if comparison.exists() else ""
    page = INDEX.format(name=html.escape(study.name), params=html.escape(str(study.params)),
                        overrides=_overrides_line(study), output=html.escape(str(study.cfg.output)),
                        grid=_grid(study), compare=start,
                        studies=link(pages.studies(), pages.folder, "all studies"), tables=_paper_tables(study))
    return write_text(pages.index(), page)


def write_studies(pages: Reports) -> Path:
    """The list of every study (and sweep) under the reports root: its params file, overrides and
    output, and a mark where that output no longer exists (its pages show results that are gone)."""
    studies = [Reports(pages.root, p.parent.relative_to(pages.root).as_posix())
               for p in sorted(pages.root.glob(f"*/{Reports.INDEX}"))]
    links = "\n".join(f"<li>{link(s.index(), pages.root, s.folder.name)}"
                      + (f" ({link(s.page(None), pages.root, 'comparison')})" if s.page(None).exists() else "")
                      + _claim_line(s) + "</li>" for s in studies)
    return write_text(pages.studies(), STUDIES.format(links=links))


def _claim_line(pages: Reports) -> str:
    if not pages.claim().exists():
        return ""
    claim = read_json(pages.claim())
    settings = " ".join(f"{k}={v}" for k, v in claim.get("overrides", {}).items())
    gone = "" if Path(claim["output"]).exists() else " <b>(this output no longer exists: the pages show results that are gone)</b>"
    return (f": <code>{html.escape(claim['params'])}</code>" + (f" <code>{html.escape(settings)}</code>" if settings else "")
            + f" -> <code>{html.escape(claim['output'])}</code>{gone}")


def _grid(study: Study) -> str:
    """A row per teacher (the seeds' data first), a column per seed; each cell its stages'
    pages and how far they got."""
    cells: dict[str, dict[int, list[str]]] = {}
    for stage in (s for s in study.stages if s.step.scope != "study"):
        page = study.report(stage)
        title = link(page, study.pages.folder, stage.step.title) if page.exists() else html.escape(stage.step.title)
        status, why = study.status(stage)
        mark = ("&#10003;" + _seconds(study, stage) if status == "finished" else "(stale)" if status == "stale"
                else f"(running: {html.escape(why.split(':')[0])})" if status == "running" else _unfinished(study, stage))
        cells.setdefault(stage.teacher or "seed data", {}).setdefault(stage.seed, []).append(f"{title} {mark}")
    head = "".join(f"<th>seed {s}</th>" for s in study.cfg.seeds)
    rows = "\n".join(f"<tr><th>{html.escape(run)}</th>" + "".join(
        f"<td>{'<br>'.join(by_seed.get(s, []))}</td>" for s in study.cfg.seeds) + "</tr>"
        for run, by_seed in cells.items())
    return f"<table><tr><th></th>{head}</tr>\n{rows}\n</table>"


def _unfinished(study: Study, stage) -> str:
    """A stage that has not finished; where it failed, how, and a link to what to read: its job's
    log, or its executed notebook."""
    path = study.record_path(stage)
    record = read_json(path) if path.exists() else {}
    if record.get("status") != "failed":
        return "(not finished)"
    executed = study.layout.executed(stage.key)
    read = (link(Path(record["log"]), study.pages.folder, "log") if "log" in record
            else link(executed, study.pages.folder, "executed notebook") if executed.exists() else "")
    job = f" as Slurm job {html.escape(record['job_id'])}, {html.escape(record['state'])}" if "state" in record else ""
    return f"<b>(failed{job})</b> {read}"


def _seconds(study: Study, stage) -> str:
    """A finished stage's seconds and, of them, its work's (what is left is its start-up and page)."""
    record = read_json(study.record_path(stage))
    if "work_s" not in record:  # recorded before stages timed their work
        return ""
    return f" {record['seconds']:.0f} s ({record['work_s']:.0f} s of work)"


def write_sweep(sweep: Sweep) -> Path:
    """The sweep's index: its page, and each sub-study's index and comparison."""
    items = "".join(
        f"<li>{link(s.pages.index(), sweep.pages.folder, point_label(p))}"
        + (f" ({link(s.pages.page(None), sweep.pages.folder, 'comparison')})" if s.pages.page(None).exists() else "")
        + "</li>" for p, s in zip(sweep.points, sweep.studies, strict=True))
    start = f"<p>Start with the {link(sweep.page(), sweep.pages.folder, 'sweep page')}.</p>" if sweep.page().exists() else ""
    page = SWEEP.format(name=html.escape(sweep.name), params=html.escape(str(sweep.params)),
                        output=html.escape(str(sweep.cfg.output)), start=start, items=items,
                        studies=link(sweep.pages.studies(), sweep.pages.folder, "all studies"))
    return write_text(sweep.index(), page)


def _overrides_line(study: Study) -> str:
    if not study.overrides:
        return ""
    return "; settings given on the command line: <code>" + html.escape(
        " ".join(f"{k}={v}" for k, v in study.overrides.items())) + "</code>"


def _paper_tables(study: Study) -> str:
    """Links to the comparison's tables for a paper (CSV, Markdown, LaTeX), where they exist."""
    items = []
    for name in PAPER_TABLES:
        files = [study.layout.paper_table(name, suffix) for suffix in PAPER_TABLE_FORMATS]
        links = ", ".join(link(f, study.reports, f.suffix[1:]) for f in files if f.exists())
        if links:
            items.append(f"<li>{html.escape(name.replace('_', ' '))}: {links}</li>")
    if not items:
        return ""
    return (f"<h2>Tables for a paper</h2><p>In <code>{html.escape(str(study.layout.compare_tables()))}</code>:"
            f"</p><ul>{''.join(items)}</ul>")


def link(target: Path, start: Path, text: str) -> str:
    """An HTML link to ``target`` from a page in folder ``start``."""
    return f'<a href="{html.escape(os.path.relpath(target, start))}">{html.escape(text)}</a>'


INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kdcore study {name}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 12px;text-align:left}}
tr:nth-child(even){{background:#f2f2f2}}td{{vertical-align:top}}</style></head>
<body><h1>kdcore study: {name}</h1>
<p>params: <code>{params}</code>{overrides}; outputs: <code>{output}</code>.
{compare}{studies}.</p>
{grid}
{tables}
</body></html>
"""

STUDIES = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kdcore studies</title>
<style>body{{font-family:sans-serif;margin:2em}}</style></head>
<body><h1>kdcore studies</h1>
<p>One folder per study output (named by its params file, and by its output where that is not the file's own); a study never touches another's pages.</p>
<ul>
{links}
</ul></body></html>
"""

SWEEP = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kdcore sweep {name}</title>
<style>body{{font-family:sans-serif;margin:2em}}</style></head>
<body><h1>kdcore sweep: {name}</h1>
<p>params: <code>{params}</code>; outputs: <code>{output}</code>.</p>
{start}
<h2>Sub-studies</h2><ul>{items}</ul><p>{studies}</p></body></html>
"""
