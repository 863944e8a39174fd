"""1D-UNet and 1DL-UNet (the paper's Sections 3.1 and 3.2) over a session's byte vector."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from botunet.models.layers import ConvNormAct1d, DepthwiseSeparableConv1d, init_weights
from botunet.models.registry import register_model


class DoubleConv1d(nn.Sequential):
    """Two convolutions with norm and activation; the first may down-sample by its stride.

    Args:
        in_channels: channels in.
        out_channels: channels out of both convolutions.
        kernel_size: taps of each convolution.
        stride: stride of the first convolution (2 replaces a max pooling before it).
        separable: depthwise separable convolutions instead of full ones.
        full_first: keep the first convolution a full one even when separable.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        separable: bool = False,
        full_first: bool = False,
    ) -> None:
        conv = DepthwiseSeparableConv1d if separable else ConvNormAct1d
        first = ConvNormAct1d if full_first else conv
        super().__init__(
            first(in_channels, out_channels, kernel_size, stride=stride),
            conv(out_channels, out_channels, kernel_size),
        )


class Up1d(nn.Module):
    """Doubles the length and maps in_channels to out_channels before the skip concat.

    mode "transpose" is the original UNet's 2-tap, stride-2 up-convolution. mode
    "nearest" mixes channels with a 1x1 convolution and then repeats each position:
    the same result as repeating first at half the cost, with half the weights of
    "transpose".
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "transpose") -> None:
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, (1, 2), stride=(1, 2))
        elif mode == "nearest":
            self.up = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1),
                nn.Upsample(scale_factor=(1.0, 2.0), mode="nearest"),
            )
        else:
            raise ValueError(f"up_mode must be 'transpose' or 'nearest', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class UNet1d(nn.Module):
    """U-shaped 1D CNN: encoder, decoder with skip connections, then a per-position head.

    The input (B, in_channels, input_length) is zero-padded at the end to a multiple
    of 2 ** (levels - 1) so that every down-sampling halves an even length, and the
    decoder output is cropped back to input_length: shapes are static, which keeps the
    ONNX export exact for any length. Inside, features are (B, C, 1, L) in channels-last
    memory (see botunet.models.layers). The head is a 1x1 convolution to one channel and
    a fully connected layer over the input_length positions, so the parameter count
    barely depends on the length (the paper: 0.716 M at 800, 0.715 M at 100).

    Args:
        input_length: bytes per sample (N * L).
        in_channels: channels of the input (1: the byte vector).
        num_classes: outputs; 1 gives logits of shape (B,), more give (B, num_classes).
        widths: channels of each encoder level; the last level is the bottleneck.
        kernel_size: taps of every k-tap convolution.
        separable: depthwise separable convolutions (the 1DL-UNet); the very first
            convolution stays a full one, since a depthwise convolution of a single
            input channel gives output channels that are all multiples of one signal.
        strided_levels: encoder levels (1 .. levels - 1) whose first convolution has
            stride 2 instead of a max pooling before it (the 1DL-UNet: level 1).
        up_mode: "transpose" or "nearest" (see Up1d).
        drop_rate: dropout before the fully connected layer.
    """

    def __init__(
        self,
        input_length: int,
        in_channels: int = 1,
        num_classes: int = 1,
        widths: tuple[int, ...] | list[int] = (32, 64, 128, 256),
        kernel_size: int = 3,
        separable: bool = False,
        strided_levels: tuple[int, ...] | list[int] = (),
        up_mode: str = "transpose",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        strided = {int(level) for level in strided_levels}
        if input_length < 1:
            raise ValueError(f"input_length must be >= 1, got {input_length!r}")
        if len(widths) < 2:
            raise ValueError(f"widths must name at least 2 levels, got {widths!r}")
        if not strided <= set(range(1, len(widths))):
            raise ValueError(
                f"strided_levels must be in 1..{len(widths) - 1}, got {sorted(strided)!r}"
            )
        self.input_length = input_length
        self.num_classes = num_classes
        multiple = 2 ** (len(widths) - 1)
        self.padded_length = -(-input_length // multiple) * multiple

        # encoder: level 0 at full length, each later level at half the one before
        self.pools = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for level, width in enumerate(widths):
            if level == 0:
                pool: nn.Module = nn.Identity()
                block = DoubleConv1d(in_channels, width, kernel_size, 1, separable, True)
            else:
                pool = nn.Identity() if level in strided else nn.MaxPool2d((1, 2))
                stride = 2 if level in strided else 1
                block = DoubleConv1d(widths[level - 1], width, kernel_size, stride, separable)
            self.pools.append(pool)
            self.encoder.append(block)

        # decoder: up-sample, concatenate the encoder's features, two convolutions
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            self.ups.append(Up1d(widths[level + 1], widths[level], up_mode))
            self.decoder.append(
                DoubleConv1d(2 * widths[level], widths[level], kernel_size, 1, separable)
            )

        # head: one value per position, then a fully connected layer over positions
        self.head_conv = nn.Conv2d(widths[0], 1, 1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(input_length, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, input_length) -> decoder features (B, widths[0], 1, input_length)."""
        pad = self.padded_length - self.input_length
        x = x.unsqueeze(2)
        if pad:
            x = F.pad(x, (0, pad))
        skips = []
        for pool, block in zip(self.pools, self.encoder, strict=True):
            x = block(pool(x))
            skips.append(x)
        skips.pop()
        for up, block in zip(self.ups, self.decoder, strict=True):
            x = block(torch.cat((up(x), skips.pop()), dim=1))
        return x[..., : self.input_length] if pad else x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder features -> logits (B,) (or (B, num_classes) when num_classes > 1)."""
        x = self.head_drop(torch.flatten(self.head_conv(x), 1))
        x = self.fc(x)
        return x.squeeze(1) if self.num_classes == 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_unet1d(variant: str, input_length: int, **kwargs: Any) -> UNet1d:
    defaults = _VARIANTS[variant]
    return UNet1d(input_length, **{**defaults, **kwargs})


# variant   levels' widths        kernel  separable  strided levels  up-sampling
_VARIANTS: dict[str, dict[str, Any]] = {
    "unet1d": dict(widths=(32, 64, 128, 256), kernel_size=3, separable=False,
                   strided_levels=(), up_mode="transpose"),
    "unet1d_light": dict(widths=(32, 64, 128, 256), kernel_size=3, separable=True,
                         strided_levels=(1,), up_mode="nearest"),
}  # fmt: skip


@register_model
def unet1d(input_length: int, **kwargs: Any) -> UNet1d:
    """The paper's 1D-UNet: full convolutions, max pooling between levels."""
    return _create_unet1d("unet1d", input_length, **kwargs)


@register_model
def unet1d_light(input_length: int, **kwargs: Any) -> UNet1d:
    """The paper's 1DL-UNet: depthwise separable convolutions, stride 2 at level 1."""
    return _create_unet1d("unet1d_light", input_length, **kwargs)
