"""The GPU paths: bf16 autocast and channels_last through every full-size teacher, teacher outputs
cached vs online, torch.compile, and resume after a kill, all on CUDA.

``pytest -m cuda`` runs them; without a GPU they are skipped. KD_CUDA_TESTS_DEVICE=cpu runs their
logic on the CPU (slow: full-size teachers at 224), to check the tests themselves.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from conftest import SMOKE
from killing import kill_tree

from kdcore.data import FrameDataset
from kdcore.models import STUDY_TEACHERS, Student, create_teacher
from kdcore.study.config import Config
from kdcore.training.loop import FitPaths, FitSettings, fit
from kdcore.training.losses import HardLabels, TeacherOutputs
from kdcore.training.methods import KD
from kdcore.training.objective import Distill

DEVICE = os.environ.get("KD_CUDA_TESTS_DEVICE", "cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")]


def _frames(n: int, size: int, seed: int = 0) -> FrameDataset:
    """Random uint8 pairs, as the cache holds them, with labels from simple cues."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    ir = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = np.stack([ir.mean((1, 2, 3)) > 127.5, rgb[..., 0].mean((1, 2)) > 127.5], 1).astype(np.float32)
    stats = {m: {"min": [0, 0, 0], "max": [255, 255, 255]} for m in ("rgb", "ir")}
    return FrameDataset(rgb, ir, labels, [f"{seed}-{i}" for i in range(n)], np.arange(n), stats)


def _settings(**kw) -> FitSettings:
    return FitSettings.from_config(Config(), **{"epochs": 1, "patience": 1, "lr": 1e-4, "batch_size": 4, "seed": 0,
                                                "eval_batch_size": 8, "device": DEVICE, "bf16": True,
                                                "channels_last": True, "progress": False, **kw})


def _paths(folder, name="model") -> FitPaths:
    folder.mkdir(parents=True, exist_ok=True)
    return FitPaths(folder / f"{name}_best.pth", folder / f"{name}_last.pth", folder / f"{name}_log.json")


@pytest.mark.parametrize("name", STUDY_TEACHERS)
def test_full_size_teacher_trains_in_bf16_channels_last(name, tmp_path):
    torch.manual_seed(0)
    teacher = create_teacher(name, img_size=224)
    before = teacher.head.weight.detach().clone()
    log = fit(teacher, HardLabels(), _frames(8, 224), _frames(4, 224, seed=1), _settings(), _paths(tmp_path))
    assert np.isfinite(log["epochs"][0]["train"]["loss"]) and log["stopped_by"] == "epoch_budget"
    assert not torch.equal(teacher.head.weight.detach().cpu(), before)  # an optimizer step happened
    if DEVICE == "cuda":
        assert next(teacher.parameters()).is_cuda
        assert torch.cuda.max_memory_allocated() > 0


def test_cached_teacher_outputs_equal_online_ones_on_the_device(tmp_path):
    from kdcore.study.work import predict_teacher_outputs

    data = _frames(16, 64)
    torch.manual_seed(0)
    teacher = create_teacher("resnet-18", img_size=64).eval().to(DEVICE)
    with torch.no_grad():
        teacher.head.bias.fill_(17.0)  # confident: any rounding through probabilities would show
    predict_teacher_outputs(teacher, data, batch_size=8, device=DEVICE).save(tmp_path / "outputs.pt")
    cached = TeacherOutputs.load(tmp_path / "outputs.pt")
    batch = data.on_device(torch.utils.data.default_collate([data[i] for i in range(8)]), torch.device(DEVICE),
                           torch.channels_last)
    with torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16):  # as inside a bf16 fit
        online = Distill(teacher, KD()).teacher_logits_and_features(batch)
    offline = Distill(cached, KD()).teacher_logits_and_features(batch)
    assert online[0].dtype == torch.float32 and online[0].abs().max() > 15
    torch.testing.assert_close(offline[0], online[0], atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", ["resnet-18", "student"])
def test_compiled_fit_matches_the_eager_one(name, tmp_path):
    def run(compiled: bool):
        torch.manual_seed(0)
        model = Student() if name == "student" else create_teacher(name, img_size=64)
        return fit(model, HardLabels(), _frames(16, 64), _frames(8, 64, seed=1), _settings(compile=compiled, epochs=2, patience=2),
                   _paths(tmp_path / str(compiled)))

    eager, compiled = run(False), run(True)
    assert compiled["stopped_by"] == "epoch_budget"
    for a, b in zip(eager["epochs"], compiled["epochs"], strict=True):
        assert abs(a["train"]["loss"] - b["train"]["loss"]) < 0.05  # bf16 kernels differ, not the maths


def _pipeline(params, teacher: str, until=None, timeout: float = 600) -> bool:
    """``python -m kdcore.study.work`` as its own process; killed (SIGKILL) once ``until()`` holds."""
    command = [sys.executable, "-m", "kdcore.study.work", "--params", str(params), "--teacher", teacher, "--seed", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if until is not None and until():
            kill_tree(proc.pid)
            return True
        assert time.monotonic() < deadline, "the pipeline hung"
        time.sleep(0.02)
    assert proc.returncode == 0 and until is None, proc.stderr.read()[-2000:]
    return False


def test_a_pipeline_killed_on_the_device_resumes_to_the_uninterrupted_metrics(tmp_path):
    base = {**yaml.safe_load(SMOKE.read_text()), "csv": str(tmp_path / "data" / "frame_labels.csv"),
            "device": DEVICE, "deterministic": True, "compress": False, "teachers": [{"name": "resnet-18"}]}
    runs = {}
    for name in ("killed", "whole"):
        params = tmp_path / f"{name}.yaml"
        params.write_text(yaml.safe_dump({**base, "output": str(tmp_path / name)}))
        runs[name] = tmp_path / name / "metrics" / "resnet-18" / "run_seed_1"
        if name == "killed":
            mark = tmp_path / name / "models" / "resnet-18" / "run_seed_1" / "teacher_last.pth"
            assert _pipeline(params, "resnet-18", until=mark.exists)
        _pipeline(params, "resnet-18")

    def metrics(folder):
        def clean(obj):
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items() if k not in ("timing", "provenance")}
            return [clean(v) for v in obj] if isinstance(obj, list) else obj
        return clean(json.loads((folder / "final_evaluation.json").read_text()))

    assert metrics(runs["killed"]) == metrics(runs["whole"])
