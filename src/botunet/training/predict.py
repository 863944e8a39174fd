"""Scores of a trained model for byte vectors; shared by evaluation and detection."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from botunet.models import to_input


def predict_scores(model: nn.Module, vectors: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Botnet probabilities, sigmoid of the logits, for vectors uint8 (n, input_length).

    The model is put in eval mode and runs under ``torch.inference_mode`` on the device
    of its parameters. Returns float32 (n,).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, input_length), got shape {vectors.shape}")
    model.eval()
    device = next(model.parameters()).device
    scores = np.empty(vectors.shape[0], dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vectors.shape[0], batch_size):
            x = to_input(vectors[start : start + batch_size]).to(device)
            logits = model(x).reshape(-1)
            scores[start : start + logits.shape[0]] = torch.sigmoid(logits).float().cpu().numpy()
    return scores
