"""Multiply-accumulate counts, by hand and against the paper."""

from __future__ import annotations

import pytest

from botunet.models import create_model, list_models
from botunet.models.flops import count_flops
from botunet.models.reference import PAPER_COSTS


def test_count_flops_counts_multiply_accumulates_of_a_small_unet() -> None:
    model = create_model("unet1d", input_length=8, widths=[4, 8]).train()
    # by hand, per layer: input channels x output channels x taps x output positions
    expected = (
        1 * 4 * 3 * 8 + 4 * 4 * 3 * 8  # level 0
        + 4 * 8 * 3 * 4 + 8 * 8 * 3 * 4  # level 1 after pooling
        + 8 * 4 * 2 * 4  # 2-tap transposed convolution from 4 positions
        + 8 * 4 * 3 * 8 + 4 * 4 * 3 * 8  # decoder block
        + 4 * 1 * 8 + 8 * 1  # head convolution and fully connected layer
    )  # fmt: skip
    assert count_flops(model, 8) == expected == 3080
    assert model.training  # the mode is put back


def test_count_flops_of_separable_block_follows_eq_12() -> None:
    model = create_model("unet1d_light", input_length=16, widths=[4, 8], strided_levels=[])
    # the first conv is full; then each DSC costs Dk*M*Dout + M*Dout*N (Eq. 12)
    dsc = lambda m, n, d: 3 * m * d + m * n * d  # noqa: E731
    expected = (
        1 * 4 * 3 * 16 + dsc(4, 4, 16)
        + dsc(4, 8, 8) + dsc(8, 8, 8)
        + 8 * 4 * 8  # 1x1 convolution before the nearest up-sampling, at 8 positions
        + dsc(8, 4, 16) + dsc(4, 4, 16)
        + 4 * 16 + 16
    )  # fmt: skip
    assert count_flops(model, 16) == expected


@pytest.mark.parametrize("name", list_models())
def test_count_flops_is_near_the_paper_at_800_bytes(name: str) -> None:
    macs = count_flops(create_model(name, input_length=800), 800)
    paper = PAPER_COSTS[name][800].macs
    assert 0.7 * paper < macs < 1.15 * paper


def test_light_unet_costs_under_half_of_unet1d() -> None:
    full = count_flops(create_model("unet1d", input_length=800), 800)
    light = count_flops(create_model("unet1d_light", input_length=800), 800)
    assert light < 0.5 * full
