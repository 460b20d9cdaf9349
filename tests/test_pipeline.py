import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import SMOKE
from golden import GOLDEN, key_paths
from golden import machine as golden_machine
from golden import record as golden_record

from kdcore.layout import Layout
from kdcore.study.config import load_config
from kdcore.study.work import prepare_data, run_teacher_steps, train_student, train_teacher


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k != "timing"}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def test_writes_the_seed_layout(smoke):
    cfg, result = smoke
    layout = Layout(cfg.output)
    models, metrics = layout.models("resnet-18", 1), layout.metrics("resnet-18", 1)
    for name in ("teacher_best.pth", "student_best.pth", "teacher_outputs.pt"):
        assert (models / name).exists()
    for name in ("teacher_train_log.json", "student_train_log.json", "final_evaluation.json"):
        assert (metrics / name).exists()
    assert (layout.models("no_kd", 1) / "student_best.pth").exists()
    student = result["student"]
    assert set(student["metrics"]) >= {"macro_f1", "hamming_loss", "ranking", "confusion", "tuned_thresholds", "at_0.5",
                                      "constant_predictions"}
    assert student["training"]["selection"]["select_on"] == "mean_auroc" and isinstance(student["flags"], list)
    assert student["cost"]["params_total"] == 1_683_778 and student["cost"]["gflops"] > 0
    assert result["teacher"]["cost"]["params_total"] > 10_000_000
    assert set(student["timing"]["latency"]) == {"32px_batch1"} and student["timing"]["latency"]["32px_batch1"]["median_ms"] > 0
    assert result["provenance"]["seed"] == 1 and result["provenance"]["data"]["images"] == 480
    assert result["provenance"]["config"]["kd_temperature"] == 4.0


def test_compression_variants(smoke):
    cfg, result = smoke
    models = Layout(cfg.output).models("resnet-18", 1)
    for name in ("student_quantized.onnx", "student_pruned_best.pth", "student_pruned_quantized.onnx"):
        assert (models / name).exists()
    compression = result["compression"]
    assert compression["parity"]["max_abs_logit_difference"] < 1e-4
    variants = compression["variants"]
    assert set(variants) == {"fp32", "int8", "pruned", "pruned_int8"}
    assert variants["pruned"]["cost"]["params_total"] < 0.4 * variants["fp32"]["cost"]["params_total"]
    assert variants["int8"]["cost"]["size_mb"] < 0.35 * variants["fp32"]["cost"]["size_mb"]
    for v in variants.values():
        assert set(v["timing"]["latency"]) == {"224px_batch1", "32px_batch1"}  # smoke: batch 1 only
        assert 0 <= v["metrics"]["macro_f1"] <= 1


