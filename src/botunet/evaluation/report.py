"""Evaluation outputs: metrics.json, report.md, PNG plots and a short text summary."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from botunet.evaluation.plots import plot_confusion, plot_roc, plot_training_curves

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
PREDICTIONS_FILE = "predictions.csv"
CURVES_PNG = "training_curves.png"
CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc_curve.png"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def format_summary(metrics: dict[str, Any]) -> str:
    """A few lines for stdout: what was evaluated and the headline numbers."""
    c = metrics["confusion"]
    auc = metrics["roc_auc"]
    lines = [
        f"model      {metrics.get('model', '?')} ({metrics.get('params', 0):,} parameters, "
        f"{metrics.get('flops', 0):,} MACs)",
        f"data       {metrics.get('data', '?')} [{metrics.get('split', '?')}]: "
        f"{metrics['n_samples']} samples, {metrics['n_botnet']} botnet",
        f"threshold  {metrics['threshold']:.4f} ({metrics.get('threshold_source', 'default')})",
        f"accuracy   {metrics['accuracy']:.4f}   precision {metrics['precision']:.4f}   "
        f"recall {metrics['recall']:.4f}   f1 {metrics['f1']:.4f}   "
        f"roc_auc {'-' if auc is None else f'{auc:.4f}'}",
        f"confusion  tn {c['tn']}  fp {c['fp']}  fn {c['fn']}  tp {c['tp']}",
    ]
    families = metrics.get("per_family") or {}
    if families:
        width = max(len(name) for name in families)
        lines.append(f"{'family':<{width}}  samples  called botnet  recall  FPR")
        for name, f in families.items():
            lines.append(
                f"{name:<{width}}  {f['count']:>7}  {f['predicted_botnet']:>13}  "
                f"{_fmt(f['recall']):>6}  {_fmt(f['false_positive_rate'])}"
            )
    return "\n".join(lines)


def format_markdown(
    metrics: dict[str, Any], history: list[dict[str, Any]] | None, plots: list[str]
) -> str:
    """The readable report: summary, confusion matrix, per-family table, training history."""
    c = metrics["confusion"]
    lines = [
        f"# Evaluation of {metrics.get('model', 'model')}",
        "",
        f"Data: `{metrics.get('data', '?')}`, split `{metrics.get('split', '?')}`; "
        f"model folder `{metrics.get('model_dir', '?')}`; botnet is the positive class.",
        "",
        "## Summary",
        "",
        *_table(
            ["metric", "value"],
            [
                ["samples", metrics["n_samples"]],
                ["botnet / benign", f"{metrics['n_botnet']} / {metrics['n_benign']}"],
                ["threshold", f"{metrics['threshold']:.4f} ({metrics.get('threshold_source')})"],
                ["accuracy", metrics["accuracy"]],
                ["precision", metrics["precision"]],
                ["recall", metrics["recall"]],
                ["F1", metrics["f1"]],
                ["false positive rate", metrics["false_positive_rate"]],
                ["ROC AUC", metrics["roc_auc"]],
                ["parameters", f"{metrics.get('params', 0):,}"],
                ["MACs per sample", f"{metrics.get('flops', 0):,}"],
            ],
        ),
        "",
        "## Confusion matrix",
        "",
        *_table(
            ["true \\ predicted", "benign", "botnet"],
            [["benign", c["tn"], c["fp"]], ["botnet", c["fn"], c["tp"]]],
        ),
    ]
    families = metrics.get("per_family") or {}
    if families:
        rows = [
            [name, f["count"], f["n_botnet"], f["predicted_botnet"], f["accuracy"], f["recall"],
             f["false_positive_rate"]]
            for name, f in families.items()
        ]
        lines += [
            "",
            "## Per family",
            "",
            "Recall is over a family's botnet samples, the false positive rate over its "
            "benign ones.",
            "",
            *_table(
                ["family", "samples", "botnet", "called botnet", "accuracy", "recall", "FPR"],
                rows,
            ),
        ]
    if history:
        rows = [
            [h["epoch"], h.get("train_loss"), h.get("val_loss"), h.get("val_accuracy"),
             h.get("val_f1"), _fmt(h.get("seconds"), 1)]
            for h in history
        ]
        lines += [
            "",
            "## Training history",
            "",
            *_table(["epoch", "train loss", "val loss", "val accuracy", "val F1", "seconds"], rows),
        ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_predictions(path: Path, metadata: dict[str, np.ndarray], scores: np.ndarray,
                      threshold: float) -> Path:
    """One CSV row per sample: its identifying columns, label, score and verdict."""
    columns = list(metadata)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "score", "predicted"])
        for i in range(scores.size):
            score = float(scores[i])
            writer.writerow(
                [metadata[k][i] for k in columns] + [f"{score:.6f}", int(score >= threshold)]
            )
    return path


def write_report(
    out_dir: str | Path,
    metrics: dict[str, Any],
    *,
    labels: np.ndarray,
    scores: np.ndarray,
    history: list[dict[str, Any]] | None = None,
    metadata: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write metrics.json, report.md, the plots and predictions.csv; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    plots = []
    if history:
        written.append(
            plot_training_curves(history, out_dir / CURVES_PNG, metrics.get("best_epoch"))
        )
        plots.append(CURVES_PNG)
    written.append(plot_confusion(metrics["confusion"], out_dir / CONFUSION_PNG))
    plots.append(CONFUSION_PNG)
    if metrics["roc_auc"] is not None:
        written.append(plot_roc(labels, scores, metrics["roc_auc"], out_dir / ROC_PNG))
        plots.append(ROC_PNG)
    if metadata is not None:
        written.append(
            write_predictions(out_dir / PREDICTIONS_FILE, metadata, scores, metrics["threshold"])
        )

    metrics_path = out_dir / METRICS_FILE
    metrics_path.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    report_path = out_dir / REPORT_FILE
    report_path.write_text(format_markdown(metrics, history, plots))
    logger.info("wrote %s, %s and %d other files to %s", METRICS_FILE, REPORT_FILE,
                len(written), out_dir)
    return [metrics_path, report_path, *written]
