"""Multi-label metrics for fire and smoke, from probabilities and 0/1 targets (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from kdcore.data.schema import LABELS


def classification_metrics(probs: np.ndarray, targets: np.ndarray, thresholds=0.5) -> dict:
    """What every epoch logs: subset and per-label accuracy, macro-F1, per-class F1/P/R, Hamming loss."""
    targets = np.asarray(targets).astype(int)
    preds = (np.asarray(probs) >= np.asarray(thresholds, dtype=float)).astype(int)
    out = {
        "subset_accuracy": float(skm.accuracy_score(targets, preds)),
        "macro_f1": float(skm.f1_score(targets, preds, average="macro", zero_division=0)),
        "hamming_loss": float(skm.hamming_loss(targets, preds)),
    }
    precision, recall, f1, _ = skm.precision_recall_fscore_support(targets, preds, average=None,
                                                                   zero_division=0, labels=[0, 1])
    for k, label in enumerate(LABELS):
        out[label] = {"accuracy": float(np.mean(preds[:, k] == targets[:, k])), "f1": float(f1[k]),
                      "precision": float(precision[k]), "recall": float(recall[k])}
    return out


def ranking_metrics(probs: np.ndarray, targets: np.ndarray) -> dict:
    """AUROC and average precision per class (None where a class has one value only)."""
    out = {}
    for k, label in enumerate(LABELS):
        y, p = targets[:, k], probs[:, k]
        both = 0 < y.sum() < len(y)
        out[label] = {"auroc": float(skm.roc_auc_score(y, p)) if both else None,
                      "average_precision": float(skm.average_precision_score(y, p)) if both else None}
    return out


def confusion_matrices(probs: np.ndarray, targets: np.ndarray, thresholds=0.5) -> dict:
    """Per class: [[TN, FP], [FN, TP]]."""
    preds = (probs >= np.asarray(thresholds, dtype=float)).astype(int)
    matrices = skm.multilabel_confusion_matrix(targets.astype(int), preds, labels=[0, 1])
    return {label: matrices[k].tolist() for k, label in enumerate(LABELS)}


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per class, the threshold that maximizes F1 on these (validation) frames."""
    thresholds = []
    for k in range(targets.shape[1]):
        if targets[:, k].sum() == 0:  # nothing to find: keep the default
            thresholds.append(0.5)
            continue
        precision, recall, cuts = skm.precision_recall_curve(targets[:, k], probs[:, k])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        thresholds.append(float(cuts[int(np.argmax(f1[:-1]))]))
    return thresholds


def final_metrics(test_probs: np.ndarray, test_targets: np.ndarray, val_probs: np.ndarray,
                  val_targets: np.ndarray) -> dict:
    """The test evaluation: at 0.5 and at thresholds tuned on validation."""
    tuned = tune_thresholds(val_probs, val_targets)
    return {
        **classification_metrics(test_probs, test_targets),
        "ranking": ranking_metrics(test_probs, test_targets),
        "confusion": confusion_matrices(test_probs, test_targets),
        "tuned_thresholds": dict(zip(LABELS, tuned, strict=True)),
        "tuned": {**classification_metrics(test_probs, test_targets, tuned),
                  "confusion": confusion_matrices(test_probs, test_targets, tuned)},
    }
