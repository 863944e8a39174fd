"""The three 1D CNNs (unet1d, unet1d_light, mobilenet1d), their registry and input scaling."""

from __future__ import annotations

import numpy as np
import torch

from botunet.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "to_input"]


def to_input(x: np.ndarray) -> torch.Tensor:
    """Byte vectors, uint8 (B, L), as the models' input: float32 (B, 1, L) scaled to [0, 1]."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 2:
        raise ValueError(f"to_input needs a uint8 array of shape (B, L), got {x.dtype} {x.shape}")
    # torch.tensor copies, so read-only (memory-mapped) arrays are fine
    return torch.tensor(x).unsqueeze(1).to(torch.float32).div_(255.0)
