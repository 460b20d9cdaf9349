"""What each stage notebook does, as one call each: the notebooks only call and display.

Every stage returns ``{"tables": {name: DataFrame}, "figures": {name: Figure}}``; figures are
also saved as PNG under ``<output>/graphs/``.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from kdcore import compare, plots
from kdcore.config import Config, TeacherConfig, load_config
from kdcore.data import COMBOS, frame_hashes
from kdcore.data.schema import combo_names
from kdcore.data.splits import audit_modes, one_valued_labels
from kdcore.distill import TeacherOutputs
from kdcore.embed import tsne, umap
from kdcore.errors import KDError
from kdcore.io import read_json, write_json
from kdcore.pipeline import (
    NO_KD,
    VARIANTS,
    Layout,
    compress_student,
    final_evaluation,
    prepare_data,
    provenance,
    train_student,
    train_teacher,
)
from kdcore.stats import summarize
from kdcore.train import predict


def configure(params: str, output: str | None = None, teacher: str | None = None,
              overrides: dict | None = None, threads: int = 0) -> Config:
    """The config a stage runs with: the params file with overrides, the teacher known.

    ``threads`` > 0 caps torch's CPU threads (``kd study --jobs`` shares the cores out).
    """
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    cfg = load_config(params, **{**(overrides or {}), "output": output or None})
    if teacher and teacher not in [t.name for t in cfg.teachers]:
        cfg.teachers.append(TeacherConfig(teacher))
        cfg.validate()
    return cfg


def _embeddings(cfg: Config, features: np.ndarray, combos: np.ndarray, seed: int, whose: str) -> dict:
    methods = {"tsne": ("t-SNE", tsne), "umap": ("UMAP", umap)}
    return {f"{m}_{whose.split()[0]}": plots.embedding(methods[m][1](features, seed), combos,
                                                       f"{methods[m][0]}, {whose} features")
            for m in cfg.embeddings}


def _figures(folder, **figures) -> dict:
    for name, fig in figures.items():
        plots.save(fig, folder / f"{name}.png")
    return figures


def _metrics_row(name: str, evaluation: dict) -> dict:
    m = evaluation["metrics"]
    return {"model": name, "macro_f1": m["macro_f1"], "fire_auroc": m["ranking"]["fire"]["auroc"],
            "fire_ap": m["ranking"]["fire"]["average_precision"], "fire_f1": m["fire"]["f1"],
            "smoke_f1": m["smoke"]["f1"], "fire_recall": m["fire"]["recall"], "subset_accuracy": m["subset_accuracy"],
            "hamming_loss": m["hamming_loss"], "macro_f1_tuned": m["tuned"]["macro_f1"],
            "params_M": evaluation["cost"]["params_total"] / 1e6, "gflops": evaluation["cost"]["gflops"]}


def _baseline_row(evaluation: dict) -> dict:
    """What always answering "positive" scores on the same test frames: the floor a model must beat."""
    base = evaluation["metrics"].get("baseline")
    if not base:
        return {"model": "always positive (baseline)"}
    return {"model": "always positive (baseline)", "macro_f1": base["always_positive_macro_f1"], "fire_auroc": 0.5,
            "fire_ap": base["fire"]["average_precision"], "fire_f1": base["fire"]["always_positive_f1"],
            "smoke_f1": base["smoke"]["always_positive_f1"], "fire_recall": 1.0}


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _model_sentence(name: str, evaluation: dict) -> str:
    m = evaluation["metrics"]
    base = m.get("baseline", {})
    return (f"The {name} reaches test fire AUROC {_fmt(m['ranking']['fire']['auroc'])} and macro-F1 "
            f"{_fmt(m['macro_f1'])} on {evaluation['test_frames']} test frames (always answering yes scores "
            f"macro-F1 {_fmt(base.get('always_positive_macro_f1'))}; fire prevalence {_fmt(base.get('fire', {}).get('prevalence'))}).")


def _metrics_table(rows: list[tuple[str, dict]]) -> pd.DataFrame:
    return pd.DataFrame([_metrics_row(name, e) for name, e in rows] + [_baseline_row(rows[0][1])])


# --- 00_data ----------------------------------------------------------------------------------

def data_stage(cfg: Config, seed: int) -> dict:
    """Split, normalization, label balance, sample pairs, leakage audit of every split mode; the
    seed's no-KD student."""
    data = prepare_data(cfg, seed)
    combos = data.table.combos
    counts = {part: pd.Series(combos[ix]).value_counts().to_dict() for part, ix in data.split.parts().items()}
    balance = pd.DataFrame(counts).T.reindex(columns=list(COMBOS)).fillna(0).astype(int)
    balance["frames"] = balance.sum(axis=1)
    if data.label_budget:
        balance["labelled"] = [int(data.labelled[ix].sum()) for ix in data.split.parts().values()]
    hashes = frame_hashes(data.table.frames["rgb_path"].tolist())
    audit = audit_modes(combos, data.table.groups, hashes, seed, cfg.block_frames, cfg.gap_frames)
    write_json(Layout(cfg.output).data(seed) / "audit.json", audit)
    train_student(cfg, data, None)
    folder = Layout(cfg.output).graphs("data", seed)
    figures = _figures(folder, label_balance=plots.label_balance(counts),
                       sample_pairs=plots.sample_pairs(data.rgb, data.ir, combos))
    audit_table = pd.DataFrame([{"split": a["mode"] + (" (used)" if a["mode"] == data.split.mode else ""),
                                 "near-duplicate share of test": a.get("near_duplicate_share"),
                                 "near-duplicate share of val": a.get("val_near_duplicate_share"),
                                 "frames left out": a.get("left_out"),
                                 **{p: v["frames"] for p, v in a.get("parts", {}).items()},
                                 "note": a.get("leaks") or a.get("not_possible") or ""} for a in audit])
    baseline = read_json(Layout(cfg.output).metrics(NO_KD, seed) / "student_evaluation.json")
    used = next(a for a in audit if a["mode"] == data.split.mode)
    worst = max((a for a in audit if "near_duplicate_share" in a), key=lambda a: a["near_duplicate_share"])
    sizes = "/".join(str(len(ix)) for ix in data.split.parts().values())
    summary = [f"Seed {seed}: {data.split.mode} split, train/val/test {sizes} frames, {data.split.left_out} left out "
               f"between parts; {100 * used['near_duplicate_share']:.1f}% of test frames have a near-duplicate in "
               f"train ({worst['mode']} split: {100 * worst['near_duplicate_share']:.1f}%)."]
    if data.label_budget:
        summary.append(f"Label budget: {int(data.labelled[data.split.train].sum())} of {len(data.split.train)} "
                       "training frames keep their labels (whole blocks).")
    return {"summary": summary, "tables": {"balance": balance, "leakage": audit_table,
                       "no_kd_student": _metrics_table([("no-KD student", baseline)])},
            "figures": figures, "split_mode": data.split.mode,
            "warnings": one_valued_labels(data.table.labels, data.split), "provenance": provenance(cfg, data)}


