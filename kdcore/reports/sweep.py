"""The sweep page: the KD gain (distilled - no-KD student, 95% CI over seeds) against the swept
value, and against the teacher's lead over the no-KD student, for every teacher of every
sub-study, read from each sub-study's answer table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kdcore.evaluation.records import metric_label
from kdcore.evaluation.tables import mean_ci, number
from kdcore.layout import Layout
from kdcore.reports import plots
from kdcore.study.analysis import GAIN_PART, KD_QUESTION, LEAD_PART
from kdcore.study.config import Config
from kdcore.study.sweep import Sweep


@dataclass
class SweepResult:
    """Every sub-study's answer rows (``analysis.answer_table``), with the swept values as columns."""

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
    a = result.answers
    return a[a["question"] == KD_QUESTION] if len(a) else a


def summary(result: SweepResult) -> list[str]:
    """Per teacher, the gain at each swept value, in one line."""
    rows = _kd_rows(result)
    if not len(rows):
        return ["No sub-study has finished its comparison yet."]
    lines = []
    for teacher, own in rows.groupby("teacher", sort=False):
        at = "; ".join(f"{_point(r, result.keys)}: {mean_ci(r[f'{GAIN_PART} mean difference'], r[f'{GAIN_PART} CI low'], r[f'{GAIN_PART} CI high'], signed=True)}"
                       for _, r in own.iterrows())
        lines.append(f"{teacher}: distilled - no-KD student, test {_metric(result)} (95% CI over seeds): {at}.")
    return lines


def _metric(result: SweepResult) -> str:
    """What the answer tables are in (the study's headline: FLAME2's fire AUROC)."""
    return metric_label(result.cfg.headline_metric)


def _point(row, keys: list[str]) -> str:
    return ", ".join(f"{k} = {row[k]}" for k in keys)


def gain_table(result: SweepResult) -> pd.DataFrame:
    """Per swept value and teacher: the teacher's lead and the KD gain (mean [95% CI over seeds]),
    what the sub-study could have detected, and its verdict."""
    rows = _kd_rows(result)
    if not len(rows):
        return rows
    def ci(part):
        return [mean_ci(*r, signed=True) for r in zip(rows[f"{part} mean difference"], rows[f"{part} CI low"],
                                                      rows[f"{part} CI high"], strict=True)]

    return pd.DataFrame({**{k: rows[k] for k in result.keys}, "teacher": rows["teacher"], "seeds": rows["seeds"],
                         "teacher - no-KD student": ci(LEAD_PART), "distilled - no-KD student": ci(GAIN_PART),
                         "detectable at 80% power": [number(x) for x in rows["detectable at 80% power"]],
                         "verdict": rows["verdict"]})


def figures(result: SweepResult) -> dict:
    """The gain against the swept value (one line per teacher), and against the teacher's lead
    (every teacher at every value); saved as PNG under the sweep's output folder."""
    rows = _kd_rows(result)
    if not len(rows):
        return {}
    layout = Layout(result.cfg.output)
    made = {"gain_by_value": plots.sweep_gain(rows, result.keys, GAIN_PART, _metric(result)),
            "gain_by_lead": plots.gain_against_lead(rows, result.keys, GAIN_PART, LEAD_PART, _metric(result))}
    for name, fig in made.items():
        plots.save(fig, layout.sweep_figure(name))
    return made
