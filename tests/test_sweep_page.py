"""The sweep page of a sweep of several keys: the first on the x-axis and the table's columns, a line
per value of the second, a panel per value of the third; what was swept and the draws behind each
point said first. Built from answer rows as each sub-study's comparison writes them."""

import itertools

import pandas as pd
import pytest

from kdcore.evaluation.tables import mean_ci
from kdcore.reports import plots
from kdcore.reports.sweep import SweepResult, gain_grid, summary
from kdcore.study.analysis import GAIN_PART, KD_QUESTION, LEAD_PART
from kdcore.study.config import Config

VALUES = {"kd_temperature": [1, 10, 20], "train_size": [300, 500], "kd_loss": ["generalized", "kd"]}


def _result(keys: list[str], teachers=("mlp-ir", "mlp-rgb")) -> SweepResult:
    rows = []
    for n, (teacher, *point) in enumerate(itertools.product(teachers, *(VALUES[k] for k in keys))):
        gain = n / 100
        rows.append({"question": KD_QUESTION, "teacher": teacher, "seeds": 6, "verdict": "gain",
                     "detectable at 80% power": 0.02, **dict(zip(keys, map(str, point), strict=True)),
                     f"{GAIN_PART} mean difference": gain, f"{GAIN_PART} CI low": gain - 0.01,
                     f"{GAIN_PART} CI high": gain + 0.01, f"{LEAD_PART} mean difference": 0.1,
                     f"{LEAD_PART} CI low": 0.05, f"{LEAD_PART} CI high": 0.15})
    rows.append({**rows[0], "question": "another question"})  # not the gain: left out everywhere
    return SweepResult(Config(), keys, pd.DataFrame(rows))


def _lines(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_two_keys_draw_a_line_per_teacher_and_value_of_the_second():
    result = _result(["kd_temperature", "train_size"])
    fig = plots.sweep_gain(result.answers[result.answers["question"] == KD_QUESTION], result.keys, GAIN_PART)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert _lines(ax) == ["mlp-ir, train_size = 300", "mlp-ir, train_size = 500",
                          "mlp-rgb, train_size = 300", "mlp-rgb, train_size = 500"]
    assert [len(c.lines[0].get_xdata()) for c in ax.containers] == [3, 3, 3, 3]  # every temperature on each line
    assert ax.get_xlabel() == "kd_temperature"


def test_three_keys_draw_a_panel_per_value_of_the_third():
    result = _result(["kd_temperature", "kd_loss", "train_size"], teachers=("mlp-ir",))
    fig = plots.sweep_gain(result.answers[result.answers["question"] == KD_QUESTION], result.keys, GAIN_PART)
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["train_size = 300", "train_size = 500"]
    assert all(_lines(a) == ["mlp-ir, kd_loss = generalized", "mlp-ir, kd_loss = kd"] for a in panels)


def test_the_gain_table_is_pivoted_on_the_first_key():
    result = _result(["kd_temperature", "train_size"])
    grid = gain_grid(result)
    assert list(grid.columns) == ["teacher", "train_size", "kd_temperature = 1", "kd_temperature = 10",
                                  "kd_temperature = 20"]
    assert grid[["teacher", "train_size"]].values.tolist() == [["mlp-ir", "300"], ["mlp-ir", "500"],
                                                                ["mlp-rgb", "300"], ["mlp-rgb", "500"]]
    # mlp-rgb at T = 20, N = 500 is the last of the twelve points built: its gain is 0.11
    assert grid.iloc[3, 4] == mean_ci(0.11, 0.10, 0.12, signed=True)


def test_the_page_says_what_was_swept_and_the_draws_of_each_point():
    lines = summary(_result(["kd_temperature", "train_size"]))
    assert lines[0] == "Swept kd_temperature (3 values) x train_size (2 values): 6 finished points, 6 seeds (draws) each."
    assert lines[1].startswith("mlp-ir, train_size = 300: distilled - no-KD student, test fire AUROC (95% CI over "
                               "seeds) at kd_temperature 1: ")
    assert len(lines) == 1 + 4


@pytest.mark.parametrize("keys", [["kd_temperature"], ["kd_temperature", "train_size"]])
def test_one_point_per_cell(keys):
    grid = gain_grid(_result(keys))
    assert grid.filter(like="kd_temperature = ").notna().all().all()
