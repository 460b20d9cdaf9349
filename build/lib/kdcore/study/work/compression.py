"""The distilled student's compressed variants, each a recipe in ``VARIANTS``, each measured with
the same record as every other model (``measure``) and stamped with what ``kd predict`` needs.

A recipe makes its variant from the student (or from an earlier variant): a model to measure, the
file it is deployed as, and, for a torch model, its ONNX export and safetensors twin. A new variant
is one more recipe here; its files are named by ``Layout.variant_file``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from kdcore.io import read_json, write_json
from kdcore.layout import Layout
from kdcore.study.config import Config
from kdcore.study.work.evaluation import measure
from kdcore.study.work.fits import fit_student, student_file_meta
from kdcore.study.work.seed_data import SeedData
from kdcore.training.loop import is_main_process, load_best


@dataclass
class CompressedModel:
    """A variant: what runs, whose parameters and MACs it has, and the files it is deployed as."""

    model: torch.nn.Module
    architecture: torch.nn.Module
    file: Path
    onnx: Path | None = None  # a torch variant's ONNX export (stamped alike)
    safetensors: Path | None = None  # its pickle-free twin, written once thresholds are tuned


@dataclass
class CompressionRun:
    """What a recipe may use: the run, and the variants built before it."""

    cfg: Config
    data: SeedData
    teacher: str
    built: dict[str, CompressedModel] = field(default_factory=dict)

    @property
    def layout(self) -> Layout:
        return Layout(self.cfg.output)

    def file(self, variant: str, suffix: str) -> Path:
        return self.layout.variant_file(self.teacher, self.data.seed, variant, suffix)

    def torch_variant(self, variant: str, model: torch.nn.Module, file: Path) -> CompressedModel:
        from kdcore.compression.onnx import export_onnx

        onnx = export_onnx(model, self.file(variant, ".onnx"), self.cfg.image_size)
        return CompressedModel(model, model, file, onnx, self.file(variant, ".safetensors"))

    def quantized(self, variant: str, source: str) -> CompressedModel:
        """Static int8 (ONNX Runtime QDQ) of an earlier variant's ONNX export."""
        from kdcore.compression.onnx import OnnxModel, quantize_onnx

        base = self.built[source]
        file = quantize_onnx(base.onnx, self.file(variant, ".onnx"), self.calibration)
        return CompressedModel(OnnxModel(file), base.architecture, file)

    def student(self) -> torch.nn.Module:
        """The distilled student as trained."""
        from kdcore.models.checkpoint import load_student

        return load_student(self.student_file())[0]

    def student_file(self) -> Path:
        return self.layout.fit_paths(self.teacher, self.data.seed, "student").best

    @cached_property
    def calibration(self) -> np.ndarray:
        """The int8 calibration frames, chosen once for every quantized variant."""
        return calibration_frames(self.data)

    @property
    def meta(self) -> dict:
        return student_file_meta(self.cfg, self.data)


@dataclass(frozen=True)
class Recipe:
    make: Callable[[CompressionRun], CompressedModel]
    trains: bool = False  # under torchrun every rank runs it (rank 0 alone makes the rest)


VARIANTS: dict[str, Recipe] = {}  # in the order they are built


def variant(name: str, trains: bool = False):
    def add(make):
        VARIANTS[name] = Recipe(make, trains)
        return make
    return add


@variant("fp32")
def _fp32(run: CompressionRun) -> CompressedModel:
    return run.torch_variant("fp32", run.student(), run.student_file())


@variant("int8")
def _int8(run: CompressionRun) -> CompressedModel:
    return run.quantized("int8", "fp32")


@variant("pruned", trains=True)
def _pruned(run: CompressionRun) -> CompressedModel:
    """``prune_sparsity`` of the channels removed by L1 norm, then fine-tuned with the student's own
    objective (KD on every frame, BCE where labelled)."""
    from kdcore.compression.pruning import prune_student
    from kdcore.models.checkpoint import save_student

    cfg, data = run.cfg, run.data
    best = run.layout.fit_paths(run.teacher, data.seed, "student_pruned").best
    pruned = prune_student(run.student(), cfg.prune_sparsity, cfg.image_size)
    if cfg.finetune_epochs > 0:
        fit_student(cfg, data, run.teacher, pruned, "student_pruned", run.meta)
    if not is_main_process():
        return CompressedModel(pruned, pruned, best)  # the other ranks only help fine-tune
    if cfg.finetune_epochs > 0:
        load_best(pruned, best)
    else:
        save_student(pruned, best, **run.meta)
    return run.torch_variant("pruned", pruned, best)


@variant("pruned_int8")
def _pruned_int8(run: CompressionRun) -> CompressedModel:
    return run.quantized("pruned_int8", "pruned")


def compress_student(cfg: Config, data: SeedData, teacher: str) -> dict:
    """Every variant of the distilled student, built, checked (ONNX parity), measured and stamped;
    the record beside the other metrics (``Layout.compression``)."""
    result_path = Layout(cfg.output).compression(teacher, data.seed)
    if result_path.exists():
        return read_json(result_path)
    run = CompressionRun(cfg, data, teacher)
    for name, recipe in VARIANTS.items():
        if is_main_process() or recipe.trains:
            run.built[name] = recipe.make(run)
    if not is_main_process():
        return {}
    fp32 = run.built["fp32"]
    result = {"variants": {}, "parity": onnx_parity(fp32.model, fp32.onnx, data)}
    for name, built in run.built.items():
        result["variants"][name] = measure(built.model, cfg, data, built.file, architecture=built.architecture,
                                           deployable=True)[0]
    for name, built in run.built.items():
        stamp(built, name, {**run.meta, "thresholds": result["variants"][name]["metrics"].get("tuned_thresholds")})
    write_json(result_path, result)
    return result


def stamp(built: CompressedModel, variant: str, meta: dict) -> None:
    """What ``kd predict`` needs, inside each file of a variant: normalization, image size, tuned
    thresholds, and which variant it is."""
    from kdcore.models.checkpoint import load_student, save_student_safetensors, stamp

    stamp(built.file, {**meta, "variant": variant})
    if built.onnx:
        stamp(built.onnx, {**meta, "variant": f"{variant}_onnx"})
    if built.safetensors:
        save_student_safetensors(load_student(built.file)[0], built.safetensors, **meta,
                                 variant=f"{variant}_safetensors")


def calibration_frames(data: SeedData, count: int = 128) -> np.ndarray:
    """Normalized RGB training frames, spread evenly over the training split."""
    train = data.dataset("train", with_ir=False)
    picks = np.linspace(0, len(train) - 1, min(count, len(train))).astype(int)
    return train.normalized(picks).numpy()


def onnx_parity(model: torch.nn.Module, onnx_file: Path, data: SeedData) -> dict:
    """The largest logit gap between the student and its ONNX export, on test frames."""
    from kdcore.compression.onnx import OnnxModel

    test = data.dataset("test", with_ir=False)
    batch = test.normalized(range(min(32, len(test))))
    with torch.no_grad():
        gap = (model.cpu().eval()(batch) - OnnxModel(onnx_file)(batch)).abs().max().item()
    return {"max_abs_logit_difference": gap, "frames": len(batch)}
