"""The pieces the controls rest on: online KD under augmentation, crossfit teacher outputs, the
label budget and the RGB-only teacher arm, each run through the pipeline on the smoke config."""

import numpy as np
import pytest
import torch
from conftest import SMOKE, one_torch_thread

from kdcore.layout import Layout
from kdcore.study.config import load_config
from kdcore.study.work import prepare_data, run_teacher_steps, train_student, train_teacher
from kdcore.study.work.fits import online_teacher
from kdcore.training.losses import TeacherOutputs

QUICK = {"epochs_teacher": 1, "epochs_student": 1, "finetune_epochs": 1}


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    from kdcore.data import synth

    return synth(tmp_path_factory.mktemp("controls"), frames=240, size=48, seed=0, progress=False)


def _cfg(tmp_path, csv, **overrides):
    return load_config(SMOKE, output=str(tmp_path / "out"), csv=str(csv), **{**QUICK, **overrides})


def test_online_kd_with_augmentation_runs_the_pipeline(tmp_path, csv):
    """Augmented frames need the teacher's outputs on those very frames: the teacher runs beside
    the student (a pruned student's fine-tune uses the same criterion, tested by the smoke runs)."""
    cfg = _cfg(tmp_path, csv, augment=True, compress=False)
    assert online_teacher(cfg)
    with one_torch_thread():
        result = run_teacher_steps(cfg, "resnet-18", 1, progress=False)
    assert result["student"]["training"]["epochs_run"] == 1 and "compression" not in result


def test_crossfit_gives_training_frames_outputs_of_teachers_that_never_saw_them(tmp_path, csv):
    cached, crossfit = (_cfg(tmp_path / mode, csv, teacher_outputs=mode, crossfit_folds=2) for mode in ("cached", "crossfit"))
    outputs = {}
    with one_torch_thread():
        for cfg in (cached, crossfit):
            data = prepare_data(cfg, 1, progress=False)
            evaluation = train_teacher(cfg, data, "resnet-18")
            outputs[cfg.teacher_outputs] = TeacherOutputs.load(Layout(cfg.output).models("resnet-18", 1) / "teacher_outputs.pt")
    assert evaluation["teacher_outputs"]["folds"] == 2 and evaluation["teacher_outputs"]["train_s"] > 0
    ids = data.table.frames["id"]
    train, rest = set(ids.iloc[data.split.train]), set(ids.iloc[np.concatenate([data.split.val, data.split.test])])
    differs = {i: not torch.equal(outputs["cached"].lookup([i], "cpu")[0], outputs["crossfit"].lookup([i], "cpu")[0])
               for i in outputs["cached"].ids}
    assert all(differs[i] for i in train)  # out-of-fold on training frames
    assert not any(differs[i] for i in rest)  # the full teacher elsewhere


def test_label_budget_trains_teacher_and_no_kd_student_on_labelled_blocks_only(tmp_path, csv):
    cfg = _cfg(tmp_path, csv, labelled_fraction=0.3)
    data = prepare_data(cfg, 1, progress=False)
    labelled = data.indices("labelled")
    assert 0 < len(labelled) < 0.6 * len(data.split.train)
    assert data.labelled_ids() == set(data.table.frames["id"].iloc[labelled])
    frames = []
    from kdcore.study.work import fits

    real = fits.fit

    def spy(model, criterion, train_set, *args, **kwargs):
        frames.append((kwargs.get("desc"), len(train_set), getattr(criterion, "labelled_ids", None)))
        return real(model, criterion, train_set, *args, **kwargs)

    fits.fit = spy
    try:
        with one_torch_thread():
            train_student(cfg, data, None)
            train_teacher(cfg, data, "resnet-18")
            train_student(cfg, data, "resnet-18")
    finally:
        fits.fit = real
    sizes = {desc: (n, ids) for desc, n, ids in frames}
    assert sizes["no_kd student"][0] == len(labelled) and sizes["resnet-18 teacher"][0] == len(labelled)
    n, ids = sizes["resnet-18 student"]
    assert n == len(data.split.train) and ids == data.labelled_ids()  # KD on every frame, BCE on the labelled


