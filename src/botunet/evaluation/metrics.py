"""Binary detection metrics with botnet (label 1) as the positive class.

Everything is computed with numpy from labels, scores and a threshold: the confusion
matrix first, then accuracy, precision, recall and F1 from it (the paper's Eqs. 15-18).
A ratio whose denominator is zero (precision with no botnet verdict, say) is 0.0, so
that every value stays a number in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONFUSION_KEYS = ("tn", "fp", "fn", "tp")


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(labels)[:5]!r}")
    return labels.astype(np.int64, copy=False)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def predict_labels(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Botnet verdicts (1) for scores at or above threshold, benign (0) below."""
    # compare in float64: a float32 score must not round onto a threshold between two scores
    return (np.asarray(scores, dtype=np.float64) >= threshold).astype(np.int64)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> dict[str, int]:
    """The confusion matrix as {"tn", "fp", "fn", "tp"} counts."""
    labels = _as_labels(labels)
    predictions = _as_labels(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ")
    tp = int(np.sum((labels == 1) & (predictions == 1)))
    fp = int(np.sum((labels == 0) & (predictions == 1)))
    fn = int(np.sum((labels == 1) & (predictions == 0)))
    tn = int(labels.size - tp - fp - fn)
    return {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def rates_from_confusion(confusion: dict[str, int]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and false positive rate of a confusion matrix."""
    tn, fp, fn, tp = (int(confusion[k]) for k in CONFUSION_KEYS)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, tn + fp + fn + tp),
        "precision": precision,
        "recall": recall,
        # 2PR/(P+R) written as 2TP/(2TP+FP+FN): the same value, exact in integers
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "false_positive_rate": _ratio(fp, fp + tn),
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of values, tied values sharing the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start index of each run of equal values, and the run it belongs to
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    run_of = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = run_rank[run_of]
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum formula; ties count one half.

    Returns None when only one class is present, where the area is undefined.
    """
    labels = _as_labels(labels)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _cumulative_counts(
    labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive counts when each distinct score, highest first, is the cut."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # last position of each run of equal scores: a tie enters the curve all at once
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), scores.size - 1].astype(np.int64)
    tps = np.cumsum(labels)[last]
    fps = last + 1 - tps
    return fps, tps, scores[last]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct score used as threshold.

    Returns:
        (fpr, tpr, thresholds), starting at (0, 0) with threshold +inf; with both classes
        present it ends at (1, 1).
    """
    labels = _as_labels(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros(1), np.zeros(1), np.array([np.inf])
    fps, tps, cuts = _cumulative_counts(labels, scores)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    tpr = np.r_[0.0, tps / n_pos if n_pos else np.zeros(tps.size)]
    fpr = np.r_[0.0, fps / n_neg if n_neg else np.zeros(fps.size)]
    return fpr, tpr, np.r_[np.inf, cuts]


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The threshold that maximises F1 on these scores, and that F1.

    The threshold lies halfway between the lowest score called botnet and the next lower
    score (or zero), so that it does not sit on a seen value; among equal F1 the one
    nearest 0.5 wins. With no botnet label: 0.5 and F1 0.0.
    """
    labels = _as_labels(labels)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    if n_pos == 0 or scores.size == 0:
        return 0.5, 0.0
    fps, tps, cuts = _cumulative_counts(labels, scores)
    f1 = 2 * tps / (2 * tps + fps + (n_pos - tps))
    candidates = (cuts + np.r_[cuts[1:], min(0.0, cuts[-1])]) / 2.0
    best = np.flatnonzero(f1 == f1.max())
    k = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return float(candidates[k]), float(f1[k])


def per_family(
    labels: np.ndarray, predictions: np.ndarray, families: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Counts and rates per family: recall over its botnet samples, FPR over its benign ones."""
    labels = _as_labels(labels)
    predictions = _as_labels(predictions)
    families = np.asarray(families).astype(str)
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(set(families.tolist())):
        mask = families == name
        y, p = labels[mask], predictions[mask]
        n_botnet = int(y.sum())
        n_benign = int(y.size - n_botnet)
        detected = int(np.sum(p[y == 1]))
        false_alarms = int(np.sum(p[y == 0]))
        table[name] = {
            "count": int(y.size),
            "n_botnet": n_botnet,
            "n_benign": n_benign,
            "predicted_botnet": int(p.sum()),
            "accuracy": _ratio(int(np.sum(y == p)), y.size),
            "recall": _ratio(detected, n_botnet) if n_botnet else None,
            "false_positive_rate": _ratio(false_alarms, n_benign) if n_benign else None,
        }
    return table


def compute_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    families: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one labelled set of scores at one threshold, JSON-ready."""
    labels = _as_labels(labels)
    scores = np.asarray(scores, dtype=np.float64)
    predictions = predict_labels(scores, threshold)
    confusion = confusion_counts(labels, predictions)
    metrics: dict[str, Any] = {
        "n_samples": int(labels.size),
        "n_botnet": int(labels.sum()),
        "n_benign": int(labels.size - labels.sum()),
        "threshold": float(threshold),
        **rates_from_confusion(confusion),
        "roc_auc": roc_auc(labels, scores),
        "confusion": confusion,
    }
    if families is not None:
        metrics["per_family"] = per_family(labels, predictions, families)
    return metrics
