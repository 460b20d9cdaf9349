"""The fits of one seed: the teacher (BCE, its outputs cached for every frame, out-of-fold under
``crossfit``), the distilled student and the no-KD student. Every fit resumes, and a fit whose
outputs exist is not trained again."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from kdcore.data.labels import FLAME2
from kdcore.errors import KDError
from kdcore.io import read_json, write_json
from kdcore.layout import NO_KD, Layout, method_run
from kdcore.models.student import make_student
from kdcore.seeds import numpy_rng, torch_seed
from kdcore.study.config import Config, MethodConfig
from kdcore.study.work.evaluation import evaluate, oracle_evaluation, teacher_lead
from kdcore.study.work.seed_data import SeedData
from kdcore.training.loop import FitSettings, finished, fit, is_main_process, load_best, predict
from kdcore.training.losses import HardLabels, TeacherOutputs
from kdcore.training.objective import build_criterion


def fit_settings(cfg: Config, seed: int, role: str, teacher: str | None = None) -> FitSettings:
    """A role's budget (``teacher``, ``student``, ``finetune``) over the study's shared settings;
    a teacher's own epochs, patience, batch size, learning rate and memory format where its config gives them."""
    own = cfg.teacher(teacher) if teacher else None
    budget = {"teacher": (cfg.epochs_teacher, cfg.patience_teacher, cfg.lr_teacher),
              "student": (cfg.epochs_student, cfg.patience_student, cfg.lr_student),
              "finetune": (cfg.finetune_epochs, cfg.patience_student, cfg.lr_student)}
    epochs, patience, lr = budget[role]
    channels_last = own.channels_last if own and own.channels_last is not None else cfg.channels_last
    epochs, patience = (own.epochs or epochs, own.patience or patience) if own else (epochs, patience)
    return FitSettings.from_config(cfg, epochs=epochs, patience=patience, seed=seed, channels_last=channels_last,
                                   lr=own.lr if own and own.lr else lr,
                                   batch_size=own.batch_size if own and own.batch_size else cfg.batch_size)


def build_teacher(cfg: Config, name: str) -> torch.nn.Module:
    from kdcore.models.teachers import create_teacher  # timm: loaded where a teacher is built

    t = cfg.teacher(name)
    return create_teacher(t.name, cfg.image_size, t.pretrained, t.ir_init, t.rgb_only, t.family,
                          t.backbone, t.backbone_kwargs, ir_only=t.ir_only, num_classes=cfg.label_set.outputs)


def build_student(cfg: Config) -> torch.nn.Module:
    """The study's student: the CNN (``student_stem_stride``), or the architecture ``student:`` names."""
    arch = {"family": "cnn", **cfg.student}
    if arch["family"] == "cnn":
        arch["stem_stride"] = cfg.student_stem_stride
    outputs = cfg.label_set.outputs
    return make_student({**arch, **({"num_classes": outputs} if outputs != 2 else {})})


def student_file_meta(cfg: Config, data: SeedData) -> dict:
    """What a student file carries for ``kd predict``: the training split's RGB normalization, the
    image size and the label set (left out for FLAME2's, so that its files stay as they were
    before label sets could be declared)."""
    meta = {"normalization": data.stats["rgb"], "image_size": cfg.image_size}
    if cfg.label_set != FLAME2:
        meta["labels"] = cfg.label_set.to_dict()
    return meta


def trained_teacher(cfg: Config, name: str, seed: int) -> torch.nn.Module:
    if cfg.is_oracle(name):
        raise KDError("the oracle teacher has cached outputs only; it cannot run beside the student")
    return load_best(build_teacher(cfg, name), Layout(cfg.output).fit_paths(name, seed, "teacher").best)


