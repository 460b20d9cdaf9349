"""What each stage notebook shows, section by section.

A stage function runs its step (``kdcore.study.work.run_step``: nothing that already finished runs
again) and returns a ``Run`` (or, for the comparison, a ``Comparison``); the section functions turn it into named objects a reader can
inspect or re-plot: DataFrames with readable headers and figures (also saved as PNG under
``<output>/graphs/``). ``kdcore.reports.display`` displays them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kdcore.evaluation import records
from kdcore.evaluation.metrics import decisions
from kdcore.evaluation.tables import number
from kdcore.io import read_json
from kdcore.layout import DATA, NO_KD, Layout, method_run
from kdcore.reports import plots
from kdcore.study import analysis, steps
from kdcore.study.config import Config, TeacherConfig, load_config

if TYPE_CHECKING:
    from kdcore.study.work import SeedData
    from kdcore.study.work.compare import Comparison


def configure(params: str, output: str | None = None, teacher: str | None = None,
              overrides: dict | None = None, threads: int = 0) -> Config:
    """The config a stage runs with: the params file with overrides, the teacher known.

    ``threads`` > 0 caps torch's CPU threads (``kd study --jobs`` shares the cores out).
    """
    if threads > 0:
        _cap_threads(threads)
    cfg = load_config(params, **{**(overrides or {}), **({"output": output} if output else {})})
    if teacher and teacher not in [t.name for t in cfg.teachers]:
        cfg.teachers.append(TeacherConfig(teacher))
        cfg.validate()
    return cfg


def _cap_threads(threads: int) -> None:
    """torch's CPU threads, without importing torch into a stage that never uses it: a torch
    imported later reads its thread count from the environment."""
    import os
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


# --- one teacher (or the seed's data) and one seed -------------------------------------------

# who (a role of records.ROLES) -> (run folder: the teacher's or the no-KD student's, fit role)
ROLE_FILES = {"teacher": (None, "teacher"), "student": (None, "student"), "no_kd_student": (NO_KD, "student")}


@dataclass
class Run:
    """What a stage produced for one seed (and teacher), read back from the run folders."""

    cfg: Config
    seed: int
    data: SeedData
    teacher: str | None = None
    provenance: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what only this stage has (the audit, compression)
    method: str | None = None  # a student of the methods axis: its method's label

    @property
    def layout(self) -> Layout:
        return Layout(self.cfg.output)

    def name(self, who: str) -> str:
        if who == "student" and self.method:
            return f"student distilled by {self.method}"
        return f"{self.teacher} teacher" if who == "teacher" else records.ROLES[who]

    def _where(self, who: str) -> tuple[str, str]:
        folder, role = ROLE_FILES[who]
        return folder or method_run(self.teacher, self.method if who == "student" else None), role

    def evaluation(self, who: str) -> dict:
        folder, role = self._where(who)
        return read_json(self.layout.evaluation(folder, self.seed, role))

    def oracle(self, who: str) -> bool:
        """Whether ``who`` is the oracle teacher (its outputs are the labels: no fit, no features)."""
        return who == "teacher" and self.cfg.is_oracle(self.teacher)

    def log(self, who: str) -> dict:
        folder, role = self._where(who)
        return read_json(self.layout.fit_paths(folder, self.seed, role).log)

    def predictions(self, who: str) -> pd.DataFrame:
        folder, role = self._where(who)
        return pd.read_csv(self.layout.predictions(folder, self.seed, role), dtype={"id": str})

    def save(self, **figures) -> dict:
        """Figures, also as PNG in the run's graphs folder."""
        for name, fig in figures.items():
            plots.save(fig, self.layout.figure(method_run(self.teacher, self.method) or DATA, self.seed, name))
        return figures


