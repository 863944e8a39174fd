"""ONNX export of every model at a length that no down-sampling divides evenly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from botunet.models import create_model, list_models

LENGTH = 703  # 700 + 3: odd, so every pooling level needs the model's own padding


def export(model: torch.nn.Module, path: Path, length: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, length),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logit"],
            dynamic_axes={"x": {0: "batch"}, "logit": {0: "batch"}},
        )


def randomise_norms(model: torch.nn.Module) -> None:
    """Non-trivial batch-norm statistics, so a wrong fold would show in the outputs."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.2, 0.2, generator=generator)
        elif isinstance(module, torch.nn.Linear):
            module.weight.data.normal_(0.0, 0.1, generator=generator)


@pytest.mark.parametrize("name", list_models())
def test_onnx_runtime_matches_torch_at_an_uneven_length(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_length=LENGTH).eval()
    randomise_norms(model)
    path = tmp_path / f"{name}.onnx"
    export(model, path, LENGTH)

    x = torch.rand(3, 1, LENGTH)
    with torch.no_grad():
        expected = model(x).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})

    assert got.shape == (3,)
    assert np.abs(expected).max() > 1e-3  # outputs large enough for the check to mean something
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
