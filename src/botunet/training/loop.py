"""One epoch of training, BatchNorm statistics, and one pass of validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from botunet.datasets.torchdata import BatchLoader
from botunet.progress import progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    """Mean loss of a pass and the scores (sigmoid of logits) with their labels."""

    loss: float
    scores: np.ndarray
    labels: np.ndarray


def train_epoch(
    model: nn.Module,
    loader: BatchLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    *,
    device: torch.device | str = "cpu",
    desc: str = "train",
) -> float:
    """Run one epoch of optimisation; returns the mean loss per sample."""
    model.train()
    total, count = 0.0, 0
    bar = progress(loader, total=len(loader), desc=desc, unit="batch")
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x).reshape(-1), y)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * y.shape[0]
        count += y.shape[0]
        logger.debug("batch loss %.5f", float(loss.detach()))
    return total / count if count else float("nan")


def validate_epoch(
    model: nn.Module,
    loader: BatchLoader,
    loss_fn: nn.Module,
    *,
    device: torch.device | str = "cpu",
    desc: str = "validate",
) -> ValidationResult:
    """Score a split without updating the model; returns mean loss, scores and labels."""
    model.eval()
    total, scores, labels = 0.0, [], []
    with torch.inference_mode():
        for x, y in progress(loader, total=len(loader), desc=desc, unit="batch"):
            x, y = x.to(device), y.to(device)
            logits = model(x).reshape(-1)
            total += float(loss_fn(logits, y)) * y.shape[0]
            scores.append(torch.sigmoid(logits).float().cpu().numpy())
            labels.append(y.cpu().numpy().astype(np.int64))
    n = sum(len(s) for s in scores)
    return ValidationResult(
        loss=total / n if n else float("nan"),
        scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
    )


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def recalibrate_batchnorm(
    model: nn.Module,
    loader: BatchLoader,
    *,
    device: torch.device | str = "cpu",
    desc: str = "batchnorm",
) -> int:
    """Recompute BatchNorm running statistics as plain averages over loader's batches.

    The running averages kept during an epoch trail weights that moved under them, most
    of all in the first epochs, so a model can score well in train mode and call every
    sample benign in eval mode. Averaging over fresh batches with the final weights
    (BatchNorm with ``momentum=None``) removes that lag; the weights do not change.
    Returns the number of BatchNorm layers recalibrated.
    """
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    if not norms or len(loader) == 0:
        return 0
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        for x, _ in progress(loader, total=len(loader), desc=desc, unit="batch"):
            model(x.to(device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return len(norms)
