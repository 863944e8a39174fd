"""Every registered model: shapes, gradients, determinism, size against the paper's."""

from __future__ import annotations

import pytest
import torch

from botunet.models import create_model, list_models
from botunet.models.reference import PAPER_COSTS


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(params=list_models())
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_list_models_names_the_three_paper_models() -> None:
    assert list_models() == ["mobilenet1d", "unet1d", "unet1d_light"]


def test_model_forward_gives_one_finite_logit_per_sample(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=100).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, 100))
    assert out.shape == (3,)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_model_backward_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=100).train()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        model(torch.rand(4, 1, 100)), torch.tensor([0.0, 1.0, 1.0, 0.0])
    )
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    for param_name, param in model.named_parameters():
        assert torch.isfinite(param.grad).all(), param_name
    flowing = sum(int(p.grad.abs().sum() > 0) for p in model.parameters())
    assert flowing == len(list(model.parameters()))


def test_model_eval_outputs_repeat_exactly(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=103).eval()
    x = torch.rand(2, 1, 103)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)


def test_model_eval_output_of_a_sample_does_not_depend_on_its_batch(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=100).eval()
    x = torch.rand(5, 1, 100)
    with torch.no_grad():
        together, alone = model(x), model(x[2:3])
    torch.testing.assert_close(together[2:3], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("input_length", [800, 100])
def test_model_parameter_count_is_within_15_percent_of_the_paper(
    name: str, input_length: int
) -> None:
    count = n_params(create_model(name, input_length=input_length))
    paper = PAPER_COSTS[name][input_length].params
    assert abs(count - paper) <= 0.15 * paper, f"{name}: {count} vs paper {paper}"


def test_light_model_is_about_a_third_of_unet1d() -> None:
    full = n_params(create_model("unet1d", input_length=800))
    light = n_params(create_model("unet1d_light", input_length=800))
    assert 0.25 < light / full < 0.45


@pytest.mark.parametrize("input_length", [20, 103, 800, 1600, 24000])
def test_model_builds_and_runs_at_any_sample_length(name: str, input_length: int) -> None:
    model = create_model(name, input_length=input_length).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, input_length))
    assert out.shape == (1,)
    assert torch.isfinite(out).all()


def test_model_with_two_classes_gives_two_logits(name: str) -> None:
    model = create_model(name, input_length=100, num_classes=2).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 100)).shape == (3, 2)


def test_model_features_and_head_compose_to_forward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=100).eval()
    x = torch.rand(2, 1, 100)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape[0] == 2 and features.dim() == 4
        assert torch.equal(model.forward_head(features), model(x))
