"""Bad input across the command line: one `error:` line naming the file, row or key, exit status 2,
and nothing already computed touched. (Bad frame CSVs: tests/test_schema.py; bad FLAME2 label
lines: tests/test_flame2.py; config values one by one: tests/test_config.py.)"""

from pathlib import Path

import pytest
import timm
import yaml
from conftest import SMOKE

from kdcore.models.weights import save_backbone


def _snapshot(*folders: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in f.rglob("*") if p.is_file()}


def _one_error_line(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture
def finished_study(smoke_study, tmp_path):
    """A params file for the finished smoke study, to be spoiled one key at a time."""
    tmp, study, _ = smoke_study
    settings = {**yaml.safe_load(SMOKE.read_text()), "output": study.cfg.output, "csv": study.cfg.csv}

    def params(**changes) -> Path:
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump({**settings, **changes}))
        return path

    return params, tmp / "reports", (Path(study.cfg.output), tmp / "reports")


@pytest.mark.parametrize("change, names", [
    ({"epochs_techer": 3}, ["unknown config key 'epochs_techer'"]),
    ({"epochs_teacher": "ten"}, ["'epochs_teacher': expected int, found str 'ten'"]),
    ({"epochs_teacher": -1}, ["'epochs_teacher': impossible value -1"]),
    ({"prune_sparsity": 1.0}, ["'prune_sparsity': impossible value 1.0"]),
    ({"teachers": ["resnet-18", "resnet-9000"]}, ["unknown teacher 'resnet-9000'"]),
    ({"teachers": [{"name": "resnet-18", "pretrained": "/nowhere/resnet18.pth"}]},
     ["pretrained weights for 'resnet18' not found: /nowhere/resnet18.pth"]),
    ({"teachers": [{"name": "mine", "family": "resnet-152", "backbone": "resnet152"}]},
     ["teacher 'mine': unknown family 'resnet-152'"]),
    ({"teachers": [{"name": "mine", "family": "resnet", "backbone": "resnet18", "backbone_kwargs": {"depth": 3}}]},
     ["backbone 'resnet18': cannot create it as asked"]),
    ({"synth_options": {"rgb_fires": 1.0}}, ["'synth_options': unknown synth option 'rgb_fires'"]),
    ({"split": "stratified", "train_size": 239}, ["config key 'train_size': 239 training items of 240 leaves too few"]),
], ids=["unknown key", "wrong type", "negative epochs", "sparsity 1", "unknown teacher", "missing weights",
        "unknown family", "bad backbone argument", "unknown synth option", "train_size too large"])
def test_bad_params_leave_a_finished_study_as_it_was(finished_study, kd, change, names):
    params, reports, folders = finished_study
    before = _snapshot(*folders)
    code, _, err = kd("study", params(**change), "--reports", reports, "--jobs", "2")
    _one_error_line(code, err, *names)
    assert _snapshot(*folders) == before


def test_weights_of_another_backbone_are_refused_before_anything_runs(finished_study, kd, tmp_path):
    params, reports, folders = finished_study
    save_backbone(timm.create_model("resnet34", num_classes=0), tmp_path / "resnet34.safetensors")
    before = _snapshot(*folders)
    spoiled = params(teachers=[{"name": "resnet-18", "pretrained": str(tmp_path / "resnet34.safetensors")},
                               "swin-micro"])
    code, _, err = kd("study", spoiled, "--reports", reports)
    _one_error_line(code, err, "resnet34.safetensors: does not fit backbone 'resnet18'", "unexpected")
    assert _snapshot(*folders) == before  # the changed teacher's earlier results were not cleaned away


def test_a_missing_image_is_named_by_row_and_id_before_any_stage_runs(synth_csv, kd, tmp_path):
    """As kd check names it, and not from inside the first data stage."""
    import shutil

    data = Path(shutil.copytree(Path(synth_csv).parent, tmp_path / "data"))
    gone = sorted((data / "254p Thermal Images").iterdir())[5]
    gone.unlink()
    code, _, err = kd("study", SMOKE, f"csv={data / 'frame_labels.csv'}", f"output={tmp_path / 'out'}",
                      "--reports", tmp_path / "reports")
    row = next(i for i, line in enumerate((data / "frame_labels.csv").read_text().splitlines(), 1) if gone.name in line)
    _one_error_line(code, err, f"frame_labels.csv: row {row} (id ", f"image not found: {gone}")
    assert not (tmp_path / "out" / "stages").exists()


def test_unwritable_output_folder(finished_study, kd, tmp_path):
    params, reports, _ = finished_study
    (tmp_path / "a_file").write_text("not a folder")
    code, _, err = kd("study", params(output=str(tmp_path / "a_file" / "out")), "--reports", tmp_path / "r")
    _one_error_line(code, err, "output folder", "a_file/out", "cannot be written")
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_kd_synth_into_a_file_is_an_error(kd, tmp_path):
    (tmp_path / "a_file").write_text("")
    code, _, err = kd("synth", "--out", tmp_path / "a_file" / "data", "--frames", 10)
    _one_error_line(code, err, "a_file")


