"""Metrics from probabilities and (items x outputs) 0/1 targets (scikit-learn), for either kind of
label set (``kdcore.data.labels``): per label at thresholds, or per class at the argmax.

Probabilities are sigmoids of a multi-label model's logits and the softmax of a multi-class one's;
a multi-class decision is the most probable class, so per-class F1, precision, recall, AUROC and AP
read the same one-hot matrices as a multi-label model's per-label ones.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from kdcore.data.labels import FLAME2, LabelSet


def probabilities(logits: np.ndarray, labels: LabelSet = FLAME2) -> np.ndarray:
    """Sigmoids per label, or the softmax over the classes (in float64)."""
    z = np.asarray(logits, dtype=np.float64)
    if labels.multiclass:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    return 1 / (1 + np.exp(-z))


def decisions(probs: np.ndarray, thresholds=0.5, labels: LabelSet = FLAME2) -> np.ndarray:
    """0/1 per output: a label at its threshold, or the one-hot most probable class."""
    probs = np.asarray(probs)
    if labels.multiclass:
        return np.eye(labels.outputs, dtype=int)[probs.argmax(1)] if len(probs) else np.zeros_like(probs, int)
    return (probs >= np.asarray(thresholds, dtype=float)).astype(int)


def classification_metrics(probs: np.ndarray, targets: np.ndarray, thresholds=0.5,
                           labels: LabelSet = FLAME2) -> dict:
    """What every epoch logs: per label (or class) accuracy, F1, precision and recall, macro-F1;
    for labels also subset accuracy and Hamming loss, for classes accuracy.

    A class with no positive frame here has no F1, precision or recall (None, not 0); macro-F1 then
    averages the classes that have positives, and ``macro_f1_classes`` says which they were.
    """
    targets = np.asarray(targets).astype(int)
    preds = decisions(probs, thresholds, labels)
    present = [k for k in range(labels.outputs) if targets[:, k].any()]
    precision, recall, f1, _ = skm.precision_recall_fscore_support(targets, preds, average=None,
                                                                   zero_division=0, labels=list(range(labels.outputs)))
    if labels.multiclass:
        out = {"accuracy": float(np.mean((preds == targets).all(1))) if len(targets) else None}
    else:
        out = {"subset_accuracy": float(skm.accuracy_score(targets, preds))}
    out.update({"macro_f1": float(np.mean(f1[present])) if present else None,
                "macro_f1_classes": [labels.names[k] for k in present]})
    if not labels.multiclass:
        out["hamming_loss"] = float(skm.hamming_loss(targets, preds))
    for k, label in enumerate(labels.names):
        defined = k in present
        out[label] = {"accuracy": float(np.mean(preds[:, k] == targets[:, k])),
                      "f1": float(f1[k]) if defined else None,
                      "precision": float(precision[k]) if defined else None,
                      "recall": float(recall[k]) if defined else None}
    return out


def prevalence_baseline(targets: np.ndarray, labels: LabelSet = FLAME2) -> dict:
    """What a constant scorer gets: always-positive F1 = 2p / (1 + p), AP = p, AUROC = 0.5 per class,
    so a reader sees when a high F1 is free; for classes also what always answering the most
    frequent class scores (its accuracy and macro-F1)."""
    targets = np.asarray(targets).astype(int)
    out = {}
    for k, label in enumerate(labels.names):
        p = float(targets[:, k].mean()) if len(targets) else 0.0
        out[label] = {"prevalence": p, "always_positive_f1": 2 * p / (1 + p), "average_precision": p,
                      "auroc": 0.5}
    out["always_positive_macro_f1"] = float(np.mean([out[label]["always_positive_f1"] for label in labels.names]))
    if labels.multiclass:
        top = max(out[label]["prevalence"] for label in labels.names)
        out["majority_accuracy"] = top
        out["majority_macro_f1"] = (2 * top / (1 + top)) / labels.outputs
    return out


def ranking_metrics(probs: np.ndarray, targets: np.ndarray, labels: LabelSet = FLAME2) -> dict:
    """AUROC and average precision per class, one against the rest for classes (None where a class
    has one value only)."""
    out = {}
    for k, label in enumerate(labels.names):
        y, p = targets[:, k], probs[:, k]
        both = 0 < y.sum() < len(y)
        out[label] = {"auroc": float(skm.roc_auc_score(y, p)) if both else None,
                      "average_precision": float(skm.average_precision_score(y, p)) if both else None}
    return out


def confusion_matrices(probs: np.ndarray, targets: np.ndarray, thresholds=0.5, labels: LabelSet = FLAME2) -> dict:
    """Per label: [[TN, FP], [FN, TP]]; for classes one matrix, ``classes``: rows the true class,
    columns the predicted one."""
    preds = decisions(probs, thresholds, labels)
    if labels.multiclass:
        matrix = skm.confusion_matrix(targets.argmax(1), preds.argmax(1), labels=list(range(labels.outputs)))
        return {"classes": matrix.tolist()}
    matrices = skm.multilabel_confusion_matrix(targets.astype(int), preds, labels=list(range(labels.outputs)))
    return {label: matrices[k].tolist() for k, label in enumerate(labels.names)}


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per class, a threshold tuned on these (validation) frames: 0.5 unless another cut gives a
    higher F1, else the middle of the widest interval of cuts that reach the maximal F1.

    A cut at the edge of that interval (the lowest positive score, say) sits on one validation
    frame and fails on the next test frame; a few video segments are often separable, and then
    any cut between the classes is as good on validation, and the middle is the safe one.
    """
    return [_tuned(np.asarray(probs)[:, k], np.asarray(targets)[:, k].astype(int))
            for k in range(np.asarray(targets).shape[1])]


