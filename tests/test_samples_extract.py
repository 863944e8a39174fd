"""Sessions to byte vectors: slots, padding, start modes, batches (hand-built sessions)."""

from __future__ import annotations

import numpy as np
import pytest

from botunet.config import SampleConfig
from botunet.samples.extract import extract_batch, extract_sample, packets_in_sample, start_index
from packet_builders import ipv4, packet, session, tcp, udp


def _tcp_packet(index: int, payload: bytes = b"", flags: int = 0x10) -> bytes:
    body = tcp(40000, 80, seq=1000 + index, flags=flags, payload=payload)
    return ipv4("10.0.0.1", "192.0.2.10", 6, body, ident=index)


def _handshake_session(n_data: int = 3):
    frames = [_tcp_packet(0, flags=0x02), _tcp_packet(1, flags=0x12), _tcp_packet(2)]
    frames += [_tcp_packet(3 + i, payload=bytes([65 + i]) * 150) for i in range(n_data)]
    packets = [packet(i, f, 20, max(0, len(f) - 40)) for i, f in enumerate(frames)]
    return session(packets), frames


def test_extract_sample_places_packets_cut_and_padded():
    s, frames = _handshake_session(n_data=1)
    config = SampleConfig(n_packets=6, bytes_per_packet=100, mask="none")
    vector = extract_sample(s, config)

    assert vector.dtype == np.uint8 and vector.shape == (600,)
    rows = vector.reshape(6, 100)
    for i in range(3):  # 40-byte handshake packets, zero-padded to 100
        assert rows[i, :40].tobytes() == frames[i]
        assert not rows[i, 40:].any()
    assert rows[3].tobytes() == frames[3][:100]  # a 190-byte packet cut to 100
    assert not rows[4:].any()  # only 4 packets: two empty slots
    assert rows[0, 0] == 0x45


def test_extract_sample_start_payload_begins_at_first_data_packet():
    s, frames = _handshake_session(n_data=3)
    config = SampleConfig(n_packets=2, bytes_per_packet=60, start="payload", mask="none")
    rows = extract_sample(s, config).reshape(2, 60)

    assert start_index(s.packets, "payload") == 3
    assert rows[0].tobytes() == frames[3][:60]
    assert rows[1].tobytes() == frames[4][:60]
    assert rows[0, 40] == ord("A")  # the first payload byte after 40 header bytes


def test_extract_sample_start_payload_falls_back_to_first_packet():
    s, frames = _handshake_session(n_data=0)
    config = SampleConfig(n_packets=1, bytes_per_packet=40, start="payload", mask="none")
    assert start_index(s.packets, "payload") == 0
    assert extract_sample(s, config).tobytes() == frames[0]


def test_extract_sample_uses_packet_index_for_slots():
    """Kept packets are the first K and K from the first payload packet; index places them."""
    frames = [udp(5000, 53, bytes([i]) * 4) for i in range(30)]
    data = [ipv4("10.0.0.1", "10.0.0.2", 17, f) for f in frames]
    kept = [packet(i, data[i], 20, 0) for i in range(3)]
    kept += [packet(i, data[i], 20, 4) for i in (20, 21, 23)]  # 22 missing
    s = session(kept, protocol=17)
    config = SampleConfig(n_packets=4, bytes_per_packet=40, start="payload", mask="none")
    rows = extract_sample(s, config).reshape(4, 40)

    assert rows[0, :32].tobytes() == data[20]
    assert rows[1, :32].tobytes() == data[21]
    assert not rows[2].any()  # index 22 was not kept: its slot stays empty
    assert rows[3, :32].tobytes() == data[23]
    assert packets_in_sample(s, config) == 3


def test_extract_batch_matches_samples_and_fills_out():
    sessions = [_handshake_session(n)[0] for n in (0, 1, 5)] + [session([], protocol=6)]
    config = SampleConfig(n_packets=4, bytes_per_packet=64)
    out = np.full((4, 256), 7, dtype=np.uint8)

    batch = extract_batch(sessions, config, out=out)

    assert batch is out
    for i, s in enumerate(sessions):
        assert np.array_equal(batch[i], extract_sample(s, config))
    assert not batch[3].any()  # a session without kept packets is all zeros


def test_extract_batch_rejects_wrong_out():
    config = SampleConfig(n_packets=2, bytes_per_packet=50)
    with pytest.raises(ValueError, match="out must be uint8"):
        extract_batch([], config, out=np.zeros((1, 100), dtype=np.uint8))


def test_extract_batch_of_no_sessions():
    assert extract_batch([], SampleConfig()).shape == (0, 800)
