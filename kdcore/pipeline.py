"""One teacher's pipeline for one seed, as functions the notebooks (and ``kd run``) call.

Data per seed -> teacher (BCE) -> teacher outputs cached -> distilled student; and, once per seed,
the no-KD student on the same split, shared by every teacher. Every fit resumes and every file is
written atomically; a stage whose outputs exist is not trained again.

Under torchrun every rank trains; rank 0 alone evaluates and writes, and each step begins with a
barrier so that every rank sees what rank 0 wrote in the step before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdcore.config import Config, TeacherConfig
from kdcore.data import (
    FrameDataset,
    FrameTable,
    Split,
    decoded_frames,
    make_split,
    normalization_stats,
    read_frame_csv,
    synth,
)
from kdcore.data.splits import labelled_mask
from kdcore.distill import BCE, TeacherOutputs, build_criterion
from kdcore.errors import KDError
from kdcore.io import atomic_path, read_json, write_json
from kdcore.layout import NO_KD, Layout, synth_recipe
from kdcore.metrics import final_metrics, visibility_breakdown
from kdcore.models import Student, create_teacher
from kdcore.profile import example_inputs, latency_ms
from kdcore.profile import profile as profile_model
from kdcore.provenance import code_version, data_fingerprint, environment, package_versions
from kdcore.train import (
    FitSettings,
    finished,
    fit,
    is_main_process,
    load_best,
    main_process_first,
    predict,
    resolve_device,
    synchronize,
)


@dataclass
class SeedData:
    """One seed's split of the frames, with normalization fitted on its training part, and which
    training frames' labels may be used (all but under a label budget)."""

    table: FrameTable
    split: Split
    stats: dict
    rgb: np.ndarray
    ir: np.ndarray
    seed: int
    labelled: np.ndarray  # bool per frame

    def indices(self, part: str) -> np.ndarray:
        """``all``, a part, or ``labelled``: the training frames whose labels are used."""
        if part == "all":
            return np.arange(len(self.table))
        if part == "labelled":
            return self.split.train[self.labelled[self.split.train]]
        return self.split.parts()[part]

    def dataset(self, part: str | np.ndarray, with_ir: bool = True, augment: bool = False) -> FrameDataset:
        indices = self.indices(part) if isinstance(part, str) else part
        return FrameDataset(self.rgb, self.ir if with_ir else None, self.table.labels,
                            self.table.frames["id"].tolist(), indices, self.stats, augment)

    @property
    def label_budget(self) -> bool:
        return not self.labelled[self.split.train].all()

    def labelled_ids(self) -> set[str] | None:
        """The ids whose labels the distilled student's hard term may use; None: all of them."""
        return set(self.table.frames["id"].iloc[self.indices("labelled")]) if self.label_budget else None


def ensure_data(cfg: Config) -> Path:
    """The CSV, generated first when the config asks for synthetic data and it is missing."""
    csv = Path(cfg.csv)
    recipe_path = synth_recipe(csv)
    recipe = {"frames": cfg.synth_frames, "size": cfg.synth_size, "options": cfg.synth_options}
    if not csv.exists() and cfg.synth_frames > 0:
        synth(csv.parent, frames=cfg.synth_frames, size=cfg.synth_size, seed=0, options=cfg.synth_options)
        write_json(recipe_path, recipe)
    if not csv.exists():
        raise KDError(f"config key 'csv': no such file {csv}")
    if cfg.synth_frames > 0 and recipe_path.exists() and read_json(recipe_path) != recipe:
        raise KDError(f"config key 'synth_options': the data at {csv.parent} was generated with other "
                      f"settings ({read_json(recipe_path)}); remove that folder or point csv elsewhere")
    return csv


