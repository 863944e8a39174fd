"""PNG plots of an evaluation: training curves, confusion matrix, ROC curve.

Figures are built with ``matplotlib.figure.Figure`` and written through the Agg
canvas, so no display and no pyplot global state are involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from botunet.evaluation.metrics import roc_curve

DPI = 110


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def plot_training_curves(
    history: list[dict[str, Any]], path: Path, best_epoch: int | None = None
) -> Path:
    """Loss (train, validation) and validation accuracy / F1 per epoch; best epoch marked."""
    epochs = [row["epoch"] for row in history]

    def column(key: str) -> list[float]:
        return [np.nan if row.get(key) is None else row[key] for row in history]

    fig = Figure(figsize=(9, 3.6))
    loss_ax, score_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, column("train_loss"), marker="o", label="train")
    loss_ax.plot(epochs, column("val_loss"), marker="o", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    score_ax.plot(epochs, column("val_accuracy"), marker="o", label="accuracy")
    score_ax.plot(epochs, column("val_f1"), marker="o", label="F1")
    score_ax.set(xlabel="epoch", ylabel="score", title="Validation", ylim=(0, 1.02))
    for ax in (loss_ax, score_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label="best epoch")
        ax.legend()
    return _save(fig, path)


def plot_confusion(confusion: dict[str, int], path: Path) -> Path:
    """The 2 x 2 confusion matrix with counts and row shares."""
    matrix = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig = Figure(figsize=(4.4, 3.8))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    for i in range(2):
        for j in range(2):
            color = "white" if shares[i, j] > 0.6 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n{shares[i, j]:.1%}", ha="center", va="center",
                    color=color)
    ax.set_xticks([0, 1], ["benign", "botnet"])
    ax.set_yticks([0, 1], ["benign", "botnet"])
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    return _save(fig, path)


def plot_roc(labels: np.ndarray, scores: np.ndarray, auc: float | None, path: Path) -> Path:
    """The ROC curve with its area, and the diagonal of chance."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fig = Figure(figsize=(4.4, 4.2))
    ax = fig.subplots()
    label = "ROC" if auc is None else f"ROC (AUC {auc:.4f})"
    ax.plot(fpr, tpr, drawstyle="default", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)
