"""Cost of a model: multiply-accumulates (MACs) of one sample, counted by fvcore.

fvcore counts one fused multiply-add as one "flop", which is the paper's convention too:
its Eq. (5) gives D_k * M * D_out * N for a convolution, the number of multiply-
accumulates. So the figures here compare like with like with the paper's FLOPs(G)
column. Only convolutions and matrix products are counted, as in Eq. (5): batch norm
folds into the convolution before it at inference, and pooling, up-sampling, padding and
activations do no multiply-accumulates.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

# fvcore's default handlers that count element-wise work rather than MACs.
_NOT_MACS = (
    "aten::batch_norm",
    "aten::group_norm",
    "aten::layer_norm",
    "aten::instance_norm",
    "aten::upsample_nearest1d",
    "aten::upsample_nearest2d",
    "aten::upsample_bilinear2d",
    "aten::adaptive_avg_pool1d",
    "aten::adaptive_avg_pool2d",
    "aten::grid_sampler",
)


def _no_macs(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    return Counter()


def count_flops(model: nn.Module, input_length: int, in_channels: int = 1) -> int:
    """Multiply-accumulates of one forward pass over one sample (B = 1) of input_length."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, in_channels, input_length, device=device)
        with warnings.catch_warnings():
            # fvcore scripts and traces with torch.jit, which torch now marks deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, x)
        # set_op_handle(op, None) would leave fvcore's own handler in place
        analysis.set_op_handle(**{op: _no_macs for op in _NOT_MACS})
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            total = int(analysis.total())
    finally:
        model.train(was_training)
    logger.debug("%s: %d MACs at input length %d", type(model).__name__, total, input_length)
    return total
