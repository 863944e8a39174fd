"""Model registry, JSON-rebuildable kwargs, and the byte-to-input scaling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from botunet.errors import UnknownModelError
from botunet.models import create_model, list_models, register_model, registry, to_input


def test_list_models_is_sorted() -> None:
    assert list_models() == sorted(list_models())


def test_create_model_with_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'unet2d'; available: ") as err:
        create_model("unet2d", input_length=100)
    assert str(err.value).endswith("mobilenet1d, unet1d, unet1d_light")


def test_register_model_refuses_a_taken_name() -> None:
    def unet1d(input_length: int) -> torch.nn.Module:
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="'unet1d' is already registered"):
        register_model(unet1d)
    assert registry._registry["unet1d"] is not unet1d


def test_register_model_adds_a_new_variant() -> None:
    def tiny_test_model(input_length: int, width: int = 2) -> torch.nn.Module:
        return torch.nn.Linear(input_length, width)

    register_model(tiny_test_model)
    try:
        assert "tiny_test_model" in list_models()
        assert create_model("tiny_test_model", input_length=7, width=3).out_features == 3
    finally:
        del registry._registry["tiny_test_model"]


@pytest.mark.parametrize("name", list_models())
def test_model_rebuilds_from_json_kwargs_with_the_same_state(name: str) -> None:
    kwargs = {"unet1d": {"widths": [16, 32, 64], "drop_rate": 0.1},
              "unet1d_light": {"widths": [16, 32, 64], "strided_levels": [1, 2]},
              "mobilenet1d": {"blocks": [[64, 2], [128, 2]], "hidden": 4}}[name]  # fmt: skip
    torch.manual_seed(0)
    model = create_model(name, input_length=120, **kwargs).eval()
    rebuilt = create_model(name, input_length=120, **json.loads(json.dumps(kwargs))).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 120)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_model_kwargs_change_the_architecture() -> None:
    small = create_model("unet1d", input_length=100, widths=[8, 16])
    default = create_model("unet1d", input_length=100)
    assert sum(p.numel() for p in small.parameters()) < 0.05 * sum(
        p.numel() for p in default.parameters()
    )


def test_unet_rejects_a_strided_level_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="strided_levels must be in 1..3"):
        create_model("unet1d", input_length=100, strided_levels=[4])


def test_to_input_scales_bytes_to_unit_floats_with_a_channel_axis() -> None:
    vectors = np.array([[0, 255, 128], [1, 2, 3]], dtype=np.uint8)
    x = to_input(vectors)
    assert x.shape == (2, 1, 3) and x.dtype == torch.float32
    assert x[0, 0].tolist() == pytest.approx([0.0, 1.0, 128 / 255])
    assert x[1, 0, 2].item() == pytest.approx(3 / 255)


def test_to_input_accepts_a_read_only_memory_map(tmp_path) -> None:
    path = tmp_path / "vectors.npy"
    np.save(path, np.full((4, 10), 51, dtype=np.uint8))
    x = to_input(np.load(path, mmap_mode="r")[1:3])
    assert x.shape == (2, 1, 10)
    assert torch.allclose(x, torch.full((2, 1, 10), 0.2))


@pytest.mark.parametrize("bad", [np.zeros((2, 3), dtype=np.float32), np.zeros(5, dtype=np.uint8)])
def test_to_input_rejects_other_dtypes_and_shapes(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 array of shape"):
        to_input(bad)
