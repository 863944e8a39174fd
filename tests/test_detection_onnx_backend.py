"""``detect --backend onnx`` runs on onnxruntime alone: torch is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from botunet import __version__
from botunet.config import DetectConfig, SampleConfig, SessionConfig, to_dict
from botunet.detection.engine import Detector
from botunet.detection.events import flow_id
from botunet.export.onnx import export_onnx
from botunet.models.registry import create_model
from botunet.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
CAPTURES = ("botnet/emotet/ndpi-emotet.pcap", "benign/malcolm-protocols/DHCP.pcap")

# Runs the CLI with every import of torch failing, as on a device without torch.
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
from botunet.cli.main import main

rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, f"torch modules loaded: {loaded}"
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    sample = SampleConfig(n_packets=8, bytes_per_packet=100)
    kwargs = {"widths": [4, 8]}
    model = create_model("unet1d_light", input_length=sample.input_length, **kwargs)
    spec = {
        "model": "unet1d_light",
        "model_kwargs": kwargs,
        "input_length": sample.input_length,
        "sample_config": to_dict(sample),
        "session_config": to_dict(SessionConfig()),
        "threshold": 0.5,
        "version": __version__,
    }
    model_dir = save_checkpoint(tmp_path_factory.mktemp("model") / "m", model.eval(), spec)
    export_onnx(model_dir)
    return model_dir


def test_detect_onnx_backend_never_imports_torch(tmp_path, model_dir, pcaps_dir) -> None:
    captures = [str(pcaps_dir / c) for c in CAPTURES]
    out = tmp_path / "events.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # --onnx alone selects the onnx backend
    args = ["detect", *captures, "--model", str(model_dir), "--onnx",
            str(model_dir / "model.onnx"), "--all", "-o", str(out)]

    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], env=env,
                          capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    assert "on onnx" in proc.stdout
    events = [json.loads(line) for line in out.read_text().splitlines()]
    # the same sessions and scores as the torch backend, within export tolerance
    torch_verdicts = Detector(model_dir, DetectConfig(backend="torch")).load().iter_verdicts(
        captures
    )
    expected = {
        flow_id(v.protocol, v.src_ip, v.src_port, v.dst_ip, v.dst_port, v.first_ns): v.score
        for v in torch_verdicts
    }
    got = {e["flow_id"]: e["botunet"]["score"] for e in events}
    assert len(got) == len(events) and got.keys() == expected.keys()
    for key, score in expected.items():
        assert got[key] == pytest.approx(score, abs=1e-4)


def test_torch_blocker_is_effective(tmp_path) -> None:
    code = NO_TORCH.replace("from botunet.cli.main import main", "import torch")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "blocked" in proc.stderr