def _tuned(scores: np.ndarray, y: np.ndarray) -> float:
    if y.sum() == 0 or y.sum() == len(y):  # nothing to separate: keep the default
        return 0.5
    cuts = np.unique(scores)  # the cut in (cuts[k-1], cuts[k]] predicts exactly scores >= cuts[k]
    positives_above = np.cumsum(np.bincount(np.searchsorted(cuts, scores[y == 1]), minlength=len(cuts))[::-1])[::-1]
    predicted = np.cumsum(np.bincount(np.searchsorted(cuts, scores), minlength=len(cuts))[::-1])[::-1]
    tp = np.append(positives_above, 0)  # index len(cuts): a cut above every score
    f1 = 2 * tp / (np.append(predicted, 0) + y.sum())
    at_half = f1[np.searchsorted(cuts, 0.5)]
    if f1.max() <= at_half + 1e-12:
        return 0.5
    edges = np.concatenate([[0.0], cuts, [1.0]])  # interval k spans (edges[k], edges[k + 1]]
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    low, high = max(((edges[r[0]], edges[r[-1] + 1]) for r in runs), key=lambda lh: lh[1] - lh[0])
    return float((low + high) / 2)


# --- weighted versions for the bootstrap: a resample is frame weights, all resamples at once ---

def auroc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count half). With
    ``weights`` (resamples x frames: how often each frame was drawn), one AUROC per resample, NaN
    where a resample holds one class; without, one value, None for one class."""
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, dtype=float)
    order = np.argsort(scores, kind="stable")
    _, starts = np.unique(np.asarray(scores)[order], return_index=True)  # groups of tied scores
    positive = np.asarray(y)[order] == 1
    pos = np.add.reduceat(w[:, order] * positive, starts, axis=1)
    neg = np.add.reduceat(w[:, order] * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        area = np.where(pairs > 0, (pos * (below + neg / 2)).sum(1) / pairs, np.nan)
    if weights is not None:
        return area
    return None if np.isnan(area[0]) else float(area[0])


def macro_f1(probs: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None,
             threshold: float = 0.5) -> np.ndarray | float | None:
    """Macro-F1 over the classes with positives (as classification_metrics); with ``weights``, one
    per resample (NaN where no class has a positive)."""
    w = np.ones((1, len(targets))) if weights is None else np.asarray(weights, dtype=float)
    preds, truth = (probs >= threshold).astype(float), (targets == 1).astype(float)
    tp, predicted, actual = w @ (preds * truth), w @ preds, w @ truth
    f1 = np.where(actual > 0, 2 * tp / np.maximum(predicted + actual, 1), np.nan)
    present = (actual > 0).sum(1)
    with np.errstate(invalid="ignore"):
        score = np.where(present > 0, np.nansum(f1, axis=1) / np.maximum(present, 1), np.nan)
    if weights is not None:
        return score
    return None if np.isnan(score[0]) else float(score[0])


def accuracy(decided: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float | None:
    """The share of items whose decisions are all right (for classes: the argmax is the class);
    with ``weights``, one per resample."""
    w = np.ones((1, len(targets))) if weights is None else np.asarray(weights, dtype=float)
    right = (np.asarray(decided) == np.asarray(targets)).all(1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (w @ right) / w.sum(1)
    if weights is not None:
        return share
    return None if np.isnan(share[0]) else float(share[0])


def final_metrics(test_probs: np.ndarray, test_targets: np.ndarray, val_probs: np.ndarray,
                  val_targets: np.ndarray, labels: LabelSet = FLAME2) -> dict:
    """The test evaluation. For labels, the headline is at per-label thresholds tuned on validation
    (the kit's rule: a model that ranks a label well but never outputs 0.5 is judged by its
    ranking's best cut, chosen without the test set); ``at_0.5`` keeps the reference protocol's
    values. Classes are decided by the argmax: no threshold to tune."""
    if labels.multiclass:
        validation = classification_metrics(val_probs, val_targets, labels=labels)["accuracy"]
        return {**classification_metrics(test_probs, test_targets, labels=labels),
                "validation_accuracy": validation,  # what a teacher's lead is read on
                "confusion": confusion_matrices(test_probs, test_targets, labels=labels),
                "constant_predictions": constant_predictions(test_probs, labels=labels),
                "ranking": ranking_metrics(test_probs, test_targets, labels),
                "validation_ranking": ranking_metrics(val_probs, val_targets, labels),
                "baseline": prevalence_baseline(test_targets, labels)}
    tuned = tune_thresholds(val_probs, val_targets)
    return {
        **classification_metrics(test_probs, test_targets, tuned, labels),
        "tuned_thresholds": dict(zip(labels.names, tuned, strict=True)),
        "confusion": confusion_matrices(test_probs, test_targets, tuned, labels),
        "constant_predictions": constant_predictions(test_probs, tuned, labels),
        "ranking": ranking_metrics(test_probs, test_targets, labels),
        "validation_ranking": ranking_metrics(val_probs, val_targets, labels),  # what a teacher's lead is read on
        "baseline": prevalence_baseline(test_targets, labels),
        "at_0.5": {**classification_metrics(test_probs, test_targets, labels=labels),
                   "confusion": confusion_matrices(test_probs, test_targets, labels=labels)},
    }


def constant_predictions(probs: np.ndarray, thresholds=0.5, labels: LabelSet = FLAME2) -> dict:
    """Per label, the one decision a model gives every frame at its threshold (0 or 1), or None
    where its decisions vary: a constant answer is a degenerate model, whatever its F1. For
    classes, ``class``: the one class it answers for every item, or None."""
    preds = decisions(probs, thresholds, labels)
    if labels.multiclass:
        answered = np.unique(preds.argmax(1)) if len(preds) else np.array([])
        return {"class": labels.names[int(answered[0])] if len(answered) == 1 else None}
    return {label: int(preds[0, k]) if len(preds) and (preds[:, k] == preds[0, k]).all() else None
            for k, label in enumerate(labels.names)}


def selection_metrics(logits: np.ndarray, targets: np.ndarray, labels: LabelSet = FLAME2) -> dict:
    """The threshold-free validation criteria a fit may select on (``kdcore.training.selection``):
    the mean cross-entropy against the labels (binary per label, ``bce``, or over the classes,
    ``cross_entropy``), and AUROC and AP averaged over the outputs where they are defined (None
    where none has both values)."""
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if labels.multiclass:
        shifted = z - z.max(1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        loss = {"cross_entropy": float(-(y * log_probs).sum(1).mean()) if len(y) else None}
    else:
        bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))  # stable for any logit
        loss = {"bce": float(bce.mean()) if bce.size else None}
    ranking = ranking_metrics(probabilities(z, labels), y.astype(int), labels)
    return {**loss, **{f"mean_{key}": _mean_defined([ranking[label][name] for label in labels.names])
                       for key, name in (("auroc", "auroc"), ("ap", "average_precision"))}}


def _mean_defined(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def visibility_breakdown(probs: np.ndarray, targets: np.ndarray, visible: np.ndarray,
                         threshold: float = 0.5) -> dict:
    """Fire detection split by whether the fire shows in RGB: recall at the fire ``threshold`` and
    AUROC of those positives against every negative frame. Where RGB cannot see the fire, an RGB-only model can
    only learn it through a teacher's eyes."""
    fire, scores, negatives = targets[:, 0] == 1, probs[:, 0], targets[:, 0] == 0
    out = {}
    for name, chosen in (("rgb_visible", fire & (visible == 1)), ("rgb_hidden", fire & (visible == 0))):
        rows = chosen | negatives
        out[name] = {"positives": int(chosen.sum()),
                     "recall": float(np.mean(scores[chosen] >= threshold)) if chosen.any() else None,
                     "auroc": auroc(scores[rows], fire[rows].astype(int))}
    return out
