"""``botunet sweep`` end to end on a few shared captures: a 2 x 2 grid, then a resume."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from botunet.cli.main import main
from botunet.experiments.results import ROW_FIELDS

# A few small captures of both classes (about 300 sessions in all once capped).
BOTNET = (
    "botnet/agenttesla/a30789ce-1e1c-4f96-a097-78c34b9fb612.pcap",
    "botnet/agenttesla/f9421792-7d2c-47d3-90e0-07eb54ae12fa.pcap",
    "botnet/asyncrat/cd010953-5faf-4054-86be-58c020c3a532.pcap",
    "botnet/hide-and-seek/hide-and-seek-short.pcap",
)
BENIGN = (
    "benign/malcolm-protocols/MQTT.pcap",
    "benign/malcolm-protocols/RADIUS.pcap",
    "benign/ndpi/EAQ.pcap",
    "benign/ndpi/KakaoTalk_chat.pcap",
    "benign/ndpi/avast_securedns.pcapng",
    "benign/ndpi/kerberos.pcap",
)
CELLS = [(start, n, "unet1d_light") for start in ("first", "payload") for n in (1, 2)]


def sweep_argv(pcaps_dir: Path, out: Path) -> list[str]:
    captures = [str(pcaps_dir / p) for p in BOTNET + BENIGN]
    return [
        "sweep", *captures, "-o", str(out), "--packets", "1,2", "--start", "first,payload",
        "--models", "unet1d_light", "--epochs", "1", "--max-per-capture", "40", "--seed", "1",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def first_run(pcaps_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 2 x 2 sweep run once for the module: (exit code, stdout, sweep folder)."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["-q", *sweep_argv(pcaps_dir, out)])
    return code, stdout.getvalue(), out


def recomputed(row: dict) -> dict[str, float]:
    tn, fp, fn, tp = (int(row[k]) for k in ("tn", "fp", "fn", "tp"))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / (tn + fp + fn + tp),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def test_sweep_cli_returns_0_and_writes_every_file(first_run):
    code, stdout, out = first_run
    assert code == 0
    for name in ("sweep.md", "sweep.csv", "sweep.json", "f1_first.png", "f1_payload.png"):
        assert (out / name).is_file(), name
    assert "4 cells: 0 reused, 4 trained" in stdout
    assert len(list((out / "datasets").iterdir())) == 4


def test_sweep_rows_agree_with_their_confusion_matrix(first_run):
    _, _, out = first_run
    document = json.loads((out / "sweep.json").read_text())
    rows = document["rows"]
    assert [(r["start"], r["n_packets"], r["model"]) for r in rows] == CELLS
    with open(out / "sweep.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [(r["start"], int(r["n_packets"]), r["model"]) for r in csv_rows] == CELLS

    for row, csv_row in zip(rows, csv_rows):
        assert set(row) == set(ROW_FIELDS)
        assert row["protocol"] == "paper" and row["epochs_run"] == 1
        assert row["tn"] + row["fp"] + row["fn"] + row["tp"] == row["n_test"] > 0
        assert row["n_train"] > row["n_test"]
        assert row["params"] > 0 and row["flops"] > 0
        for name, value in recomputed(row).items():
            assert row[name] == pytest.approx(value, abs=1e-12), name
            assert float(csv_row[name]) == pytest.approx(value, abs=1e-12), name
    # a model's cost grows with its input: N = 2 costs more than N = 1
    assert rows[1]["flops"] > rows[0]["flops"]


def test_sweep_md_has_every_cell(first_run):
    _, _, out = first_run
    text = (out / "sweep.md").read_text()
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert "### Sessions from their first packet (start `first`)" in text
    assert "### Sessions from their first packet with payload (start `payload`)" in text
    assert "### Models at start `payload`, N = 1 (paper Table 5: Exp2, 1 packet)" in text
    for r in rows:
        line = (
            f"| {r['start']} | {r['n_packets']} | {r['model']} | {r['tn']} | {r['fp']} "
            f"| {r['fn']} | {r['tp']} |"
        )
        assert line in text
        assert f"| {r['n_packets']} | {r['n_test']} | {100 * r['accuracy']:.2f} |" in text


def test_sweep_second_run_reuses_every_cell(first_run, pcaps_dir, monkeypatch, capsys):
    _, _, out = first_run
    before = (out / "sweep.json").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr("botunet.training.trainer.fit", no_training)
    monkeypatch.setattr("botunet.datasets.build.build_dataset", no_training)
    assert main(["-q", *sweep_argv(pcaps_dir, out)]) == 0
    assert "4 cells: 4 reused, 0 trained" in capsys.readouterr().out
    assert (out / "sweep.json").read_text() == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--packets", "0,2"], "error: packets must be in 1..64, got (0, 2)"),
        (["--models", "unet2d"], "error: unknown model 'unet2d'; available: mobilenet1d, unet1d"),
        (["--protocol", "leaky"], "error: unknown protocol 'leaky'; available: paper, strict"),
    ],
)
def test_sweep_cli_reports_bad_settings_in_one_line(pcaps_dir, tmp_path, capsys, flags, message):
    capture = str(pcaps_dir / BOTNET[0])
    assert main(["sweep", capture, "-o", str(tmp_path / "out"), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_sweep_cli_rejects_a_malformed_list(pcaps_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(pcaps_dir / BOTNET[0]), "--packets", "1,x"])
    assert exit_info.value.code == 2
    assert "expected integers separated by commas, got '1,x'" in capsys.readouterr().err
