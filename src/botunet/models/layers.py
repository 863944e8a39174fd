"""1D building blocks shared by the models; norm and activation come in as callables.

Every block here works on a 1D signal stored as (B, C, 1, L), a height-1 image, in
torch's channels-last memory format. A (B, C, L) layout would read more naturally, but
torch has a channels-last format only for 4D tensors, and on CPUs that format decides
the speed of the depthwise convolutions the light models are made of: oneDNN's
channels-last depthwise kernel vectorises over channels, and the depthwise layers of
unet1d_light took 2.5-7x less time than in the (B, C, L) layout nn.Conv1d uses; whole
models ran 1.2-2x faster in torch, for inference and for training. ONNX Runtime's
blocked-layout optimisations also apply only to 2D convolutions. The other depthwise
formulations measured, k shifted element-wise products (in either layout) and an
unfold followed by an einsum, were slower than both (benchmarks/bench_models.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LayerFactory = Callable[..., nn.Module]


def relu_inplace() -> nn.Module:
    """ReLU that overwrites its input: one less feature map to allocate per block."""
    return nn.ReLU(inplace=True)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, L) in channels-last memory; free when it already is."""
    return x.contiguous(memory_format=torch.channels_last)


class ConvNormAct1d(nn.Sequential):
    """1D convolution, norm, activation: (B, in_channels, 1, L) -> (B, out_channels, 1, L').

    L' is ceil(L / stride) for an odd kernel_size. The output is in channels-last
    memory whatever the input's (a one-channel input has no layout of its own).

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: taps of the convolution along L.
        stride: down-sampling factor along L.
        groups: convolution groups (in_channels for a depthwise convolution).
        norm_layer: called with out_channels; None for no normalisation.
        act_layer: called with no argument; None for no activation.
        bias: give the convolution a bias; None means only when there is no norm_layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = relu_inplace,
        bias: bool | None = None,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                (1, kernel_size),
                stride=(1, stride),
                padding=(0, (kernel_size - 1) // 2),
                groups=groups,
                bias=norm_layer is None if bias is None else bias,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if act_layer is not None:
            layers.append(act_layer())
        super().__init__(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(to_channels_last(x))


class DepthwiseSeparableConv1d(nn.Module):
    """Depthwise k-tap convolution, then pointwise 1x1: the paper's 1D-DSC (Eqs. 6-12).

    Args:
        in_channels: channels of the input (and of the depthwise convolution).
        out_channels: channels of the output.
        kernel_size: taps of the depthwise convolution.
        stride: stride of the depthwise convolution.
        norm_layer: normalisation after the pointwise convolution (and after the
            depthwise one when dw_norm_act is set).
        act_layer: activation, placed like norm_layer.
        dw_norm_act: also normalise and activate between the two convolutions, as
            MobileNet v1 does; without it the pair is one low-rank convolution, as in
            the paper's Fig. 4, and a feature map pass cheaper.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = relu_inplace,
        dw_norm_act: bool = False,
    ) -> None:
        super().__init__()
        self.conv_dw = ConvNormAct1d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            groups=in_channels,
            norm_layer=norm_layer if dw_norm_act else None,
            act_layer=act_layer if dw_norm_act else None,
            # a depthwise bias with no norm after it would pass through the linear
            # pointwise convolution into the next norm's shift: a wasted parameter
            bias=False,
        )
        self.conv_pw = ConvNormAct1d(
            in_channels, out_channels, 1, norm_layer=norm_layer, act_layer=act_layer
        )
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_pw(self.conv_dw(x))


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions (ReLU, fan-out), unit batch norms, small linear layers."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)
