"""Faster CPU inference in torch: batch norms folded away, and cache-sized sub-batches.

At inference a batch norm is a fixed per-channel scale and shift, so it can live in the
convolution's weights and bias, which saves one pass over every feature map; torch runs
each module separately and cannot do this by itself (ONNX Runtime does, at load time).

The light models do few multiply-accumulates per byte of feature map, so on CPUs their
speed depends on whether feature maps stay in cache: a batch of 256 samples of 800
bytes has 26 MB per 32-channel feature map, which does not. Cutting the batch into
sub-batches of at most MAX_POSITIONS bytes made the three models 1.2-1.7x faster at
N = 8 (unet1d_light about 1.4x), and changes nothing at N = 1, where a batch of 256
already fits (benchmarks/bench_models.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from botunet.models.layers import ConvNormAct1d

# Bytes (samples x input length) per forward pass in forward_in_chunks: 32-channel
# feature maps of 8 MB, within a 32 MB L3 cache; 25 k to 100 k were about as fast.
MAX_POSITIONS = 1 << 16


def fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution equal to norm(conv(x)) with norm's running statistics."""
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        gamma = norm.weight if norm.weight is not None else torch.ones_like(norm.running_var)
        beta = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_var)
        scale = gamma / torch.sqrt(norm.running_var + norm.eps)
        shift = beta - norm.running_mean * scale
        bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias = nn.Parameter(bias * scale + shift)
    return fused


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of model in eval mode with every ConvNormAct1d's batch norm folded away.

    The copy is for inference only: its state dict has no batch norm entries, and
    training it would no longer normalise. The model given is left as it is.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, ConvNormAct1d) or len(module) < 2:
            continue
        conv, norm = module[0], module[1]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module[0] = fold_batchnorm(conv, norm)
            module[1] = nn.Identity()
    return fused


def forward_in_chunks(
    model: nn.Module, x: torch.Tensor, max_positions: int = MAX_POSITIONS
) -> torch.Tensor:
    """model(x) for x (B, C, L), run over sub-batches of at most max_positions // L samples."""
    rows = max(1, max_positions // x.shape[-1])
    if x.shape[0] <= rows:
        return model(x)
    return torch.cat([model(part) for part in x.split(rows)])
