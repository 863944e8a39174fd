"""Model folders: round trip, damaged or missing files, and models pointed at other data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_dataset import TINY_KWARGS, TINY_MODEL, write_synthetic_dataset

from botunet.cli.main import main
from botunet.config import SampleConfig, SessionConfig, to_dict
from botunet.errors import CheckpointError
from botunet.models.registry import create_model
from botunet.training.checkpoint import (
    SPEC_FILE,
    WEIGHTS_FILE,
    check_compatible,
    load_checkpoint,
    read_spec,
    save_checkpoint,
)
from botunet.training.predict import predict_scores

SAMPLE = SampleConfig(n_packets=2, bytes_per_packet=20)


def _spec(**changes) -> dict:
    spec = {
        "model": TINY_MODEL,
        "model_kwargs": dict(TINY_KWARGS),
        "input_length": SAMPLE.input_length,
        "sample_config": to_dict(SAMPLE),
        "session_config": to_dict(SAMPLE.session_config(SessionConfig())),
        "threshold": 0.5,
    }
    spec.update(changes)
    return spec


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model(TINY_MODEL, input_length=SAMPLE.input_length, **TINY_KWARGS)
    return save_checkpoint(tmp_path / "model", model, _spec())


def _one_line_error(excinfo: pytest.ExceptionInfo, filename: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert filename in message
    return message


def test_checkpoint_round_trip_gives_same_scores(tmp_path: Path):
    torch.manual_seed(1)
    model = create_model(TINY_MODEL, input_length=40, **TINY_KWARGS)
    vectors = np.random.default_rng(0).integers(0, 256, (9, 40), dtype=np.uint8)
    before = predict_scores(model, vectors)
    save_checkpoint(tmp_path / "m", model, _spec(threshold=0.3, history=[{"epoch": 1}]))

    loaded, spec = load_checkpoint(tmp_path / "m")
    assert not loaded.training
    assert spec["threshold"] == 0.3 and spec["history"] == [{"epoch": 1}]
    np.testing.assert_array_equal(predict_scores(loaded, vectors), before)
    # safetensors: an 8-byte little-endian header length, then a JSON header
    raw = (tmp_path / "m" / WEIGHTS_FILE).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8 : 8 + header_len])["__metadata__"]["model"] == TINY_MODEL


def test_predict_scores_are_sigmoid_of_logits_in_batches(model_dir: Path):
    model, _ = load_checkpoint(model_dir)
    vectors = np.random.default_rng(1).integers(0, 256, (7, 40), dtype=np.uint8)
    scores = predict_scores(model, vectors, batch_size=3)
    with torch.no_grad():
        x = torch.from_numpy(vectors.astype(np.float32) / 255).reshape(7, 1, 40)
        expected = torch.sigmoid(model(x)).numpy()
    assert scores.shape == (7,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)


def test_load_checkpoint_corrupt_weights(model_dir: Path):
    (model_dir / WEIGHTS_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, WEIGHTS_FILE)


def test_load_checkpoint_truncated_weights(model_dir: Path):
    path = model_dir / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, WEIGHTS_FILE)


def test_load_checkpoint_corrupt_spec(model_dir: Path):
    (model_dir / SPEC_FILE).write_text('{"model": "unet1d_light", ')
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, SPEC_FILE)


@pytest.mark.parametrize("missing", [WEIGHTS_FILE, SPEC_FILE])
def test_load_checkpoint_missing_file(model_dir: Path, missing: str):
    (model_dir / missing).unlink()
    with pytest.raises(CheckpointError, match="not found") as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, missing)


def test_load_checkpoint_missing_folder(tmp_path: Path):
    with pytest.raises(CheckpointError, match="model folder not found"):
        load_checkpoint(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model_kwargs": {"widths": [4, 16]}}, "has shape"),
        ({"model_kwargs": {"widths": [4, 8, 16]}}, "missing"),
    ],
)
def test_load_checkpoint_weights_that_do_not_fit(model_dir: Path, changes: dict, expected: str):
    (model_dir / SPEC_FILE).write_text(json.dumps(_spec(**changes)))
    with pytest.raises(CheckpointError, match=expected) as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, WEIGHTS_FILE)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"input_length": 41}, "does not match"),
        ({"threshold": 1.5}, "threshold"),
        ({"model": "unet2d"}, "unknown model"),
        ({"model_kwargs": {"no_such_argument": 1}}, "cannot build model"),
        ({"sample_config": {"n_packets": 0, "bytes_per_packet": 20}}, "n_packets"),
    ],
)
def test_load_checkpoint_bad_spec_values(model_dir: Path, changes: dict, expected: str):
    spec = _spec(**changes)
    (model_dir / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=expected) as excinfo:
        load_checkpoint(model_dir)
    _one_line_error(excinfo, SPEC_FILE)


def test_read_spec_missing_key(model_dir: Path):
    spec = _spec()
    del spec["sample_config"]
    (model_dir / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match="no 'sample_config'"):
        read_spec(model_dir)


def test_check_compatible_names_both_shapes():
    spec = _spec(sample_config=to_dict(SampleConfig(n_packets=8)), input_length=800)
    with pytest.raises(CheckpointError) as excinfo:
        check_compatible(spec, SampleConfig(n_packets=4), source="data/n4")
    message = str(excinfo.value)
    assert message.startswith("model built for N=8, L=100 (input 800)")
    assert "dataset data/n4 has N=4, L=100 (input 400)" in message
    check_compatible(spec, to_dict(SampleConfig(n_packets=8)))  # same settings pass


def test_check_compatible_start_and_mask_matter():
    spec = _spec()
    with pytest.raises(CheckpointError, match="start=payload"):
        check_compatible(spec, SampleConfig(n_packets=2, bytes_per_packet=20, start="payload"))
    with pytest.raises(CheckpointError, match="mask=none"):
        check_compatible(spec, SampleConfig(n_packets=2, bytes_per_packet=20, mask="none"))


def test_cli_evaluate_corrupt_weights_is_one_error_line(model_dir: Path, tmp_path: Path, capsys):
    dataset = write_synthetic_dataset(tmp_path / "data")
    (model_dir / WEIGHTS_FILE).write_bytes(b"garbage")
    assert main(["evaluate", str(model_dir), str(dataset)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ") and WEIGHTS_FILE in err[0]


def test_cli_evaluate_other_n_is_one_error_line(model_dir: Path, tmp_path: Path, capsys):
    dataset = write_synthetic_dataset(tmp_path / "data", n_packets=4)
    assert main(["evaluate", str(model_dir), str(dataset)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and captured.out == ""
    assert err[0].startswith("error: model built for N=2, L=20 (input 40)")
    assert "has N=4, L=20 (input 80)" in err[0]
