"""Where a number came from: code version, packages, config, seed, device, data fingerprint."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import kdcore

PACKAGES = ("torch", "torchvision", "timm", "numpy", "scikit-learn", "torch-pruning", "onnxruntime")


def _git(*args: str) -> str | None:
    root = Path(kdcore.__file__).resolve().parents[1]
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_version() -> dict:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"kdcore": kdcore.__version__, "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(status) if status is not None else None}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_fingerprint(csv: str | Path, paths: list[str]) -> dict:
    """Hashes of the CSV's bytes and of the image list (the files' paths, relative to the CSV so
    that the same data in another folder has the same fingerprint, and sizes)."""
    listing, folder = hashlib.sha256(), Path(csv).parent
    for p in paths:
        listing.update(f"{os.path.relpath(p, folder)}\t{Path(p).stat().st_size}\n".encode())
    return {"csv_sha256": hashlib.sha256(Path(csv).read_bytes()).hexdigest(),
            "images_sha256": listing.hexdigest(), "images": len(paths)}


def environment(device) -> dict:
    """The torch ``device`` a run used, its threads and world size, and the platform."""
    import torch

    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    env = {"device": str(device), "threads": torch.get_num_threads(), "world_size": world,
           "platform": platform.platform()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def provenance(cfg, data=None, device=None) -> dict:
    """Code, packages and config; with the torch ``device`` a run used, its environment; with one
    seed's ``data`` (a ``SeedData``), its seed, split and the data's fingerprint too. Without a
    device, no torch is loaded: the comparison only reads records."""
    record = {"code": code_version(), "packages": package_versions(), "config": cfg.to_dict(),
              "config_digest": cfg.digest()}
    if device is not None:
        record["environment"] = environment(device)
    if data is not None:
        paths = data.table.frames["rgb_path"].tolist() + data.table.frames["ir_path"].tolist()
        record.update(seed=data.seed, split_mode=data.split.mode, data=data_fingerprint(data.table.csv, paths))
    return record
