"""One evaluation record for every model and variant: test metrics in fp32 (at 0.5 and at
thresholds tuned on validation), cost, CPU latency; and the seed's final evaluation, the teacher,
its student and the no-KD student side by side with provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kdcore.evaluation.metrics import final_metrics, visibility_breakdown
from kdcore.evaluation.records import latency_key, walk
from kdcore.io import atomic_path, read_json, write_json
from kdcore.layout import NO_KD, Layout
from kdcore.models.profile import example_inputs, latency_ms
from kdcore.models.profile import profile as profile_model
from kdcore.provenance import provenance as record_provenance
from kdcore.study.config import Config
from kdcore.study.work.seed_data import SeedData
from kdcore.training.loop import is_main_process, predict, resolve_device

DEPLOYMENT_SIZE = 224  # a deployable student is also timed at the frame size of a drone's camera feed


def latencies(model: torch.nn.Module, sizes, batches, repeats: int) -> dict:
    """Median CPU forward time per (image size, batch); larger batches get a fifth of the repeats."""
    out = {}
    for size in sorted(set(sizes)):
        for batch in batches:
            inputs = example_inputs(model, size, batch)
            out[latency_key(size, batch)] = latency_ms(model, inputs, repeats if batch == 1 else max(1, repeats // 5),
                                                       warmup=3 if batch == 1 else 1)
    return out


def measure(model: torch.nn.Module, cfg: Config, data: SeedData, file: Path, device: str | torch.device = "cpu",
            architecture: torch.nn.Module | None = None, deployable: bool = False) -> tuple[dict, dict]:
    """The record of one model (a torch module, or an ``OnnxModel`` with its ``architecture``):
    metrics, cost and CPU latency (at the run's size, batch 1; a deployable student also at 224
    and every latency batch); with the test predictions it came from."""
    with_ir = "ir" in getattr(model, "modalities", ("rgb",))
    labels = cfg.label_set
    test = predict(model, data.dataset("test", with_ir), cfg.eval_batch_size, device, bf16=False, labels=labels)
    val = predict(model, data.dataset("val", with_ir), cfg.eval_batch_size, device, bf16=False, labels=labels)
    metrics = final_metrics(test["probs"], test["targets"], val["probs"], val["targets"], labels)
    if "fire_rgb_visible" in data.table.frames and labels.names[0] == "fire" and not labels.multiclass:
        visible = data.table.frames["fire_rgb_visible"].to_numpy()[data.split.test]
        metrics["fire_by_rgb_visibility"] = visibility_breakdown(test["probs"], test["targets"], visible,
                                                                 metrics["tuned_thresholds"]["fire"])
    cost = profile_model(architecture or model, cfg.image_size, thop=False)
    cost = {**{k: cost[k] for k in ("params_total", "params_trainable", "params_frozen", "gmacs", "gflops")},
            "size_mb": Path(file).stat().st_size / 1e6, "file": Path(file).name, "img_size": cfg.image_size}
    runner = model.to("cpu").eval()
    sizes, batches = ((DEPLOYMENT_SIZE, cfg.image_size), cfg.latency_batches) if deployable else ((cfg.image_size,), (1,))
    record = {"metrics": metrics, "cost": cost, "test_frames": len(test["targets"]),
              "flags": constant_flags(metrics),
              "timing": {"latency": latencies(runner, sizes, batches, cfg.latency_repeats)}}
    return record, test


def constant_flags(metrics: dict) -> list[dict]:
    """A label the model answers the same on every test frame at its threshold, or one class it
    answers for every item: degenerate."""
    if "tuned_thresholds" not in metrics:  # classes: decided by the argmax
        answered = metrics["constant_predictions"]["class"]
        return [] if answered is None else [flag(
            "constant_prediction", f"always {answered}",
            f"answers class {answered} for every test item; its accuracy is that class's share "
            f"({_number(metrics['accuracy'])})")]
    return [flag("constant_prediction", f"{label} always {value}",
                 f"{label}: predicts {value} on every test frame at its threshold "
                 f"({metrics['tuned_thresholds'][label]:.3f}); its F1 says nothing of what it ranks "
                 f"(test AUROC {_number(metrics['ranking'][label]['auroc'])})")
            for label, value in metrics["constant_predictions"].items() if value is not None]


def selection_flags(log: dict) -> list[dict]:
    """A fit whose validation criterion never moved: its kept epoch was chosen for no reason."""
    selection = log["selection"]
    if not selection["flat"]:
        return []
    return [flag("flat_selection", "no selection signal",
                 f"selection had no signal: the {selection['criterion']} never moved over "
                 f"{len(log['epochs'])} epochs ({_number(selection['best'])}), so epoch {log['best_epoch']} "
                 "was kept for no reason")]


def flag(kind: str, short: str, message: str) -> dict:
    return {"kind": kind, "short": short, "message": message}


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate(model: torch.nn.Module, cfg: Config, data: SeedData, log: dict, checkpoint: Path,
             predictions: Path) -> dict:
    """A fitted model's record, with how its training went; its per-frame test scores go to
    ``predictions`` (for the block bootstrap)."""
    device = resolve_device(cfg.device)
    record, test = measure(model, cfg, data, checkpoint, device)
    model.to(device)
    write_predictions(predictions, test, data.split.units[data.split.test], cfg.label_set.names)
    record["training"] = {"best_epoch": log["best_epoch"], "epochs_run": len(log["epochs"]),
                          "stopped_by": log["stopped_by"], "selection": log["selection"]}
    record["flags"] += selection_flags(log)
    record["timing"]["train_s"] = log["timing"]["train_s"]
    return record


def lead_metric(headline: str, first: str) -> tuple[tuple[str, ...], str]:
    """Where a teacher's lead over the no-KD student is read, before the student trains, with its
    name in words: the validation value of the study's headline (a label's AUROC, or accuracy);
    for a headline records keep no validation value of, the ``first`` output's validation AUROC."""
    if headline == "accuracy":
        return ("validation_accuracy",), "validation accuracy"
    label = headline[: -len("_auroc")] if headline.endswith("_auroc") else first
    return ("validation_ranking", label, "auroc"), f"validation {label} AUROC"


