"""The study's answer: every teacher over every seed, and the differences the study exists to measure.

Per model: n, mean and a t-interval over seeds (clipped to the metric's range, none below three
seeds). Per comparison (distilled - no-KD student; with the RGB-teacher arm also RGB-distilled -
no-KD, IR-distilled - RGB-distilled and IR teacher - RGB teacher; teachers against each other): the
paired difference over seeds with its interval, p-value and d_z, Holm-adjusted over the whole
family, and a block bootstrap of the same difference over the test set's blocks (test-set
uncertainty only). Beside them, the prevalence baseline: what always answering "fire" scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdcore.errors import KDError
from kdcore.evaluation.metrics import accuracy, auroc, decisions, macro_f1
from kdcore.evaluation.records import (
    ROLES,
    baseline_value,
    latency_header,
    latency_key,
    metric_keys,
    metric_label,
    metric_value,
    with_aliases,
)
from kdcore.evaluation.stats import (
    block_bootstrap,
    holm,
    paired_difference,
    seeds_needed,
    summarize,
)
from kdcore.io import read_json
from kdcore.layout import NO_KD, Layout, method_run
from kdcore.study.config import Config, result_settings

BREAKDOWNS = ("fire_auroc_rgb_hidden", "fire_auroc_rgb_visible")  # kd synth's truth: where the data has it


def primary(cfg: Config) -> tuple[str, ...]:
    """The metrics every comparison reports: the headline (FLAME2: fire AUROC), and macro-F1."""
    return tuple(dict.fromkeys((cfg.headline_metric, "macro_f1")))


def model_columns(cfg: Config) -> tuple[str, ...]:
    """The metrics the models table shows: the primary ones, then for labels macro-F1 at 0.5 (the
    reference protocol) and the first label's AP."""
    labels = cfg.label_set
    extra = () if labels.multiclass else ("macro_f1_at_0.5", f"{labels.names[0]}_ap")
    return tuple(dict.fromkeys(primary(cfg) + extra))


def bootstrap_metric(cfg: Config, key: str):
    """(whether it reads decisions rather than scores, metric(p, y, weights)) for a metric the
    test-block bootstrap resamples; None for one it does not."""
    names = cfg.label_set.names
    if key.endswith("_auroc") and key[: -len("_auroc")] in names:
        k = names.index(key[: -len("_auroc")])
        return False, lambda p, y, w: auroc(p[:, k], y[:, k], w)
    return {"macro_f1": (True, macro_f1), "accuracy": (True, accuracy)}.get(key)


@dataclass(frozen=True)
class Arm:
    """One model of one teacher run: which run folder, which role in its final evaluation."""

    teacher: str
    role: str

    @property
    def folder(self) -> str:
        return NO_KD if self.role == "no_kd_student" else self.teacher

    @property
    def fit_role(self) -> str:
        return "teacher" if self.role == "teacher" else "student"


KD_GAIN, LEAD = "distilled - no-KD", "teacher - no-KD"  # the two comparisons every teacher has
IR_GAIN, IR_LEAD = "IR-distilled - RGB-distilled", "IR teacher - RGB teacher"  # where it has an RGB twin
LEAD_PART, GAIN_PART = "lead", "gain"  # the answer table's two parts: its columns are "<part> mean difference", ...


def comparisons(cfg: Config) -> list[tuple[str, Arm, Arm]]:
    """(label, a, b): the differences a - b the study reports, per teacher (its RGB twin too)."""
    out = []
    for t in cfg.teachers:
        out.append((f"{t.name}: {KD_GAIN}", Arm(t.name, "student"), Arm(t.name, "no_kd_student")))
        # can it teach at all? KD pulls the student towards its teacher, for better or worse
        out.append((f"{t.name}: {LEAD}", Arm(t.name, "teacher"), Arm(t.name, "no_kd_student")))
        twin = cfg.twin(t.name)
        if twin:
            out += [(f"{t.name}: {IR_GAIN}", Arm(t.name, "student"), Arm(twin, "student")),
                    (f"{t.name}: {IR_LEAD}", Arm(t.name, "teacher"), Arm(twin, "teacher"))]
    return out


