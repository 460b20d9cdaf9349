"""One typed configuration, from YAML (or papermill parameters, or CLI flags) into kdcore.

Defaults are the reference implementation's values. Unknown keys, wrong types and impossible
values are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdcore import kit
from kdcore.data.labels import LabelSet
from kdcore.data.splits import BLOCK_FRAMES, GAP_FRAMES
from kdcore.errors import KDError
from kdcore.evaluation.records import default_headline, metric_keys
from kdcore.layout import synth_csv
from kdcore.training.selection import CRITERIA, MULTICLASS_ONLY, MULTILABEL_ONLY
from kdcore.training.selection import DEFAULT as SELECT_ON


@dataclass
class TeacherConfig:
    """One teacher of the study: a registered name, or a family with any timm backbone."""

    name: str
    family: str | None = None
    backbone: str | None = None
    backbone_kwargs: dict = field(default_factory=dict)
    pretrained: str | bool = False  # false | hub | path of a timm state dict
    ir_init: str = "rgb"
    rgb_only: bool = False
    ir_only: bool = False  # the privileged view alone: what IR knows without RGB
    batch_size: int | None = None  # None: the study's batch_size
    lr: float | None = None  # None: lr_teacher
    epochs: int | None = None  # None: epochs_teacher (a transformer from scratch may need more)
    patience: int | None = None  # None: patience_teacher
    channels_last: bool | None = None  # None: the study's channels_last (depthwise convolutions gain from NHWC)
    rgb_twin: bool | None = None  # add its RGB-only twin; None: as the study's rgb_teacher_arm
    twin_of: str | None = None  # set on the RGB-only twin that rgb_teacher_arm adds


@dataclass
class MethodConfig:
    """One more distilled student per teacher and seed (the methods axis): a method of
    ``kdcore.training.methods`` and its settings."""

    name: str  # a registered method: fitnets, at, rkd, crd, dkd, dist (or kd, generalized)
    label: str | None = None  # its students' name in folders, pages and tables; None: its name (+kd)
    weight: float | None = None  # its term's weight; None: the method's own default
    kd: bool = False  # added to Hinton's loss (the study's kd_loss) instead of the labels' hard term alone
    student_stage: str | None = None  # stage methods: which maps; None: the nearest in size to the teacher's
    teacher_stage: str | None = None  # None: the teacher's deepest map of at least 2x2
    options: dict = field(default_factory=dict)  # the method's own settings (kdcore.training.methods)

    @property
    def run(self) -> str:
        return self.label or self.name + ("+kd" if self.kd else "")


@dataclass
class SlurmConfig:
    """What each stage's job asks Slurm for (``--executor slurm``): where and with what a stage
    runs, never what it computes, so no stage's digest reads it. Only stages that train ask for
    GPUs; the others, and the driver of ``--detach``, run on ``cpu_partition``."""

    partition: str | None = None  # None: the cluster's default partition
    cpu_partition: str | None = None  # stages that do not train, and the driver; None: partition
    account: str | None = None  # the account charged (sbatch --account)
    qos: str | None = None  # quality of service (sbatch --qos)
    time: int = 240  # minutes a stage's job may run
    cpus: int | None = None  # CPUs per job (its torch threads); None: Slurm's default (1)
    mem_gb: float | None = None  # None: Slurm's default for the CPUs asked
    gpus: int = 0  # GPUs of each training stage's job
    constraint: str | None = None  # node features, as sbatch --constraint
    sbatch: dict = field(default_factory=dict)  # any other sbatch option: {exclude: node17} -> --exclude=node17
    driver_time: int = 4320  # minutes for the driver job of --detach (it waits for the whole study)


RGB_TWIN_SUFFIX = "-rgb"
ORACLE = "oracle"  # the teacher whose outputs are the true labels: a planted effect, and the ceiling


def is_oracle(t: TeacherConfig) -> bool:
    return t.name == ORACLE and t.backbone is None


def rgb_twin(t: TeacherConfig) -> TeacherConfig:
    """The same architecture, budget and initialization, reading RGB only: what IR adds is the
    difference between the two."""
    from kdcore.models.registry import TEACHERS

    family, backbone, kwargs = t.family, t.backbone, t.backbone_kwargs
    if backbone is None:
        spec = TEACHERS[t.name]
        family, backbone, kwargs = spec.family, spec.backbone, {**spec.kwargs, **t.backbone_kwargs}
    return TeacherConfig(t.name + RGB_TWIN_SUFFIX, family, backbone, dict(kwargs), t.pretrained, t.ir_init,
                         rgb_only=True, batch_size=t.batch_size, lr=t.lr, channels_last=t.channels_last,
                         twin_of=t.name, epochs=t.epochs, patience=t.patience)  # never ir_only


PATHS = ("csv", "base_path", "output", "cache_dir")  # in a params file, relative to the file
WRITTEN_TO = ("output", "cache_dir", "slurm")  # where results go or are made, never what they are
DATA_KEYS = ("csv", "base_path")  # which data: a run's data fingerprint stands for these where it is taken
GRID = ("teachers", "seeds")  # which runs: a run's own teacher and seed stand for these
NOT_SWEPT = ("sweep", "output", "cache_dir", "slurm")  # a sweep's sub-studies differ in these by construction


def result_settings(settings: dict) -> dict:
    """How results are computed: every setting but where they are written, which data (``DATA_KEYS``)
    and which runs of the grid (``GRID``). The one rule behind the study's digest, its stage
    records and the comparison's check that runs share their config."""
    return {k: v for k, v in settings.items() if k not in WRITTEN_TO + DATA_KEYS + GRID + ("sweep",)}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Config:
    # data
    csv: str = str(synth_csv("data/demo"))  # id, rgb_frame, ir_frame and the labels (kd check)
    base_path: str | None = None  # folder the CSV's image paths are relative to; None: the CSV's own
    synth_frames: int = 0  # > 0: generate synthetic data at csv's folder if it is missing
    synth_size: int = 128  # synthetic frames' side in pixels
    synth_options: dict = field(default_factory=dict)  # kd synth's knobs (SynthOptions)
    split: str = "auto"  # auto (block when the CSV has groups) | block | group | stratified
    block_frames: int = BLOCK_FRAMES  # block split: frames per block (tens of seconds of FLAME2 video)
    gap_frames: int = GAP_FRAMES  # frames left out where adjacent rows go to different parts
    labelled_fraction: float = 1.0  # share of training blocks whose labels are used (seeded)
    train_size: float | None = None  # stratified split: training items, a count (300) or a share (0.1)
    # what is predicted (kdcore.data.labels): {} is FLAME2's fire and smoke; or {kind: multilabel,
    # columns: [...]}, or {kind: multiclass, column: digit, classes: [0, 1, ...]}
    labels: dict = field(default_factory=dict)  # {}: FLAME2's
    headline: str = ""  # the metric the answer is read on; "": fire_auroc (the first label's), accuracy for classes
    image_size: int = 224  # the side frames are resized to for every model
    augment: bool = False  # random flips and crops of the training pairs (the teacher then runs online)
    cache_dir: str | None = None  # None: <output>/cache
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    # study grid
    output: str = "runs/demo"  # where models, metrics, figures and stage records go
    seeds: list[int] = field(default_factory=lambda: [42, 123, 456, 789, 1024])  # the intervals are over these
    teachers: list[TeacherConfig] = field(default_factory=list)  # names (kd models) or TeacherConfig's keys
    # training
    epochs_teacher: int = 50  # the teachers' epoch budget
    epochs_student: int = 30  # the students' epoch budget
    patience_teacher: int = 10  # epochs without improvement before a fit stops
    patience_student: int = 5  # the same for students
    lr_teacher: float = 1e-4  # the teachers' AdamW learning rate
    lr_student: float = 1e-3  # the students' learning rate
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    batch_size: int = 32  # training batch (a teacher may set its own)
    select_on: str = SELECT_ON  # the validation criterion that keeps an epoch and stops a fit
    optimizer: str = "adamw"  # adamw | rmsprop (Keras 0.x's defaults: rho 0.9, epsilon 1e-6)
    lr_schedule: str = "cosine"  # cosine over the epoch budget | constant
    student_stem_stride: int = 1  # 2: the student's first convolution halves the frame (a quarter of its compute)
    student: dict = field(default_factory=dict)  # {}: the CNN; {family: mlp, input_size: 7, hidden: [20, 20]}
    # distillation
    kd_temperature: float = 4.0  # T of Hinton's loss: both outputs softened by it, the soft term scaled by T^2
    kd_alpha: float = 0.7  # weight of the soft term; 1 - kd_alpha weighs the labels' hard term
    kd_feature_weight: float = 0.0  # > 0 adds the feature-hint term
    kd_loss: str = "kd"  # the student's objective: a complete method of kdcore.training.methods (kd | generalized)
    teacher_outputs: str = "auto"  # cached | online | crossfit | auto (cached unless augmenting)
    crossfit_folds: int = 3  # crossfit: teachers trained on folds of the training blocks
    rgb_teacher_arm: bool = False  # also an RGB-only twin of every teacher, and its student
    # the methods axis: one more distilled student per entry, teacher and seed (a name, or a mapping
    # of MethodConfig's keys); the study's own student (kd_loss) is the baseline they stand beside
    methods: list[MethodConfig] = field(default_factory=list)  # [fitnets, {name: at, weight: 1000}]
    # compression
    compress: bool = True  # false: no 03_compress stages (a control study that measures KD only)
    prune_sparsity: float = 0.4  # share of the student's channels structured pruning removes
    finetune_epochs: int = 10  # epochs of fine-tuning after pruning
    # hardware
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    # the GPU path's settings: None turns them on with CUDA only; true also on a CPU (bfloat16 is
    # fast only with AVX-512 BF16 or AMX), false nowhere
    bf16: bool | None = None  # bfloat16 autocast in training and validation
    channels_last: bool | None = None  # NHWC models and batches
    compile: bool = False  # torch.compile the training step
    deterministic: bool = False  # CUDA: deterministic kernels (slower); the CPU always is
    eval_batch_size: int = 64  # batch of validation, test and prediction passes
    latency_repeats: int = 10  # timed CPU forward passes at batch 1 (a fifth of that at larger batches)
    latency_batches: list[int] = field(default_factory=lambda: [1, 64])  # a deployable student's
    # a cluster: what each stage's Slurm job asks for (kdcore.study.slurm)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # read only by --executor slurm
    # reports
    embeddings: list[str] = field(default_factory=lambda: ["tsne", "umap"])  # feature maps drawn
    # a sweep: config key -> values; one sub-study per combination of values (kdcore.study.sweep)
    sweep: dict = field(default_factory=dict)  # {labelled_fraction: [1.0, 0.2]}: one sub-study per combination

    def validate(self) -> Config:
        checks = {
            # the CNN student halves its maps four times; an MLP reads any size at least its input's
            "image_size": self.image_size >= (32 if self.student.get("family", "cnn") == "cnn"
                                              else self.student.get("input_size", 7)),
            "epochs_teacher": self.epochs_teacher >= 1,
            "epochs_student": self.epochs_student >= 1, "patience_teacher": self.patience_teacher >= 1,
            "patience_student": self.patience_student >= 1, "lr_teacher": self.lr_teacher > 0,
            "lr_student": self.lr_student > 0, "weight_decay": self.weight_decay >= 0,
            "batch_size": self.batch_size >= 1, "kd_temperature": self.kd_temperature > 0,
            "kd_alpha": 0 <= self.kd_alpha <= 1, "kd_feature_weight": self.kd_feature_weight >= 0,
            "prune_sparsity": 0 <= self.prune_sparsity < 1, "finetune_epochs": self.finetune_epochs >= 0,
            "num_workers": self.num_workers >= 0, "seeds": len(self.seeds) >= 1,
            "student_stem_stride": self.student_stem_stride in (1, 2), "eval_batch_size": self.eval_batch_size >= 1,
            "latency_repeats": self.latency_repeats >= 1,
            "synth_frames": self.synth_frames >= 0, "block_frames": self.block_frames >= 1,
            "gap_frames": self.gap_frames >= 0, "labelled_fraction": 0 < self.labelled_fraction <= 1,
            "crossfit_folds": self.crossfit_folds >= 2,
            "train_size": self.train_size is None or self.train_size > 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise KDError(f"config key {key!r}: impossible value {getattr(self, key)!r}")
        self._check_slurm()
        if not self.latency_batches or min(self.latency_batches) < 1:
            raise KDError(f"config key 'latency_batches': impossible value {self.latency_batches!r}")
        unknown = sorted(set(self.embeddings) - {"tsne", "umap"})
        if unknown:
            raise KDError(f"config key 'embeddings': unknown method {unknown[0]!r} (known: tsne, umap)")
        from kdcore.data.synth import SynthOptions

        try:
            SynthOptions.from_dict(self.synth_options)
        except (KDError, TypeError) as e:
            raise KDError(f"config key 'synth_options': {e}") from None
        choices = {"split": ("auto", "block", "group", "stratified"), "kd_loss": _kd_losses(self.kd_loss),
                   "teacher_outputs": ("auto", "cached", "online", "crossfit"),
                   "device": ("auto", "cpu", "cuda"), "select_on": tuple(CRITERIA),
                   "optimizer": ("adamw", "rmsprop"), "lr_schedule": ("cosine", "constant")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise KDError(f"config key {key!r}: must be one of {', '.join(allowed)}, "
                              f"found {getattr(self, key)!r}")
        from kdcore.models.registry import TEACHERS

        names = [t.name for t in self.teachers]
        for t in self.teachers:
            if t.backbone is None and t.name not in TEACHERS and not is_oracle(t):
                raise KDError(f"config key 'teachers': unknown teacher {t.name!r}; known: "
                              f"{', '.join(TEACHERS)}, {ORACLE} (or give family and backbone)")
        self._check_oracle()
        self._check_sweep()
        self._check_labels()
        self._check_models()
        self._check_methods()
        if len(set(names)) != len(names):
            raise KDError("config key 'teachers': teacher names must be unique")
        self.teachers += [rgb_twin(t) for t in self.teachers
                          if (self.rgb_teacher_arm if t.rgb_twin is None else t.rgb_twin) and not is_oracle(t)
                          and not t.rgb_only and not t.twin_of and t.name + RGB_TWIN_SUFFIX not in names]
        return self

    def _check_sweep(self) -> None:
        """Each swept key is a config key, with a non-empty list of values of its type."""
        hints = typing.get_type_hints(Config)
        for key, values in self.sweep.items():
            if key not in hints or key in NOT_SWEPT:
                raise KDError(f"config key 'sweep': {key!r} cannot be swept (a config key other than "
                              f"{', '.join(NOT_SWEPT)})")
            if not isinstance(values, list) or not values:
                raise KDError(f"config key 'sweep.{key}': expected a non-empty list of values, found {values!r}")
            for i, value in enumerate(values):
                _convert(value, hints[key], f"sweep.{key}[{i}]")

    def _check_slurm(self) -> None:
        s = self.slurm
        for key, ok in {"time": s.time >= 1, "cpus": s.cpus is None or s.cpus >= 1, "gpus": s.gpus >= 0,
                        "mem_gb": s.mem_gb is None or s.mem_gb > 0, "driver_time": s.driver_time >= 1}.items():
            if not ok:
                raise KDError(f"config key 'slurm.{key}': impossible value {getattr(s, key)!r}")
        for option, value in s.sbatch.items():
            if not isinstance(option, str) or isinstance(value, (dict, list)):
                raise KDError(f"config key 'slurm.sbatch.{option}': expected an sbatch option and its value "
                              f"(e.g. exclude: node17), found {value!r}")

    @property
    def label_set(self) -> LabelSet:
        """What the study predicts (``labels``: FLAME2's fire and smoke when empty)."""
        return LabelSet.from_config(self.labels or None)

    @property
    def headline_metric(self) -> str:
        """The metric key the study's answer is read on (``headline``, or the label set's default)."""
        return self.headline or default_headline(self.label_set)

    def _check_labels(self) -> None:
        """The label set, and what must agree with it: the headline, ``select_on``, the KD loss."""
        labels = self.label_set
        if self.headline and self.headline not in metric_keys(labels):
            raise KDError(f"config key 'headline': {self.headline!r} is not a metric of this study's "
                          f"{labels.kind} labels; one of {', '.join(metric_keys(labels))}")
        wrong = MULTILABEL_ONLY if labels.multiclass else MULTICLASS_ONLY
        if self.select_on in wrong:
            other = "cross_entropy" if labels.multiclass else "bce"
            raise KDError(f"config key 'select_on': {self.select_on!r} is for {'labels' if labels.multiclass else 'classes'}; "
                          f"this study's are {labels.kind} (select on {other!r})")
        if self.kd_loss == "generalized" and not labels.multiclass:
            raise KDError("config key 'kd_loss': 'generalized' (Lopez-Paz et al.'s softmax loss) needs classes "
                          "(labels: {kind: multiclass, ...})")

    def _check_models(self) -> None:
        """The student's architecture, and what a teacher reads."""
        family = self.student.get("family", "cnn")
        allowed = {"cnn": {"family", "widths", "hidden", "dropout"},
                   "mlp": {"family", "input_size", "hidden"}}.get(family)
        if allowed is None:
            raise KDError(f"config key 'student.family': {family!r} is not a student (cnn or mlp)")
        if unknown := sorted(set(self.student) - allowed):
            raise KDError(f"config key 'student.{unknown[0]}': not a setting of the {family} student "
                          f"({', '.join(sorted(allowed))})")
        for t in self.teachers:
            for key in ("epochs", "patience", "batch_size"):
                if getattr(t, key) is not None and getattr(t, key) < 1:
                    raise KDError(f"config key 'teachers': teacher {t.name!r}'s {key} must be at least 1, "
                                  f"found {getattr(t, key)}")
            if t.rgb_only and t.ir_only:
                raise KDError(f"config key 'teachers': teacher {t.name!r} reads RGB alone (rgb_only) or IR "
                              "alone (ir_only), not both")

    def _check_methods(self) -> None:
        """Each method registered, its options its own, its label a folder name used once, and what
        it reads there to read: stage maps in the student, maps or features in every teacher (the
        oracle has neither). Stage names are checked against the models before a study runs
        (``kdcore.study.work.check_method_stages``)."""
        if not self.methods:
            return
        from kdcore.training.methods import FEATURES, METHODS, STAGES

        labels = []
        for i, m in enumerate(self.methods):
            key = f"methods[{i}]"
            if m.name not in METHODS:
                raise KDError(f"config key '{key}.name': unknown method {m.name!r}; known: {', '.join(METHODS)}")
            cls = METHODS[m.name]
            if cls.complete and (m.kd or m.weight is not None or m.student_stage or m.teacher_stage):
                raise KDError(f"config key '{key}': {m.name!r} is a whole objective; it takes options only "
                              "(no kd, weight or stages)")
            try:
                cls(self.label_set, **m.options)
            except KDError as e:
                raise KDError(f"config key '{key}.options': {e}") from None
            if m.weight is not None and m.weight < 0:
                raise KDError(f"config key '{key}.weight': impossible value {m.weight!r}")
            if not re.fullmatch(r"[A-Za-z0-9._+-]+", m.run) or m.run == self.kd_loss:
                raise KDError(f"config key '{key}.label': {m.run!r} cannot name its students: letters, digits, "
                              f"'.', '_', '+' and '-', and not {self.kd_loss!r}, the study's own student (give a label)")
            labels.append(m.run)
            reads = cls.reads & {STAGES, FEATURES}
            if reads and (oracle := next((t.name for t in self.teachers if is_oracle(t)), None)):
                raise KDError(f"config key '{key}': method {m.name!r} reads {' and '.join(sorted(reads))}, and "
                              f"teacher {oracle!r} has none (its outputs are the labels)")
            if STAGES in reads and self.student.get("family", "cnn") != "cnn":
                raise KDError(f"config key '{key}': method {m.name!r} reads stage maps, and the "
                              f"{self.student['family']} student has none (its layers are vectors)")
        if len(set(labels)) != len(labels):
            twice = next(label for label in labels if labels.count(label) > 1)
            raise KDError(f"config key 'methods': two entries name their students {twice!r}: give one a label")

    def method(self, label: str) -> MethodConfig:
        for m in self.methods:
            if m.run == label:
                return m
        raise KDError(f"no method {label!r} in the config; it has {', '.join(m.run for m in self.methods) or 'none'}")

    def _check_oracle(self) -> None:
        """The oracle's outputs are the labels, cached once: nothing to train, pretrain, twin,
        run online or cross-fit."""
        oracle = next((t for t in self.teachers if is_oracle(t)), None)
        if oracle is None:
            return
        if oracle.rgb_twin or oracle.pretrained or oracle.rgb_only or oracle.ir_only:
            raise KDError(f"config key 'teachers': the {ORACLE} teacher has no weights, no RGB twin and no "
                          "modalities: drop rgb_twin, pretrained, rgb_only and ir_only from it")
        if self.teacher_outputs in ("online", "crossfit") or (self.teacher_outputs == "auto" and self.augment):
            raise KDError(f"config key 'teacher_outputs': the {ORACLE} teacher's outputs are the labels, cached "
                          f"once; it cannot run online (augment) or cross-fitted ({self.teacher_outputs!r})")

    def compresses(self, name: str) -> bool:
        """Whether teacher ``name``'s student is compressed: not in a KD-only study, and never the
        RGB twin's (a control arm, not a model to deploy)."""
        return self.compress and self.teacher(name).twin_of is None

    def is_oracle(self, name: str) -> bool:
        return is_oracle(self.teacher(name))

    def twin(self, name: str) -> str | None:
        """The RGB-only twin of teacher ``name``, if the study has one."""
        return next((t.name for t in self.teachers if t.twin_of == name), None)

    def teacher(self, name: str) -> TeacherConfig:
        for t in self.teachers:
            if t.name == name:
                return t
        raise KDError(f"no teacher {name!r} in the config; it has {', '.join(t.name for t in self.teachers)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """A short hash of the study: the settings that shape results and its grid, so not where
        files are written (the same study run in another folder has the same digest)."""
        settings = self.to_dict()
        return digest({**result_settings(settings), **{k: settings[k] for k in GRID}})


def _kd_losses(name: str) -> tuple[str, ...]:
    """The registered complete methods; the default needs no look-up (the registry lives with torch)."""
    if name == Config.kd_loss:
        return (name,)
    from kdcore.training.methods import complete_methods

    return complete_methods()


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint; build nested dataclasses; name ``key`` on error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return _convert(value, option, key)
            except KDError as e:
                errors.append(e)
        raise errors[-1]
    if hint is type(None):
        if value is None:
            return None
        raise KDError(f"config key {key!r}: expected null, found {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise KDError(f"config key {key!r}: expected a list, found {type(value).__name__} {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise KDError(f"config key {key!r}: expected a mapping, found {value!r}")
        return _from_dict(hint, value, prefix=f"{key}.")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is dict and isinstance(value, dict):
        return value
    if isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise KDError(f"config key {key!r}: expected {name}, found {type(value).__name__} {value!r}")


def typed(key: str, value: Any) -> Any:
    """``value`` as config key ``key`` types it (an int where a float is expected becomes one)."""
    return _convert(value, typing.get_type_hints(Config)[key], key)


def _from_dict(cls, values: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise KDError(f"unknown config key '{prefix}{unknown[0]}'; known keys: {', '.join(hints)}")
    return cls(**{k: _convert(v, hints[k], prefix + k) for k, v in values.items()})


def from_dict(values: dict) -> Config:
    return _from_dict(Config, values).validate()


def _resolve_paths(values: dict, folder: Path) -> dict:
    """Relative paths in a params file are relative to that file, wherever the command runs."""
    def resolve(value):
        return str((folder / value).resolve()) if isinstance(value, str) and not Path(value).is_absolute() else value

    values = {k: resolve(v) if k in PATHS else v for k, v in values.items()}
    teachers = values.get("teachers")
    if isinstance(teachers, list):
        values["teachers"] = [
            {**t, "pretrained": resolve(t["pretrained"])}
            if isinstance(t, dict) and isinstance(t.get("pretrained"), str) and t["pretrained"] not in ("hub", "false", "none")
            else t for t in teachers]
    return values


def load_config(path: str | Path | None = None, **overrides) -> Config:
    """A params YAML file (or the defaults), with ``overrides`` (None values ignored) on top."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise KDError(f"params file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise KDError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise KDError(f"{path}: expected a mapping of config keys at the top level")
        values = _resolve_paths(values, kit.base_folder(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return from_dict(values)
    except KDError as e:
        raise KDError(f"{path}: {e}" if path else str(e)) from None