def teacher_lead(teacher: dict, no_kd: dict, headline: str = "fire_auroc") -> dict:
    """The teacher's lead over the no-KD student in the validation headline (FLAME2: fire AUROC),
    known before the student trains: distillation pulls the student towards its teacher, so it can
    only pay where the teacher is ahead."""
    path, words = lead_metric(headline, next(iter(teacher["metrics"]["validation_ranking"])))
    ours, theirs = (walk(r["metrics"], path) for r in (teacher, no_kd))
    lead = None if ours is None or theirs is None else ours - theirs
    if lead is None:
        verdict = f"the teacher's lead is undefined ({words} missing)"
    elif lead > 0:
        verdict = (f"KD can pay: the teacher leads the no-KD student by {lead:+.3f} in {words} "
                   f"({ours:.3f} against {theirs:.3f})")
    else:
        verdict = (f"the teacher is below the student: KD cannot pay here ({lead:+.3f} in {words}, "
                   f"{ours:.3f} against {theirs:.3f})")
    return {"metric": words.replace("AUROC", "auroc"), "teacher": ours, "no_kd_student": theirs, "lead": lead,
            "verdict": verdict}


def oracle_evaluation(data: SeedData, outputs, predictions: Path) -> dict:
    """The oracle teacher's record: its metrics from its outputs (the labels), no cost, no latency."""
    label_set = data.table.label_set
    logits = outputs.logits
    probs = (torch.softmax(logits, 1) if label_set.multiclass else torch.sigmoid(logits)).numpy()
    test, val = (data.indices(part) for part in ("test", "val"))
    labels = data.table.targets
    metrics = final_metrics(probs[test], labels[test], probs[val], labels[val], label_set)
    ids = data.table.frames["id"]
    write_predictions(predictions, {"ids": ids.iloc[test].tolist(), "targets": labels[test], "probs": probs[test]},
                      data.split.units[test], label_set.names)
    return {"metrics": metrics, "oracle": True, "test_frames": len(test), "flags": constant_flags(metrics),
            "cost": {"params_total": 0, "params_trainable": 0, "params_frozen": 0, "gmacs": 0.0, "gflops": 0.0,
                     "size_mb": 0.0, "file": None, "img_size": None},
            "timing": {"latency": {}, "train_s": 0.0}}


def write_predictions(path: Path, out: dict, units: np.ndarray, names: tuple[str, ...]) -> None:
    """Per test frame: id, block, true labels (or one-hot class), scores (CSV: readable and small)."""
    import pandas as pd

    table = pd.DataFrame({"id": out["ids"], "unit": units,
                          **{label: out["targets"][:, k].astype(int) for k, label in enumerate(names)},
                          **{f"p_{label}": out["probs"][:, k] for k, label in enumerate(names)}})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.7g")


def provenance(cfg: Config, data: SeedData | None = None) -> dict:
    """Code, packages, config and the environment this process runs in; with one seed's ``data``,
    its seed, split and the data's fingerprint too."""
    return record_provenance(cfg, data, resolve_device(cfg.device))


def final_evaluation(cfg: Config, data: SeedData, name: str) -> dict:
    """The teacher, its student and the seed's no-KD student, side by side, with provenance (and
    the compressed students, where they were made)."""
    layout, seed = Layout(cfg.output), data.seed
    path = layout.final_evaluation(name, seed)
    if not is_main_process():
        return {}
    if path.exists():
        return read_json(path)
    result = {
        "teacher": read_json(layout.evaluation(name, seed, "teacher")),
        "student": read_json(layout.evaluation(name, seed, "student")),
        "no_kd_student": read_json(layout.evaluation(NO_KD, seed, "student")),
        "provenance": provenance(cfg, data),
    }
    compression = layout.compression(name, seed)
    if compression.exists():
        result["compression"] = read_json(compression)
    write_json(path, result)
    return result
