"""``botunet models``: the size and cost table, in text and JSON."""

from __future__ import annotations

import json

import pytest

from botunet.cli.main import main
from botunet.models import create_model


def test_models_json_reports_each_model_at_the_requested_length(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "--packets", "1", "--bytes", "100", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["mobilenet1d", "unet1d", "unet1d_light"]
    for row in rows:
        model = create_model(row["model"], input_length=100)
        assert row["input_length"] == 100
        assert row["params"] == sum(p.numel() for p in model.parameters())
        state = model.state_dict()
        data = sum(t.numel() * t.element_size() for t in state.values())
        # the tensors' bytes plus a JSON header of about a hundred bytes per tensor
        assert data < row["weights_bytes"] < data + 200 * len(state)
        assert row["paper_params"]["800"] > 0 and row["paper_macs"]["100"] > 0
    light = next(r for r in rows if r["model"] == "unet1d_light")
    assert 4_000_000 < light["macs"] < 8_000_000


def test_models_table_shows_ours_beside_the_papers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--packets", "8"]) == 0
    out = capsys.readouterr().out
    light = next(line for line in out.splitlines() if line.startswith("unet1d_light"))
    assert light.split()[1:4] == ["0.246", "0.245", "0.243"]
    assert "input length 800 bytes" in out


def test_models_rejects_an_out_of_range_packet_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--packets", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: n_packets must be in 1..64, got 0"
