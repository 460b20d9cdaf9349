"""Any label set: several 0/1 labels, or one label with several classes, from the params file to
the pages and ``kd predict``; softmax distillation by hand; bad label input named and refused."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kdcore.data.labels import LabelSet
from kdcore.errors import KDError

SCENES = {(0, 0): "clear", (1, 0): "fire", (0, 1): "smoke", (1, 1): "both"}  # a class per label combination
MULTICLASS = {"kind": "multiclass", "column": "scene", "classes": ["clear", "fire", "smoke", "both"]}
THREE_LABELS = {"kind": "multilabel", "columns": ["fire", "smoke", "lit"]}


def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_softmax_distillation_equals_a_hand_computation_and_is_cross_entropy_at_alpha_0():
    from kdcore.training.losses import soft_target_loss

    rng = np.random.default_rng(0)
    zs, zt = rng.normal(size=(6, 4)) * 3, rng.normal(size=(6, 4)) * 3
    y = np.eye(4)[rng.integers(0, 4, 6)]
    T, alpha = 3.0, 0.6
    log_pt, log_ps = _log_softmax(zt / T), _log_softmax(zs / T)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(1).mean()
    ce = -(y * _log_softmax(zs)).sum(1).mean()
    args = [torch.tensor(a, dtype=torch.float64) for a in (zs, zt, y)]
    assert soft_target_loss(*args, T, alpha, multiclass=True).item() == pytest.approx(alpha * T**2 * kl + (1 - alpha) * ce)
    assert soft_target_loss(*args, T, 0.0, multiclass=True).item() == pytest.approx(ce)
    assert soft_target_loss(*args, T, 0.0, multiclass=True).item() == pytest.approx(
        torch.nn.functional.cross_entropy(args[0], args[2].argmax(1)).item())


def test_the_generalized_loss_does_not_soften_the_student():
    """Lopez-Paz et al.'s loss: T^2 * alpha * CE(softmax(z_t / T), softmax(z_s)) + (1 - alpha) * CE(y, softmax(z_s))."""
    from kdcore.training.methods import Batch, Generalized, Views

    rng = np.random.default_rng(1)
    zs, zt = rng.normal(size=(5, 10)), rng.normal(size=(5, 10)) * 4
    y = np.eye(10)[rng.integers(0, 10, 5)]
    T, alpha = 10.0, 0.5
    pt = np.exp(_log_softmax(zt / T))
    expected = T**2 * alpha * -(pt * _log_softmax(zs)).sum(1).mean() + (1 - alpha) * -(y * _log_softmax(zs)).sum(1).mean()
    labels = LabelSet("multiclass", tuple("0123456789"), "digit")
    loss = Generalized(labels, temperature=T, alpha=alpha)
    zs, zt, y = (torch.tensor(a, dtype=torch.float64) for a in (zs, zt, y))
    found = loss(Views(zs), Views(zt), Batch(y, None))
    assert found.item() == pytest.approx(expected)
    with pytest.raises(KDError, match="for classes"):
        Generalized(temperature=T, alpha=alpha)


def test_multiclass_metrics_decide_by_argmax():
    from sklearn.metrics import accuracy_score, f1_score

    from kdcore.evaluation.metrics import final_metrics

    labels = LabelSet("multiclass", ("a", "b", "c"), "k")
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), 60)
    y = np.eye(3)[rng.integers(0, 3, 60)]
    m = final_metrics(probs, y, probs, y, labels)
    assert m["accuracy"] == pytest.approx(accuracy_score(y.argmax(1), probs.argmax(1)))
    assert m["macro_f1"] == pytest.approx(f1_score(y.argmax(1), probs.argmax(1), average="macro"))
    assert np.asarray(m["confusion"]["classes"]).sum() == 60 and "tuned_thresholds" not in m
    assert set(m["ranking"]) == {"a", "b", "c"}


# --- studies of other label sets, end to end -------------------------------------------------

def _relabelled(synth_csv: Path, folder: Path) -> Path:
    """The shared synthetic frames with a class column (the label combination as a scene) and a
    third 0/1 label (whether the fire shows in RGB)."""
    df = pd.read_csv(synth_csv)
    df["rgb_frame"] = [str(synth_csv.parent / p) for p in df["rgb_frame"]]
    df["ir_frame"] = [str(synth_csv.parent / p) for p in df["ir_frame"]]
    df["scene"] = [SCENES[f, s] for f, s in zip(df["fire"], df["smoke"], strict=True)]
    df["lit"] = df["fire_rgb_visible"]
    folder.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["fire_rgb_visible"]).to_csv(folder / "frame_labels.csv", index=False)
    return folder / "frame_labels.csv"


def _params(folder: Path, csv: Path, labels: dict, **changes) -> Path:
    settings = {"csv": str(csv), "output": str(folder / "out"), "labels": labels, "seeds": [1],
                "split": "stratified", "train_size": 0.5, "image_size": 32,
                "teachers": [{"name": "mlp", "family": "mlp", "backbone": "mlp",
                              "backbone_kwargs": {"input_size": 32, "hidden": [64, 32]}}],
                "epochs_teacher": 2, "epochs_student": 2, "patience_teacher": 2, "patience_student": 2,
                "finetune_epochs": 1, "batch_size": 32, "latency_repeats": 1, "latency_batches": [1],
                "embeddings": ["tsne"], "student_stem_stride": 2, **changes}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("labels", [MULTICLASS, THREE_LABELS], ids=["multiclass", "three labels"])
