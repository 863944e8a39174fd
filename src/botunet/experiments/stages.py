"""The real pipeline steps of a sweep cell: build the dataset, train, evaluate on test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botunet.config import SampleConfig, SessionConfig, SplitConfig, TrainConfig


def known_models() -> list[str]:
    """The registered model names."""
    from botunet.models.registry import list_models

    return list_models()


def build_cell_dataset(
    inputs: Sequence[Path],
    out_dir: Path,
    sample: SampleConfig,
    split: SplitConfig,
    session: SessionConfig,
) -> Path:
    """Build the dataset of one (N, start) into ``out_dir``."""
    from botunet.datasets.build import build_dataset

    return build_dataset(list(inputs), out_dir, sample=sample, split=split, session=session)


def train_cell(dataset_dir: Path, model_dir: Path, config: TrainConfig, resume: bool) -> Path:
    """Train one model on the dataset's train split (validation picks the best epoch)."""
    from botunet.training.trainer import fit

    return fit(dataset_dir, model_dir, config, resume=resume)


def evaluate_cell(model_dir: Path, dataset_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Test-split metrics, size and cost of a trained cell, as ``botunet evaluate`` gives.

    The evaluation report (metrics.json, report.md, plots, predictions) goes to out_dir.
    """
    from botunet.evaluation.evaluate import evaluate
    from botunet.evaluation.report import write_report
    from botunet.training.checkpoint import read_spec

    result = evaluate(model_dir, dataset_dir, split="test")
    write_report(
        out_dir,
        result.metrics,
        labels=result.labels,
        scores=result.scores,
        history=result.history,
        metadata=result.metadata,
    )
    metrics = result.metrics
    spec = read_spec(model_dir)
    n_samples = (spec.get("dataset") or {}).get("n_samples") or {}
    return {
        **{key: metrics[key] for key in ("accuracy", "precision", "recall", "f1", "roc_auc")},
        **{key: int(metrics["confusion"][key]) for key in ("tn", "fp", "fn", "tp")},
        "params": int(metrics["params"]),
        "flops": int(metrics["flops"]),
        "epochs_run": int(spec.get("epochs_run", len(result.history))),
        "n_train": int(n_samples.get("train", -1)),
        "n_test": int(metrics["n_samples"]),
    }
