"""The student's checkpoint format, in one place: written by training (the best weights with this
metadata), read by compression, ``kd predict`` and the reports, stamped with the tuned thresholds.

A student file is self-describing: its kind, its architecture (pruned students are narrower
``Student``s) and what ``kd predict`` needs (normalization, image size, thresholds, the label set). ``.pth``
files load with ``weights_only=True``; ``.safetensors`` files hold no pickle at all, the metadata
as JSON in their header; an ONNX export carries the same JSON in its metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from kdcore.errors import KDError
from kdcore.io import atomic_path
from kdcore.models.student import make_student

ONNX_META_KEY = "kdcore"  # the ONNX metadata entry holding a student's metadata (JSON)


def student_arch(student: torch.nn.Module) -> dict:
    """What rebuilds the student (``kdcore.models.student.make_student``)."""
    return student.arch


def student_meta(student: torch.nn.Module, **meta) -> dict:
    """What makes a student checkpoint self-describing: its kind and architecture, and whatever
    ``kd predict`` needs (normalization, image size, thresholds)."""
    return {"kind": "kdcore-student", "arch": student_arch(student), **meta}


def save_student(student: torch.nn.Module, path: str | os.PathLike, **meta) -> None:
    with atomic_path(path) as tmp:
        torch.save({**student_meta(student, **meta), "model": student.state_dict()}, tmp)


def save_student_safetensors(student: torch.nn.Module, path: str | os.PathLike, **meta) -> Path:
    """The deployable student with no pickle at all: tensors, and its metadata as JSON in the
    safetensors header."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in student.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"kdcore": json.dumps(student_meta(student, **meta))})
    return Path(path)


def _load_safetensors(path: Path) -> tuple[torch.nn.Module, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("kdcore", "{}"))
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except Exception as e:  # safetensors' header and JSON errors share no base class
        raise KDError(f"{path}: not a kdcore student file ({type(e).__name__})") from None
    if meta.get("kind") != "kdcore-student":
        raise KDError(f"{path}: a safetensors file without kdcore's student metadata")
    student = make_student(meta["arch"])
    student.load_state_dict(state)
    return student.eval(), meta


def load_student(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """A student from its .pth checkpoint (loaded without running pickled code) or .safetensors file."""
    if Path(path).suffix == ".safetensors":
        return _load_safetensors(Path(path))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # a pickle's code never runs
    except Exception as e:  # not a torch file at all
        raise KDError(f"{path}: not a kdcore student checkpoint ({type(e).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != "kdcore-student":
        raise KDError(f"{path}: not a kdcore student checkpoint (a teacher's or another model's file?)")
    student = make_student(checkpoint["arch"])
    student.load_state_dict(checkpoint["model"])
    return student.eval(), checkpoint


def stamp(path: str | os.PathLike, meta: dict) -> None:
    """Store what ``kd predict`` needs (normalization, image size, thresholds, variant) inside a
    student's ``.pth`` checkpoint or ONNX file."""
    if Path(path).suffix == ".onnx":
        import onnx

        model = onnx.load(str(path))
        del model.metadata_props[:]
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_META_KEY, json.dumps(meta)
        with atomic_path(path) as tmp:
            onnx.save(model, str(tmp))
        return
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint.update(meta)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