def prepare_data(cfg: Config, seed: int, progress: bool = True) -> SeedData:
    table = read_frame_csv(ensure_data(cfg), cfg.base_path, check_images=False)
    layout = Layout(cfg.output)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else layout.cache()
    with main_process_first():
        rgb = decoded_frames(table, "rgb", cfg.image_size, cache, progress)
        ir = decoded_frames(table, "ir", cfg.image_size, cache, progress)
    split = make_split(table.combos, table.groups, cfg.split, seed, cfg.block_frames, cfg.gap_frames)
    labelled = labelled_mask(split, table.combos, cfg.labelled_fraction, seed)
    stats = normalization_stats(rgb, ir, split.train)
    ids = table.frames["id"]
    if is_main_process():
        parts = split.parts()
        write_json(layout.split(seed), {
            "mode": split.mode, "seed": seed, "left_out": split.left_out,
            **{p: ids.iloc[ix].tolist() for p, ix in parts.items()},
            "units": {p: split.units[ix].tolist() for p, ix in parts.items()},
            "unlabelled_train": ids.iloc[split.train[~labelled[split.train]]].tolist()})
        write_json(layout.normalization(seed), stats)
    return SeedData(table, split, stats, rgb, ir, seed, labelled)


def fit_settings(cfg: Config, seed: int, role: str, teacher: TeacherConfig | None = None) -> FitSettings:
    is_teacher = role == "teacher"
    epochs = {"teacher": cfg.epochs_teacher, "finetune": cfg.finetune_epochs}.get(role, cfg.epochs_student)
    return FitSettings(
        epochs=epochs, patience=cfg.patience_teacher if is_teacher else cfg.patience_student,
        lr=(teacher.lr if teacher and teacher.lr else cfg.lr_teacher) if is_teacher else cfg.lr_student,
        batch_size=(teacher.batch_size if teacher and teacher.batch_size else cfg.batch_size),
        seed=seed, weight_decay=cfg.weight_decay, eval_batch_size=cfg.eval_batch_size,
        num_workers=cfg.num_workers, device=cfg.device, bf16=cfg.bf16,
        channels_last=cfg.channels_last, compile=cfg.compile, deterministic=cfg.deterministic)


def build_teacher(cfg: Config, name: str) -> torch.nn.Module:
    t = cfg.teacher(name)
    return create_teacher(t.name, cfg.image_size, t.pretrained, t.ir_init, t.rgb_only, t.family,
                          t.backbone, t.backbone_kwargs)


def build_student(cfg: Config) -> Student:
    return Student(stem_stride=cfg.student_stem_stride)


def train_teacher(cfg: Config, name: str, data: SeedData) -> dict:
    """Fit (or resume) the teacher on the labelled training frames, evaluate it, and cache its
    outputs for every frame (out-of-fold on its own training frames under ``crossfit``)."""
    layout, seed = Layout(cfg.output), data.seed
    paths = layout.fit_paths(name, seed, "teacher")
    outputs_path = layout.teacher_outputs(name, seed)
    evaluation_path = layout.evaluation(name, seed, "teacher")
    synchronize()
    if finished(paths) and outputs_path.exists() and evaluation_path.exists():
        return read_json(evaluation_path)
    torch.manual_seed(seed)
    teacher = build_teacher(cfg, name)
    with_ir = "ir" in teacher.modalities
    log = fit(teacher, BCE(), data.dataset("labelled", with_ir, augment=cfg.augment), data.dataset("val", with_ir),
              fit_settings(cfg, seed, "teacher", cfg.teacher(name)), paths, desc=f"{name} teacher")
    if not is_main_process() and cfg.teacher_outputs != "crossfit":
        return {}
    load_best(teacher, paths.best)
    outputs = teacher_outputs(teacher, data.dataset("all", with_ir), cfg.eval_batch_size, cfg.device)
    crossfit = crossfit_outputs(cfg, name, data, outputs) if cfg.teacher_outputs == "crossfit" else None
    if not is_main_process():
        return {}
    outputs.save(outputs_path)
    evaluation = evaluate(teacher, cfg, data, log, paths.best, layout.predictions(name, seed, "teacher"))
    if crossfit:
        evaluation["teacher_outputs"] = crossfit
    write_json(evaluation_path, evaluation)
    return evaluation