def model_table(cfg: Config, evaluations: dict) -> tuple[pd.DataFrame, dict]:
    """One row per teacher and model: n and mean [CI] of the primary metrics; and the per-teacher
    aggregates (every metric) for its aggregated results file."""
    rows, aggregated = [], {}
    for t in cfg.teachers:
        runs = [evaluations[t.name, s] for s in cfg.seeds]
        agg = {role: {key: summarize([metric_value(r[role], key) for r in runs]) for key in metric_keys(cfg.label_set)}
               for role in ROLES}
        for role in ROLES:
            agg[role] = with_aliases(agg[role])
            agg[role]["flags"] = flags(cfg, evaluations, Arm(t.name, role))
            rows.append({"teacher": t.name, "model": ROLES[role], "n": agg[role]["macro_f1"]["n"],
                         **{f"{metric_label(k)} {stat}": _stat(agg[role][k], stat)
                            for k in model_columns(cfg) for stat in ("mean", "low", "high")},
                         "flags": "; ".join(agg[role]["flags"])})
        agg["seeds"] = list(cfg.seeds)
        aggregated[t.name] = agg
    return pd.DataFrame(rows), aggregated


def flags(cfg: Config, evaluations: dict, arm: Arm) -> list[str]:
    """What is degenerate about a model, seed by seed ("seed 42: smoke always 0")."""
    return [f"seed {s}: {f['short']}" for s in cfg.seeds for f in evaluations[arm.teacher, s][arm.role].get("flags", [])]


def flag_warnings(cfg: Config, evaluations: dict) -> list[str]:
    """Every flagged model, in words: kept in the averages, never in silence."""
    return [f"{teacher} {ROLES[role]}, seed {seed}: {f['message']}"
            for (teacher, seed), e in evaluations.items() for role in ROLES
            if teacher == cfg.teachers[0].name or role != "no_kd_student"  # the no-KD student once
            for f in e[role].get("flags", [])]


def _stat(summary: dict, stat: str):
    return {"mean": summary["mean"], "low": summary["ci95"][0], "high": summary["ci95"][1]}[stat]


def difference_table(cfg: Config, evaluations: dict, layout: Layout, resamples: int = 1000) -> pd.DataFrame:
    """Every comparison x primary metric, and the teachers' macro-F1 pairwise; Holm over all."""
    rows = []
    for label, a, b in comparisons(cfg):
        for key in primary(cfg) + _breakdowns(evaluations):
            values = [[metric_value(evaluations[arm.teacher, s][arm.role], key) for s in cfg.seeds] for arm in (a, b)]
            boot = None
            if resampled := bootstrap_metric(cfg, key):
                reads_decisions, metric = resampled
                boot = block_bootstrap(_bootstrap_seeds(cfg, layout, evaluations, a, b, reads_decisions), metric,
                                       resamples)
            flagged = "; ".join(f"{ROLES[arm.role]} {f}" for arm in (a, b) for f in flags(cfg, evaluations, arm))
            rows.append(_difference_row(label, key, paired_difference(*values), boot, flagged, cfg.seeds))
    ir_teachers = [t.name for t in cfg.teachers if t.twin_of is None and not cfg.is_oracle(t.name)]
    for i, x in enumerate(ir_teachers):
        for y in ir_teachers[i + 1:]:
            values = [[metric_value(evaluations[name, s]["teacher"], "macro_f1") for s in cfg.seeds] for name in (x, y)]
            rows.append(_difference_row(f"teacher {x} - teacher {y}", "macro_f1", paired_difference(*values), None,
                                        seeds=cfg.seeds))
    table = pd.DataFrame(rows)
    if len(table):
        table.insert(table.columns.get_loc("p") + 1, "p (Holm)", holm(table["p"].tolist()))
    return table


def _breakdowns(evaluations: dict) -> tuple[str, ...]:
    """The truth breakdowns the data allows (kd synth's fire_rgb_visible), when the test sets hold
    fires RGB shows and fires it hides: otherwise the breakdown repeats the whole."""
    defined = [any(metric_value(e["student"], k) is not None for e in evaluations.values()) for k in BREAKDOWNS]
    return BREAKDOWNS if all(defined) else ()


