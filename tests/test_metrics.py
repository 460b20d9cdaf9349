import numpy as np
import pytest

from kdcore.evaluation.metrics import (
    classification_metrics,
    final_metrics,
    prevalence_baseline,
    tune_thresholds,
)


def test_tuned_threshold_sits_between_the_classes_of_a_separable_validation_set():
    rng = np.random.default_rng(0)
    # positives all near 1 (as a confident model's), negatives spread over [0, 0.6]
    scores = np.concatenate([rng.uniform(0.97, 1.0, 50), rng.uniform(0.0, 0.6, 50)])
    y = np.concatenate([np.ones(50), np.zeros(50)])
    (t,) = tune_thresholds(scores[:, None], y[:, None])
    assert t == pytest.approx((scores[50:].max() + scores[:50].min()) / 2)
    assert scores[50:].max() < t < scores[:50].min()  # not the edge: the lowest positive score


def test_threshold_stays_at_one_half_unless_validation_f1_improves():
    scores = np.array([[0.9], [0.8], [0.1], [0.2]])
    y = np.array([[1], [1], [0], [0]])
    assert tune_thresholds(scores, y) == [0.5]  # 0.5 already separates them
    scores = np.array([[0.45], [0.4], [0.1], [0.2]])  # positives under 0.5: F1 there is 0
    (t,) = tune_thresholds(scores, y)
    assert t == pytest.approx(0.3)
    assert tune_thresholds(np.array([[0.3], [0.7]]), np.array([[0], [0]])) == [0.5]


def test_an_absent_class_has_no_f1_and_macro_f1_says_what_it_averaged():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.3]])
    targets = np.array([[1, 0], [1, 0], [0, 0]])  # no smoke at all
    m = classification_metrics(probs, targets)
    assert m["smoke"]["f1"] is None and m["macro_f1_classes"] == ["fire"]
    assert m["macro_f1"] == m["fire"]["f1"] == 1.0


def test_prevalence_baseline_is_what_always_positive_scores():
    targets = np.array([[1, 0]] * 3 + [[0, 1]])
    base = prevalence_baseline(targets)
    always = classification_metrics(np.ones((4, 2)), targets)
    assert base["fire"]["always_positive_f1"] == pytest.approx(always["fire"]["f1"])
    assert base["always_positive_macro_f1"] == pytest.approx(always["macro_f1"])
    assert base["smoke"]["average_precision"] == 0.25
    assert "baseline" in final_metrics(np.ones((4, 2)), targets, np.ones((4, 2)), targets)


def test_fast_bootstrap_metrics_agree_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from kdcore.evaluation.metrics import auroc, macro_f1

    rng = np.random.default_rng(1)
    targets = (rng.random((300, 2)) < 0.4).astype(int)
    probs = np.round(np.clip(targets * 0.3 + rng.random((300, 2)) * 0.7, 0, 1), 2)  # with ties
    assert auroc(probs[:, 0], targets[:, 0]) == pytest.approx(roc_auc_score(targets[:, 0], probs[:, 0]))
    assert macro_f1(probs, targets) == pytest.approx(classification_metrics(probs, targets)["macro_f1"])
    assert auroc(probs[:, 0], np.zeros(300)) is None
    # a resample as frame weights equals the metric of the frames repeated that often
    weights = rng.integers(0, 3, (4, 300))
    rows = [np.repeat(np.arange(300), w) for w in weights]
    assert auroc(probs[:, 0], targets[:, 0], weights) == pytest.approx(
        [roc_auc_score(targets[r, 0], probs[r, 0]) for r in rows])
    assert macro_f1(probs, targets, weights) == pytest.approx(
        [classification_metrics(probs[r], targets[r])["macro_f1"] for r in rows])
