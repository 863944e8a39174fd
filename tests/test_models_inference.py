"""Inference helpers: folded batch norms and sub-batched forward passes give the same logits."""

from __future__ import annotations

import pytest
import torch

from botunet.models import create_model, list_models
from botunet.models.inference import forward_in_chunks, fuse_batchnorm


@pytest.mark.parametrize("name", list_models())
def test_fuse_batchnorm_keeps_outputs_and_drops_the_norms(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=100)
    generator = torch.Generator().manual_seed(2)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.2, 0.2, generator=generator)
    model.eval()
    fused = fuse_batchnorm(model)
    x = torch.rand(4, 1, 100)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)
        hidden = fused.forward_features(x)
        torch.testing.assert_close(hidden, model.forward_features(x), rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_forward_in_chunks_equals_one_pass_and_splits_big_batches() -> None:
    torch.manual_seed(0)
    model = create_model("unet1d_light", input_length=100).eval()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    x = torch.rand(7, 1, 100)
    with torch.no_grad():
        whole = model(x)
        chunked = forward_in_chunks(model, x, max_positions=300)
    assert calls == [7, 3, 3, 1]
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_forward_in_chunks_keeps_a_small_batch_whole() -> None:
    model = create_model("unet1d", input_length=100).eval()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        assert forward_in_chunks(model, torch.rand(5, 1, 100)).shape == (5,)
    assert calls == [5]