def _difference_row(label: str, key: str, d: dict, boot: dict | None, flagged: str = "", seeds=()) -> dict:
    """One paired difference; ``missing seeds`` named by the seeds' numbers (``d["missing"]`` holds
    their positions in ``seeds``)."""
    return {"comparison": label, "metric": metric_label(key), "n seeds": d["n"], "mean difference": d["mean_difference"],
            "CI low": d["ci95"][0], "CI high": d["ci95"][1], "CI note": d["ci_note"] or "",
            "p": d["p_value"], "d_z": d["d_z"], "SD of differences": d["sd"],
            "detectable at 80% power": d["detectable"],
            "test-block bootstrap": boot["estimate"] if boot else None,
            "bootstrap low": boot["ci95"][0] if boot else None, "bootstrap high": boot["ci95"][1] if boot else None,
            "test blocks per seed": "/".join(map(str, boot["blocks"])) if boot else "",
            "missing seeds": ", ".join(str(seeds[i]) if i < len(seeds) else str(i) for i in d["missing"]),
            "flagged": flagged}


def _bootstrap_seeds(cfg: Config, layout: Layout, evaluations: dict, a: Arm, b: Arm,
                     reads_decisions: bool) -> list[dict]:
    """Per seed, both arms' test scores (or, with ``reads_decisions``, their 0/1 answers at each
    arm's own tuned thresholds, or its argmax: a resample moves frames, never a threshold chosen on
    validation)."""
    labels, out = cfg.label_set, []
    for seed in cfg.seeds:
        paths = [layout.predictions(arm.folder, seed, arm.fit_role) for arm in (a, b)]
        if not all(p.exists() for p in paths):
            continue
        pa, pb = (pd.read_csv(p, dtype={"id": str}).set_index("id") for p in paths)
        pb = pb.loc[pa.index]  # the same test frames, in the same order
        columns = [f"p_{label}" for label in labels.names]
        scores = [pa[columns].to_numpy(), pb[columns].to_numpy()]
        if reads_decisions:
            scores = [decisions(s, _thresholds(evaluations[arm.teacher, seed][arm.role], labels), labels).astype(float)
                      for s, arm in zip(scores, (a, b), strict=True)]
        out.append({"a": scores[0], "b": scores[1], "y": pa[list(labels.names)].to_numpy(),
                    "units": pa["unit"].to_numpy()})
    return out


def _thresholds(evaluation: dict, labels) -> np.ndarray | float:
    if labels.multiclass:
        return 0.5  # unused: classes are decided by the argmax
    return np.array([evaluation["metrics"]["tuned_thresholds"][label] for label in labels.names])


def baseline_table(cfg: Config, evaluations: dict) -> pd.DataFrame:
    """What a constant scorer gets on each seed's test set: a high F1 below this line is free."""
    rows = []
    for seed in cfg.seeds:
        evaluation = evaluations[cfg.teachers[0].name, seed]["no_kd_student"]
        if evaluation["metrics"].get("baseline"):
            rows.append({"seed": seed, "test frames": evaluation["test_frames"], **_baseline_row(cfg, evaluation)})
    return pd.DataFrame(rows)


def _baseline_row(cfg: Config, evaluation: dict) -> dict:
    """A constant scorer's figures: per label its prevalence, always-positive macro-F1 and first
    label's F1, AP and AUROC; for classes always answering the most frequent one."""
    labels = cfg.label_set
    if labels.multiclass:
        return {"most frequent class's share": baseline_value(evaluation, "accuracy"),
                "majority macro-F1": evaluation["metrics"]["baseline"].get("majority_macro_f1"),
                "AUROC of a constant": 0.5}
    first = labels.names[0]
    return {**{f"{n} prevalence": baseline_value(evaluation, f"{n}_prevalence") for n in labels.names},
            "always-positive macro-F1": baseline_value(evaluation, "macro_f1"),
            f"always-positive {first} F1": baseline_value(evaluation, f"{first}_f1"),
            f"{first} AP of a constant": baseline_value(evaluation, f"{first}_ap"),
            f"{first} AUROC of a constant": 0.5}