@pytest.mark.parametrize("model, names", [
    ("teacher_best.pth", ["teacher_best.pth: not a kdcore student checkpoint"]),
    ("junk.onnx", ["junk.onnx: not a readable ONNX file"]),
    ("teacher_outputs.pt", ["teacher_outputs.pt: not a kdcore student checkpoint"]),
    ("missing.pth", ["--model: no such file", "missing.pth"]),
], ids=["teacher checkpoint", "junk onnx", "cached outputs", "missing file"])
def test_kd_predict_on_a_model_of_the_wrong_kind(smoke_study, kd, tmp_path, model, names):
    _, study, _ = smoke_study
    run = Path(study.cfg.output) / "models" / "resnet-18" / "run_seed_1"
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07junk")
    path = tmp_path / model if model in ("junk.onnx", "missing.pth") else run / model
    (tmp_path / "earlier.csv").write_text("id,fire\n1,0\n")
    frames = Path(study.cfg.csv).parent / "254p RGB Images"
    code, _, err = kd("predict", "--model", path, "--images", frames, "--out", tmp_path / "earlier.csv")
    _one_error_line(code, err, *names)
    assert (tmp_path / "earlier.csv").read_text() == "id,fire\n1,0\n"  # an earlier output is kept


def test_kd_predict_into_an_unwritable_place(smoke_study, kd, tmp_path):
    _, study, _ = smoke_study
    model = Path(study.cfg.output) / "models" / "resnet-18" / "run_seed_1" / "student_quantized.onnx"
    frames = Path(study.cfg.csv).parent / "254p RGB Images"
    (tmp_path / "a_file").write_text("")
    code, _, err = kd("predict", "--model", model, "--images", frames, "--out", tmp_path / "a_file" / "p.csv")
    _one_error_line(code, err, "a_file")


def test_flame2_folder_with_missing_frames_imports_the_rest_and_lists_them(kd, tmp_path):
    from test_flame2 import _layout

    # frame 3 has no RGB image, frame 6 no image at all, frame 13 no thermal image
    root = _layout(tmp_path / "flame2", [1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14],
                   [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14])
    code, out, err = kd("import-flame2", "--root", root, "--out", tmp_path / "labels.csv")
    assert code == 0, err
    warnings = {line.split(":")[1].strip(): line for line in err.splitlines() if line.startswith("warning")}
    assert any("thermal image but no RGB" in k and "(frames 3)" in v for k, v in warnings.items()), err
    assert any("labelled frames with no images" in k and "(frames 6)" in v for k, v in warnings.items()), err
    assert any("RGB image but no thermal" in k and "(frames 13)" in v for k, v in warnings.items()), err
    assert "wrote" in out


def test_flame2_folder_without_any_pair(kd, tmp_path):
    from test_flame2 import _layout

    root = _layout(tmp_path / "flame2", [1, 2], [3, 4])
    code, _, err = kd("import-flame2", "--root", root, "--out", tmp_path / "labels.csv")
    _one_error_line(code, err, "no labelled frame pairs found")
    assert not (tmp_path / "labels.csv").exists()


def test_kd_check_never_ends_in_a_traceback(kd, tmp_path):
    """A small synth set, the same without its video column, and one whose fire label is 0
    everywhere: every mode's table, or one line saying why it cannot be made and what to change."""
    import pandas as pd

    from kdcore.data import synth

    csv = synth(tmp_path / "s", frames=300, size=32, seed=1, progress=False)
    code, out, _ = kd("check", "--csv", csv)
    assert code == 0 and out.count("0 frames left out") == 3  # separate camera passes: no gap anywhere
    frames = pd.read_csv(csv)
    frames.drop(columns="video").to_csv(tmp_path / "s" / "one_video.csv", index=False)
    code, out, _ = kd("check", "--csv", tmp_path / "s" / "one_video.csv")
    assert code == 0 and "stratified: near-duplicates of test" in out
    assert "block: not possible: the block split leaves test without a frame: lower gap_frames (now 30" in out
    one_class = frames.head(150).assign(fire=0)
    one_class.to_csv(tmp_path / "s" / "no_fire.csv", index=False)
    code, out, err = kd("check", "--csv", tmp_path / "s" / "no_fire.csv")
    assert code == 0 and "label 'fire' is 0 on all 150 frames" in err
    assert all(f"  {mode}: near-duplicates of test" in out for mode in ("stratified", "group", "block"))


def test_the_slurm_executor_without_slurm_is_one_error_before_anything_runs(kd, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, squeue or srun here
    code, _, err = kd("study", SMOKE, f"output={tmp_path / 'out'}", "--executor", "slurm", "--reports", tmp_path / "r")
    _one_error_line(code, err, "--executor slurm: sbatch not found", "tools/slurm-local")
    assert not (tmp_path / "out" / "stages").exists()


def test_detach_needs_the_slurm_executor(kd, tmp_path):
    code, _, err = kd("study", SMOKE, f"output={tmp_path / 'out'}", "--detach", "--reports", tmp_path / "r")
    _one_error_line(code, err, "--detach submits the study's driver to Slurm: it needs --executor slurm")
