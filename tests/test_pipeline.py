import json
import shutil
from pathlib import Path

import pytest

from kdcore.config import load_config
from kdcore.pipeline import Layout, prepare_data, run_teacher_pipeline, train_student, train_teacher

SMOKE = Path(__file__).resolve().parents[1] / "params" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke config on its own generated data, run once for one teacher and seed."""
    root = tmp_path_factory.mktemp("smoke")
    cfg = load_config(SMOKE, output=str(root / "out"), csv=str(root / "data" / "frame_labels.csv"))
    result = run_teacher_pipeline(cfg, "resnet-18", 1, progress=False)
    return cfg, result


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
    assert set(student["metrics"]) >= {"macro_f1", "hamming_loss", "ranking", "confusion", "tuned_thresholds", "tuned"}
    assert student["cost"]["params_total"] == 1_683_778 and student["cost"]["gflops"] > 0
    assert result["teacher"]["cost"]["params_total"] > 10_000_000
    assert student["timing"]["latency_batch1"]["median_ms"] > 0
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
    again = run_teacher_pipeline(cfg, "resnet-18", 1, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == stamps
    assert _strip_timing(again["student"]) == _strip_timing(first["student"])


def test_same_seed_from_scratch_gives_identical_metrics(smoke, tmp_path):
    cfg, first = smoke
    shutil.copytree(Path(cfg.csv).parent, tmp_path / "data")
    other = load_config(SMOKE, output=str(tmp_path / "out"), csv=str(tmp_path / "data" / "frame_labels.csv"))
    data = prepare_data(other, 1, progress=False)
    second = {"no_kd_student": train_student(other, data, None), "teacher": train_teacher(other, "resnet-18", data),
              "student": train_student(other, data, "resnet-18")}
    for role in ("teacher", "student", "no_kd_student"):
        assert _strip_timing(second[role]["metrics"]) == _strip_timing(first[role]["metrics"])
    logs = [json.loads((Layout(c.output).metrics("resnet-18", 1) / "student_train_log.json").read_text())
            for c in (cfg, other)]
    assert _strip_timing(logs[0]) == _strip_timing(logs[1])


@pytest.mark.parametrize("model", ["student_best.pth", "student_quantized.onnx", "student_pruned_best.pth",
                                   "student_pruned_quantized.onnx"])
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
