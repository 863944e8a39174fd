"""Train a model on a dataset folder and keep its best epoch as a model folder.

The paper's recipe: Adam, learning rate 1e-3, batch 64, 40 epochs, binary cross-entropy
on logits. Added here: a positive-class weight from the train split's label counts
(real collections hold far more of one class), BatchNorm statistics recomputed after
each epoch (see ``recalibrate_batchnorm``), early stopping on validation F1, an
optional decision threshold tuned on validation, and a resumable state after every
epoch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from botunet import __version__
from botunet.config import TrainConfig, to_dict
from botunet.datasets.dataset import load_dataset
from botunet.datasets.torchdata import BatchLoader
from botunet.errors import CheckpointError, ConfigError, DatasetError
from botunet.evaluation.metrics import best_f1_threshold, compute_metrics
from botunet.models.registry import create_model
from botunet.training.checkpoint import SPEC_FILE, save_checkpoint, state_tensors
from botunet.training.loop import (
    ValidationResult,
    recalibrate_batchnorm,
    train_epoch,
    validate_epoch,
)
from botunet.training.predict import predict_scores
from botunet.training.state import (
    STATE_JSON_FILE,
    has_train_state,
    load_train_state,
    save_train_state,
)

logger = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 512
# train samples whose batches recompute BatchNorm statistics after each epoch
BATCHNORM_SAMPLES = 2048
# settings a resumed run may change; any other difference changes the result
RESUMABLE_CHANGES = ("epochs", "threads", "patience", "tune_threshold")


@dataclass
class EarlyStopping:
    """Track the best epoch by validation F1 (lower validation loss breaks ties).

    Args:
        patience: epochs without improvement after which training stops; None never stops.
    """

    patience: int | None
    best_epoch: int = 0
    best_f1: float = -math.inf
    best_loss: float = math.inf
    bad_epochs: int = 0

    def update(self, epoch: int, f1: float, loss: float) -> bool:
        """Record one epoch's validation result; True when it is the new best."""
        improved = f1 > self.best_f1 or (f1 == self.best_f1 and loss < self.best_loss)
        if improved:
            self.best_epoch, self.best_f1, self.best_loss = epoch, f1, loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_f1": None if math.isinf(self.best_f1) else self.best_f1,
            "best_loss": None if not math.isfinite(self.best_loss) else self.best_loss,
            "bad_epochs": self.bad_epochs,
        }

    @classmethod
    def from_dict(cls, patience: int | None, data: dict[str, Any]) -> EarlyStopping:
        return cls(
            patience=patience,
            best_epoch=int(data["best_epoch"]),
            best_f1=-math.inf if data["best_f1"] is None else float(data["best_f1"]),
            best_loss=math.inf if data["best_loss"] is None else float(data["best_loss"]),
            bad_epochs=int(data["bad_epochs"]),
        )