def test_a_study_of_another_label_set_runs_every_stage_and_predicts(synth_csv, tmp_path, kd, labels):
    csv = _relabelled(synth_csv, tmp_path / "data")
    params = _params(tmp_path, csv, labels)
    code, out, err = kd("study", params, "--jobs", "2", "--reports", tmp_path / "reports")
    assert code == 0, err
    pages = sorted(p.name for p in (tmp_path / "reports" / "params").rglob("*.html"))
    assert pages == ["00_data.html", "01_teacher.html", "02_student.html", "03_compress.html", "compare.html",
                     "index.html"]
    label_set = LabelSet.from_config(labels)
    run = tmp_path / "out" / "metrics" / "mlp" / "run_seed_1"
    final = json.loads((run / "final_evaluation.json").read_text())
    answer = pd.read_csv(tmp_path / "out" / "metrics" / "compare" / "answer.csv")
    headline = "accuracy" if label_set.multiclass else "fire AUROC"
    assert headline in out and len(answer) == 1
    assert set(final["student"]["metrics"]["ranking"]) == set(label_set.names)
    predictions = pd.read_csv(run / "student_test_predictions.csv")
    assert [c for c in predictions if c.startswith("p_")] == [f"p_{n}" for n in label_set.names]

    answers = tmp_path / "answers.csv"
    model = tmp_path / "out" / "models" / "mlp" / "run_seed_1" / "student_quantized.onnx"
    code, out, err = kd("predict", "--model", model, "--images", csv, "--out", answers)
    assert code == 0, err
    got = pd.read_csv(answers, dtype=str, keep_default_na=False)
    probs = got[[f"{n}_prob" for n in label_set.names]].astype(float).to_numpy()
    if label_set.multiclass:
        assert set(got["scene"]) <= set(label_set.names) and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert (got["scene"].to_numpy() == np.asarray(label_set.names)[probs.argmax(1)]).all()
        assert "scene " in out
    else:
        assert all(set(got[n]) <= {"0", "1"} for n in label_set.names) and "lit in " in out


@pytest.mark.parametrize("edit, labels, named", [
    (lambda df: df.assign(scene=df["scene"].where(df.index != 5, "fog")), MULTICLASS,
     r"row 7: column 'scene' holds 'fog', not one of the declared classes \(clear, fire, smoke, both\)"),
    (lambda df: df.drop(columns=["lit"]), THREE_LABELS, r"missing column\(s\) lit"),
    (lambda df: df.assign(lit=df["lit"].where(df.index != 2, 2)), THREE_LABELS,
     r"row 4: column 'lit' must be 0 or 1, found '2'"),
    (lambda df: df, {"kind": "multiclass", "columns": ["fire", "smoke"]},
     r"config key 'labels.columns': not a setting of a multiclass label set"),
], ids=["class outside the declared", "label column missing", "a 0/1 column holding 2", "two columns for classes"])
def test_bad_label_input_is_one_error_line_and_writes_nothing(synth_csv, tmp_path, kd, edit, labels, named):
    csv = _relabelled(synth_csv, tmp_path / "data")
    edit(pd.read_csv(csv)).to_csv(csv, index=False)
    params = _params(tmp_path, csv, labels)
    for command in (("check", "--params", params), ("study", params, "--reports", tmp_path / "reports")):
        code, out, err = kd(*command)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert re.search(named, lines[0]), lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("labels, changes, named", [
    ({**MULTICLASS, "classes": [*MULTICLASS["classes"], "fog"]}, {},
     r"class 'fog' of labels.classes is on no row of column 'scene'"),
    (MULTICLASS, {"train_size": 3}, r"seed 1: none of the 3 labelled training items is of class '\w+'"),
], ids=["a declared class absent from the data", "a training part missing a class"])
def test_data_that_cannot_teach_every_class_is_refused_before_any_stage(synth_csv, tmp_path, kd, labels, changes,
                                                                        named):
    """kd check --params and kd study alike: one error line, nothing written."""
    csv = _relabelled(synth_csv, tmp_path / "data")
    params = _params(tmp_path, csv, labels, **changes)
    for command in (("check", "--params", params), ("study", params, "--reports", tmp_path / "reports")):
        code, out, err = kd(*command)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and re.search(named, lines[0]), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()


def test_kd_init_reads_the_label_set_from_the_csvs_columns(synth_csv, tmp_path, kd):
    """FLAME2's fire and smoke; other 0/1 columns as labels; one other column as classes. The file
    holds every config key with its comment, loads, and is never overwritten."""
    from kdcore.study.config import Config, load_config
    from kdcore.study.init import field_notes

    relabelled = pd.read_csv(_relabelled(synth_csv, tmp_path / "data"))
    kinds = {"flame2": relabelled.drop(columns=["scene", "lit"]), "labels": relabelled.drop(columns=["scene"]),
             "classes": relabelled.drop(columns=["fire", "smoke", "lit"])}
    expected = {"flame2": {}, "labels": THREE_LABELS, "classes": MULTICLASS}
    for kind, frame in kinds.items():
        csv = tmp_path / "data" / f"{kind}.csv"
        frame.to_csv(csv, index=False)
        code, out, err = kd("init", tmp_path / kind, "--csv", csv)
        assert code == 0, err
        cfg = load_config(tmp_path / kind / "study.yaml")
        found = cfg.labels if kind != "classes" else {**cfg.labels, "classes": sorted(cfg.labels["classes"])}
        assert found == ({**expected[kind], "classes": sorted(MULTICLASS["classes"])} if kind == "classes"
                         else expected[kind])
        assert cfg.csv == str(csv) and f"{len(frame)} frame pairs" in out
    text = (tmp_path / "flame2" / "study.yaml").read_text()
    assert all(re.search(rf"^{key}:.*  # \S", text, re.M) for key in field_notes(Config))  # each key, its comment
    code, _, err = kd("init", tmp_path / "flame2")
    assert code == 2 and "never overwrites" in err