def teacher_outputs(teacher: torch.nn.Module, dataset, batch_size: int = 64, device: str = "auto") -> TeacherOutputs:
    """The teacher's fp32 logits (not a round trip through sigmoid, which saturates) and pooled
    features for every frame of ``dataset``."""
    out = predict(teacher, dataset, batch_size, device, features=True, bf16=False)
    return TeacherOutputs(out["ids"], torch.from_numpy(out["logits"]), torch.from_numpy(out["features"]))


def crossfit_folds(data: SeedData, folds: int) -> list[np.ndarray]:
    """The labelled training frames in ``folds`` parts of whole blocks, each label combination
    spread over the folds."""
    rows = data.indices("labelled")
    units, combos = data.split.units[rows], data.table.combos[rows]
    if len(np.unique(units)) < folds:
        raise KDError(f"teacher_outputs 'crossfit' needs at least {folds} labelled training blocks, "
                      f"found {len(np.unique(units))}: lower crossfit_folds or label more blocks")
    rng = np.random.default_rng([data.seed, 2])
    fold_of, dealt = {}, 0
    for combo in sorted(set(combos.tolist())):  # dealt round-robin across combinations: no fold is empty
        for u in rng.permutation(np.unique(units[combos == combo])).tolist():
            if u not in fold_of:
                fold_of[u], dealt = dealt % folds, dealt + 1
    fold = np.array([fold_of[u] for u in units.tolist()])
    return [rows[fold == k] for k in range(folds)]


def crossfit_outputs(cfg: Config, name: str, data: SeedData, outputs: TeacherOutputs) -> dict:
    """Replace the teacher's outputs on its own training frames (memorized there) by those of
    teachers that never saw them: one teacher per fold, trained on the other folds."""
    layout, seed = Layout(cfg.output), data.seed
    folds = crossfit_folds(data, cfg.crossfit_folds)
    row_of = {frame_id: i for i, frame_id in enumerate(outputs.ids)}
    seconds = 0.0
    for k, held_out in enumerate(folds):
        torch.manual_seed(seed * 1000 + k + 1)
        teacher = build_teacher(cfg, name)
        with_ir = "ir" in teacher.modalities
        rest = np.concatenate([f for j, f in enumerate(folds) if j != k])
        paths = layout.fit_paths(name, seed, f"teacher_fold{k}")
        log = fit(teacher, BCE(), data.dataset(rest, with_ir, augment=cfg.augment), data.dataset("val", with_ir),
                  fit_settings(cfg, seed, "teacher", cfg.teacher(name)), paths, desc=f"{name} teacher fold {k + 1}")
        seconds += log["timing"]["train_s"]
        if not is_main_process():
            continue
        load_best(teacher, paths.best)
        fold_out = teacher_outputs(teacher, data.dataset(held_out, with_ir), cfg.eval_batch_size, cfg.device)
        rows = torch.tensor([row_of[i] for i in fold_out.ids])
        outputs.logits[rows], outputs.features[rows] = fold_out.logits, fold_out.features
    return {"mode": "crossfit", "folds": len(folds), "frames": [len(f) for f in folds], "train_s": seconds}


def online_teacher(cfg: Config) -> bool:
    return cfg.teacher_outputs == "online" or (cfg.teacher_outputs == "auto" and cfg.augment)


def student_criterion(cfg: Config, data: SeedData, teacher: str | None, student: Student) -> torch.nn.Module:
    """BCE for the no-KD student; else the config's KD loss from the teacher's cached (or online)
    outputs, its hard term on the labelled frames only."""
    if teacher is None:
        return build_criterion(cfg, None)
    if online_teacher(cfg):
        source = build_teacher_from_run(cfg, teacher, data.seed)
        teacher_dim = source.num_features
    else:
        source = TeacherOutputs.load(Layout(cfg.output).teacher_outputs(teacher, data.seed))
        teacher_dim = source.features.shape[1]
    return build_criterion(cfg, source, student.num_features, teacher_dim, data.labelled_ids())


