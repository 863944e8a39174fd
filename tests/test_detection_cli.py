"""``botunet detect`` and the Detector on real captures, checked against evaluate's path.

The capture merges a botnet capture (six long TCP sessions) with a benign one (UDP and
ICMP sessions of 1 to 9+ packets), so sessions are scored both when their sample fills
up and when they end short of it. Scores must equal ``predict_scores`` on
``extract_batch`` of the same sessions from ``iter_sessions``, which is what evaluation
computes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import communityid
import dpkt
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from botunet import __version__
from botunet.cli.main import main
from botunet.config import DetectConfig, SampleConfig, SessionConfig, to_dict
from botunet.detection.engine import Detector, sample_packets
from botunet.detection.events import COLUMNS, flow_id
from botunet.models.registry import create_model
from botunet.samples.extract import extract_batch, packets_in_sample
from botunet.sessions.assembler import iter_sessions
from botunet.training.checkpoint import load_checkpoint, save_checkpoint
from botunet.training.predict import predict_scores

BOTNET = "botnet/emotet/ndpi-emotet.pcap"
BENIGN = "benign/malcolm-protocols/DHCP.pcap"
TINY_KWARGS = {"widths": [4, 8]}


def merge_captures(out: Path, pcaps_dir: Path, *names: str) -> Path:
    """One Ethernet pcap holding the packets of ``names`` in time order."""
    records = []
    for name in names:
        with open(pcaps_dir / name, "rb") as f:
            reader = dpkt.pcap.Reader(f)
            assert reader.datalink() == dpkt.pcap.DLT_EN10MB
            records += [(ts, bytes(buf)) for ts, buf in reader]
    records.sort(key=lambda r: r[0])
    with open(out, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, buf in records:
            writer.writepkt(buf, ts)
    return out


def write_tiny_model(model_dir: Path, n_packets: int, start: str, threshold: float = 0.5) -> Path:
    torch.manual_seed(0)
    sample = SampleConfig(n_packets=n_packets, bytes_per_packet=100, start=start)
    model = create_model("unet1d_light", input_length=sample.input_length, **TINY_KWARGS)
    spec = {
        "model": "unet1d_light",
        "model_kwargs": TINY_KWARGS,
        "input_length": sample.input_length,
        "sample_config": to_dict(sample),
        "session_config": to_dict(SessionConfig(idle_timeout_s=60.0)),
        "threshold": threshold,
        "version": __version__,
    }
    save_checkpoint(model_dir, model.eval(), spec)
    return model_dir


def reference(capture: Path, model_dir: Path) -> dict[int, tuple]:
    """flow_id -> (session, score) the way evaluation computes them."""
    model, spec = load_checkpoint(model_dir)
    sample = SampleConfig(**spec["sample_config"])
    config = sample.session_config(SessionConfig(**spec["session_config"]))
    sessions = list(iter_sessions([capture], config))
    scores = predict_scores(model, extract_batch(sessions, sample))
    out = {}
    for s, score in zip(sessions, scores, strict=True):
        key = flow_id(s.protocol, s.src_ip, s.src_port, s.dst_ip, s.dst_port, s.first_ns)
        out[key] = (s, float(score))
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory, pcaps_dir) -> Path:
    return merge_captures(tmp_path_factory.mktemp("cap") / "mixed.pcap", pcaps_dir, BOTNET, BENIGN)


@pytest.mark.parametrize(("n_packets", "start"), [(8, "first"), (3, "payload")])
def test_detect_cli_scores_each_session_once_like_evaluate(
    tmp_path, capture, capsys, n_packets, start
) -> None:
    model_dir = write_tiny_model(tmp_path / "model", n_packets, start)
    expected = reference(capture, model_dir)
    threshold = float(np.median([score for _, score in expected.values()]))
    out = tmp_path / "events.json"

    rc = main(["detect", str(capture), "--model", str(model_dir), "-o", str(out), "--all",
               "--batch-size", "5", "--threshold", repr(threshold)])

    assert rc == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [e["flow_id"] for e in events]
    assert len(ids) == len(set(ids)) == len(expected)  # each session exactly once
    sample = SampleConfig(n_packets=n_packets, bytes_per_packet=100, start=start)
    n_ready = 0
    for event in events:
        session, score = expected[event["flow_id"]]
        info = event["botunet"]
        assert info["score"] == pytest.approx(score, abs=1e-6)
        assert info["verdict"] == ("botnet" if score >= threshold else "benign")
        assert event["event_type"] == ("alert" if score >= threshold else "flow")
        in_sample = packets_in_sample(session, sample)
        assert info["packets"] == min(n_packets, in_sample)
        used = sample_packets(session.packets, sample)
        # scored at the N-th packet of its sample, or at its end when it has fewer
        if info["trigger"] == "ready":
            n_ready += 1
            assert info["packets"] == n_packets
            assert event["timestamp"] == _iso(used[-1].ts_ns)
        else:
            assert info["trigger"] == session.end_reason
            assert event["timestamp"] == _iso(session.last_ns)
        if len(used) == n_packets and session.n_packets > used[-1].index + 1:
            assert info["trigger"] == "ready"  # more packets followed: it was not held back
        assert event["community_id"] == _community_id(event, session)
    assert 0 < n_ready < len(events)

    summary = capsys.readouterr().out
    assert f"sessions   {len(expected)} scored" in summary
    saved = json.loads((tmp_path / "events.summary.json").read_text())
    assert saved["sessions"] == len(expected) and saved["triggers"]["ready"] == n_ready
    assert saved["packets"]["used"] == sum(e["botunet"]["packets"] for e in events)
    alerts = sum(e["event_type"] == "alert" for e in events)
    assert f"alerts     {alerts}" in summary
    assert "hosts with most alerts" in summary


def test_detector_api_matches_evaluate_scores(tmp_path, capture) -> None:
    model_dir = write_tiny_model(tmp_path / "model", 8, "first")
    expected = reference(capture, model_dir)
    detector = Detector(model_dir, DetectConfig(batch_size=4, max_wait_s=0.5)).load()

    verdicts = list(detector.iter_verdicts([capture]))

    got = {
        flow_id(v.protocol, v.src_ip, v.src_port, v.dst_ip, v.dst_port, v.first_ns): v.score
        for v in verdicts
    }
    assert len(got) == len(verdicts) == len(expected)
    for key, (_, score) in expected.items():
        assert got[key] == pytest.approx(score, abs=1e-6)


def test_detect_summary_accounts_for_every_packet(tmp_path, capture, pcaps_dir) -> None:
    model_dir = write_tiny_model(tmp_path / "model", 8, "first")
    detector = Detector(model_dir).load()

    summary = detector.detect([capture])

    acc = summary.accounting
    assert acc.check()
    assert acc.packets_read == _packets(pcaps_dir / BENIGN) + _packets(pcaps_dir / BOTNET)
    assert summary.sessions == acc.sessions
    assert summary.packets_used <= acc.packets_in_sessions
    assert summary.to_dict()["packets"]["read"] == acc.packets_read


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_detect_cli_writes_flat_formats(tmp_path, capture, fmt) -> None:
    model_dir = write_tiny_model(tmp_path / "model", 8, "first", threshold=0.0)
    out = tmp_path / f"events.{fmt}"

    assert main(["-q", "detect", str(capture), "--model", str(model_dir), "-o", str(out)]) == 0

    if fmt == "csv":
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        columns = list(rows[0])
    else:
        table = pq.read_table(out)
        rows, columns = table.to_pylist(), table.column_names
    assert columns == list(COLUMNS)
    # threshold 0: every session is an alert, so all are written without --all
    assert len(rows) == len(reference(capture, model_dir))
    assert {r["event_type"] for r in rows} == {"alert"}


def test_detect_cli_reports_bad_input_as_one_line(tmp_path, capsys) -> None:
    model_dir = write_tiny_model(tmp_path / "model", 8, "first")
    missing = tmp_path / "missing.pcap"
    assert main(["detect", str(missing), "--model", str(model_dir)]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "missing.pcap" in last and "Traceback" not in err


def test_detect_cli_reports_missing_model(tmp_path, capture, capsys) -> None:
    assert main(["detect", str(capture), "--model", str(tmp_path / "nope")]) == 1
    assert "model.json" in capsys.readouterr().err


def _iso(ts_ns: int) -> str:
    from botunet.detection.events import format_timestamp

    return format_timestamp(ts_ns)


def _packets(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def _community_id(event: dict, session) -> str:
    src, dst = event["src_ip"], event["dest_ip"]
    if session.protocol == 1:
        first = session.packets[0]
        icmp = first.data[first.l4_offset : first.l4_offset + 2]
        flow = communityid.FlowTuple.make_icmp(src, dst, icmp[0], icmp[1])
    else:
        flow = communityid.FlowTuple(
            session.protocol, src, dst, event["src_port"], event["dest_port"]
        )
    return communityid.CommunityID().calc(flow)