# --- 01_teacher -------------------------------------------------------------------------------

def teacher_stage(cfg: Config, teacher: str, seed: int) -> dict:
    data = prepare_data(cfg, seed, progress=False)
    evaluation = train_teacher(cfg, teacher, data)
    layout = Layout(cfg.output)
    log = read_json(layout.fit_paths(teacher, seed, "teacher").log)
    outputs = TeacherOutputs.load(layout.models(teacher, seed) / "teacher_outputs.pt")
    row_of = {frame_id: i for i, frame_id in enumerate(outputs.ids)}
    test = data.split.test
    features = outputs.features[[row_of[i] for i in data.table.frames["id"].iloc[test]]].numpy()
    combos = data.table.combos[test]
    figures = _figures(layout.graphs(teacher, seed),
                       teacher_curves=plots.training_curves(log, f"{teacher} teacher, seed {seed}"),
                       teacher_confusion=plots.confusion(evaluation["metrics"], f"{teacher} teacher, test"),
                       **_embeddings(cfg, features, combos, seed, f"teacher ({teacher})"))
    tables = {"metrics": _metrics_table([(f"{teacher} teacher", evaluation)])}
    if "teacher_outputs" in evaluation:  # what out-of-fold soft labels cost
        crossfit = evaluation["teacher_outputs"]
        tables["crossfit"] = pd.DataFrame([{"folds": crossfit["folds"], "frames per fold": crossfit["frames"],
                                            "fold training, s": crossfit["train_s"],
                                            "full teacher training, s": evaluation["timing"]["train_s"]}])
    return {"summary": [_model_sentence(f"{teacher} teacher", evaluation)], "tables": tables,
            "figures": figures, "provenance": provenance(cfg, data)}


