"""The comparison of every teacher over every seed: the compare step's work (``compare_runs``:
aggregated results per teacher, the tables for a paper) and the tables as a reader sees them, on
the comparison page and in the paper tables alike.

Plain records (no torch): it reads the runs' JSON and CSV files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kdcore.evaluation import tables
from kdcore.evaluation.records import metric_label
from kdcore.io import write_json
from kdcore.layout import Layout
from kdcore.provenance import provenance
from kdcore.study import analysis
from kdcore.study.config import Config


@dataclass
class Comparison:
    """Every teacher over every seed: the numbers (as in the CSV files) and where they were written."""

    cfg: Config
    evaluations: dict
    answer: pd.DataFrame
    models: pd.DataFrame
    differences: pd.DataFrame
    baseline: pd.DataFrame
    variants: pd.DataFrame
    warnings: list[str]
    provenance: dict
    paper_tables: list[Path] = field(default_factory=list)
    methods: pd.DataFrame = field(default_factory=pd.DataFrame)  # the methods axis (analysis.method_table)
    method_evaluations: dict = field(default_factory=dict)


def compare_runs(cfg: Config, allow_mixed: bool = False) -> Comparison:
    """All teachers x seeds: per-model summaries, the paired differences with intervals over seeds
    and over test blocks, Holm-adjusted p-values, the prevalence baseline; written as each
    teacher's aggregated results and as the comparison's tables for a paper (the compare step's
    work: ``allow_mixed`` aggregates runs whose data or config differ, with a warning)."""
    layout = Layout(cfg.output)
    evaluations = analysis.load_evaluations(cfg, layout)
    mixed = analysis.consistency(evaluations, allow_mixed)
    warnings = mixed + analysis.missing_values(cfg, evaluations) + analysis.flag_warnings(cfg, evaluations)
    models, aggregated = analysis.model_table(cfg, evaluations)
    variants = analysis.variant_table(cfg, evaluations, aggregated)
    differences = analysis.difference_table(cfg, evaluations, layout)
    method_evaluations = analysis.load_method_evaluations(cfg, layout)
    methods = analysis.method_table(cfg, evaluations, method_evaluations)
    for name, agg in aggregated.items():
        agg["differences"] = differences[differences["comparison"].str.startswith(f"{name}:")].to_dict("records")
        if len(methods):
            agg["methods"] = methods[methods["teacher"] == name].to_dict("records")
        write_json(layout.aggregated(name), agg)
    data = {f"{t}/seed {s}": e["provenance"]["data"] for (t, s), e in evaluations.items()}
    origin = {**provenance(cfg), "seed": list(cfg.seeds), "data": data if mixed else next(iter(data.values()))}
    study = Comparison(cfg, evaluations, analysis.answer_table(cfg, differences), models, differences,
                       analysis.baseline_table(cfg, evaluations), variants, warnings, origin, methods=methods,
                       method_evaluations=method_evaluations)
    numbers = {"answer": study.answer, "models": models, "differences": differences, "baseline": study.baseline,
               "compressed_students": variants}
    shown = {"answer": answer_table(study), "models": models_table(study), "differences": differences_table(study),
             "baseline": study.baseline, "compressed_students": compressed_table(study)}
    if len(methods):
        numbers["methods"], shown["methods"] = methods, methods_table(study)
    study.paper_tables = tables.write_paper_tables(layout, numbers, shown)
    return study


def answer_table(study: Comparison, question: str = analysis.KD_QUESTION) -> pd.DataFrame:
    """One row per teacher: its lead and what distillation did (the headline metric, mean [95% CI over
    seeds]), what the study could have detected, and the verdict. With ``analysis.IR_QUESTION``:
    per teacher with an RGB twin, what IR adds at the teacher and at its student."""
    a = study.answer
    if not len(a):
        return a
    a = a[a["question"] == question]
    ci = {part: [tables.mean_ci(*r, signed=True) for r in zip(
        a[f"{part} mean difference"], a[f"{part} CI low"], a[f"{part} CI high"], strict=True)] for part in (analysis.LEAD_PART, analysis.GAIN_PART)}
    lead, gain = {analysis.KD_QUESTION: ("teacher - no-KD student", "distilled - no-KD student"),
                  analysis.IR_QUESTION: ("IR teacher - RGB teacher", "IR-distilled - RGB-distilled")}[question]
    return pd.DataFrame({
        "teacher": a["teacher"], "seeds": a["seeds"], lead: ci[analysis.LEAD_PART], gain: ci[analysis.GAIN_PART],
        "detectable at 80% power": [tables.number(x) for x in a["detectable at 80% power"]],
        "seeds to detect the observed difference": [tables.number(x, 0) for x in a["seeds to detect the observed gain"]],
        "verdict": a["verdict"]})


def methods_table(study: Comparison) -> pd.DataFrame:
    """Per teacher, the study's own student and each method's: the headline metric over seeds, the
    difference from the no-KD student and from the study's own student (mean [95% CI over seeds],
    Holm-adjusted p over the methods of that teacher), and a verdict."""
    m = study.methods
    if not len(m):
        return m
    base = study.cfg.kd_loss

    def ci(part):
        return [tables.mean_ci(*r, signed=True) for r in zip(
            m[f"{part} mean difference"], m[f"{part} CI low"], m[f"{part} CI high"], strict=True)]

    return tables.grouped(pd.DataFrame({
        "teacher": m["teacher"], "method": m["method"], "seeds": m["seeds"],
        f"test {metric_label(study.cfg.headline_metric)}": [tables.mean_ci(*r) for r in zip(m["mean"], m["low"], m["high"], strict=True)],
        "- no-KD student": ci(analysis.METHOD_GAIN),
        "p (Holm)": [tables.pvalue(p) for p in m[f"{analysis.METHOD_GAIN} p (Holm)"]],
        f"- {base}": ci(analysis.METHOD_VS_BASE),
        f"p (Holm) vs {base}": [tables.pvalue(p) for p in m[f"{analysis.METHOD_VS_BASE} p (Holm)"]],
        "verdict": m["verdict"]}), "teacher")


def what_ir_adds(study: Comparison) -> pd.DataFrame:
    """Per teacher with an RGB twin: IR's part at the teacher and at its student."""
    return answer_table(study, analysis.IR_QUESTION)


