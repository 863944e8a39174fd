"""The 1DL-UNet is the 1D-UNet with depthwise separable convolutions and one strided block."""

from __future__ import annotations

from torch import nn

from botunet.models import create_model


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_light_unet_convolutions_are_depthwise_then_pointwise() -> None:
    model = create_model("unet1d_light", input_length=800)
    layers = convs(model)
    depthwise = [i for i, c in enumerate(layers) if c.groups > 1]
    assert len(depthwise) == 13  # every k-tap convolution but the one-channel stem
    for i in depthwise:
        dw, pw = layers[i], layers[i + 1]
        assert dw.groups == dw.in_channels == dw.out_channels
        assert dw.kernel_size == (1, 3)
        assert pw.kernel_size == (1, 1) and pw.groups == 1
        assert pw.in_channels == dw.out_channels
    full = [c for c in layers if c.groups == 1 and c.kernel_size != (1, 1)]
    assert [(c.in_channels, c.out_channels) for c in full] == [(1, 32)]


def test_unet1d_has_no_depthwise_convolution() -> None:
    layers = convs(create_model("unet1d", input_length=800))
    assert all(c.groups == 1 for c in layers)
    assert sum(c.kernel_size == (1, 3) for c in layers) == 14


def test_light_unet_replaces_the_first_pooling_by_a_stride_2_block() -> None:
    full = create_model("unet1d", input_length=800)
    light = create_model("unet1d_light", input_length=800)
    assert count(full, nn.MaxPool2d) == 3
    assert count(light, nn.MaxPool2d) == 2
    assert not any(c.stride != (1, 1) for c in convs(full))
    strided = [c for c in convs(light) if c.stride == (1, 2)]
    assert len(strided) == 1
    assert strided[0].groups == strided[0].in_channels == 32  # the depthwise conv of level 1
    assert isinstance(light.pools[1], nn.Identity)
    assert isinstance(light.pools[2], nn.MaxPool2d)