def missing_values(cfg: Config, evaluations: dict) -> list[str]:
    """Every undefined metric, by teacher, model and seed: said, not dropped."""
    lines = []
    keys = [k for k in metric_keys(cfg.label_set) if k not in BREAKDOWNS] + list(_breakdowns(evaluations))
    for (teacher, seed), e in evaluations.items():
        for role in ROLES:
            gaps = [metric_label(k) for k in keys if metric_value(e[role], k) is None]
            if gaps:
                lines.append(f"{teacher} {ROLES[role]}, seed {seed}: no {', '.join(gaps)} "
                             "(a class with one value in the test set)")
    return lines


def _row(differences: pd.DataFrame, teacher: str, what: str, key: str):
    rows = differences[(differences["comparison"] == f"{teacher}: {what}") & (differences["metric"] == metric_label(key))]
    return None if rows.empty else rows.iloc[0]


def _present(value) -> bool:
    return value is not None and not pd.isna(value)


def verdict(gain, lead=None, noun: str = "gain") -> str:
    """What one paired difference says, in words: found (its interval clear of 0), or not found,
    with the largest effect it leaves plausible and the smallest it could have detected."""
    if gain is None or not _present(gain["mean difference"]):
        return "not measured"
    n = int(gain["n seeds"])
    if not _present(gain["CI low"]):
        boot = (f"; test-block bootstrap [{gain['bootstrap low']:+.3f}, {gain['bootstrap high']:+.3f}], "
                "test-set uncertainty only" if _present(gain["bootstrap low"]) else "")
        return f"too few seeds for an interval over seeds ({n}){boot}"
    low, high = gain["CI low"], gain["CI high"]
    detect = (f"; with {n} seeds this study could detect {gain['detectable at 80% power']:.3f} (80% power)"
              if _present(gain["detectable at 80% power"]) else "")
    if low > 0:
        said = f"a {noun}: {gain['mean difference']:+.3f}, 95% CI above 0"
    elif high < 0:
        said = f"a loss: {gain['mean difference']:+.3f}, 95% CI below 0"
    else:
        said = f"no {noun} found: a {noun} above {high:+.3f} is unlikely{detect}"
    if lead is not None and _present(lead["CI high"]) and lead["CI high"] < 0:
        said += "; the teacher is below the student: KD cannot pay here"
    return said


KD_QUESTION = "does distillation help the student?"  # lead: teacher - no-KD; gain: distilled - no-KD
IR_QUESTION = "what does IR add?"  # lead: IR teacher - RGB teacher; gain: IR-distilled - RGB-distilled


def answer_table(cfg: Config, differences: pd.DataFrame) -> pd.DataFrame:
    """The study's answer in its headline metric (FLAME2: test fire AUROC), one row per teacher (and per RGB twin comparison):
    the teacher's lead over the no-KD student, what distillation did with its interval over seeds,
    the smallest difference the study could have detected, and the seeds a difference of the
    observed size would need; a verdict in words."""
    rows, key = [], cfg.headline_metric
    for t in cfg.teachers:
        kind = (" (oracle)" if cfg.is_oracle(t.name) else " (RGB only)" if t.twin_of
                else " (IR only)" if t.ir_only else "")
        rows.append({"question": KD_QUESTION, **_answer(t.name + kind, _row(differences, t.name, LEAD, key),
                                                         _row(differences, t.name, KD_GAIN, key))})
        if cfg.twin(t.name):
            rows.append({"question": IR_QUESTION, **_answer(t.name, _row(differences, t.name, IR_LEAD, key),
                                                             _row(differences, t.name, IR_GAIN, key),
                                                             noun="gain from IR")})
    return pd.DataFrame(rows)


def _answer(name: str, lead, gain, noun: str = "gain") -> dict:
    def part(row, prefix):
        keys = ("mean difference", "CI low", "CI high")
        return {f"{prefix} {k}": (None if row is None else row[k]) for k in keys}

    sd = None if gain is None else gain["SD of differences"]
    needed = seeds_needed(gain["mean difference"], sd) if gain is not None and _present(sd) else None
    return {"teacher": name, "seeds": None if gain is None else gain["n seeds"], **part(lead, LEAD_PART),
            **part(gain, GAIN_PART), "detectable at 80% power": None if gain is None else gain["detectable at 80% power"],
            "seeds to detect the observed gain": needed, "verdict": verdict(gain, lead, noun)}