def train_teacher(cfg: Config, data: SeedData, name: str) -> dict:
    """Fit (or resume) the teacher on the labelled training frames, evaluate it, and cache its
    outputs for every frame (out-of-fold on its own training frames under ``crossfit``)."""
    layout, seed = Layout(cfg.output), data.seed
    paths = layout.fit_paths(name, seed, "teacher")
    outputs_path = layout.teacher_outputs_file(name, seed)
    evaluation_path = layout.evaluation(name, seed, "teacher")
    if finished(paths) and outputs_path.exists() and evaluation_path.exists():
        return read_json(evaluation_path)
    if cfg.is_oracle(name):
        done = outputs_path.exists() and evaluation_path.exists()
        return read_json(evaluation_path) if done else oracle_teacher(cfg, data, name)
    torch.manual_seed(torch_seed(seed, "init"))
    teacher = build_teacher(cfg, name)
    with_ir = "ir" in teacher.modalities
    log = fit(teacher, HardLabels(cfg.label_set), data.dataset("labelled", with_ir, augment=cfg.augment), data.dataset("val", with_ir),
              fit_settings(cfg, seed, "teacher", name), paths, desc=f"{name} teacher")
    if not is_main_process() and cfg.teacher_outputs != "crossfit":
        return {}
    load_best(teacher, paths.best)
    outputs = predict_teacher_outputs(teacher, data.dataset("all", with_ir), cfg.eval_batch_size, cfg.device)
    crossfit = crossfit_outputs(cfg, name, data, outputs) if cfg.teacher_outputs == "crossfit" else None
    if not is_main_process():
        return {}
    outputs.save(outputs_path)
    evaluation = evaluate(teacher, cfg, data, log, paths.best, layout.predictions(name, seed, "teacher"))
    if crossfit:
        evaluation["teacher_outputs"] = crossfit
    write_json(evaluation_path, evaluation)
    return evaluation


def oracle_teacher(cfg: Config, data: SeedData, name: str) -> dict:
    """The planted effect: a teacher whose outputs are the true labels of every frame (labelled or
    not). Nothing is trained; its record is measured like any teacher's."""
    layout, seed = Layout(cfg.output), data.seed
    outputs = TeacherOutputs.oracle(data.table.frames["id"].tolist(), torch.tensor(data.table.targets))
    if not is_main_process():
        return {}
    outputs.save(layout.teacher_outputs_file(name, seed))
    evaluation = oracle_evaluation(data, outputs, layout.predictions(name, seed, "teacher"))
    write_json(layout.evaluation(name, seed, "teacher"), evaluation)
    return evaluation


def predict_teacher_outputs(teacher: torch.nn.Module, dataset, batch_size: int = 64, device: str = "auto") -> TeacherOutputs:
    """The teacher's fp32 logits (not a round trip through sigmoid or softmax, which saturate) and
    pooled features for every frame of ``dataset``."""
    out = predict(teacher, dataset, batch_size, device, features=True, bf16=False)
    return TeacherOutputs(out["ids"], torch.from_numpy(out["logits"]), torch.from_numpy(out["features"]))


def crossfit_folds(data: SeedData, folds: int) -> list[np.ndarray]:
    """The labelled training frames in ``folds`` parts of whole blocks, each label combination
    spread over the folds."""
    rows = data.indices("labelled")
    units, combos = data.split.units[rows], data.table.strata[rows]
    if len(np.unique(units)) < folds:
        raise KDError(f"teacher_outputs 'crossfit' needs at least {folds} labelled training blocks, "
                      f"found {len(np.unique(units))}: lower crossfit_folds or label more blocks")
    rng = numpy_rng(data.seed, "crossfit_folds")
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
        torch.manual_seed(torch_seed(seed, "crossfit_init", k))
        teacher = build_teacher(cfg, name)
        with_ir = "ir" in teacher.modalities
        rest = np.concatenate([f for j, f in enumerate(folds) if j != k])
        paths = layout.fit_paths(name, seed, f"teacher_fold{k}")
        log = fit(teacher, HardLabels(cfg.label_set), data.dataset(rest, with_ir, augment=cfg.augment), data.dataset("val", with_ir),
                  fit_settings(cfg, seed, "teacher", name), paths, desc=f"{name} teacher fold {k + 1}")
        seconds += log["timing"]["train_s"]
        if not is_main_process():
            continue
        load_best(teacher, paths.best)
        fold_out = predict_teacher_outputs(teacher, data.dataset(held_out, with_ir), cfg.eval_batch_size, cfg.device)
        rows = torch.tensor([row_of[i] for i in fold_out.ids])
        outputs.logits[rows], outputs.features[rows] = fold_out.logits, fold_out.features
    return {"mode": "crossfit", "folds": len(folds), "frames": [len(f) for f in folds], "train_s": seconds}