def metrics_table(run: Run, who: tuple[str, ...]) -> pd.DataFrame:
    """Test metrics of the models at the thresholds tuned on validation (the reference's 0.5 in
    its own column), beside what always answering yes scores."""
    rows = [_metrics_row(run.cfg, run.name(w), run.evaluation(w)) for w in who]
    return pd.DataFrame(rows + [_baseline_row(run.cfg, run.evaluation(who[0]))])


def model_table_columns(labels) -> tuple[str, ...]:
    """The columns of a stage's metrics table, in order: for labels (FLAME2: macro-F1, at 0.5,
    fire and smoke AUROC, fire AP, fire and smoke F1, fire recall, subset accuracy, Hamming loss),
    for classes accuracy, macro-F1 and each class's F1."""
    names, first = labels.names, labels.names[0]
    if labels.multiclass:
        return ("accuracy", "macro_f1", *(f"{n}_f1" for n in names))
    return ("macro_f1", "macro_f1_at_0.5", *(f"{n}_auroc" for n in names), f"{first}_ap",
            *(f"{n}_f1" for n in names), f"{first}_recall", "subset_accuracy", "hamming_loss")


def _metrics_row(cfg: Config, name: str, evaluation: dict) -> dict:
    labels = cfg.label_set
    row = {"model": name, **records.labelled(evaluation, model_table_columns(labels))}
    if not labels.multiclass:
        t = evaluation["metrics"]["tuned_thresholds"]
        row[f"thresholds ({' / '.join(labels.names)})"] = " / ".join(f"{t[label]:.3f}" for label in labels.names)
    return {**row, "params, M": evaluation["cost"]["params_total"] / 1e6, "GFLOPs": evaluation["cost"]["gflops"]}


def _baseline_row(cfg: Config, evaluation: dict) -> dict:
    """What a constant scorer gets on the same test frames (always "positive" per label; always the
    most frequent class): the floor a model must beat."""
    labels = cfg.label_set
    row = {"model": "always the most frequent class (baseline)" if labels.multiclass else "always positive (baseline)"}
    if not evaluation["metrics"].get("baseline"):
        return row
    first = labels.names[0]
    if labels.multiclass:
        values = {"accuracy": records.baseline_value(evaluation, "accuracy"),
                  "macro_f1": evaluation["metrics"]["baseline"].get("majority_macro_f1")}
    else:
        values = {"macro_f1": records.baseline_value(evaluation, "macro_f1"),
                  "macro_f1_at_0.5": records.baseline_value(evaluation, "macro_f1"),
                  **{f"{n}_auroc": 0.5 for n in labels.names},
                  f"{first}_ap": records.baseline_value(evaluation, f"{first}_ap"),
                  **{f"{n}_f1": records.baseline_value(evaluation, f"{n}_f1") for n in labels.names},
                  f"{first}_recall": 1.0}
    return {**row, **{records.metric_label(key): value for key, value in values.items()}}


def model_sentence(cfg: Config, name: str, evaluation: dict) -> str:
    """What a model reaches on the test set, in the headline and macro-F1, beside a constant scorer."""
    headline = cfg.headline_metric
    value, f1 = (records.metric_value(evaluation, k) for k in (headline, "macro_f1"))
    said = f"The {name} reaches test {records.metric_label(headline)} {number(value)} and macro-F1 {number(f1)}"
    if cfg.label_set.multiclass:
        return (f"{said} on {evaluation['test_frames']} test items (always answering the most frequent class "
                f"scores accuracy {number(records.baseline_value(evaluation, 'accuracy'))}).")
    first = cfg.label_set.names[0]
    f1_at_half = records.metric_value(evaluation, "macro_f1_at_0.5")
    always, prevalence = (records.baseline_value(evaluation, k) for k in ("macro_f1", f"{first}_prevalence"))
    return (f"{said} at thresholds tuned on validation ({number(f1_at_half)} at 0.5) "
            f"on {evaluation['test_frames']} test frames (always answering yes scores "
            f"macro-F1 {number(always)}; {first} prevalence {number(prevalence)}).")