# --- 02_student -------------------------------------------------------------------------------

def _upstream(cfg: Config, data, teacher: str) -> None:
    """What a later stage needs, trained here when missing (a no-op after the earlier stages)."""
    train_student(cfg, data, None)
    train_teacher(cfg, teacher, data)


def student_stage(cfg: Config, teacher: str, seed: int) -> dict:
    data = prepare_data(cfg, seed, progress=False)
    _upstream(cfg, data, teacher)
    evaluation = train_student(cfg, data, teacher)
    layout = Layout(cfg.output)
    baseline = read_json(layout.metrics(NO_KD, seed) / "student_evaluation.json")
    teacher_eval = read_json(layout.metrics(teacher, seed) / "teacher_evaluation.json")
    from kdcore.compress import load_student

    student, _ = load_student(layout.fit_paths(teacher, seed, "student").best)
    test = predict(student, data.dataset("test", with_ir=False), cfg.eval_batch_size, cfg.device, features=True)
    combos = combo_names(test["targets"])
    logs = {name: read_json(layout.fit_paths(folder, seed, "student").log)
            for name, folder in (("distilled", teacher), ("no-KD", NO_KD))}
    figures = _figures(layout.graphs(teacher, seed),
                       student_curves=plots.training_curves(logs["distilled"], f"student of {teacher}, seed {seed}"),
                       no_kd_curves=plots.training_curves(logs["no-KD"], f"no-KD student, seed {seed}"),
                       student_confusion=plots.confusion(evaluation["metrics"], "distilled student, test"),
                       **_embeddings(cfg, test["features"], combos, seed, "student"))
    table = _metrics_table([(f"{teacher} teacher", teacher_eval), ("distilled student", evaluation),
                            ("no-KD student", baseline)])
    if not cfg.compresses(teacher):  # no compression stage follows: the seed's record is complete here
        final_evaluation(cfg, teacher, data)
    fire = [e["metrics"]["ranking"]["fire"]["auroc"] for e in (evaluation, baseline)]
    gap = f" ({fire[0] - fire[1]:+.3f}; one seed: see the comparison for intervals)" if None not in fire else ""
    summary = [f"Distilled from {teacher}, the student's test fire AUROC is {_fmt(fire[0])}; the no-KD student's "
               f"is {_fmt(fire[1])}{gap}.", _model_sentence("distilled student", evaluation)]
    return {"summary": summary, "tables": {"metrics": table}, "figures": figures, "provenance": provenance(cfg, data)}


# --- 03_compress ------------------------------------------------------------------------------

def compress_stage(cfg: Config, teacher: str, seed: int) -> dict:
    data = prepare_data(cfg, seed, progress=False)
    _upstream(cfg, data, teacher)
    train_student(cfg, data, teacher)
    result = compress_student(cfg, teacher, data)
    origin = final_evaluation(cfg, teacher, data)["provenance"]
    rows = []
    for variant, v in result["variants"].items():
        lat = v["timing"]["latency"]
        rows.append({"variant": variant, "macro_f1": v["metrics"]["macro_f1"],
                     "fire_f1": v["metrics"]["fire"]["f1"], "smoke_f1": v["metrics"]["smoke"]["f1"],
                     "params_M": v["cost"]["params_total"] / 1e6, "gmacs": v["cost"]["gmacs"],
                     "size_MB": v["cost"]["size_mb"], "file": v["cost"]["file"],
                     **{f"ms_{k}": lat[k]["median_ms"] for k in sorted(lat)}})
    v = result["variants"]
    key = f"{cfg.image_size}px_batch1"
    summary = [f"{variant}: macro-F1 {_fmt(v[variant]['metrics']['macro_f1'])} (fp32 {_fmt(v['fp32']['metrics']['macro_f1'])}), "
               f"{v[variant]['cost']['size_mb']:.2f} MB (fp32 {v['fp32']['cost']['size_mb']:.2f}), "
               f"{v[variant]['timing']['latency'][key]['median_ms']:.2f} ms at {cfg.image_size} px, batch 1 "
               f"(fp32 {v['fp32']['timing']['latency'][key]['median_ms']:.2f})." for variant in ("int8", "pruned", "pruned_int8")]
    return {"summary": summary, "tables": {"variants": pd.DataFrame(rows),
                       "onnx_parity": pd.DataFrame([result["parity"]])}, "figures": {},
            "provenance": origin}