def models_table(study: Comparison) -> pd.DataFrame:
    """Per teacher and model: seeds, then mean [95% CI over seeds] of the primary metrics."""
    m = study.models
    out = m[["teacher", "model", "n"]].rename(columns={"n": "seeds"})
    for label in (metric_label(k) for k in analysis.model_columns(study.cfg)):
        out[f"{label}, mean [95% CI]"] = [tables.mean_ci(a, b, c) for a, b, c in
                                          zip(m[f"{label} mean"], m[f"{label} low"], m[f"{label} high"], strict=True)]
    out["flags"] = m["flags"].replace("", "none")
    return tables.grouped(out, "teacher")


def differences_table(study: Comparison) -> pd.DataFrame:
    """Every paired difference a - b: over seeds with its interval and Holm-adjusted p, and over
    the test set's blocks (test-set uncertainty only)."""
    d = study.differences
    if not len(d):
        return d
    return pd.DataFrame({
        "comparison (a - b)": d["comparison"], "metric": d["metric"], "seeds": d["n seeds"],
        "difference, mean [95% CI over seeds]": [tables.mean_ci(*r, signed=True) for r in
                                                 zip(d["mean difference"], d["CI low"], d["CI high"], strict=True)],
        "p (Holm)": [tables.pvalue(p) for p in d["p (Holm)"]],
        "d_z": [tables.number(z, 2) for z in d["d_z"]],
        "detectable at 80% power": [tables.number(x) for x in d["detectable at 80% power"]],
        "test-block bootstrap [95%]": [tables.mean_ci(*r, signed=True) for r in
                                       zip(d["test-block bootstrap"], d["bootstrap low"], d["bootstrap high"], strict=True)],
        "note": (d["CI note"].fillna("") + d["missing seeds"].map(lambda s: f"; missing seeds {s}" if s else "")
                 + d["flagged"].map(lambda s: f"; flagged: {s}" if s else "")).str.strip("; "),
    })


def compressed_table(study: Comparison) -> pd.DataFrame:
    v = study.variants
    latency = [c for c in v.columns if c.startswith("latency")][0]
    out = v[["teacher", "variant", "n"]].rename(columns={"n": "seeds"})
    out["macro-F1, mean [95% CI]"] = [tables.mean_ci(*r) for r in
                                      zip(v["macro-F1 mean"], v["macro-F1 low"], v["macro-F1 high"], strict=True)]
    out["size, MB"] = v["size, MB"].map(lambda x: tables.number(x, 2))
    out[f"{latency} (median over seeds)"] = v[latency].map(lambda x: tables.number(x, 2))
    return tables.grouped(out, "teacher")