def flag_messages(run: Run, who: tuple[str, ...]) -> list[str]:
    """The models' degenerate behaviour, in words, for the page's warnings."""
    return [f"{run.name(w)}: {f['message']}" for w in who for f in run.evaluation(w).get("flags", [])]


def training_curves(run: Run, who: tuple[str, ...]) -> dict:
    """Loss and the selection criterion per epoch, the kept epoch marked."""
    return run.save(**{f"{w}_curves": plots.training_curves(run.log(w), f"{run.name(w)}, seed {run.seed}")
                       for w in who if not run.oracle(w)})


def errors_by_combination(run: Run, who: tuple[str, ...]) -> pd.DataFrame:
    """Per true label combination (or class) of the test frames: how many, and the share each model
    gets entirely right (every label at its thresholds tuned on validation; the class by argmax)."""
    labels, frames = run.cfg.label_set, None
    column = "combination" if not labels.multiclass else "class"
    for w in who:
        p = run.predictions(w)
        truth = p[list(labels.names)].to_numpy()
        thresholds = (0.5 if labels.multiclass else
                      [run.evaluation(w)["metrics"]["tuned_thresholds"][label] for label in labels.names])
        decided = decisions(p[[f"p_{label}" for label in labels.names]].to_numpy(), thresholds, labels)
        right = (decided == truth).all(axis=1)
        table = pd.DataFrame({column: labels.strata(truth), run.name(w): right})
        frames = table if frames is None else frames.assign(**{run.name(w): right})
    grouped = frames.groupby(column, sort=False)
    out = grouped.mean().mul(100).add_suffix(", % right").reset_index()
    out.insert(1, "test frames", grouped.size().to_numpy())
    order = {c: i for i, c in enumerate(labels.all_strata())}
    return out.sort_values(column, key=lambda s: s.map(order)).reset_index(drop=True)


def confusion(run: Run, who: str) -> dict:
    how = "by argmax" if run.cfg.label_set.multiclass else "at thresholds tuned on validation"
    return run.save(**{f"{who}_confusion": plots.confusion(run.evaluation(who)["metrics"],
                                                           f"{run.name(who)}, test, {how}", run.cfg.label_set)})


def embeddings(run: Run, who: str) -> dict:
    """t-SNE / UMAP (as the config asks) of the model's pooled features on the test frames."""
    if run.oracle(who):
        return {}
    from kdcore.evaluation.embed import tsne, umap
    from kdcore.training.loop import predict

    test = run.data.split.test
    if who == "teacher":
        from kdcore.training.losses import TeacherOutputs

        outputs = TeacherOutputs.load(run.layout.teacher_outputs_file(run.teacher, run.seed))
        row_of = {frame_id: i for i, frame_id in enumerate(outputs.ids)}
        features = outputs.features[[row_of[i] for i in run.data.table.frames["id"].iloc[test]]].numpy()
    else:
        from kdcore.models.checkpoint import load_student

        folder, role = run._where(who)
        student, _ = load_student(run.layout.fit_paths(folder, run.seed, role).best)
        features = predict(student, run.data.dataset("test", with_ir=False), run.cfg.eval_batch_size,
                           run.cfg.device, features=True)["features"]
    strata = run.data.table.strata[test]
    methods = {"tsne": ("t-SNE", tsne), "umap": ("UMAP", umap)}
    whose = who.split("_")[0]
    return run.save(**{f"{m}_{whose}": plots.embedding(methods[m][1](features, run.seed), strata,
                                                       f"{methods[m][0]}, {run.name(who)} features",
                                                       run.cfg.label_set)
                       for m in run.cfg.embeddings})


# --- 00_data ----------------------------------------------------------------------------------