def train_student(cfg: Config, data: SeedData, teacher: str | None) -> dict:
    """The distilled student of ``teacher`` (KD on every training frame), or with ``teacher=None``
    the no-KD baseline (the labelled frames only)."""
    layout, seed = Layout(cfg.output), data.seed
    folder = teacher or NO_KD
    paths = layout.fit_paths(folder, seed, "student")
    evaluation_path = layout.evaluation(folder, seed, "student")
    synchronize()
    if finished(paths) and evaluation_path.exists():
        return read_json(evaluation_path)
    torch.manual_seed(seed)
    student = build_student(cfg)
    criterion = student_criterion(cfg, data, teacher, student)
    with_ir = teacher is not None and online_teacher(cfg)  # the online teacher reads the pair
    train_set = data.dataset("train" if teacher else "labelled", with_ir=with_ir, augment=cfg.augment)
    from kdcore.checkpoint import student_meta

    meta = student_meta(student, normalization=data.stats["rgb"], image_size=cfg.image_size)
    log = fit(student, criterion, train_set, data.dataset("val", with_ir=with_ir),
              fit_settings(cfg, seed, "student"), paths, desc=f"{folder} student", best_meta=meta)
    if not is_main_process():
        return {}
    load_best(student, paths.best)
    evaluation = evaluate(student, cfg, data, log, paths.best, layout.predictions(folder, seed, "student"))
    write_json(evaluation_path, evaluation)
    return evaluation


def build_teacher_from_run(cfg: Config, name: str, seed: int) -> torch.nn.Module:
    teacher = build_teacher(cfg, name)
    return load_best(teacher, Layout(cfg.output).fit_paths(name, seed, "teacher").best)


def evaluate(model: torch.nn.Module, cfg: Config, data: SeedData, log: dict, checkpoint: Path,
             predictions: Path) -> dict:
    """Test metrics in fp32 (at 0.5 and at thresholds tuned on validation), cost, and how training
    went; the per-frame test scores go to ``predictions`` for the block bootstrap."""
    with_ir = "ir" in model.modalities
    device = resolve_device(cfg.device)
    test = predict(model, data.dataset("test", with_ir), cfg.eval_batch_size, device, bf16=False)
    val = predict(model, data.dataset("val", with_ir), cfg.eval_batch_size, device, bf16=False)
    write_predictions(predictions, test, data.split.units[data.split.test])
    cost = profile_model(model, cfg.image_size, thop=False)
    cpu_model = model.to("cpu").eval()
    inputs = example_inputs(cpu_model, cfg.image_size)
    timing = {"latency_batch1": latency_ms(cpu_model, inputs, repeats=cfg.latency_repeats),
              "train_s": log["timing"]["train_s"]}
    model.to(device)
    metrics = final_metrics(test["probs"], test["targets"], val["probs"], val["targets"])
    if "fire_rgb_visible" in data.table.frames:
        visible = data.table.frames["fire_rgb_visible"].to_numpy()[data.split.test]
        metrics["fire_by_rgb_visibility"] = visibility_breakdown(test["probs"], test["targets"], visible)
    return {
        "metrics": metrics,
        "cost": {**{k: cost[k] for k in ("params_total", "params_trainable", "params_frozen", "gmacs", "gflops")},
                 "size_mb": checkpoint.stat().st_size / 1e6, "img_size": cfg.image_size},
        "training": {"best_epoch": log["best_epoch"], "epochs_run": len(log["epochs"]),
                     "stopped_by": log["stopped_by"], "best_val_macro_f1": log["best_val_macro_f1"]},
        "timing": timing,
        "test_frames": len(test["targets"]),
    }


def write_predictions(path: Path, out: dict, units: np.ndarray) -> None:
    """Per test frame: id, block, true labels, scores (CSV: readable and small)."""
    import pandas as pd

    from kdcore.data import LABELS

    table = pd.DataFrame({"id": out["ids"], "unit": units,
                          **{label: out["targets"][:, k].astype(int) for k, label in enumerate(LABELS)},
                          **{f"p_{label}": out["probs"][:, k] for k, label in enumerate(LABELS)}})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.7g")


