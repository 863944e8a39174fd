"""Bad paths and damaged models end in one error line, never a traceback or NaN scores."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from botunet.cli.main import main
from botunet.detection.spec import default_model_dir
from botunet.errors import CheckpointError
from botunet.pcap.reader import find_captures
from botunet.training.checkpoint import load_checkpoint


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


def test_unwritable_output_path_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["-q", "export", str(default_model_dir()), "-o", str(blocker / "m.onnx")])
    assert code == 1
    assert str(blocker) in _one_error_line(capsys)


def test_detect_on_a_folder_without_captures_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "detect", str(tmp_path), "--backend", "onnx"]) == 1
    assert "no capture files" in _one_error_line(capsys)


def test_damaged_weights_holding_nan_are_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(default_model_dir(), model_dir)
    tensors = load_file(str(model_dir / "weights.safetensors"))
    name = next(n for n, t in tensors.items() if t.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(model_dir / "weights.safetensors"))
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        load_checkpoint(model_dir)


def test_a_file_named_like_a_capture_that_is_not_one_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "notes.txt").write_text("not a capture, not named like one")
    (tmp_path / "x.pcap").write_text("hello")
    with caplog.at_level(logging.DEBUG, logger="botunet"):
        assert find_captures([tmp_path]) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "x.pcap" in warnings[0]
