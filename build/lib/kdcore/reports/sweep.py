"""The sweep page: the KD gain (distilled - no-KD student, 95% CI over seeds) against the swept
values, and against the teacher's lead over the no-KD student, for every teacher of every
sub-study, read from each sub-study's answer table. With several swept keys the first is the
x-axis and the table's columns, the second a line per value, the third a panel per value."""

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
            frames.append(pd.read_csv(path).assign(**{k: _shown(v) for k, v in point.items()}))
    answers = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return SweepResult(sweep.cfg, list(sweep.cfg.sweep), answers)


def _shown(value) -> str:
    """A swept value as a reader writes it: 300, not 300.0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _kd_rows(result: SweepResult) -> pd.DataFrame:
    a = result.answers
    return a[a["question"] == KD_QUESTION] if len(a) else a


def summary(result: SweepResult) -> list[str]:
    """What was swept and how many draws each point has; then per teacher (and value of the other
    keys) the gain at each value of the first key, in one line."""
    rows = _kd_rows(result)
    if not len(rows):
        return ["No sub-study has finished its comparison yet."]
    values = {k: list(dict.fromkeys(result.answers[k])) for k in result.keys}
    swept = " x ".join(f"{k} ({len(v)} value{'s' * (len(v) > 1)})" for k, v in values.items())
    seeds = sorted(set(rows["seeds"].astype(int)))
    draws = f"{seeds[0]} seeds (draws) each" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]} seeds (draws) per point"
    lines = [f"Swept {swept}: {len(rows.groupby(result.keys))} finished points, {draws}."]
    first, rest = result.keys[0], ["teacher", *result.keys[1:]]
    for _, own in rows.groupby(rest, sort=False):
        at = "; ".join(f"{r[first]}: {_gain(r)}" for _, r in own.iterrows())
        lines.append(f"{plots.point_text(own.iloc[0], rest)}: distilled - no-KD student, test {_metric(result)} "
                     f"(95% CI over seeds) at {first} {at}.")
    return lines


def _gain(row) -> str:
    return mean_ci(row[f"{GAIN_PART} mean difference"], row[f"{GAIN_PART} CI low"], row[f"{GAIN_PART} CI high"],
                   signed=True)


def _metric(result: SweepResult) -> str:
    """What the answer tables are in (the study's headline: FLAME2's fire AUROC)."""
    return metric_label(result.cfg.headline_metric)


def gain_grid(result: SweepResult) -> pd.DataFrame:
    """The gain (mean [95% CI over seeds]) pivoted: a row per teacher and value of the other keys, a
    column per value of the first key, so that a reader finds a cell at a glance."""
    rows = _kd_rows(result)
    if not len(rows):
        return rows
    first, rest = result.keys[0], ["teacher", *result.keys[1:]]
    grid = rows.assign(gain=[_gain(r) for _, r in rows.iterrows()]).pivot_table(
        index=rest, columns=first, values="gain", aggfunc="first", sort=False)
    grid = grid[[v for v in dict.fromkeys(rows[first]) if v in grid.columns]]
    grid.columns = [f"{first} = {v}" for v in grid.columns]
    return grid.reset_index()


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
