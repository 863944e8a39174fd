"""Metrics against hand-computed confusion matrices and a hand-ranked ROC example."""

from __future__ import annotations

import numpy as np
import pytest

from botunet.evaluation.metrics import (
    average_ranks,
    best_f1_threshold,
    compute_metrics,
    confusion_counts,
    per_family,
    predict_labels,
    rates_from_confusion,
    roc_auc,
    roc_curve,
)

# 10 samples: tn 3, fp 1, fn 2, tp 4
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
PREDICTIONS = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])


def test_confusion_counts_match_hand_count():
    assert confusion_counts(LABELS, PREDICTIONS) == {"tn": 3, "fp": 1, "fn": 2, "tp": 4}


def test_rates_from_confusion_match_paper_formulas():
    rates = rates_from_confusion({"tn": 3, "fp": 1, "fn": 2, "tp": 4})
    precision, recall = 4 / 5, 4 / 6
    assert rates["accuracy"] == pytest.approx(7 / 10)
    assert rates["precision"] == pytest.approx(precision)
    assert rates["recall"] == pytest.approx(recall)
    assert rates["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert rates["false_positive_rate"] == pytest.approx(1 / 4)


def test_rates_from_confusion_zero_denominators_give_zero():
    rates = rates_from_confusion({"tn": 5, "fp": 0, "fn": 3, "tp": 0})
    assert rates["precision"] == 0.0
    assert rates["recall"] == 0.0
    assert rates["f1"] == 0.0
    assert rates["accuracy"] == pytest.approx(5 / 8)


def test_predict_labels_threshold_is_inclusive():
    assert predict_labels(np.array([0.2, 0.5, 0.7], dtype=np.float32), 0.5).tolist() == [0, 1, 1]


def test_confusion_counts_rejects_labels_other_than_0_1():
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        confusion_counts(np.array([0, 2]), np.array([0, 1]))


def test_average_ranks_share_ties():
    assert average_ranks(np.array([10, 20, 20, 30, 20])).tolist() == [1, 3, 3, 5, 3]


def test_roc_auc_hand_example_with_ties():
    # positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4, 0.4:
    # 0.35 beats 1, 0.8 beats 3, 0.4 beats 1 and ties 2 (2 x 0.5): 6 of 9 pairs
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    assert roc_auc(labels, scores) == pytest.approx(6 / 9)


def test_roc_auc_extremes_and_one_class():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.full(4, 0.5)) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_roc_curve_area_equals_rank_auc():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) * 0.6 + labels * 0.3, 2)  # rounding makes ties
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert thresholds[0] == np.inf
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(labels, scores), abs=1e-12)


def test_best_f1_threshold_separates_perfectly():
    threshold, f1 = best_f1_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]))
    assert threshold == pytest.approx(0.65)
    assert f1 == 1.0


def test_best_f1_threshold_beats_every_other_cut():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 300)
    scores = rng.random(300) * 0.7 + labels * 0.2
    threshold, f1 = best_f1_threshold(labels, scores)
    assert compute_metrics(labels, scores, threshold=threshold)["f1"] == pytest.approx(f1)
    for cut in np.linspace(0, 1, 101):
        assert compute_metrics(labels, scores, threshold=cut)["f1"] <= f1 + 1e-12


def test_per_family_counts_and_rates():
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    predictions = np.array([1, 0, 1, 1, 0, 0, 0])
    families = np.array(["neris", "neris", "rbot", "web", "web", "web", "dns"])
    table = per_family(labels, predictions, families)
    assert list(table) == ["dns", "neris", "rbot", "web"]
    assert table["neris"]["count"] == 2
    assert table["neris"]["recall"] == 0.5
    assert table["neris"]["false_positive_rate"] is None
    assert table["rbot"]["recall"] == 1.0
    assert table["web"]["recall"] is None
    assert table["web"]["false_positive_rate"] == pytest.approx(1 / 3)
    assert table["web"]["accuracy"] == pytest.approx(2 / 3)
    assert sum(row["count"] for row in table.values()) == labels.size


def test_compute_metrics_consistent_with_its_confusion():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 97)
    scores = rng.random(97)
    metrics = compute_metrics(labels, scores, threshold=0.4, families=np.array(["a"] * 97))
    c = metrics["confusion"]
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
    assert tn + fp + fn + tp == metrics["n_samples"] == 97
    assert tp + fn == metrics["n_botnet"] == int(labels.sum())
    assert tp + fp == int(np.sum(scores >= 0.4))
    assert metrics["accuracy"] == pytest.approx((tp + tn) / 97)
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))
    assert metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert metrics["threshold"] == 0.4
    assert metrics["per_family"]["a"]["recall"] == pytest.approx(metrics["recall"])
