"""Evaluate a model folder on a dataset split or on captures.

A dataset folder (one holding ``dataset.json``) is checked against the model's sample
settings and evaluated on one split or all of them. Capture files or folders are first
cut into samples with the model's own settings (N, L, start, mask, session options)
into a temporary dataset whose samples all go to the test split, then evaluated the
same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from botunet import __version__
from botunet.config import SplitConfig
from botunet.datasets.build import build_dataset
from botunet.datasets.dataset import load_dataset
from botunet.errors import ConfigError, DatasetError
from botunet.evaluation.metrics import compute_metrics
from botunet.models.flops import count_flops
from botunet.training.checkpoint import (
    check_compatible,
    load_checkpoint,
    sample_config_of,
    session_config_of,
)
from botunet.training.predict import predict_scores

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")
DATASET_MARKER = "dataset.json"
# samples.parquet columns copied into predictions.csv, when the dataset has them
PREDICTION_COLUMNS = (
    "capture", "family", "label", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
    "first_ts",
)


@dataclass
class Evaluation:
    """Metrics of one evaluation and the per-sample values behind them."""

    metrics: dict[str, Any]
    labels: np.ndarray
    scores: np.ndarray
    history: list[dict[str, Any]]
    metadata: dict[str, np.ndarray]


def is_dataset_dir(path: str | Path) -> bool:
    """Whether path is a dataset folder rather than captures."""
    return (Path(path) / DATASET_MARKER).is_file()


def evaluate(
    model_dir: str | Path,
    data: str | Path | Sequence[str | Path],
    *,
    split: str = "test",
    batch_size: int = 512,
    botnet_ips: str | os.PathLike[str] | Set[str] | None = None,
) -> Evaluation:
    """Evaluate a model folder on a dataset folder's split, or on capture files/folders.

    Args:
        model_dir: folder with weights.safetensors and model.json.
        data: a dataset folder, or one or more captures / folders of captures (labelled
            as the dataset stage labels them: folders, sidecars, botnet_ips).
        split: "train", "val", "test" or "all" of a dataset folder; samples cut from
            captures all lie in the test split.
        batch_size: samples scored together.
        botnet_ips: for captures, a botnet IP list file or a set of addresses (see
            ``build_dataset``).
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    paths = [Path(data)] if isinstance(data, (str, Path)) else [Path(p) for p in data]
    if not paths:
        raise ConfigError("no dataset folder or capture given")
    model, spec = load_checkpoint(model_dir)
    if len(paths) == 1 and is_dataset_dir(paths[0]):
        samples = load_dataset(paths[0])
        check_compatible(spec, samples.sample_config, source=paths[0])
        return _evaluate_samples(model, spec, samples, split, str(paths[0]), model_dir, batch_size)

    for path in paths:
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="botunet-eval-") as tmp:
        logger.info("cutting samples from %d capture path(s) with the model's settings",
                    len(paths))
        dataset_dir = build_dataset(
            paths,
            Path(tmp) / "dataset",
            sample=sample_config_of(spec),
            split=SplitConfig(mode="random", ratios=(0.0, 0.0, 1.0), dedup=False),
            session=session_config_of(spec),
            botnet_ips=botnet_ips,
        )
        samples = load_dataset(dataset_dir)
        source = ", ".join(str(p) for p in paths)
        return _evaluate_samples(model, spec, samples, "test", source, model_dir, batch_size)


def _evaluate_samples(
    model: nn.Module,
    spec: dict[str, Any],
    samples: Any,
    split: str,
    source: str,
    model_dir: str | Path,
    batch_size: int,
) -> Evaluation:
    rows = np.arange(samples.labels.size) if split == "all" else np.sort(samples.indices(split))
    if rows.size == 0:
        raise DatasetError(f"{source}: split {split!r} has no samples")
    logger.info("scoring %d samples of %s [%s]", rows.size, source, split)
    scores = predict_scores(model, np.asarray(samples.vectors[rows]), batch_size)
    labels = np.asarray(samples.labels[rows], dtype=np.int64)
    families = np.asarray(samples.families)[rows]

    metrics = compute_metrics(labels, scores, threshold=float(spec["threshold"]),
                              families=families)
    metrics.update({
        "threshold_source": spec.get("threshold_source", "default"),
        "best_epoch": spec.get("best_epoch"),
        "params": int(sum(p.numel() for p in model.parameters())),
        "flops": int(count_flops(model, int(spec["input_length"]))),
        "model": spec["model"],
        "model_dir": str(model_dir),
        "data": source,
        "split": split,
        "dataset_hash": samples.info.get("content_hash"),
        "model_dataset_hash": spec.get("dataset_hash"),
        "sample_config": spec["sample_config"],
        "version": __version__,
    })
    return Evaluation(
        metrics=metrics,
        labels=labels,
        scores=scores,
        history=list(spec.get("history") or []),
        metadata=_prediction_metadata(samples, rows),
    )


def _prediction_metadata(samples: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    table = samples.metadata
    columns = {"row": rows}
    for name in PREDICTION_COLUMNS:
        if name in table.column_names:
            columns[name] = table.column(name).take(rows).to_numpy(zero_copy_only=False)
    return columns