def test_a_second_run_trains_nothing(smoke):
    cfg, first = smoke
    models = Layout(cfg.output).models("resnet-18", 1)
    stamps = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    again = run_teacher_steps(cfg, "resnet-18", 1, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == stamps
    assert _strip_timing(again["student"]) == _strip_timing(first["student"])


@pytest.mark.parametrize("model", ["student_best.pth", "student_quantized.onnx", "student_pruned_best.pth",
                                   "student_pruned_quantized.onnx", "student.safetensors",
                                   "student_pruned.safetensors"])
def test_kd_predict_skips_a_corrupt_image_and_predicts_the_rest(smoke, kd, tmp_path, model):
    import pandas as pd

    cfg, _ = smoke
    frames = sorted((Path(cfg.csv).parent / "254p RGB Images").iterdir())[:6]
    folder = tmp_path / "frames"
    folder.mkdir()
    for f in frames:
        shutil.copy(f, folder / f.name)
    (folder / "broken.jpg").write_bytes(frames[0].read_bytes()[:150])
    models = Layout(cfg.output).models("resnet-18", 1)
    code, out, err = kd("predict", "--model", models / model, "--images", folder, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "1 unreadable image(s) skipped" in err and "broken.jpg" in err
    table = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert len(table) == 7 and (table["status"] == "ok").sum() == 6
    broken = table[table["id"] == "broken"].iloc[0]
    assert broken["status"].startswith("skipped: unreadable or corrupt image") and broken["fire"] == ""
    ok = table[table["status"] == "ok"]
    assert ok["fire_prob"].astype(float).between(0, 1).all() and set(ok["smoke"]) <= {"0", "1"}


def test_kd_predict_refuses_a_teacher_checkpoint(smoke, kd, tmp_path):
    cfg, _ = smoke
    teacher = Layout(cfg.output).models("resnet-18", 1) / "teacher_best.pth"
    code, _, err = kd("predict", "--model", teacher, "--images", tmp_path, "--out", tmp_path / "p.csv")
    assert code == 2 and "not a kdcore student checkpoint" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_torchrun_runs_the_whole_pipeline_on_two_ranks(smoke, tmp_path):
    """Two gloo ranks run the whole pipeline through its barriers; provenance records both."""
    import socket
    import subprocess
    import sys

    import yaml

    cfg, _ = smoke
    settings = {**yaml.safe_load(SMOKE.read_text()), "output": str(tmp_path / "out"), "csv": cfg.csv,
                "epochs_teacher": 1, "epochs_student": 1, "finetune_epochs": 1, "cache_dir": str(tmp_path / "cache")}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(settings))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "kdcore.study.work", "--params", str(tmp_path / "p.yaml"), "--teacher", "resnet-18", "--seed", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    layout = Layout(tmp_path / "out")
    final = json.loads((layout.metrics("resnet-18", 1) / "final_evaluation.json").read_text())
    assert set(final) >= {"teacher", "student", "no_kd_student", "compression", "provenance"}
    assert final["provenance"]["environment"]["world_size"] == 2
    log = json.loads((layout.metrics("resnet-18", 1) / "teacher_train_log.json").read_text())
    assert len(log["epochs"]) == 1


def test_int8_student_predicts_as_the_fp32_one(smoke):
    """7-bit weights keep x86's u8 x s8 pair sums from saturating (8-bit ones shifted probabilities by 0.8)."""
    import numpy as np

    from kdcore.compression.onnx import OnnxModel
    from kdcore.models.checkpoint import load_student
    from kdcore.training.loop import predict

    cfg, _ = smoke
    models = Layout(cfg.output).models("resnet-18", 1)
    test = prepare_data(cfg, 1, progress=False).dataset("test", with_ir=False)
    fp32 = predict(load_student(models / "student_best.pth")[0], test, 64, "cpu")["probs"]
    int8 = predict(OnnxModel(models / "student_quantized.onnx"), test, 64, "cpu")["probs"]
    assert np.abs(int8 - fp32).max() < 0.1


def test_safetensors_student_carries_its_metadata_without_pickle(smoke):
    import json

    import torch
    from safetensors import safe_open

    from kdcore.models.checkpoint import load_student

    cfg, _ = smoke
    models = Layout(cfg.output).models("resnet-18", 1)
    with safe_open(str(models / "student.safetensors"), framework="pt") as f:
        meta = json.loads(f.metadata()["kdcore"])
    assert meta["kind"] == "kdcore-student" and set(meta) >= {"arch", "normalization", "image_size", "thresholds"}
    (pth, pth_meta), (st, _) = load_student(models / "student_best.pth"), load_student(models / "student.safetensors")
    x = torch.randn(2, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        assert torch.equal(pth(x), st(x))
    assert meta["thresholds"] == pth_meta["thresholds"]


def test_smoke_results_keep_the_golden_format(smoke):
    """Every key of every metrics file, as recorded in tests/data/smoke_golden.json."""
    cfg, _ = smoke
    golden = json.loads(GOLDEN.read_text())["record"]
    now = golden_record(Path(cfg.output))
    assert set(now) == set(golden)
    for name in golden:
        assert key_paths(now[name]) == key_paths(golden[name]), name


def test_smoke_results_equal_the_golden_numbers(smoke):
    """Every metric, log entry and test score, byte for byte, on the kind of machine that recorded them."""
    cfg, _ = smoke
    golden = json.loads(GOLDEN.read_text())
    if golden["machine"] != golden_machine():
        pytest.skip(f"float kernels differ between CPUs: recorded on {golden['machine']}, this is {golden_machine()} "
                    "(python tests/golden.py re-records)")
    now = golden_record(Path(cfg.output))
    for name, expected in golden["record"].items():
        assert now[name] == expected, name


def test_a_step_refuses_to_run_before_what_it_reads(smoke, tmp_path):
    """A student notebook opened before its teacher's ran says which file is missing and which step makes it."""
    from kdcore.errors import KDError
    from kdcore.study.work import run_step

    cfg, _ = smoke
    other = load_config(SMOKE, output=str(tmp_path / "out"), csv=cfg.csv)
    data = prepare_data(other, 1, progress=False)
    with pytest.raises(KDError, match=r"02_student reads the teacher \(.*teacher_evaluation.json\), which is not "
                                      r"there: run 01_teacher first"):
        run_step(other, "02_student", data, "resnet-18")
    assert not Layout(other.output).fit_paths("resnet-18", 1, "student").last.exists()  # nothing trained


def test_a_step_that_does_not_apply_says_why(smoke, tmp_path):
    from kdcore.errors import KDError
    from kdcore.study.work import run_step

    cfg, _ = smoke
    other = load_config(SMOKE, output=str(tmp_path / "out"), csv=cfg.csv, compress=False)
    with pytest.raises(KDError, match=r"03_compress does not run for teacher 'resnet-18' in this config: compress: false"):
        run_step(other, "03_compress", prepare_data(other, 1, progress=False), "resnet-18")


def test_comparison_of_a_study_without_compression(smoke, tmp_path):
    """A KD-only study (compress: false, as the control studies run): no compressed rows, every
    table and figure still made."""
    from kdcore.reports import stages
    from kdcore.study.work import compare

    cfg, _ = smoke
    shutil.copytree(cfg.output, tmp_path / "out", ignore=shutil.ignore_patterns("*.onnx", "*.safetensors"))
    other = load_config(SMOKE, output=str(tmp_path / "out"), csv=cfg.csv, compress=False, seeds=[1],
                        teachers=["resnet-18"])
    final = Layout(other.output).final_evaluation("resnet-18", 1)
    final.write_text(json.dumps({k: v for k, v in json.loads(final.read_text()).items() if k != "compression"}))
    study = stages.compare_stage(other)
    assert study.variants.empty and compare.compressed_table(study).empty
    stages.tradeoff_figures(study)  # the teacher alone: no compressed student to place
    assert Layout(other.output).figure(None, None, "tradeoff").exists()
    assert len(study.models) == 3 and {p.suffix for p in study.paper_tables} == {".csv", ".md", ".tex"}


def test_each_step_names_the_function_that_does_its_work():
    """A step's work is found from its declaration alone (kdcore.study.steps): no table elsewhere."""
    from kdcore.study.steps import STEPS
    from kdcore.study.work.compare import compare_runs

    works = {s.notebook: s.function() for s in STEPS}
    assert works["01_teacher"] is train_teacher and works["02_student"] is train_student
    assert works["04_compare"] is compare_runs
    assert all(callable(f) for f in works.values()) and len(set(works.values())) == len(works)