def _step(cfg: Config, notebook: str, seed: int, teacher: str | None = None, progress: bool = False,
          method: str | None = None):
    """Run one step for one seed (and teacher): its data, its record and the run's provenance.
    The steps' work (torch, and timm where a teacher is built) loads here, not when the page opens."""
    from kdcore.io import writer_lock
    from kdcore.study.work import prepare_data, run_step
    from kdcore.study.work import provenance as run_provenance

    with writer_lock(cfg.output, f"the {notebook} notebook"):  # run by kd study: its lock, inherited
        data = prepare_data(cfg, seed, progress=progress)
        record = run_step(cfg, notebook, data, teacher, method or None)
    return data, record, run_provenance(cfg, data)


def step_stage(cfg: Config, notebook: str, seed: int, teacher: str | None = None) -> Run:
    """The stage of a step with no stage function of its own: its record in ``run.extra["record"]``."""
    data, record, origin = _step(cfg, notebook, seed, teacher)
    return Run(cfg, seed, data, teacher, origin, extra={"record": record})


def data_stage(cfg: Config, seed: int) -> Run:
    """The seed's split, normalization and leakage audit of every split mode; the seed's no-KD student."""
    from kdcore.data.splits import one_valued_labels

    data, _, origin = _step(cfg, steps.DATA_STEP, seed, progress=True)
    run = Run(cfg, seed, data, provenance=origin, extra={"audit": read_json(Layout(cfg.output).audit(seed))})
    run.warnings = (one_valued_labels(data.table.targets, data.split, data.table.label_set)
                    + flag_messages(run, ("no_kd_student",)))
    return run


def data_summary(run: Run) -> list[str]:
    data, audit = run.data, run.extra["audit"]
    used = next(a for a in audit if a["mode"] == data.split.mode)
    sizes = "/".join(str(len(ix)) for ix in data.split.parts().values())
    if "not_audited" in used:
        near = f"near-duplicates {used['not_audited']}"
    else:
        worst = max((a for a in audit if a.get("near_duplicate_share") is not None), key=lambda a: a["near_duplicate_share"])
        near = (f"{100 * used['near_duplicate_share']:.1f}% of test frames have a near-duplicate in train "
                f"({worst['mode']} split: {100 * worst['near_duplicate_share']:.1f}%)")
    lines = [f"Seed {run.seed}: {data.split.mode} split, train/val/test {sizes} frames, {data.split.left_out} left "
             f"out between parts; {near}."]
    if data.label_budget:
        lines.append(f"Label budget: {int(data.labelled[data.split.train].sum())} of {len(data.split.train)} "
                     "training frames keep their labels (whole blocks).")
    return lines


