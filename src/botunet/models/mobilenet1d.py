"""1D-MobileNet, the paper's baseline: MobileNet v1's separable stack over the byte vector."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from botunet.models.layers import ConvNormAct1d, DepthwiseSeparableConv1d, init_weights
from botunet.models.registry import register_model

# MobileNet v1 (Howard et al. 2017, Table 1) turned 1D, with a stride-1 stem, one more
# 512-channel block in place of the final 1024 -> 1024 one, and a total stride of 8
# rather than 32. The paper gives only totals (3.178 M parameters and 0.258 G MACs at
# 800 bytes, 2.434 M at 100); a head that grows by 0.744 M over 700 more bytes, about
# 1063 weights per byte, means the fully connected layer sees a flattened feature map,
# not a pooled one. A 1024-channel map at stride 8 into 8 hidden units gives 1024 per
# byte, and the stack below then lands within 3 % of both parameter counts and of the
# MACs at 800 bytes.
# out_channels  stride
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 1),
)


class MobileNet1d(nn.Module):
    """A stem convolution, depthwise separable blocks, a flattened map, two linear layers.

    Args:
        input_length: bytes per sample (N * L).
        in_channels: channels of the input (1: the byte vector).
        num_classes: outputs; 1 gives logits of shape (B,), more give (B, num_classes).
        stem_width: channels of the stem convolution.
        blocks: (out_channels, stride) of each depthwise separable block.
        kernel_size: taps of the stem and of every depthwise convolution.
        hidden: units of the fully connected layer over the flattened feature map.
        drop_rate: dropout before each fully connected layer.
    """

    def __init__(
        self,
        input_length: int,
        in_channels: int = 1,
        num_classes: int = 1,
        stem_width: int = 32,
        blocks: tuple[tuple[int, int], ...] | list[list[int]] = BLOCKS,
        kernel_size: int = 3,
        hidden: int = 8,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if input_length < 1:
            raise ValueError(f"input_length must be >= 1, got {input_length!r}")
        self.input_length = input_length
        self.num_classes = num_classes

        # stem and separable stack; a stride-s block maps L positions to ceil(L / s)
        layers: list[nn.Module] = [ConvNormAct1d(in_channels, stem_width, kernel_size)]
        channels, length = stem_width, input_length
        for out_channels, stride in blocks:
            layers.append(
                DepthwiseSeparableConv1d(
                    channels, out_channels, kernel_size, stride=stride, dw_norm_act=True
                )
            )
            channels, length = out_channels, -(-length // stride)
        self.features = nn.Sequential(*layers)
        self.feature_size = channels * length

        # head: the whole flattened map, so every position keeps its own weights
        self.head = nn.Sequential(
            nn.Dropout(drop_rate),
            nn.Linear(self.feature_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
        )
        self.fc = nn.Linear(hidden, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, input_length) -> features (B, C, 1, L / total stride, rounded up)."""
        return self.features(x.unsqueeze(2))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Features -> logits (B,) (or (B, num_classes) when num_classes > 1)."""
        # flatten in (C, L) order whatever the memory format, as the weights expect
        x = self.fc(self.head(torch.flatten(x, 1)))
        return x.squeeze(1) if self.num_classes == 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_mobilenet1d(variant: str, input_length: int, **kwargs: Any) -> MobileNet1d:
    if "blocks" in kwargs:
        kwargs["blocks"] = tuple((int(c), int(s)) for c, s in kwargs["blocks"])
    return MobileNet1d(input_length, **kwargs)


@register_model
def mobilenet1d(input_length: int, **kwargs: Any) -> MobileNet1d:
    """The paper's 1D-MobileNet baseline."""
    return _create_mobilenet1d("mobilenet1d", input_length, **kwargs)