def study_sentence(cfg: Config, differences: pd.DataFrame) -> str:
    """One line: how many teachers' students distillation helped, in the headline metric."""
    gains = [_row(differences, t.name, KD_GAIN, cfg.headline_metric) for t in cfg.teachers]
    found = [t.name for t, g in zip(cfg.teachers, gains, strict=True)
             if g is not None and _present(g["CI low"]) and g["CI low"] > 0]
    n = len(cfg.seeds)
    if n < 3:
        return (f"Over {n} seed(s) no interval over seeds can be drawn: the table below gives each teacher's "
                "differences with the test-block bootstrap (test-set uncertainty only).")
    return (f"Distillation raised the student's test {metric_label(cfg.headline_metric)}, 95% CI over {n} seeds above 0, for "
            f"{len(found)} of {len(gains)} teachers" + (f" ({', '.join(found)})" if found else "") + ".")


def load_evaluations(cfg: Config, layout: Layout) -> dict:
    evaluations = {}
    for t in cfg.teachers:
        for seed in cfg.seeds:
            path = layout.final_evaluation(t.name, seed)
            if not path.exists():
                raise KDError(f"missing {path}: run the teacher's stages first")
            evaluations[t.name, seed] = read_json(path)
    return evaluations


def per_seed_points(cfg: Config, evaluations: dict, key: str) -> pd.DataFrame:
    """Long form: teacher, model, seed, value (for the per-seed plots)."""
    return pd.DataFrame([{"teacher": t.name, "model": ROLES[role], "seed": s,
                          "value": metric_value(evaluations[t.name, s][role], key)}
                         for t in cfg.teachers for role in ROLES for s in cfg.seeds])


def consistency(evaluations: dict, allow_mixed: bool) -> list[str]:
    """Runs to be aggregated must share their data and their config (but for teacher and seed)."""
    fingerprints, digests = {}, {}
    for (teacher, seed), e in evaluations.items():
        p = e["provenance"]
        fingerprints.setdefault(json_key(p["data"]), []).append(f"{teacher}/seed {seed}")
        config = result_settings(p["config"])
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


def variant_table(cfg: Config, evaluations: dict, aggregated: dict) -> pd.DataFrame:
    """Per teacher and compressed variant: macro-F1 over seeds, mean size and median latency (no
    rows where nothing was compressed)."""
    latency = latency_header(latency_key(cfg.image_size, 1))
    rows = []
    for t in cfg.teachers:
        runs = [evaluations[t.name, s] for s in cfg.seeds]
        for variant in variant_names(runs):
            variant_runs = [r["compression"]["variants"][variant] if "compression" in r else None for r in runs]
            s = summarize([metric_value(v, "macro_f1") if v else None for v in variant_runs])
            aggregated[t.name][f"student_{variant}"] = with_aliases({"macro_f1": s})
            present = [v for v in variant_runs if v]
            rows.append({"teacher": t.name, "variant": variant, "n": s["n"], "macro-F1 mean": s["mean"],
                         "macro-F1 low": s["ci95"][0], "macro-F1 high": s["ci95"][1],
                         "size, MB": float(np.mean([v["cost"]["size_mb"] for v in present])) if present else None,
                         latency: float(np.median([batch1_ms(v, cfg) for v in present])) if present else None})
    return pd.DataFrame(rows, columns=["teacher", "variant", "n", "macro-F1 mean", "macro-F1 low", "macro-F1 high",
                                       "size, MB", latency])


def variant_names(runs: list[dict]) -> list[str]:
    """The compressed variants the runs hold, by name."""
    return sorted({v for r in runs if "compression" in r for v in r["compression"]["variants"]})


def batch1_ms(record: dict, cfg: Config) -> float:
    """A model's CPU latency at the run's image size, batch 1 (every record has it)."""
    return record["timing"]["latency"][latency_key(cfg.image_size, 1)]["median_ms"]