def provenance(cfg: Config, data: SeedData | None = None) -> dict:
    """Code, packages, config and environment; with one seed's ``data``, its seed, split and the
    data's fingerprint too."""
    record = {"code": code_version(), "packages": package_versions(), "config": cfg.to_dict(),
              "config_digest": cfg.digest(), "environment": environment(resolve_device(cfg.device))}
    if data is not None:
        paths = data.table.frames["rgb_path"].tolist() + data.table.frames["ir_path"].tolist()
        record.update(seed=data.seed, split_mode=data.split.mode, data=data_fingerprint(data.table.csv, paths))
    return record


def final_evaluation(cfg: Config, name: str, data: SeedData) -> dict:
    """The teacher, its student and the seed's no-KD student, side by side, with provenance."""
    layout, seed = Layout(cfg.output), data.seed
    path = layout.final_evaluation(name, seed)
    synchronize()
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


def run_teacher_pipeline(cfg: Config, name: str, seed: int, progress: bool = True) -> dict:
    """Everything for one teacher and seed, reusing whatever already finished."""
    data = prepare_data(cfg, seed, progress)
    train_student(cfg, data, None)
    train_teacher(cfg, name, data)
    train_student(cfg, data, name)
    if cfg.compresses(name):
        compress_student(cfg, name, data)
    return final_evaluation(cfg, name, data)


# --- compression -------------------------------------------------------------------------------

VARIANTS = ("fp32", "int8", "pruned", "pruned_int8")


def compress_student(cfg: Config, name: str, data: SeedData) -> dict:
    """The distilled student as fp32, int8, pruned (fine-tuned by KD) and pruned + int8, each
    measured the same way; ``compression.json`` beside the other metrics."""
    from kdcore.checkpoint import load_student, save_student, student_meta
    from kdcore.compress import OnnxModel, export_onnx, prune_student, quantize_onnx

    layout, seed = Layout(cfg.output), data.seed
    result_path = layout.compression(name, seed)
    synchronize()
    if result_path.exists():
        return read_json(result_path)
    student, _ = load_student(layout.fit_paths(name, seed, "student").best)
    meta = {"normalization": data.stats["rgb"], "image_size": cfg.image_size}
    paths = layout.fit_paths(name, seed, "student_pruned")
    pruned = prune_student(student, cfg.prune_sparsity, cfg.image_size)
    if cfg.finetune_epochs > 0:  # the student's own objective: KD on every frame, BCE where labelled
        with_ir = online_teacher(cfg)
        fit(pruned, student_criterion(cfg, data, name, pruned), data.dataset("train", with_ir, cfg.augment),
            data.dataset("val", with_ir), fit_settings(cfg, seed, "finetune"), paths,
            desc=f"{name} pruned student", best_meta=student_meta(pruned, **meta))
    if not is_main_process():
        return {}  # the other ranks only help fine-tune
    if cfg.finetune_epochs > 0:
        load_best(pruned, paths.best)
    else:
        save_student(pruned, paths.best, **meta)
    calibration = _calibration_frames(data)
    files = {"fp32": layout.fit_paths(name, seed, "student").best, "pruned": paths.best}
    for variant, model in (("fp32", student), ("pruned", pruned)):
        onnx_path = export_onnx(model, layout.onnx(name, seed, variant), cfg.image_size)
        files[f"{variant}_onnx"] = onnx_path
        files["int8" if variant == "fp32" else "pruned_int8"] = quantize_onnx(
            onnx_path, layout.quantized(name, seed, variant), calibration)
        files[f"{variant}_safetensors"] = layout.safetensors(name, seed, variant)
    runners = {"fp32": student, "int8": OnnxModel(files["int8"]), "pruned": pruned,
               "pruned_int8": OnnxModel(files["pruned_int8"])}
    result = {"variants": {}, "parity": _onnx_parity(student, OnnxModel(files["fp32_onnx"]), data)}
    for variant, model in runners.items():
        architecture = pruned if variant.startswith("pruned") else student
        result["variants"][variant] = measure_variant(model, architecture, files[variant], cfg, data)
    _stamp_deployables(files, result["variants"], meta)
    write_json(result_path, result)
    return result


