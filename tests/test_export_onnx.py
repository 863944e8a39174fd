"""ONNX export: agreement with PyTorch, the graph's interface, int8 quantisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from synthetic_dataset import write_synthetic_dataset

from botunet import __version__
from botunet.cli.main import main
from botunet.config import SampleConfig, SessionConfig, to_dict
from botunet.datasets.dataset import load_dataset
from botunet.errors import ExportError
from botunet.export.onnx import check_agreement, export_onnx
from botunet.models import to_input
from botunet.models.registry import create_model
from botunet.training.checkpoint import load_checkpoint, save_checkpoint

N, L = 2, 20
TINY_KWARGS = {"widths": [4, 8]}


def write_model(model_dir: Path, dataset_dir: Path | None = None, seed: int = 0) -> Path:
    """A tiny unet1d_light for N x L inputs, trained briefly on ``dataset_dir`` if given."""
    torch.manual_seed(seed)
    sample = SampleConfig(n_packets=N, bytes_per_packet=L)
    model = create_model("unet1d_light", input_length=sample.input_length, **TINY_KWARGS)
    if dataset_dir is not None:
        _train(model, dataset_dir)
    spec = {
        "model": "unet1d_light",
        "model_kwargs": TINY_KWARGS,
        "input_length": sample.input_length,
        "sample_config": to_dict(sample),
        "session_config": to_dict(sample.session_config(SessionConfig())),
        "threshold": 0.5,
        "version": __version__,
    }
    save_checkpoint(model_dir, model.eval(), spec)
    return model_dir


def _train(model: torch.nn.Module, dataset_dir: Path, steps: int = 30) -> None:
    data = load_dataset(dataset_dir)
    train = data.indices("train")
    x = to_input(np.asarray(data.vectors[train]))
    y = torch.as_tensor(data.labels[train], dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "ds", n_packets=N,
                                   bytes_per_packet=L)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, dataset_dir) -> Path:
    return write_model(tmp_path_factory.mktemp("model") / "m", dataset_dir)


@pytest.mark.parametrize("batch", [1, 7])
def test_export_onnx_agrees_with_pytorch(tmp_path, model_dir, batch) -> None:
    out = tmp_path / "model.onnx"
    report = export_onnx(model_dir, out)
    model, _ = load_checkpoint(model_dir)
    vectors = np.random.default_rng(batch).integers(0, 256, (batch, N * L), dtype=np.uint8)
    x = to_input(vectors)

    with torch.inference_mode():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logit"], {"bytes": x.numpy()})

    assert got.shape == (batch,)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert all(d <= 1e-4 for d in report["fp32"]["max_abs_logit_diff"].values())
    assert set(report["fp32"]["max_abs_logit_diff"]) == {"1", "7"}


def test_export_onnx_graph_has_dynamic_batch_and_named_io(tmp_path, model_dir) -> None:
    out = tmp_path / "model.onnx"
    report = export_onnx(model_dir, out)

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("bytes", "tensor(float)", [1, N * L])
    assert isinstance(inp.shape[0], str) and outp.name == "logit" and len(outp.shape) == 1
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model"] == "unet1d_light"
    assert json.loads(meta["sample_config"])["n_packets"] == N
    assert report["fp32"]["bytes"] == out.stat().st_size


def test_check_agreement_rejects_a_model_that_differs(tmp_path, model_dir) -> None:
    out = tmp_path / "model.onnx"
    export_onnx(model_dir, out)
    other, _ = load_checkpoint(write_model(tmp_path / "other", seed=1))
    with pytest.raises(ExportError, match="disagrees with PyTorch"):
        check_agreement(other, out, N * L)


def test_export_cli_writes_onnx_and_report(tmp_path, model_dir, capsys) -> None:
    out = tmp_path / "edge" / "model.onnx"
    out.parent.mkdir()

    assert main(["export", str(model_dir), "-o", str(out)]) == 0

    report = json.loads((out.parent / "export.json").read_text())
    assert report["fp32"]["bytes"] == out.stat().st_size
    assert "int8" not in report
    stdout = capsys.readouterr().out
    assert "agreement" in stdout and str(out) in stdout


def test_export_cli_int8_reports_sizes_and_metric_change(
    tmp_path, model_dir, dataset_dir, capsys
) -> None:
    out = tmp_path / "model.onnx"

    rc = main(["export", str(model_dir), "-o", str(out), "--int8", "--calibration",
               str(dataset_dir)])

    assert rc == 0
    int8_path = tmp_path / "model.int8.onnx"
    report = json.loads((tmp_path / "export.json").read_text())["int8"]
    assert report["path"] == str(int8_path)
    assert report["bytes"] == int8_path.stat().st_size
    assert report["fp32_bytes"] == out.stat().st_size
    assert report["test_samples"] == int(np.sum(load_dataset(dataset_dir).splits == "test"))
    # the trained model separates the synthetic classes; int8 must keep that
    assert report["fp32_test"]["accuracy"] >= 0.9
    assert report["int8_test"]["accuracy"] >= report["fp32_test"]["accuracy"] - 0.05
    assert report["accuracy_change"] == pytest.approx(
        report["int8_test"]["accuracy"] - report["fp32_test"]["accuracy"]
    )
    nodes = {node.name: node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert "QuantizeLinear" in nodes.values() and "DequantizeLinear" in nodes.values()
    # the final fully connected layer is kept in float
    assert [nodes[name] for name in report["float_nodes"]] == ["Gemm"]
    stdout = capsys.readouterr().out
    assert "int8" in stdout and "change" in stdout


def test_export_cli_int8_needs_calibration(tmp_path, model_dir, capsys) -> None:
    assert main(["export", str(model_dir), "-o", str(tmp_path / "m.onnx"), "--int8"]) == 1
    assert "--calibration" in capsys.readouterr().err