# --- 04_compare -------------------------------------------------------------------------------

def _consistency(evaluations: dict, allow_mixed: bool) -> list[str]:
    """Runs to be aggregated must share their data and their config (but for teacher and seed)."""
    fingerprints, digests = {}, {}
    for (teacher, seed), e in evaluations.items():
        p = e["provenance"]
        fingerprints.setdefault(json_key(p["data"]), []).append(f"{teacher}/seed {seed}")
        config = {k: v for k, v in p["config"].items() if k not in ("teachers", "seeds")}
        digests.setdefault(json_key(config), []).append(f"{teacher}/seed {seed}")
    problems = []
    if len(fingerprints) > 1:
        problems.append("data fingerprints differ: " + " vs ".join(", ".join(r) for r in fingerprints.values()))
    if len(digests) > 1:
        problems.append("configs differ: " + " vs ".join(", ".join(r) for r in digests.values()))
    if problems and not allow_mixed:
        raise KDError("refusing to aggregate: " + "; ".join(problems) + " (allow_mixed=True to aggregate anyway)")
    return problems


def json_key(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def compare_stage(cfg: Config, allow_mixed: bool = False) -> dict:
    """All teachers x seeds: per-model summaries, the paired differences with intervals over seeds
    and over test blocks, Holm-adjusted p-values, the prevalence baseline, plots."""
    layout = Layout(cfg.output)
    evaluations = compare.load_evaluations(cfg, layout)
    warnings = _consistency(evaluations, allow_mixed) + compare.missing_values(cfg, evaluations)
    models, aggregated = compare.model_table(cfg, evaluations)
    variants = _variant_table(cfg, evaluations, aggregated)
    differences = compare.difference_table(cfg, evaluations, layout)
    for name, agg in aggregated.items():
        agg["differences"] = differences[differences["comparison"].str.startswith(f"{name}:")].to_dict("records")
        write_json(layout.root / "metrics" / name / "aggregated_results.json", agg)
    tables = {"models": models, "differences": differences, "baseline": compare.baseline_table(cfg, evaluations),
              "compressed_students": variants}
    compare.write_tables(layout.root / "metrics" / "compare", tables)
    figures = _figures(layout.root / "graphs" / "compare", **_compare_figures(cfg, evaluations, models, differences))
    data = {f"{t}/seed {s}": e["provenance"]["data"] for (t, s), e in evaluations.items()}
    origin = {**provenance(cfg), "seed": list(cfg.seeds), "data": data if warnings else next(iter(data.values()))}
    return {"summary": compare.headline(differences, len(cfg.seeds)), "tables": tables, "figures": figures,
            "warnings": warnings, "provenance": origin}


def _variant_table(cfg: Config, evaluations: dict, aggregated: dict) -> pd.DataFrame:
    rows = []
    for t in cfg.teachers:
        runs = [evaluations[t.name, s] for s in cfg.seeds]
        for variant in VARIANTS:
            values = [r["compression"]["variants"][variant]["metrics"]["macro_f1"] if "compression" in r else None
                      for r in runs]
            s = summarize(values)
            aggregated[t.name][f"student_{variant}"] = {"macro_f1": s, "f1_macro": s}
            rows.append({"teacher": t.name, "variant": variant, "n": s["n"], "macro-F1 mean": s["mean"],
                         "macro-F1 low": s["ci95"][0], "macro-F1 high": s["ci95"][1]})
    return pd.DataFrame(rows)


def _compare_figures(cfg: Config, evaluations: dict, models: pd.DataFrame, differences: pd.DataFrame) -> dict:
    figures = {}
    for key in compare.PRIMARY:
        label = compare.METRICS[key][0]
        summary = models.rename(columns={f"{label} mean": "mean", f"{label} low": "low", f"{label} high": "high"})
        figures[f"{key}_by_seed"] = plots.seed_points(compare.per_seed_points(cfg, evaluations, key),
                                                      summary[["teacher", "model", "mean", "low", "high"]],
                                                      label, f"test {label} per seed, every model")
    if len(differences):
        forest = differences.rename(columns={"mean difference": "mean", "CI low": "low", "CI high": "high",
                                             "bootstrap low": "boot_low", "bootstrap high": "boot_high"})
        forest = forest.assign(name=forest["comparison"] + " (" + forest["metric"] + ")")
        figures["paired_differences"] = plots.differences(
            forest[["name", "mean", "low", "high", "boot_low", "boot_high"]].astype(
                {c: float for c in ("mean", "low", "high", "boot_low", "boot_high")}),
            "paired differences, a - b")
    points_latency, points_size = [], []
    for t in cfg.teachers:
        runs = [evaluations[t.name, s] for s in cfg.seeds]
        f1 = _mean([r["teacher"]["metrics"]["macro_f1"] for r in runs])
        points_latency.append((f"{t.name} teacher", _median_latency(runs, "teacher"), f1))
        points_size.append((f"{t.name} teacher", float(np.mean([r["teacher"]["cost"]["size_mb"] for r in runs])), f1))
        for variant in VARIANTS:
            variant_runs = [r["compression"]["variants"][variant] for r in runs if "compression" in r]
            if variant_runs:
                f1 = _mean([v["metrics"]["macro_f1"] for v in variant_runs])
                ms = float(np.median([v["timing"]["latency"][f"{cfg.image_size}px_batch1"]["median_ms"]
                                      for v in variant_runs]))
                points_latency.append((f"{t.name} student {variant}", ms, f1))
                points_size.append((f"{t.name} student {variant}", variant_runs[0]["cost"]["size_mb"], f1))
    figures["f1_vs_latency"] = plots.scatter_cost(points_latency, f"CPU latency at {cfg.image_size}px, batch 1 (ms)",
                                                  "macro-F1 against latency")
    figures["f1_vs_size"] = plots.scatter_cost(points_size, "file size (MB)", "macro-F1 against size")
    return figures


def _mean(values) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")


def _median_latency(runs: list[dict], role: str) -> float:
    return float(np.median([r[role]["timing"]["latency_batch1"]["median_ms"] for r in runs]))


def _summary(text: str):
    """What the page found, first, in words (marked so that tools/check_reports.py can find it)."""
    try:
        from IPython.display import HTML

        return HTML(f'<p class="kd-summary"><b>{html.escape(text)}</b></p>')
    except ImportError:
        return text


def _table(table: pd.DataFrame):
    """No index column, three decimals: a table for people."""
    try:
        from IPython.display import HTML

        return HTML(table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a"))
    except ImportError:
        return table.to_string(index=False)


def _png(fig):
    """A figure as PNG for IPython, whatever matplotlib backend the kernel has."""
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return Image(data=buffer.getvalue(), format="png")


def show(result: dict) -> None:
    """Display a stage's tables and figures (in a notebook; printed elsewhere), then provenance."""
    try:
        from IPython.display import display
    except ImportError:  # plain Python: print the tables
        display = print
    for line in result.get("summary", []):
        display(_summary(line))
    for warning in result.get("warnings", []):
        print(f"warning: {warning}")
    for name, table in result["tables"].items():
        print(name)
        display(_table(table))
    for fig in result["figures"].values():
        display(_png(fig))
    if "provenance" in result:
        _show_provenance(result["provenance"], display)


def _show_provenance(origin: dict, display) -> None:
    """One line to read, and the whole record (config, data fingerprint, ...) folded below it."""
    code, env = origin["code"], origin["environment"]
    dirty = " (uncommitted changes)" if code["git_dirty"] else ""
    print(f"kdcore {code['kdcore']}, commit {code['git_commit'] or 'unknown'}{dirty}; "
          + ", ".join(f"{k} {v}" for k, v in origin["packages"].items() if v)
          + f"; config digest {origin['config_digest']}; seed {origin['seed']}; {env['device']}, "
          f"{env['threads']} thread(s), world size {env['world_size']}, "
          f"deterministic kernels {'on' if origin['config'].get('deterministic') else 'off'}")
    record = json.dumps(origin, indent=1, sort_keys=True, default=str)
    try:
        from IPython.display import HTML

        display(HTML(f"<details><summary>provenance: the full record</summary><pre>{html.escape(record)}</pre>"
                     "</details>"))
    except ImportError:
        print(record)


