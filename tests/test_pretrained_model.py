"""The model shipped in the package: loads without a path, and its two backends agree."""

from __future__ import annotations

import json

import numpy as np

from botunet.config import SampleConfig
from botunet.detection.backends import OnnxScorer, TorchScorer
from botunet.detection.spec import default_model_dir, read_model_spec


def test_shipped_model_is_the_strict_unet1d_light() -> None:
    spec = json.loads((default_model_dir() / "model.json").read_text())
    assert spec["model"] == "unet1d_light"
    sample = SampleConfig(**spec["sample_config"])
    assert sample.mask == "strict"
    assert spec["input_length"] == sample.n_packets * sample.bytes_per_packet


def test_shipped_onnx_and_weights_give_the_same_scores() -> None:
    spec = read_model_spec(None)
    rng = np.random.default_rng(0)
    vectors = rng.integers(0, 256, size=(7, spec.input_length), dtype=np.uint8)
    vectors[3:] = 0
    torch_scores = TorchScorer(spec, threads=1).score(vectors)
    onnx_scores = OnnxScorer(spec, threads=1).score(vectors)
    assert torch_scores.shape == (7,)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-4)
    assert np.all((torch_scores >= 0) & (torch_scores <= 1))
