"""Inference-only rewrite: fold each batch norm into the convolution before it.

At inference a batch norm is a fixed per-channel scale and shift, so it can live in the
convolution's weights and bias, which saves one pass over every feature map. torch runs
each module separately, so this is worth 10-50 % of eager inference time on our models
(benchmarks/bench_models.py); ONNX Runtime folds batch norms by itself at load time.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from botunet.models.layers import ConvNormAct1d


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