def _stamp_deployables(files: dict, variants: dict, meta: dict) -> None:
    """What ``kd predict`` needs, inside each file: normalization, image size, tuned thresholds."""
    from kdcore.checkpoint import load_student, save_student_safetensors, stamp_checkpoint
    from kdcore.predict import stamp_onnx

    for variant, measured in variants.items():
        stamped = {**meta, "thresholds": measured["metrics"]["tuned_thresholds"], "variant": variant}
        if files[variant].suffix == ".onnx":
            stamp_onnx(files[variant], stamped)
        else:
            stamp_checkpoint(files[variant], stamped)
    for variant in ("fp32", "pruned"):  # the twins (ONNX, safetensors) share their model's thresholds
        thresholds = variants[variant]["metrics"]["tuned_thresholds"]
        stamp_onnx(files[f"{variant}_onnx"], {**meta, "thresholds": thresholds, "variant": f"{variant}_onnx"})
        student, _ = load_student(files[variant])
        save_student_safetensors(student, files[f"{variant}_safetensors"], **meta,
                                 thresholds=thresholds, variant=f"{variant}_safetensors")


def _calibration_frames(data: SeedData, count: int = 128) -> np.ndarray:
    """Normalized RGB training frames, spread evenly over the training split."""
    train = data.dataset("train", with_ir=False)
    picks = np.linspace(0, len(train) - 1, min(count, len(train))).astype(int)
    return train.normalized(picks).numpy()


def _onnx_parity(model: torch.nn.Module, onnx_model: torch.nn.Module, data: SeedData) -> dict:
    test = data.dataset("test", with_ir=False)
    batch = test.normalized(range(min(32, len(test))))
    with torch.no_grad():
        gap = (model.cpu().eval()(batch) - onnx_model(batch)).abs().max().item()
    return {"max_abs_logit_difference": gap, "frames": len(batch)}


def measure_variant(model: torch.nn.Module, architecture: torch.nn.Module, file: Path, cfg: Config,
                    data: SeedData) -> dict:
    """Test metrics, parameters, MACs, file size, and CPU latency at 224 and the run's size."""
    test = predict(model, data.dataset("test", with_ir=False), cfg.eval_batch_size, "cpu", bf16=False)
    val = predict(model, data.dataset("val", with_ir=False), cfg.eval_batch_size, "cpu", bf16=False)
    cost = profile_model(architecture.cpu(), cfg.image_size, thop=False)
    latency = {}
    for size in sorted({224, cfg.image_size}):
        for batch in cfg.latency_batches:
            inputs = (torch.randn(batch, 3, size, size),)
            repeats = cfg.latency_repeats if batch == 1 else max(1, cfg.latency_repeats // 5)
            latency[f"{size}px_batch{batch}"] = latency_ms(model, inputs, repeats, warmup=1 if batch > 1 else 3)
    return {"metrics": final_metrics(test["probs"], test["targets"], val["probs"], val["targets"]),
            "cost": {"params_total": cost["params_total"], "gmacs": cost["gmacs"],
                     "size_mb": Path(file).stat().st_size / 1e6, "file": Path(file).name},
            "timing": {"latency": latency}}


def main(argv: list[str] | None = None) -> None:
    """``torchrun --nproc_per_node N -m kdcore.pipeline --params P --teacher T --seed S``: one
    teacher's pipeline with data-parallel training (the notebooks run one process each)."""
    import argparse

    from kdcore.config import load_config
    from kdcore.train import init_distributed

    parser = argparse.ArgumentParser(prog="python -m kdcore.pipeline")
    parser.add_argument("--params", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    init_distributed()
    run_teacher_pipeline(load_config(args.params), args.teacher, args.seed)


if __name__ == "__main__":
    main()