@dataclass
class _Run:
    """Progress of one training run, saved after every epoch."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed of one epoch, derived from the run's one seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def fit(
    dataset_dir: str | Path,
    model_dir: str | Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
) -> Path:
    """Train config.model on a dataset folder; the best epoch goes to model_dir.

    Args:
        dataset_dir: dataset folder with train and validation splits.
        model_dir: folder for the model and the training state (created).
        config: training settings.
        resume: continue the run saved in model_dir after its last finished epoch.
        device: where to train; None picks CUDA when available, else the CPU. Runs are
            reproducible to the bit on the CPU; CUDA kernels may not be.

    Returns:
        model_dir, holding ``weights.safetensors`` and ``model.json`` of the best epoch
        and the resumable state of the last finished one.
    """
    dataset_dir, model_dir = Path(dataset_dir), Path(model_dir)
    samples = load_dataset(dataset_dir)
    splits = {name: samples.indices(name) for name in ("train", "val", "test")}
    pos_weight = _positive_weight(samples.labels[splits["train"]], dataset_dir, config)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = _resolve_device(device)

    # model and optimizer; the initial weights come from the run's seed
    torch.manual_seed(config.seed)
    spec = _base_spec(samples, dataset_dir, config, splits, pos_weight)
    model = _create_model(config, spec["input_length"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
    spec["params"] = sum(p.numel() for p in model.parameters())

    run, stopper, best_state = _start(model_dir, model, optimizer, config, spec, resume)
    train_loader = BatchLoader(
        samples, splits["train"], batch_size=config.batch_size, shuffle=True, seed=config.seed
    )
    val_loader = BatchLoader(samples, splits["val"], batch_size=EVAL_BATCH_SIZE)
    norm_loader = _batchnorm_loader(samples, splits["train"], config.seed)
    has_val = splits["val"].size > 0
    if not has_val:
        logger.warning("%s has no validation samples: keeping the last epoch", dataset_dir)
    logger.info(
        "training %s (%d parameters) on %d samples, validating on %d, %s, pos_weight %.3f",
        config.model, spec["params"], splits["train"].size, splits["val"].size, device, pos_weight,
    )

    while run.epoch < config.epochs and not stopper.should_stop:
        epoch = run.epoch + 1
        # per-epoch seeds: a resumed run draws exactly what an uninterrupted one would
        torch.manual_seed(epoch_seed(config.seed, epoch))
        train_loader.set_epoch(epoch)
        started = time.perf_counter()
        train_loss = train_epoch(
            model, train_loader, optimizer, loss_fn, device=device,
            desc=f"epoch {epoch}/{config.epochs}",
        )
        recalibrate_batchnorm(model, norm_loader, device=device)
        val = validate_epoch(model, val_loader, loss_fn, device=device)
        record = _epoch_record(epoch, train_loss, val, time.perf_counter() - started)

        # best so far, history, and the state to resume from
        improved = stopper.update(epoch, record["val_f1"], val.loss) if has_val else True
        if not has_val:
            stopper.best_epoch = epoch
        if improved:
            best_state = state_tensors(model)
        run.epoch = epoch
        run.history.append(record)
        _log_epoch(record, config.epochs, improved)
        save_train_state(
            model_dir, model=model, best_state=best_state, optimizer=optimizer,
            info=_state_info(run, stopper, spec, config),
        )
    stopped_early = stopper.should_stop and run.epoch < config.epochs
    if stopped_early:
        logger.info(
            "stopped early after epoch %d: no better validation F1 for %d epochs",
            run.epoch, stopper.bad_epochs,
        )

    # the best epoch, its threshold and its metrics
    model.load_state_dict(best_state)
    spec.update(_finish(model, samples, splits, config, run, stopper))
    spec["stopped_early"] = stopped_early
    save_checkpoint(model_dir, model, spec)
    logger.info("best epoch %d saved to %s", stopper.best_epoch, model_dir)
    return model_dir


def _create_model(config: TrainConfig, input_length: int) -> nn.Module:
    try:
        return create_model(config.model, input_length=input_length, **config.model_kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"cannot build model {config.model!r} with {config.model_kwargs!r}: {err}"
        ) from err


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        message = f"device must be a torch device such as cpu or cuda, got {device!r}"
        raise ConfigError(message) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
    return resolved


def _batchnorm_loader(samples: Any, train: np.ndarray, seed: int) -> BatchLoader:
    """Batches of a fixed, seeded subset of the train split, for BatchNorm statistics."""
    rng = np.random.default_rng([seed, BATCHNORM_SAMPLES])
    subset = rng.choice(train, size=min(train.size, BATCHNORM_SAMPLES), replace=False)
    return BatchLoader(samples, np.sort(subset), batch_size=EVAL_BATCH_SIZE)


def _positive_weight(train_labels: np.ndarray, dataset_dir: Path, config: TrainConfig) -> float:
    n_pos = int(np.sum(train_labels == 1))
    n_neg = int(train_labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise DatasetError(
            f"{dataset_dir}: train split has {n_pos} botnet and {n_neg} benign samples; "
            "training needs both"
        )
    return n_neg / n_pos if config.class_weights else 1.0


def _base_spec(
    samples: Any,
    dataset_dir: Path,
    config: TrainConfig,
    splits: dict[str, np.ndarray],
    pos_weight: float,
) -> dict[str, Any]:
    sample_config = samples.sample_config
    return {
        "model": config.model,
        "model_kwargs": dict(config.model_kwargs),
        "input_length": sample_config.input_length,
        "sample_config": to_dict(sample_config),
        "session_config": to_dict(samples.session_config),
        "threshold": 0.5,
        "threshold_source": "default",
        "labels": {"0": "benign", "1": "botnet"},
        "dataset_hash": samples.info.get("content_hash"),
        "dataset": {
            "path": str(dataset_dir.resolve()),
            "n_samples": {name: int(idx.size) for name, idx in splits.items()},
            "pos_weight": pos_weight,
        },
        "train_config": to_dict(config),
        "version": __version__,
    }


def _start(
    model_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    spec: dict[str, Any],
    resume: bool,
) -> tuple[_Run, EarlyStopping, dict[str, torch.Tensor]]:
    """A fresh run, or the saved one when resuming (after checking it is the same run)."""
    if not resume:
        if (model_dir / SPEC_FILE).exists() or has_train_state(model_dir):
            raise CheckpointError(
                f"{model_dir}: already holds a model; use --resume to continue its training "
                "or choose another folder"
            )
        model_dir.mkdir(parents=True, exist_ok=True)
        return _Run(), EarlyStopping(config.patience), state_tensors(model)

    info, best_state = load_train_state(model_dir, model=model, optimizer=optimizer)
    _check_same_run(info, spec, config, model_dir / STATE_JSON_FILE)
    run = _Run(epoch=int(info["epoch"]), history=list(info["history"]))
    stopper = EarlyStopping.from_dict(config.patience, info["stopper"])
    if stopper.should_stop or run.epoch >= config.epochs:
        logger.info("%s: training already finished at epoch %d", model_dir, run.epoch)
    else:
        logger.info("resuming %s after epoch %d", model_dir, run.epoch)
    return run, stopper, best_state


def _check_same_run(
    info: dict[str, Any], spec: dict[str, Any], config: TrainConfig, path: Path
) -> None:
    if info.get("dataset_hash") != spec["dataset_hash"]:
        raise ConfigError(
            f"{path}: run was trained on dataset {info.get('dataset_hash')!r}, "
            f"this one is {spec['dataset_hash']!r}; resume with the same dataset"
        )
    saved = info.get("train_config", {})
    current = to_dict(config)
    for key, value in current.items():
        if key not in RESUMABLE_CHANGES and saved.get(key) != value:
            raise ConfigError(
                f"{path}: run used {key}={saved.get(key)!r}, got {value!r}; "
                f"resume with the same settings (only {', '.join(RESUMABLE_CHANGES)} may change)"
            )


def _state_info(
    run: _Run, stopper: EarlyStopping, spec: dict[str, Any], config: TrainConfig
) -> dict[str, Any]:
    return {
        "epoch": run.epoch,
        "history": run.history,
        "stopper": stopper.to_dict(),
        "dataset_hash": spec["dataset_hash"],
        "train_config": to_dict(config),
        "version": __version__,
    }


def _epoch_record(
    epoch: int, train_loss: float, val: ValidationResult, seconds: float
) -> dict[str, Any]:
    metrics = compute_metrics(val.labels, val.scores, threshold=0.5)
    return {
        "epoch": epoch,
        "train_loss": _finite(train_loss),
        "val_loss": _finite(val.loss),
        "val_accuracy": metrics["accuracy"],
        "val_f1": metrics["f1"],
        "seconds": round(seconds, 3),
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _log_epoch(record: dict[str, Any], epochs: int, improved: bool) -> None:
    def loss(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    logger.info(
        "epoch %d/%d: loss %s, val loss %s, val acc %.4f, val f1 %.4f, %.1f s%s",
        record["epoch"], epochs, loss(record["train_loss"]), loss(record["val_loss"]),
        record["val_accuracy"], record["val_f1"], record["seconds"],
        " (best)" if improved else "",
    )


def _finish(
    model: nn.Module,
    samples: Any,
    splits: dict[str, np.ndarray],
    config: TrainConfig,
    run: _Run,
    stopper: EarlyStopping,
) -> dict[str, Any]:
    """Threshold, final metrics and history of the best model, for the spec."""
    scores = {
        name: predict_scores(model, samples.vectors[np.sort(idx)], EVAL_BATCH_SIZE)
        for name, idx in splits.items()
        if name != "train" and idx.size
    }
    labels = {name: samples.labels[np.sort(idx)] for name, idx in splits.items()}
    threshold, source = 0.5, "default"
    if config.tune_threshold and "val" in scores:
        threshold, val_f1 = best_f1_threshold(labels["val"], scores["val"])
        source = "validation_f1"
        logger.info("threshold %.4f maximises validation F1 (%.4f)", threshold, val_f1)
    metrics = {
        name: compute_metrics(labels[name], split_scores, threshold=threshold)
        for name, split_scores in scores.items()
    }
    return {
        "threshold": threshold,
        "threshold_source": source,
        "best_epoch": stopper.best_epoch,
        "epochs_run": run.epoch,
        "history": run.history,
        "metrics": metrics,
    }
