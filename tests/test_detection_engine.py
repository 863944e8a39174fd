"""Detector on a stream of session events: batching, waiting, each session once.

The sessions here are built by hand and scored by a tiny ONNX graph (the mean byte
value through a steep logistic), so these tests need neither torch nor a trained model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import dpkt
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from botunet.config import DetectConfig, SampleConfig
from botunet.detection.backends import sigmoid
from botunet.detection.engine import Detector, sample_packets
from botunet.errors import CheckpointError
from botunet.samples.extract import extract_batch
from botunet.sessions.session import Packet, Session

N, L = 4, 40
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def write_mean_model(path: Path, input_length: int) -> None:
    """An ONNX graph with the exported models' interface: logit = 20 * (mean byte - 0.1)."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["bytes"], ["mean"], axes=[1, 2], keepdims=0),
            helper.make_node("Sub", ["mean", "centre"], ["centred"]),
            helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        ],
        "mean_bytes",
        [helper.make_tensor_value_info("bytes", TensorProto.FLOAT, ["batch", 1, input_length])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["batch"])],
        [
            helper.make_tensor("centre", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_model_dir(path: Path, start: str = "first", *, onnx_length: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sample = {"n_packets": N, "bytes_per_packet": L, "start": start, "mask": "strict"}
    spec = {
        "model": "mean_bytes",
        "model_kwargs": {},
        "input_length": N * L,
        "sample_config": sample,
        "session_config": {"idle_timeout_s": 60.0},
        "threshold": 0.5,
        "version": "test",
    }
    (path / "model.json").write_text(json.dumps(spec))
    write_mean_model(path / "model.onnx", onnx_length or N * L)
    return path


def tcp_packet(index: int, ts_ns: int, payload: bytes = b"", sport: int = 40000) -> Packet:
    tcp = dpkt.tcp.TCP(sport=sport, dport=80, seq=1000 + index, flags=dpkt.tcp.TH_ACK, data=payload)
    ip = dpkt.ip.IP(src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", p=6, data=tcp)
    data = bytes(ip)
    return Packet(index, ts_ns, index % 2, data[:L], len(data), 20, len(payload), 0x10)


def session(port: int, n_packets: int, t0: int, gap_ns: int, payload_from: int = 0,
            fill: int = 0x41, end_reason: str = "fin") -> Session:
    packets = tuple(
        tcp_packet(i, t0 + i * gap_ns, bytes([fill]) * 10 if i >= payload_from else b"", port)
        for i in range(n_packets)
    )
    return Session(
        capture="test.pcap", protocol=6, ip_version=4, src_ip="10.0.0.1", src_port=port,
        dst_ip="10.0.0.2", dst_port=80, first_ns=t0, last_ns=packets[-1].ts_ns,
        packets_fwd=(n_packets + 1) // 2, packets_bwd=n_packets // 2, bytes_fwd=0,
        bytes_bwd=0, end_reason=end_reason, packets=packets,
    )


def as_stage_would(full: Session, ready_at: int | None, start: str = "first") -> Iterator:
    """Events as the sessions stage yields them, reusing and then emptying one record."""
    if ready_at is None:
        yield "end", full
        return
    live = Session(**{f: getattr(full, f) for f in full.__slots__})
    live.packets = full.packets[:ready_at]
    live.last_ns = live.packets[-1].ts_ns
    yield "ready", live
    live.packets = ()  # after its verdict the stage keeps only counters
    live.last_ns = full.last_ns
    yield "end", live


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "model")


def expected_scores(sessions: list[Session], start: str = "first") -> np.ndarray:
    vectors = extract_batch(sessions, SampleConfig(n_packets=N, bytes_per_packet=L, start=start))
    logits = (vectors.astype(np.float32) / 255).mean(axis=1) - np.float32(0.1)
    return sigmoid((logits * 20).astype(np.float32))


def test_detector_scores_ready_sessions_at_n_packets_and_short_ones_at_end(model_dir) -> None:
    long = session(40001, 10, T0, SECOND // 10, fill=0xF0)
    short = session(40002, 2, T0 + SECOND, SECOND // 10, fill=0x01, end_reason="idle")
    events = chain(as_stage_would(long, ready_at=N), as_stage_would(short, ready_at=None))
    detector = Detector(model_dir, DetectConfig(backend="onnx")).load()

    verdicts = [v for batch in detector.score_events(events) for v in batch]

    assert [v.src_port for v in verdicts] == [40001, 40002]
    first, second = verdicts
    assert (first.packets, first.trigger, first.ts_ns) == (N, "ready", long.packets[N - 1].ts_ns)
    assert (second.packets, second.trigger, second.ts_ns) == (2, "idle", short.last_ns)
    # the ready session was scored on its first N packets, although its record was
    # emptied by the time the batch ran
    expected = expected_scores([long, short])
    np.testing.assert_allclose([v.score for v in verdicts], expected, atol=1e-6)
    assert first.botnet and not second.botnet


def test_detector_batches_by_size(model_dir) -> None:
    sessions = [session(41000 + i, N, T0, 1000) for i in range(5)]
    events = chain.from_iterable(as_stage_would(s, ready_at=N) for s in sessions)
    detector = Detector(model_dir, DetectConfig(backend="onnx", batch_size=2)).load()

    batches = list(detector.score_events(events))

    assert [len(b) for b in batches] == [2, 2, 1]
    assert [v.src_port for b in batches for v in b] == [41000 + i for i in range(5)]


def test_detector_flushes_when_oldest_ready_session_waited_max_wait(model_dir) -> None:
    # ready at 0 s and 0.5 s; an event at 1.2 s of capture time flushes both,
    # the one ready at 2.0 s waits for the end of input
    a = session(42001, N, T0, 1000)
    b = session(42002, N, T0 + SECOND // 2, 1000)
    c = session(42003, 1, T0 + 6 * SECOND // 5, 1000)
    d = session(42004, N, T0 + 2 * SECOND, 1000)
    config = DetectConfig(backend="onnx", batch_size=100, max_wait_s=1.0)
    detector = Detector(model_dir, config).load()
    events = [("ready", a), ("ready", b), ("end", c), ("ready", d)]

    batches = list(detector.score_events(events))

    assert [[v.src_port for v in b] for b in batches] == [[42001, 42002, 42003], [42004]]


def test_detector_scores_each_session_once_with_zero_wait(model_dir) -> None:
    sessions = [session(43000 + i, 3 + 2 * i, T0 + i * SECOND, 1000) for i in range(4)]
    events = chain.from_iterable(
        as_stage_would(s, ready_at=N if s.n_packets >= N else None) for s in sessions
    )
    detector = Detector(model_dir, DetectConfig(backend="onnx", max_wait_s=0.0)).load()

    batches = list(detector.score_events(events))

    assert all(len(b) == 1 for b in batches)
    assert sorted(v.src_port for b in batches for v in b) == [43000, 43001, 43002, 43003]
    assert [v.packets for b in batches for v in b] == [3, N, N, N]


def test_sample_packets_from_first_payload_packet() -> None:
    s = session(44000, 12, T0, 1000, payload_from=3)
    config = SampleConfig(n_packets=N, bytes_per_packet=L, start="payload")
    assert [p.index for p in sample_packets(s.packets, config)] == [3, 4, 5, 6]
    no_payload = session(44001, 2, T0, 1000, payload_from=99)
    assert [p.index for p in sample_packets(no_payload.packets, config)] == [0, 1]


def test_detector_payload_start_scores_the_payload_packets(tmp_path) -> None:
    model_dir = write_model_dir(tmp_path / "model", start="payload")
    s = session(45000, 9, T0, 1000, payload_from=3, fill=0xFF)
    detector = Detector(model_dir, DetectConfig(backend="onnx")).load()

    (verdict,) = [v for b in detector.score_events(as_stage_would(s, ready_at=3 + N)) for v in b]

    assert verdict.packets == N and verdict.ts_ns == s.packets[3 + N - 1].ts_ns
    np.testing.assert_allclose(verdict.score, expected_scores([s], "payload")[0], atol=1e-6)


def test_detector_threshold_overrides_model_threshold(model_dir) -> None:
    s = session(46000, N, T0, 1000, fill=0xF0)
    detector = Detector(model_dir, DetectConfig(backend="onnx", threshold=1.0)).load()
    (verdict,) = [v for b in detector.score_events(as_stage_would(s, N)) for v in b]
    assert detector.threshold_ == 1.0
    assert verdict.score < 1.0 and not verdict.botnet


def test_detector_stores_arguments_unchanged_until_load(model_dir) -> None:
    config = DetectConfig(backend="onnx")
    detector = Detector(model_dir, config, onnx_path=None)
    assert (detector.model_dir, detector.config, detector.onnx_path) == (model_dir, config, None)
    with pytest.raises(RuntimeError, match="call load"):
        list(detector.score_events([]))


def test_detector_load_names_missing_model_json(tmp_path) -> None:
    with pytest.raises(CheckpointError, match=r"model\.json"):
        Detector(tmp_path, DetectConfig(backend="onnx")).load()


def test_detector_load_names_missing_onnx_file(model_dir) -> None:
    (model_dir / "model.onnx").unlink()
    with pytest.raises(CheckpointError, match="botunet export"):
        Detector(model_dir, DetectConfig(backend="onnx")).load()


def test_detector_load_rejects_onnx_of_other_input_length(tmp_path) -> None:
    model_dir = write_model_dir(tmp_path / "model", onnx_length=N * L + 1)
    with pytest.raises(CheckpointError, match=f"takes {N * L + 1} bytes"):
        Detector(model_dir, DetectConfig(backend="onnx")).load()


def test_scorer_runs_large_batches_in_chunks_with_the_same_scores(model_dir) -> None:
    detector = Detector(model_dir, DetectConfig(backend="onnx")).load()
    vectors = np.random.default_rng(0).integers(0, 256, (10, N * L), dtype=np.uint8)
    whole = detector.scorer_.score(vectors)
    detector.scorer_.max_input_bytes = 3 * N * L  # chunks of 3, 3, 3, 1

    chunked = detector.scorer_.score(vectors)

    assert chunked.shape == (10,) and chunked.dtype == np.float32
    np.testing.assert_array_equal(chunked, whole)
    logits = (vectors.astype(np.float32) / 255).mean(axis=1) - np.float32(0.1)
    np.testing.assert_allclose(whole, sigmoid(logits * np.float32(20)), atol=1e-6)