def online_teacher(cfg: Config) -> bool:
    return cfg.teacher_outputs == "online" or (cfg.teacher_outputs == "auto" and cfg.augment)


def reads_stages(method: MethodConfig | None) -> bool:
    from kdcore.training.methods import METHODS, STAGES

    return method is not None and STAGES in METHODS[method.name].reads


def student_criterion(cfg: Config, data: SeedData, teacher: str | None, student: torch.nn.Module,
                      method: MethodConfig | None = None) -> torch.nn.Module:
    """BCE for the no-KD student; else the config's KD loss, or ``method``, from the teacher's
    cached (or online) outputs, its hard term on the labelled frames only; a method that reads
    stage maps gets the trained teacher to run beside the student."""
    if teacher is None:
        return build_criterion(cfg, None)
    if online_teacher(cfg):
        source = trained_teacher(cfg, teacher, data.seed)
    else:
        source = TeacherOutputs.load(Layout(cfg.output).teacher_outputs_file(teacher, data.seed))
    stage_teacher = trained_teacher(cfg, teacher, data.seed) if reads_stages(method) else None
    return build_criterion(cfg, source, student, data.labelled_ids(), method, stage_teacher,
                           data.table.frames["id"].tolist())


def fit_student(cfg: Config, data: SeedData, teacher: str | None, student: torch.nn.Module, role: str,
                meta: dict, method: MethodConfig | None = None, criterion: torch.nn.Module | None = None) -> dict:
    """Train ``student`` with the student objective of ``teacher`` (KD on every training frame, its
    hard term where labelled; BCE on the labelled frames without a teacher), or ``criterion``."""
    from kdcore.models.checkpoint import student_meta

    criterion = criterion or student_criterion(cfg, data, teacher, student, method)
    # the teacher run beside the student reads the pair
    with_ir = teacher is not None and (online_teacher(cfg) or reads_stages(method))
    train_set = data.dataset("train" if teacher else "labelled", with_ir=with_ir, augment=cfg.augment)
    run = method_run(teacher, method and method.run) or NO_KD
    paths = Layout(cfg.output).fit_paths(run, data.seed, role)
    what = "pruned student" if role == "student_pruned" else "student"
    return fit(student, criterion, train_set, data.dataset("val", with_ir=with_ir),
               fit_settings(cfg, data.seed, "finetune" if role == "student_pruned" else "student"), paths,
               desc=f"{run} {what}", best_meta=student_meta(student, **meta))


def train_student(cfg: Config, data: SeedData, teacher: str | None = None, method: str | None = None) -> dict:
    """The distilled student of ``teacher`` (by the study's ``kd_loss``, or by the entry of
    ``methods`` labelled ``method``), or with ``teacher=None`` the seed's no-KD student."""
    spec = cfg.method(method) if method else None
    layout, seed, run = Layout(cfg.output), data.seed, method_run(teacher, method) or NO_KD
    paths = layout.fit_paths(run, seed, "student")
    evaluation_path = layout.evaluation(run, seed, "student")
    if finished(paths) and evaluation_path.exists():
        return read_json(evaluation_path)
    lead = None
    if teacher is not None and is_main_process():  # said before the student trains: can KD pay here?
        lead = teacher_lead(read_json(layout.evaluation(teacher, seed, "teacher")),
                            read_json(layout.evaluation(NO_KD, seed, "student")), cfg.headline_metric)
        print(f"{run}, seed {seed}: {lead['verdict']}", flush=True)
    torch.manual_seed(torch_seed(seed, "init"))
    student = build_student(cfg)
    criterion = student_criterion(cfg, data, teacher, student, spec)
    log = fit_student(cfg, data, teacher, student, "student", student_file_meta(cfg, data), spec, criterion)
    if not is_main_process():
        return {}
    load_best(student, paths.best)
    evaluation = evaluate(student, cfg, data, log, paths.best, layout.predictions(run, seed, "student"))
    if lead:
        evaluation["teacher_lead"] = lead
    if spec:  # its settings, with the stages it read where they were left to their defaults
        term = criterion.terms[0] if len(criterion.terms) else None
        stages = {"student_stage": term.student_stage, "teacher_stage": term.teacher_stage} if term else {}
        evaluation["method"] = {**dataclasses.asdict(spec), **stages}
    write_json(evaluation_path, evaluation)
    return evaluation
