"""The benchmarks run (they assert no timing): the GPU check in its CPU smoke mode, its projection's
arithmetic, the loader benchmark's two item formats, the start-up benchmark's pieces, and the set-up
benchmark's reading of the Makefile."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMOKE
from torch.utils.data import default_collate

from benchmarks import compression, gpu, loader, methods, minutes, setup, startup, training

DEFAULT = Path(__file__).resolve().parents[1] / "params" / "default.yaml"


@pytest.mark.slow
def test_gpu_check_smoke_mode_runs_every_part(tmp_path):
    result = gpu.main(["--device", "cpu", "--size", "32", "--frames", "120", "--params", str(SMOKE), "--out", str(tmp_path)])
    assert result["smoke"] and "CPU" in result["device"]
    assert [r["model"] for r in result["models"]] == ["resnet-18", "swin-micro", "student"]
    for row in result["models"]:
        assert row["eager"]["train_images_per_s"] > 0 and row["eager"]["infer_images_per_s"] > 0
        assert "compiled" not in row  # compiling on a CPU takes minutes: off unless --compile
    assert all(r["loop_images_per_s"] > 0 for r in result["loop"])
    pipeline = result["pipeline"]
    run = pipeline["torchrun --nproc_per_node 1"]  # smoke mode: the launcher once (one process: the same code)
    assert run["ok"], run.get("stderr_tail")
    assert "python -m kdcore.study.work" not in pipeline
    assert not pipeline["compress"] and not run["compressed"]  # as its params say
    projection = result["projection"]
    assert set(projection["arms"]["study"]["teachers"]) == {"resnet-18", "swin-micro"}
    assert projection["full budget"]["gpu_hours"] >= projection["early stop"]["gpu_hours"] > 0
    table = next(tmp_path.glob("gpu-*.md")).read_text()
    assert "SMOKE MODE" in table and "| swin-micro |" in table and next(tmp_path.glob("gpu-*.json"))


def test_gpu_check_times_the_default_study_at_its_batch_sizes():
    cfg = gpu.study_config(DEFAULT, 224, smoke=False)
    assert all(t.pretrained is False for t in cfg.teachers)  # no weights files needed
    assert gpu._batch_sizes(cfg) == [("resnet-152", 32), ("efficientnet-b7", 8), ("efficientnet-b7", 32),
                                     ("vit-b-16", 32), ("swin-tiny", 32), ("resnet-152-rgb", 32), ("student", 32)]
    assert [label for label, _ in gpu.arms(cfg)] == ["labelled_fraction=1.0", "labelled_fraction=0.1"]


def test_projection_adds_up_every_fit_of_the_study():
    cfg = gpu.study_config(SMOKE, 64, smoke=False)  # 2 seeds, teachers resnet-18 and swin-micro
    models = [{"model": m, "batch": 32, "eager": {"train_images_per_s": 100.0, "infer_images_per_s": 1000.0}}
              for m in ("resnet-18", "swin-micro", "student")]
    loops = [{"model": m, "batch": 32, "loop_images_per_s": 50.0} for m in ("resnet-18", "swin-micro", "student")]
    p = gpu.projection(cfg, models, loops, {"teacher": 2, "student": 2})
    frames = gpu.FLAME2_FRAMES
    # every model trains at 50 frames/s (half its model-only rate) and infers at 1000 frames/s
    fit = lambda epochs: epochs * (frames["train"] / 50 + frames["val"] / 1000) + (frames["val"] + frames["test"]) / 1000  # noqa: E731
    per_teacher = 2 * (fit(cfg.epochs_teacher) + frames["all"] / 1000 + fit(cfg.epochs_student)
                       + fit(cfg.finetune_epochs)) / 3600
    assert p["arms"]["study"]["teachers"]["resnet-18"]["full budget"] == pytest.approx(per_teacher)
    assert p["full budget"]["gpu_hours"] == pytest.approx(2 * per_teacher + 2 * fit(cfg.epochs_student) / 3600)


def test_projection_has_an_arm_per_sweep_point_with_fits_on_the_labelled_frames():
    cfg = gpu.study_config(SMOKE, 64, smoke=False, teachers=[{"name": "resnet-18", "rgb_twin": True}],
                           sweep={"labelled_fraction": [1.0, 0.1]})
    names = ("resnet-18", "resnet-18-rgb", "student")
    models = [{"model": m, "batch": 32, "eager": {"train_images_per_s": 100.0, "infer_images_per_s": 1000.0}}
              for m in names]
    loops = [{"model": m, "batch": 32, "loop_images_per_s": 100.0} for m in names]
    p = gpu.projection(cfg, models, loops, {"teacher": 2, "student": 2})
    assert list(p["arms"]) == ["labelled_fraction=1.0", "labelled_fraction=0.1"]
    frames = gpu.FLAME2_FRAMES
    def fit(epochs, train):
        return (epochs * (train / 100 + frames["val"] / 1000) + (frames["val"] + frames["test"]) / 1000) / 3600

    budget = p["arms"]["labelled_fraction=0.1"]
    teacher = fit(cfg.epochs_teacher, 0.1 * frames["train"]) + frames["all"] / 1000 / 3600
    student = fit(cfg.epochs_student, frames["train"])  # the distilled student sees every training frame
    assert budget["teachers"]["resnet-18-rgb"]["full budget"] == pytest.approx(2 * (teacher + student))  # a twin: no compression
    assert budget["full budget"] == pytest.approx(
        2 * fit(cfg.epochs_student, 0.1 * frames["train"]) + sum(t["full budget"] for t in budget["teachers"].values()))
    assert p["full budget"]["gpu_hours"] == pytest.approx(sum(a["full budget"] for a in p["arms"].values()))


def test_loader_items_scale_to_the_float_items_of_before():
    rng = np.random.default_rng(0)
    rgb, ir = (rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8) for _ in range(2))
    stats = {"rgb": {"min": [3, 5, 7], "max": [250, 251, 252]}, "ir": {"min": [0, 0, 0], "max": [255, 255, 255]}}
    args = (rgb, ir, np.zeros((6, 2), np.float32), [str(i) for i in range(6)], np.arange(6), stats)
    new, old = loader.FrameDataset(*args), loader.FloatItems(*args)
    cpu = torch.device("cpu")
    a = new.on_device(default_collate([new[i] for i in range(6)]), cpu)
    b = old.on_device(default_collate([old[i] for i in range(6)]), cpu)
    assert new[0][0].dtype == torch.uint8 and old[0][0].dtype == torch.float32
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_setup_benchmark_times_the_makefiles_own_commands(tmp_path, monkeypatch):
    """The recipe is read from make, for the venv asked; two cheap commands stand in for it when
    timed (the real one copies gigabytes)."""
    venv = tmp_path / "venv"
    recipe = setup.commands(venv)
    assert recipe[0].endswith(f"-m venv {venv}") and any("compileall" in c for c in recipe)
    assert sum("pip install " in c for c in recipe) == 3 and not any(c.lstrip().startswith("#") for c in recipe)
    monkeypatch.setattr(setup, "commands", lambda v: [f"mkdir -p {v}/bin", f"head -c 2000000 /dev/zero > {v}/blob"])
    result = setup.measure(venv)
    assert [r["command"] for r in result["steps"]] == ["mkdir -p $VENV/bin", "head -c 2000000 /dev/zero > $VENV/blob"]
    assert result["steps"][1]["written_mb"] == pytest.approx(2.0) and result["steps"][0]["resolve_s"] is None
    assert result["total_s"] == pytest.approx(sum(r["seconds"] for r in result["steps"]))
    assert "| `mkdir -p $VENV/bin` |" in setup.table(result)


def test_startup_pieces_add_up_to_the_last_and_the_table_names_each():
    """Two cheap rows and `kd --help`, once, without the papermill kernel (the real rows import torch:
    the full run takes a minute of the suite's ten)."""
    pieces = [("python itself", "pass"), ("kdcore", "import kdcore")]
    result = startup.measure(1, pieces, kernel=False)
    rows = result["imports"]
    assert [r["what"] for r in rows] == ["python itself", "kdcore"]
    assert sum(r["adds"] for r in rows) == pytest.approx(rows[-1]["seconds"])
    assert result["kd_help_s"] > 0 and "kernel_s" not in result
    text = startup.table(result)
    assert all(r["what"] in text for r in rows) and "`kd --help`" in text and "cores" in text


def test_training_benchmark_sets_fit_beside_the_bare_loop_and_fp32_beside_bf16(tmp_path):
    """One small run of each arm: every model has its rows, and the ratios are those of its rates."""
    result = training.main(["--frames", "32", "--epochs", "1", "--repeats", "1", "--steps", "1", "--out", str(tmp_path)])
    assert [r["model"] for r in result["loop"]] == [r["model"] for r in result["precision"]] == list(training.MODELS)
    for loop, precision in zip(result["loop"], result["precision"], strict=True):
        assert loop["ratio"] == pytest.approx(loop["fit"] / loop["bare loop"])
        assert precision["speed-up"] == pytest.approx(precision["bf16"] / precision["fp32"])
        assert 0 <= precision["val AUROC bf16"] <= 1
    assert "fit / bare" in next(tmp_path.glob("training-*.md")).read_text()
    formats = {r["model"]: r for r in result["memory_format"]}
    assert set(formats) == {"resnet-18-narrow", "tinynet-e", "vit-tiny-4", "swin-micro"}  # the twin is its teacher's
    assert all(r["speed-up"] == pytest.approx(r["contiguous_ms"] / r["channels_last_ms"]) for r in formats.values())
    assert [r["model"] for r in result["checkpoints"]] == list(training.CADENCE)
    assert all(r["speed-up"] == pytest.approx(r["every_epoch_s"] / r["cadence_s"]) for r in result["checkpoints"])
    assert result["fetching"]["same_weights"] and result["fetching"]["speed-up"] == pytest.approx(
        result["fetching"]["item_by_item_s"] / result["fetching"]["whole_batches_s"])


def test_stage_costs_by_kind_are_medians_and_the_table_sums_every_stage():
    rows = [{"notebook": "01_teacher", "seconds": s, "work_s": w} for s, w in ((10, 2), (12, 3), (30, 4))]
    rows.append({"notebook": "00_data", "seconds": 5.0, "work_s": 1.0})
    kinds = startup.by_kind(rows)
    assert kinds["01_teacher"] == {"stages": 3, "total_s": 52, "seconds": 12, "work_s": 3, "beyond_s": 9}
    result = {"machine": "m", "stages": {"spawned": kinds, "forked": startup.by_kind(rows[:1] + rows[3:])}}
    text = "\n".join(startup.stages_table(result))
    assert "| 00_data | 1 |" in text and "| 01_teacher | 3 |" in text
    assert "spawned 57 s, forked 15 s (3.8x)" in text


def test_the_study_projected_from_compute_alone_is_a_job_per_stage(tmp_path):
    """--peak-tflops: every model at a GPU's peak; one job per stage, whose hours add up to the study's."""
    from kdcore.study.scheduler import Study

    p = gpu.main(["--peak-tflops", "989", "--params", str(SMOKE), "--size", "64", "--out", str(tmp_path)])["projection"]
    jobs = p["jobs"].values()
    stages = Study(SMOKE, reports=tmp_path / "reports").stages
    assert sum(j["jobs"] for j in jobs) == len([s for s in stages if s.step.trains])  # one per training stage
    for budget in ("full budget", "early stop"):
        assert sum(j["jobs"] * j[budget] for j in jobs) == pytest.approx(p[budget]["gpu_hours"])
    assert "| study | 01_teacher | resnet-18 | 2 |" in next(tmp_path.glob("gpu-planning-*.md")).read_text()


@pytest.mark.slow  # torch.export's first export imports for 10 s and more
def test_both_onnx_exports_of_the_student_match_it_and_are_timed(tmp_path):
    demo = dict(list(compression.MODELS.items())[:1])
    result = compression.run(1, demo)
    (row,) = result["rows"]
    assert all(row[path] > 0 and row["gap"][path] < 1e-4 for path in compression.PATHS)
    assert "speed-up" in compression.markdown(result)


def test_a_studys_minutes_add_up_from_its_records(smoke_study):
    """Read off the smoke study: its seconds are its stage records', its fits' their logs'."""
    import json

    tmp, study, _ = smoke_study
    output = Path(study.cfg.output)
    rows = {r["kind"]: r for r in minutes.run(output)["rows"]}
    records = [json.loads(p.read_text()) for p in output.glob("stages/**/*.json")]
    assert sum(r["stages"] for r in rows.values()) == len(records) == len(study.stages)
    assert sum(r["seconds"] for r in rows.values()) == pytest.approx(sum(r["seconds"] for r in records))
    teacher_logs = list(output.glob("metrics/*/run_seed_*/teacher_train_log.json"))
    assert rows["01_teacher"]["fits_s"] == pytest.approx(sum(json.loads(p.read_text())["timing"]["train_s"]
                                                             for p in teacher_logs))
    # a fit resumed after the fixture's kills logs the training before them too, which no final stage
    # run timed: its step's seconds need not cover its fits'
    assert all(r["work_s"] >= r["step_s"] >= 0 and r["fits_s"] >= 0 for r in rows.values())


def test_the_methods_benchmark_times_every_method_beside_kd():
    result = methods.run(n=1, rounds=1, n_frames=48, peaks=False)
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"kd", "fitnets", "at", "rkd", "crd", "dkd", "dist"} and rows["kd"]["ratio_to_kd"] == 1.0
    assert "| fitnets | stages |" in methods.markdown(result)