# --- the methods axis ----------------------------------------------------------------------------

METHOD_GAIN, METHOD_VS_BASE = "gain", "against"  # the methods table's two parts: - no-KD, - the study's own student


def load_method_evaluations(cfg: Config, layout: Layout) -> dict:
    """(teacher, method label, seed) -> the record of that method's student."""
    out = {}
    for t in cfg.teachers:
        for m in cfg.methods:
            for seed in cfg.seeds:
                path = layout.evaluation(method_run(t.name, m.run), seed, "student")
                if not path.exists():
                    raise KDError(f"missing {path}: run the method's student stage first")
                out[t.name, m.run, seed] = read_json(path)
    return out


def method_table(cfg: Config, evaluations: dict, method_evaluations: dict) -> pd.DataFrame:
    """Per teacher, the study's own student (``kd_loss``) and each method's: its headline metric
    over seeds, its difference from the no-KD student and from the study's own student, paired by
    seed, p-values Holm-adjusted over the methods of that teacher (each question a family)."""
    if not cfg.methods:
        return pd.DataFrame()
    key, rows = cfg.headline_metric, []
    for t in cfg.teachers:
        no_kd = [metric_value(evaluations[t.name, s]["no_kd_student"], key) for s in cfg.seeds]
        base = [metric_value(evaluations[t.name, s]["student"], key) for s in cfg.seeds]
        arms = [(cfg.kd_loss, base)] + [(m.run, [metric_value(method_evaluations[t.name, m.run, s], key)
                                                 for s in cfg.seeds]) for m in cfg.methods]
        teacher_rows = []
        for label, values in arms:
            s = summarize(values)
            row = {"teacher": t.name, "method": label, "seeds": s["n"], "mean": s["mean"], "low": s["ci95"][0],
                   "high": s["ci95"][1]}
            for part, other in ((METHOD_GAIN, no_kd), (METHOD_VS_BASE, base)):
                own = part == METHOD_VS_BASE and label == cfg.kd_loss  # the baseline against itself
                row.update(_method_part(part, None if own else paired_difference(values, other)))
            teacher_rows.append(row)
        for part in (METHOD_GAIN, METHOD_VS_BASE):
            tested = [i for i, r in enumerate(teacher_rows) if r[f"{part} p"] is not None]
            adjusted = holm([teacher_rows[i][f"{part} p"] for i in tested])
            for i, r in enumerate(teacher_rows):
                r[f"{part} p (Holm)"] = adjusted[tested.index(i)] if i in tested else None
        for r in teacher_rows:
            r["verdict"] = method_verdict(r, cfg.kd_loss)
        rows += teacher_rows
    return pd.DataFrame(rows)


def _method_part(part: str, d: dict | None) -> dict:
    keys = {"mean difference": "mean_difference", "p": "p_value", "detectable at 80% power": "detectable"}
    row = {f"{part} {k}": None if d is None else d[v] for k, v in keys.items()}
    row[f"{part} CI low"], row[f"{part} CI high"] = (None, None) if d is None else d["ci95"]
    return row


def method_verdict(row: dict, base: str) -> str:
    """What a method did, in words: against the no-KD student, then against the study's own student."""
    said = [verdict({"mean difference": row[f"{METHOD_GAIN} mean difference"], "n seeds": row["seeds"],
                     "CI low": row[f"{METHOD_GAIN} CI low"], "CI high": row[f"{METHOD_GAIN} CI high"],
                     "detectable at 80% power": row[f"{METHOD_GAIN} detectable at 80% power"],
                     "bootstrap low": None})]
    if row["method"] != base and _present(row[f"{METHOD_VS_BASE} mean difference"]):
        low, high = row[f"{METHOD_VS_BASE} CI low"], row[f"{METHOD_VS_BASE} CI high"]
        if _present(low) and low > 0:
            said.append(f"beats {base}")
        elif _present(high) and high < 0:
            said.append(f"below {base}")
        elif _present(low):
            said.append(f"not told apart from {base}")
    return "; ".join(said)