def split_table(run: Run) -> pd.DataFrame:
    """Frames per part and label combination (FLAME2: fire, smoke) or class, and, under a label
    budget, how many training frames keep their labels."""
    parts = run.data.split.parts()
    strata = run.data.table.strata
    rows = []
    for part, ix in parts.items():
        counts = pd.Series(strata[ix]).value_counts()
        row = {"part": part, **{c: int(counts.get(c, 0)) for c in run.data.table.label_set.all_strata()},
               "frames": len(ix)}
        if run.data.label_budget:
            row["labelled"] = int(run.data.labelled[ix].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def leakage_table(run: Run) -> pd.DataFrame:
    """Per split mode: the share of test and val frames with a near-duplicate in train."""
    return pd.DataFrame([{"split": a["mode"] + (" (used)" if a["mode"] == run.data.split.mode else ""),
                          "test frames with a near-duplicate in train, %": _percent(a.get("near_duplicate_share")),
                          "val frames with a near-duplicate in train, %": _percent(a.get("val_near_duplicate_share")),
                          "frames left out": a.get("left_out"),
                          **{f"{p} frames": v["frames"] for p, v in a.get("parts", {}).items()},
                          "note": a.get("leaks") or a.get("not_possible") or a.get("not_audited") or ""}
                         for a in run.extra["audit"]])


def _percent(share):
    return None if share is None else 100 * share


def data_figures(run: Run) -> dict:
    parts, labels = run.data.split.parts(), run.data.table.label_set
    strata = run.data.table.strata
    counts = {part: pd.Series(strata[ix]).value_counts().to_dict() for part, ix in parts.items()}
    return run.save(label_balance=plots.label_balance(counts, labels),
                    sample_pairs=plots.sample_pairs(run.data.rgb, run.data.ir, strata, labels))


# --- 01_teacher -------------------------------------------------------------------------------

def teacher_stage(cfg: Config, teacher: str, seed: int) -> Run:
    data, _, origin = _step(cfg, steps.TEACHER_STEP, seed, teacher)
    run = Run(cfg, seed, data, teacher, origin)
    run.warnings = flag_messages(run, ("teacher",))
    return run


def teacher_summary(run: Run) -> list[str]:
    if run.oracle("teacher"):
        return ["The oracle teacher trains nothing: its outputs are confident logits of the true labels on every "
                "frame, labelled or not. A student distilled from it shows what the kit can detect, and the "
                "ceiling any real teacher can reach on these data."]
    return [model_sentence(run.cfg, run.name("teacher"), run.evaluation("teacher"))]


def crossfit_table(run: Run) -> pd.DataFrame:
    """What out-of-fold soft labels cost (``teacher_outputs: crossfit``), or which outputs teach."""
    evaluation = run.evaluation("teacher")
    crossfit = evaluation.get("teacher_outputs")
    if not crossfit:
        return pd.DataFrame([{"teacher_outputs": run.cfg.teacher_outputs,
                              "soft labels": "the full teacher's, on every frame (no out-of-fold outputs)"}])
    return pd.DataFrame([{"folds": crossfit["folds"], "frames per fold": crossfit["frames"],
                          "fold training, s": crossfit["train_s"],
                          "full teacher training, s": evaluation["timing"]["train_s"]}])


# --- 02_student -------------------------------------------------------------------------------

def student_stage(cfg: Config, teacher: str, seed: int, method: str = "") -> Run:
    data, _, origin = _step(cfg, steps.STUDENT_STEP, seed, teacher, method=method)
    run = Run(cfg, seed, data, teacher, origin, method=method or None)
    run.warnings = flag_messages(run, ("teacher", "student", "no_kd_student"))
    return run


def student_summary(run: Run) -> list[str]:
    evaluation, baseline = run.evaluation("student"), run.evaluation("no_kd_student")
    key = run.cfg.headline_metric
    value = [records.metric_value(e, key) for e in (evaluation, baseline)]
    gap = f" ({value[0] - value[1]:+.3f}; one seed: see the comparison for intervals)" if None not in value else ""
    lead = evaluation.get("teacher_lead")
    before = [f"Before the student trained: {lead['verdict']}."] if lead else []
    if run.method:
        before.append(f"Method: {method_words(evaluation['method'])}.")
    return before + [f"Distilled from {run.teacher}, the student's test {records.metric_label(key)} is "
                     f"{number(value[0])}; the no-KD student's is {number(value[1])}{gap}.",
                     model_sentence(run.cfg, "distilled student", evaluation)]


def method_words(spec: dict) -> str:
    """A method's settings in words: ``fitnets (weight 100, stages block3 <- fusion), alone with the labels``."""
    parts = [f"weight {spec['weight']}" if spec.get("weight") is not None else "",
             f"stages {spec['student_stage']} <- {spec['teacher_stage']}" if spec.get("teacher_stage") else "",
             ", ".join(f"{k} {v}" for k, v in spec.get("options", {}).items())]
    settings = "; ".join(p for p in parts if p)
    base = "added to Hinton's loss" if spec.get("kd") else "with the labels' hard term alone"
    return f"{spec['name']}{f' ({settings})' if settings else ''}, {base}"


# --- 03_compress ------------------------------------------------------------------------------

def compress_stage(cfg: Config, teacher: str, seed: int) -> Run:
    data, final, _ = _step(cfg, steps.COMPRESS_STEP, seed, teacher)
    return Run(cfg, seed, data, teacher, final["provenance"], extra={"compression": final["compression"]},
               warnings=[f"{variant}: {f['message']}" for variant, v in final["compression"]["variants"].items()
                         for f in v.get("flags", [])])


def variants_table(run: Run) -> pd.DataFrame:
    """Each variant of the distilled student: what it keeps and what it costs."""
    rows = []
    for variant, v in run.extra["compression"]["variants"].items():
        latency = v["timing"]["latency"]
        labels = run.cfg.label_set
        shown = (("accuracy", "macro_f1") if labels.multiclass
                 else ("macro_f1", "macro_f1_at_0.5", *(f"{n}_f1" for n in labels.names)))
        rows.append({"variant": variant, **records.labelled(v, shown),
                     "params, M": v["cost"]["params_total"] / 1e6,
                     "GMACs": v["cost"]["gmacs"], "size, MB": v["cost"]["size_mb"],
                     **{records.latency_header(k): latency[k]["median_ms"] for k in sorted(latency)}, "file": v["cost"]["file"]})
    return pd.DataFrame(rows)


def compress_summary(run: Run) -> list[str]:
    v = run.extra["compression"]["variants"]
    fp32 = v["fp32"]
    f1 = {variant: records.metric_value(r, "macro_f1") for variant, r in v.items()}
    return [f"{variant}: macro-F1 {number(f1[variant])} (fp32 {number(f1['fp32'])}), "
            f"{r['cost']['size_mb']:.2f} MB (fp32 {fp32['cost']['size_mb']:.2f}), "
            f"{analysis.batch1_ms(r, run.cfg):.2f} ms at {run.cfg.image_size} px, batch 1 "
            f"(fp32 {analysis.batch1_ms(fp32, run.cfg):.2f})." for variant, r in v.items() if variant != "fp32"]


def tradeoff(run: Run) -> dict:
    """Macro-F1 against CPU latency, the marker's area the file size: every variant of this seed."""
    points = [_point(variant, [v], run.cfg) for variant, v in run.extra["compression"]["variants"].items()]
    return run.save(tradeoff=plots.tradeoff(points, f"CPU latency at {run.cfg.image_size} px, batch 1 (ms)",
                                            f"student of {run.teacher}, seed {run.seed}: accuracy, latency, size"))


def parity_table(run: Run) -> pd.DataFrame:
    parity = run.extra["compression"]["parity"]
    return pd.DataFrame([{"largest |PyTorch - ONNX| logit difference": parity["max_abs_logit_difference"],
                          "test frames compared": parity["frames"]}])


# --- 04_compare -------------------------------------------------------------------------------

def compare_stage(cfg: Config, allow_mixed: bool = False) -> Comparison:
    """The compare step (``kdcore.study.work.compare.compare_runs``), under the output's writer lock."""
    from kdcore.io import writer_lock

    with writer_lock(cfg.output, "the 04_compare notebook"):  # run by kd study: its lock, inherited
        return steps.step(steps.COMPARE_STEP).function()(cfg, allow_mixed=allow_mixed)


def compare_summary(study: Comparison) -> list[str]:
    return [analysis.study_sentence(study.cfg, study.differences)]


def seed_figures(study: Comparison) -> dict:
    """Every model's test metric: each seed a dot, the mean and the 95% interval over seeds."""
    figures = {}
    for key in analysis.primary(study.cfg):
        label = records.metric_label(key)
        summary = study.models.rename(columns={f"{label} mean": "mean", f"{label} low": "low", f"{label} high": "high"})
        figures[f"{key}_by_seed"] = plots.seed_points(analysis.per_seed_points(study.cfg, study.evaluations, key),
                                                      summary[["teacher", "model", "mean", "low", "high"]],
                                                      label, f"test {label} per seed, every model")
    return _save_compare(study, figures)


def difference_figures(study: Comparison) -> dict:
    """Each seed a line from the no-KD student to the distilled one; every difference with its intervals."""
    key = study.cfg.headline_metric
    label = records.metric_label(key)
    points = analysis.per_seed_points(study.cfg, study.evaluations, key)
    figures = {f"paired_{key}": plots.paired_lines(points, label, f"test {label}, no-KD -> distilled, each seed a line")}
    d = study.differences
    if len(d):
        forest = d.rename(columns={"mean difference": "mean", "CI low": "low", "CI high": "high",
                                   "bootstrap low": "boot_low", "bootstrap high": "boot_high"})
        forest = forest.assign(name=forest["comparison"] + " (" + forest["metric"] + ")")
        figures["paired_differences"] = plots.differences(
            forest[["name", "mean", "low", "high", "boot_low", "boot_high"]].astype(
                {c: float for c in ("mean", "low", "high", "boot_low", "boot_high")}),
            "paired differences, a - b")
    return _save_compare(study, figures)


def method_figures(study: Comparison) -> dict:
    """Methods x teachers: each method's student against the no-KD student and against the study's
    own, with intervals over seeds (none without a methods axis)."""
    if not len(study.methods):
        return {}
    base = study.cfg.kd_loss
    parts = [(analysis.METHOD_GAIN, "method - no-KD student"), (analysis.METHOD_VS_BASE, f"method - {base}")]
    label = records.metric_label(study.cfg.headline_metric)
    return _save_compare(study, {"methods": plots.methods_by_teacher(study.methods, parts, label)})


def methods_summary(study: Comparison) -> list[str]:
    """The methods axis in one sentence per teacher, or why the section is empty."""
    m = study.methods
    if not len(m):
        return ["This study has no methods axis (params key `methods`): its students are distilled by "
                f"{study.cfg.kd_loss} alone."]
    base, lines = study.cfg.kd_loss, []
    for teacher, rows in m.groupby("teacher", sort=False):
        gain = rows[rows[f"{analysis.METHOD_GAIN} CI low"].fillna(-1) > 0]["method"].tolist()
        beats = rows[rows[f"{analysis.METHOD_VS_BASE} CI low"].fillna(-1) > 0]["method"].tolist()
        lines.append(f"{teacher}: {len(gain)} of {len(rows)} students beat the no-KD student (95% CI over seeds "
                     f"above 0{': ' + ', '.join(gain) if gain else ''}); {len(beats)} of {len(rows) - 1} methods "
                     f"beat {base}{': ' + ', '.join(beats) if beats else ''}.")
    return lines


def tradeoff_figures(study: Comparison) -> dict:
    """Accuracy, latency and size of every teacher and compressed student (means over seeds)."""
    cfg, points = study.cfg, []
    for t in cfg.teachers:
        runs = [study.evaluations[t.name, s] for s in cfg.seeds]
        if not cfg.is_oracle(t.name):  # the oracle has no latency or size
            points.append(_point(f"{t.name} teacher", [r["teacher"] for r in runs], cfg))
        for variant in analysis.variant_names(runs):
            variant_runs = [r["compression"]["variants"][variant] for r in runs if "compression" in r]
            if variant_runs:
                points.append(_point(f"{t.name} student {variant}", variant_runs, cfg))
    return _save_compare(study, {"tradeoff": plots.tradeoff(
        points, f"CPU latency at {cfg.image_size} px, batch 1 (ms)", "accuracy, latency and size (means over seeds)")})


def _point(label: str, evaluations: list[dict], cfg: Config) -> tuple:
    """(label, median latency, mean macro-F1, mean file size) of one model over its seeds."""
    return (label, float(np.median([analysis.batch1_ms(e, cfg) for e in evaluations])),
            _mean([records.metric_value(e, "macro_f1") for e in evaluations]),
            float(np.mean([e["cost"]["size_mb"] for e in evaluations])))


def _save_compare(study: Comparison, figures: dict) -> dict:
    for name, fig in figures.items():
        plots.save(fig, Layout(study.cfg.output).figure(None, None, name))
    return figures


def _mean(values) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")
