"""Numbers that mean what they say: epochs kept on a criterion that moves, F1 at thresholds tuned
on validation, degenerate models flagged. Planted models, no real training."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from kdcore.study.config import Config
from kdcore.training.loop import FitPaths, FitSettings, fit


class Frames(Dataset):
    """n frames with alternating labels (both classes the same)."""

    def __init__(self, n: int):
        self.y = torch.tensor([[i % 2, i % 2] for i in range(n)], dtype=torch.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.zeros(3, 4, 4), torch.zeros(3, 4, 4), self.y[i], str(i)


class PlantedScores(nn.Module):
    """A criterion whose validation logits follow a plan: at the epoch in ``ranks_at`` positives
    score -2 and negatives -3 (a perfect ranking, every probability below 0.5); at other epochs
    the scores ignore the labels. Training is an ordinary BCE step on a one-weight model."""

    def __init__(self, ranks_at: int | None, epochs: int):
        super().__init__()
        self.ranks_at, self.epoch = ranks_at, 0
        self.noise = torch.Generator().manual_seed(0)
        self.scores = [torch.rand(64, 2, generator=self.noise) for _ in range(epochs)]

    def train(self, mode: bool = True):
        self.epoch += int(mode)  # the loop puts the criterion in training mode once per epoch
        return super().train(mode)

    def forward(self, model, batch):
        rgb, _, targets, ids = batch
        if model.training:
            logits = model(rgb.flatten(1)[:, :1]).expand(-1, 2)
            return nn.functional.binary_cross_entropy_with_logits(logits, targets), logits
        rows = torch.tensor([int(i) for i in ids])
        if self.epoch == self.ranks_at:
            return torch.zeros(()), targets - 3.0
        return torch.zeros(()), self.scores[self.epoch - 1][rows] - 3.0  # below 0.5, in no order


def _fit(tmp_path, criterion, select_on, epochs=4):
    settings = FitSettings.from_config(Config(), epochs=epochs, patience=epochs, lr=1e-3, batch_size=8, seed=0,
                                       eval_batch_size=64, progress=False, select_on=select_on)
    paths = FitPaths(tmp_path / "best.pth", tmp_path / "last.pth", tmp_path / "log.json")
    return fit(nn.Linear(1, 1), criterion, Frames(16), Frames(64), settings, paths), paths


def test_selection_keeps_the_epoch_where_the_ranking_is_best_while_f1_at_half_is_flat(tmp_path):
    log, paths = _fit(tmp_path / "auroc", PlantedScores(ranks_at=3, epochs=4), "mean_auroc")
    assert log["best_epoch"] == 3 and torch.load(paths.best)["epoch"] == 3
    assert log["epochs"][2]["val"]["mean_auroc"] == 1.0
    assert [e["val"]["macro_f1"] for e in log["epochs"]] == [0.0] * 4  # nothing above 0.5, ever
    assert log["selection"] == {"select_on": "mean_auroc", "criterion": "validation AUROC, mean over the classes",
                                "best": 1.0, "flat": False}
    legacy, _ = _fit(tmp_path / "f1", PlantedScores(ranks_at=3, epochs=4), "macro_f1")
    assert legacy["best_epoch"] == 1 and legacy["selection"]["flat"]  # the reference's rule: no signal


def test_bce_selection_is_taken_against_the_labels_and_minimized(tmp_path):
    log, _ = _fit(tmp_path, PlantedScores(ranks_at=2, epochs=3), "bce", epochs=3)
    bce = [e["val"]["bce"] for e in log["epochs"]]
    assert log["best_epoch"] == int(np.argmin(bce)) + 1
    z, y = np.array([-2.0, -3.0]), np.array([1.0, 0.0])  # epoch 2's two kinds of frame, by hand
    assert bce[1] == pytest.approx(np.mean(np.log1p(np.exp(-z)) * y + np.log1p(np.exp(z)) * (1 - y)))


def test_a_flat_validation_curve_is_flagged_on_the_page(tmp_path):
    from kdcore.reports import display
    from kdcore.study.work.evaluation import selection_flags

    log, _ = _fit(tmp_path, PlantedScores(ranks_at=None, epochs=3), "macro_f1", epochs=3)
    assert log["selection"]["flat"]
    flags = selection_flags(log)
    assert [f["kind"] for f in flags] == ["flat_selection"]
    page = str(display.summary(["a summary"], [f["message"] for f in flags]).data)
    assert 'class="kd-warning"' in page and "selection had no signal" in page and "never moved over 3 epochs" in page
    moving, _ = _fit(tmp_path / "moving", PlantedScores(ranks_at=2, epochs=3), "mean_auroc", epochs=3)
    assert selection_flags(moving) == []


def test_headline_f1_is_at_the_tuned_threshold_and_the_half_threshold_f1_stands_beside_it():
    from kdcore.evaluation.records import metric_value
    from kdcore.study.work.evaluation import constant_flags

    y = np.array([[1, 1], [0, 0]] * 20)
    rank_perfectly_below_half = np.where(y == 1, 0.3, 0.1)  # perfect ranking, nothing reaches 0.5
    from kdcore.evaluation.metrics import final_metrics

    m = final_metrics(rank_perfectly_below_half, y, rank_perfectly_below_half, y)
    assert m["ranking"]["smoke"]["auroc"] == 1.0
    assert m["smoke"]["f1"] == 1.0 and m["macro_f1"] == 1.0  # at the cut chosen on validation
    assert m["at_0.5"]["smoke"]["f1"] == 0.0 and m["at_0.5"]["macro_f1"] == 0.0  # the reference protocol
    assert 0.1 < m["tuned_thresholds"]["smoke"] < 0.3
    record = {"metrics": m}
    assert metric_value(record, "macro_f1") == 1.0 and metric_value(record, "macro_f1_at_0.5") == 0.0
    assert constant_flags(m) == []  # it separates the classes at its threshold: not degenerate


def test_a_model_that_answers_one_value_on_every_test_frame_is_flagged():
    from kdcore.evaluation.metrics import final_metrics
    from kdcore.study.work.evaluation import constant_flags

    y = np.array([[1, 1], [0, 0]] * 20)
    val = np.where(y == 1, 0.8, 0.2)
    test = np.column_stack([np.where(y[:, 0] == 1, 0.8, 0.2), np.full(len(y), 0.1)])  # smoke: always no
    m = final_metrics(test, y, val, y)
    assert m["constant_predictions"] == {"fire": None, "smoke": 0}
    (flag,) = constant_flags(m)
    assert flag["kind"] == "constant_prediction" and flag["short"] == "smoke always 0"
    assert "predicts 0 on every test frame" in flag["message"]


def test_select_on_is_validated_like_any_config_key():
    from kdcore.errors import KDError
    from kdcore.study.config import load_config

    assert load_config(None).select_on == "mean_auroc"
    with pytest.raises(KDError, match="config key 'select_on': must be one of mean_auroc, mean_ap, bce, cross_entropy, macro_f1, last"):
        load_config(None, select_on="accuracy")