def test_rgb_teacher_arm_adds_a_twin_that_never_reads_ir(tmp_path, csv):
    cfg = _cfg(tmp_path, csv, rgb_teacher_arm=True)
    twin = cfg.teacher("resnet-18-rgb")
    assert twin.rgb_only and twin.twin_of == "resnet-18" and cfg.twin("resnet-18") == "resnet-18-rgb"
    data = prepare_data(cfg, 1, progress=False)
    data.ir = np.full_like(data.ir, 255)  # any read of IR would change what the twin learns
    data.stats = {**data.stats, "ir": {"min": [255, 255, 255], "max": [255, 255, 255]}}  # 0/0: NaN inputs
    with one_torch_thread():
        evaluation = train_teacher(cfg, data, "resnet-18-rgb")
    outputs = TeacherOutputs.load(Layout(cfg.output).models("resnet-18-rgb", 1) / "teacher_outputs.pt")
    assert torch.isfinite(outputs.logits).all() and evaluation["metrics"]["macro_f1"] is not None
    from kdcore.training.loop import TrainingDiverged

    with one_torch_thread(), pytest.raises(TrainingDiverged):  # the poison bites whoever reads IR
        train_teacher(cfg, data, "resnet-18")


def test_crossfit_folds_are_never_empty_under_a_label_budget(tmp_path, csv):
    from kdcore.study.work import crossfit_folds

    cfg = _cfg(tmp_path, csv, labelled_fraction=0.1)  # one labelled block per label combination
    data = prepare_data(cfg, 1, progress=False)
    folds = crossfit_folds(data, 3)
    assert all(len(f) for f in folds) and sorted(np.concatenate(folds)) == sorted(data.indices("labelled"))
    units = [set(data.split.units[f].tolist()) for f in folds]
    assert not (units[0] & units[1] or units[0] & units[2] or units[1] & units[2])  # whole blocks


def test_the_oracle_teacher_outputs_the_labels_of_every_frame_and_says_kd_can_pay(tmp_path, csv, capsys):
    cfg = _cfg(tmp_path, csv, labelled_fraction=0.3, teachers=[{"name": "oracle"}])
    data = prepare_data(cfg, 1, progress=False)
    with one_torch_thread():
        train_student(cfg, data, None)
        record = train_teacher(cfg, data, "oracle")
    outputs = TeacherOutputs.load(Layout(cfg.output).teacher_outputs_file("oracle", 1))
    assert outputs.ids == data.table.frames["id"].tolist()  # every frame, labelled or not
    assert data.label_budget and len(data.split.train) > len(data.indices("labelled"))
    labels = torch.tensor(data.table.targets)
    assert torch.equal((outputs.logits > 0).float(), labels)
    torch.testing.assert_close(torch.sigmoid(outputs.logits), labels, atol=0.003, rtol=0)
    assert record["oracle"] and record["metrics"]["ranking"]["fire"]["auroc"] == 1.0
    assert record["metrics"]["macro_f1"] == 1.0 and record["cost"]["params_total"] == 0
    with one_torch_thread():
        student = train_student(cfg, data, "oracle")
    lead = student["teacher_lead"]
    assert lead["teacher"] == 1.0 and lead["lead"] == 1.0 - lead["no_kd_student"] > 0
    assert "KD can pay" in capsys.readouterr().out  # said before the student trained


def test_the_oracle_cannot_be_twinned_run_online_or_cross_fitted(tmp_path, csv):
    from kdcore.errors import KDError

    with pytest.raises(KDError, match="the oracle teacher has no weights, no RGB twin"):
        _cfg(tmp_path, csv, teachers=[{"name": "oracle", "rgb_twin": True}])
    with pytest.raises(KDError, match="cannot run online"):
        _cfg(tmp_path, csv, teachers=[{"name": "oracle"}], augment=True)
    cfg = _cfg(tmp_path, csv, teachers=[{"name": "oracle"}, {"name": "resnet-18"}], rgb_teacher_arm=True)
    assert [t.name for t in cfg.teachers] == ["oracle", "resnet-18", "resnet-18-rgb"]  # no twin of the oracle
