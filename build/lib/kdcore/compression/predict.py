"""RGB-only inference with a saved student: PyTorch checkpoint or ONNX file (fp32 or int8).

Each deployable file carries what inference needs: the training split's RGB normalization, the
image size, and the per-class thresholds tuned on validation (0.5 where none were stored).
An unreadable image is skipped, warned about and listed in the output, never dropped silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kdcore.compression.onnx import OnnxModel
from kdcore.data.dataset import normalize
from kdcore.data.labels import LabelSet
from kdcore.data.schema import load_rgb
from kdcore.errors import KDError
from kdcore.io import atomic_path, ensure_folder
from kdcore.layout import deployable_names
from kdcore.models.checkpoint import ONNX_META_KEY, load_student
from kdcore.progress import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
def load_deployable(path: str | os.PathLike):
    """(model, meta) of any student file a run writes (``.safetensors``, ``.pth``, ``.onnx``),
    with what inference needs; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise KDError(f"--model: no such file {path}")
    if path.suffix == ".onnx":
        import onnx

        try:
            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as e:  # onnx's parser errors have no common base class
            raise KDError(f"{path}: not a readable ONNX file ({type(e).__name__})") from None
        if ONNX_META_KEY not in props:
            raise KDError(f"{path}: an ONNX file without kdcore's metadata (normalization, image size); "
                          f"use the {deployable_names()[-1]} files a kdcore run writes")
        return OnnxModel(path), json.loads(props[ONNX_META_KEY])
    model, meta = load_student(path)
    if "normalization" not in meta:
        raise KDError(f"{path}: the checkpoint has no normalization statistics to predict with")
    return model, meta


def list_images(images: str | os.PathLike, base_path: str | os.PathLike | None = None) -> pd.DataFrame:
    """id and path of every image: the files of a folder, or a CSV's ``rgb_frame`` column."""
    images = Path(images)
    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise KDError(f"{images}: no images found ({', '.join(IMAGE_SUFFIXES)})")
        return pd.DataFrame({"id": [p.stem for p in files], "path": [str(p) for p in files]})
    if images.suffix.lower() == ".csv" and images.is_file():
        df = pd.read_csv(images, dtype=str, keep_default_na=False)
        if "rgb_frame" not in df:
            raise KDError(f"{images}: missing column rgb_frame (found {', '.join(df.columns)})")
        base = Path(base_path) if base_path else images.parent
        paths = [str(p if Path(p).is_absolute() else base / p) for p in df["rgb_frame"]]
        ids = df["id"] if "id" in df else [Path(p).stem for p in paths]
        return pd.DataFrame({"id": list(ids), "path": paths})
    raise KDError(f"--images: expected a folder of images or a CSV, found {images}")


def _answers(out: pd.DataFrame, probs: np.ndarray, labels: LabelSet, thresholds: dict | None) -> pd.DataFrame:
    """Per image a probability per label (``<label>_prob``) and its 0/1 decision at the student's
    tuned threshold; or per class a probability and, in the class column, the most probable class.
    Images that could not be read get empty answers."""
    read = ~np.isnan(probs).any(1)
    for k, label in enumerate(labels.names):
        out[f"{label}_prob"] = probs[:, k]
    if labels.multiclass:
        best = np.where(read, np.nan_to_num(probs, nan=-1).argmax(1), 0)
        out[labels.column] = np.where(read, np.asarray(labels.names)[best], "")
        return out
    thresholds = thresholds or dict.fromkeys(labels.names, 0.5)
    for k, label in enumerate(labels.names):
        out[label] = np.where(read, (probs[:, k] >= thresholds[label]).astype(int).astype(str), "")
    return out


def predict_images(model_path, images, out_csv, base_path=None, batch_size: int = 64,
                   show_progress: bool = True) -> pd.DataFrame:
    model, meta = load_deployable(model_path)
    ensure_folder(Path(out_csv).parent)  # before the work, not after it
    size, stats = int(meta["image_size"]), meta["normalization"]
    labels = LabelSet.from_config(meta.get("labels"))  # a file without a label set is FLAME2's
    table = list_images(images, base_path)
    probs = np.full((len(table), labels.outputs), np.nan)
    status = ["ok"] * len(table)
    for start in progress(range(0, len(table), batch_size), show_progress, desc="predicting", unit="batch"):
        rows, frames = [], []
        for i in range(start, min(start + batch_size, len(table))):
            try:
                frames.append(load_rgb(table["path"].iloc[i], size))
                rows.append(i)
            except KDError as e:
                status[i] = f"skipped: {e}"
        if frames:
            x = normalize(torch.from_numpy(np.stack(frames)), stats)
            with torch.inference_mode():
                logits = model(x).float()
            probs[rows] = (torch.softmax(logits, 1) if labels.multiclass else torch.sigmoid(logits)).numpy()
    out = _answers(table.copy(), probs, labels, meta.get("thresholds"))
    out["status"] = status
    out.attrs["labels"] = labels  # what the columns answer, for the caller's summary
    with atomic_path(out_csv) as tmp:
        out.to_csv(tmp, index=False)
    return out
