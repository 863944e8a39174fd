"""Session assembly on hand-built captures: keys, timeouts, TCP close, kept packets, events."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from capture_writers import (
    ACK,
    FIN_ACK,
    PSH_ACK,
    RST,
    SYN,
    SYN_ACK,
    T0_NS,
    eth,
    ip4,
    ip6,
    tcp,
    udp,
    write_pcap,
)

from botunet import _meter
from botunet.config import SessionConfig
from botunet.errors import ConfigError
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import SessionStream, iter_session_events, iter_sessions
from botunet.pcap.reader import iter_chunks
from botunet.sessions.key import key_of, session_key
from botunet.sessions.session import BACKWARD, FORWARD, Packet, Session

S = 1_000_000_000  # one second in ns
MS = 1_000_000
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 443)


def seg(flags: int, *, back: bool = False, payload: bytes = b"") -> bytes:
    """A TCP segment between CLIENT and SERVER (back: from the server)."""
    (a, pa), (b, pb) = (SERVER, CLIENT) if back else (CLIENT, SERVER)
    return ip4(a, b, 6, tcp(pa, pb, flags, payload))


def run(tmp_path: Path, packets: list[tuple[float, bytes]], name: str = "t.pcap",
        **options: object) -> tuple[list[Session], Accounting]:
    """Sessions of raw-IP packets given as (seconds after T0, IP packet)."""
    records = [(T0_NS + round(t * S), p) for t, p in packets]
    path = write_pcap(tmp_path / name, records, 101, nanosecond=True)
    accounting = Accounting()
    sessions = list(iter_sessions(path, SessionConfig(**options), accounting))
    assert accounting.check()
    return sessions, accounting


def summary(sessions: list[Session]) -> list[tuple[int, int, str]]:
    return [(s.packets_fwd, s.packets_bwd, s.end_reason) for s in sessions]


HANDSHAKE_AND_CLOSE = [
    (0.0, seg(SYN)),
    (0.1, seg(SYN_ACK, back=True)),
    (0.2, seg(ACK)),
    (0.3, seg(PSH_ACK, payload=b"GET /")),
    (0.4, seg(PSH_ACK, back=True, payload=b"200 OK")),
    (0.5, seg(FIN_ACK)),
    (0.6, seg(FIN_ACK, back=True)),
    (0.7, seg(ACK)),
]


# --- keys and direction -------------------------------------------------------------------


def test_session_key_ignores_direction() -> None:
    forward = session_key("10.0.0.1", 999, "10.0.0.2", 80, 6)
    assert session_key("10.0.0.2", 80, "10.0.0.1", 999, 6) == forward
    assert session_key("10.0.0.1", 5, "10.0.0.2", 6, 1).port_a == 0


def test_assembler_both_directions_one_session_initiator_is_src(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, HANDSHAKE_AND_CLOSE[:5])
    (session,) = sessions
    endpoints = (session.src_ip, session.src_port, session.dst_ip, session.dst_port)
    assert endpoints == (*CLIENT, *SERVER)
    assert (session.packets_fwd, session.packets_bwd) == (3, 2)
    assert session.bytes_fwd == 40 + 40 + 45 and session.bytes_bwd == 40 + 46
    assert key_of(session) == session_key(*SERVER, *CLIENT, 6)


def test_assembler_server_first_makes_server_the_src(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, [(0, seg(SYN_ACK, back=True)), (1, seg(ACK))])
    assert (sessions[0].src_ip, sessions[0].src_port) == SERVER


def test_assembler_other_protocols_keyed_by_address_pair(tmp_path: Path) -> None:
    echo = [ip4("10.0.0.1", "10.0.0.2", 1, bytes([8, 0, 0, 0, 0, i, 0, 1])) for i in range(3)]
    reply = ip4("10.0.0.2", "10.0.0.1", 1, bytes([0, 0, 0, 0, 0, 9, 0, 1]))
    sessions, _ = run(tmp_path, [(0, echo[0]), (1, echo[1]), (2, reply), (3, echo[2])])
    (session,) = sessions
    assert (session.protocol, session.src_port, session.dst_port) == (1, 0, 0)
    assert (session.packets_fwd, session.packets_bwd) == (3, 1)


def test_assembler_ipv6_session(tmp_path: Path) -> None:
    query = ip6("2001:db8::1", "2001:db8::53", 17, udp(5000, 53, b"q"))
    answer = ip6("2001:db8::53", "2001:db8::1", 17, udp(53, 5000, b"a"))
    sessions, _ = run(tmp_path, [(0, query), (0.01, answer)])
    (session,) = sessions
    assert (session.ip_version, session.src_ip) == (6, "2001:db8::1")
    assert (session.dst_port, session.n_packets) == (53, 2)


def test_assembler_same_five_tuple_in_two_vlans_is_one_session(tmp_path: Path) -> None:
    # unlike nfstream, the VLAN id is not part of the key: the IP conversation is one session
    a = eth(seg(SYN), tags=[(0x8100, 300)])
    b = eth(seg(SYN_ACK, back=True), tags=[(0x8100, 50)])
    path = write_pcap(tmp_path / "vlans.pcap", [(T0_NS, a), (T0_NS + MS, b)])
    (session,) = iter_sessions(path)
    assert (session.packets_fwd, session.packets_bwd) == (1, 1)


def test_assembler_decode_tunnels_uses_inner_session(tmp_path: Path) -> None:
    inner = ip4("192.168.0.1", "192.168.0.2", 17, udp(1, 2, b"x"))
    outer = ip4("1.1.1.1", "2.2.2.2", 47, b"\0\0\x08\0" + inner)
    assert run(tmp_path, [(0, outer)], decode_tunnels=True)[0][0].src_ip == "192.168.0.1"
    assert run(tmp_path, [(0, outer)])[0][0].protocol == 47


# --- timeouts -------------------------------------------------------------------------------


def test_assembler_idle_timeout_splits_at_120_s(tmp_path: Path) -> None:
    packets = [(0, seg(ACK)), (119.999, seg(ACK)), (239.998, seg(ACK)), (359.998, seg(ACK))]
    sessions, _ = run(tmp_path, packets)
    assert summary(sessions) == [(3, 0, "idle"), (1, 0, "end")]
    assert sessions[1].first_ns == T0_NS + 359_998 * MS


def test_assembler_idle_timeout_compares_milliseconds(tmp_path: Path) -> None:
    # 119.9991 s apart, but 120000 ms apart on the millisecond clock (as in nfstream)
    sessions, _ = run(tmp_path, [(0.0009, seg(ACK)), (120.0, seg(ACK))])
    assert summary(sessions) == [(1, 0, "idle"), (1, 0, "end")]


def test_assembler_idle_timeout_is_configurable(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, [(0, seg(ACK)), (10, seg(ACK))], idle_timeout_s=5.0)
    assert summary(sessions) == [(1, 0, "idle"), (1, 0, "end")]


def test_assembler_active_timeout_starts_next_session(tmp_path: Path) -> None:
    packets = [(60.0 * i, seg(ACK)) for i in range(40)]  # one packet a minute for 39 minutes
    sessions, _ = run(tmp_path, packets)
    assert summary(sessions) == [(30, 0, "active"), (10, 0, "end")]
    assert sessions[1].first_ns == T0_NS + 1800 * S


def test_assembler_expires_idle_sessions_while_reading(tmp_path: Path) -> None:
    packets = [(200.0 * i, ip4("10.0.0.1", "10.0.0.2", 17, udp(1000 + i, 53))) for i in range(500)]
    sessions, accounting = run(tmp_path, packets)
    assert len(sessions) == 500
    assert [s.src_port for s in sessions] == list(range(1000, 1500))  # in order of their end
    assert {s.end_reason for s in sessions[:-1]} == {"idle"}
    assert accounting.peak_live_sessions <= 2


def test_assembler_clock_never_goes_back(tmp_path: Path) -> None:
    # the late packet counts at 100 s, so 175 s is 75 s after the last packet, not 125 s
    packets = [(0, seg(ACK)), (100, seg(ACK)), (50, seg(ACK)), (175, seg(ACK))]
    sessions, _ = run(tmp_path, packets)
    assert summary(sessions) == [(4, 0, "end")]
    assert sessions[0].last_ns == T0_NS + 175 * S


# --- TCP close ------------------------------------------------------------------------------


def test_assembler_tcp_session_closes_at_second_fin_and_takes_the_last_ack(
    tmp_path: Path,
) -> None:
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE, keep_packets=8, keep_bytes=40)
    assert summary(sessions) == [(5, 3, "fin")]
    assert sessions[0].last_ns == T0_NS + 700 * MS  # the last ACK, 0.1 s after the close
    assert [p.tcp_flags for p in sessions[0].packets[-2:]] == [FIN_ACK, ACK]
    assert accounting.skipped == {}
    assert accounting.packets_in_sessions == 8


def test_assembler_close_grace_zero_ends_at_the_closing_packet(tmp_path: Path) -> None:
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE, close_grace_s=0)
    assert summary(sessions) == [(4, 3, "fin")]
    assert sessions[0].last_ns == T0_NS + 600 * MS
    assert accounting.skipped == {"after_close": 1}  # the last ACK
    assert accounting.packets_in_sessions == 7


def test_assembler_packet_after_the_grace_is_after_close(tmp_path: Path) -> None:
    late = [(2.7, seg(ACK, back=True)), (3.0, seg(FIN_ACK))]  # close at 0.6 s, grace 2 s
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE + late)
    assert summary(sessions) == [(5, 3, "fin")]
    assert sessions[0].last_ns == T0_NS + 700 * MS
    assert accounting.skipped == {"after_close": 2}


def test_assembler_grace_is_counted_from_the_close_not_the_last_packet(tmp_path: Path) -> None:
    trailing = [(1.5, seg(ACK)), (2.59, seg(ACK, back=True)), (2.6, seg(ACK))]
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE + trailing, close_grace_s=2.0)
    assert summary(sessions) == [(6, 4, "fin")]  # 2.59 s joins, 2.6 s (= close + 2 s) does not
    assert accounting.skipped == {"after_close": 1}


def test_assembler_syn_after_close_starts_new_session(tmp_path: Path) -> None:
    again = [
        (5.0, seg(SYN_ACK)),
        (5.1, seg(SYN, back=True)),
        (5.2, seg(SYN_ACK)),
        (5.3, seg(ACK, back=True)),
    ]
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE + again)
    assert summary(sessions) == [(5, 3, "fin"), (2, 1, "end")]
    assert sessions[1].src_ip == SERVER[0]  # the SYN's sender
    assert accounting.skipped == {"after_close": 1}  # the SYN/ACK before the new SYN


def meter_outputs(path: Path, **options: object) -> tuple[list[Session], list[Session]]:
    """What a meter hands out while reading the whole file, and then at finish()."""
    meter = _meter.Meter(Session, Packet, "m", 120_000, 1_800_000, **options)
    fed = [s for chunk in iter_chunks(path) for s in meter.feed(chunk)]
    return fed, meter.finish()


def test_assembler_syn_within_grace_ends_the_closing_session_at_once(tmp_path: Path) -> None:
    packets = HANDSHAKE_AND_CLOSE + [(1.0, seg(SYN)), (1.1, seg(SYN_ACK, back=True))]
    sessions, accounting = run(tmp_path, packets)
    assert summary(sessions) == [(5, 3, "fin"), (1, 1, "end")]
    assert sessions[1].first_ns == T0_NS + S
    assert accounting.skipped == {}

    records = [(T0_NS + round(t * S), p) for t, p in packets]
    path = write_pcap(tmp_path / "m.pcap", records, 101, nanosecond=True)
    fed, finished = meter_outputs(path, close_grace_ms=2000)
    assert summary(fed) == [(5, 3, "fin")]  # handed out at the SYN, not at the end of input
    assert summary(finished) == [(1, 1, "end")]


def test_assembler_closing_sessions_wait_no_longer_than_the_grace(tmp_path: Path) -> None:
    other = ip4("10.9.9.9", "10.0.0.2", 17, udp(1, 2, b"x"))
    records = [(T0_NS + round(t * S), p) for t, p in HANDSHAKE_AND_CLOSE + [(2.5, other)]]
    path = write_pcap(tmp_path / "m.pcap", records, 101, nanosecond=True)
    fed, finished = meter_outputs(path, close_grace_ms=2000)
    assert summary(fed) == [] and summary(finished) == [(5, 3, "fin"), (1, 0, "end")]
    records.append((T0_NS + round(2.6 * S), other))
    path = write_pcap(tmp_path / "m.pcap", records, 101, nanosecond=True)
    fed, finished = meter_outputs(path, close_grace_ms=2000)
    assert summary(fed) == [(5, 3, "fin")]  # the first packet at close + 2 s hands it out
    assert summary(finished) == [(2, 0, "end")]


def test_assembler_rst_ends_session_and_takes_what_follows_in_the_grace(tmp_path: Path) -> None:
    packets = [(0, seg(SYN)), (0.1, seg(RST | ACK, back=True)), (0.2, seg(ACK)), (0.3, seg(SYN))]
    sessions, accounting = run(tmp_path, packets)
    assert summary(sessions) == [(2, 1, "rst"), (1, 0, "end")]
    assert accounting.skipped == {}
    sessions, accounting = run(tmp_path, packets, close_grace_s=0)
    assert summary(sessions) == [(1, 1, "rst"), (1, 0, "end")]
    assert accounting.skipped == {"after_close": 1}


def test_assembler_retransmitted_rst_within_grace_joins(tmp_path: Path) -> None:
    data = seg(PSH_ACK, payload=b"GET /")
    rst = seg(RST | ACK, back=True)
    packets = HANDSHAKE_AND_CLOSE[:3] + [(0.3, data), (0.4, rst), (0.45, data), (0.6, rst)]
    sessions, accounting = run(tmp_path, packets)
    assert summary(sessions) == [(4, 3, "rst")]
    assert sessions[0].last_ns == T0_NS + 600 * MS
    assert accounting.skipped == {}


def test_assembler_fin_one_way_does_not_close(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, HANDSHAKE_AND_CLOSE[:6])
    assert summary(sessions) == [(4, 2, "end")]


def test_assembler_closed_tuple_reopens_after_idle_timeout(tmp_path: Path) -> None:
    # quiet is counted from the last packet of the 5-tuple, skipped ones included
    late = [(10.0, seg(ACK)), (125.0, seg(ACK)), (250.0, seg(ACK))]
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE + late)
    assert summary(sessions) == [(5, 3, "fin"), (1, 0, "end")]
    assert sessions[1].first_ns == T0_NS + 250 * S
    assert accounting.skipped == {"after_close": 2}


def test_assembler_closed_tuple_reopens_on_time_behind_a_younger_session(tmp_path: Path) -> None:
    # the closed session becomes a marker at the first packet after its grace (120.8 s),
    # behind a session last seen at 1.0 s; it is still 120 s after its own last packet
    other = ip4("10.9.9.9", "10.0.0.2", 17, udp(1, 2, b"x"))
    late = [(1.0, other), (120.8, seg(ACK))]
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE + late)
    assert sorted(summary(sessions)) == [(1, 0, "end"), (1, 0, "end"), (5, 3, "fin")]
    assert accounting.skipped == {}


def test_assembler_without_tcp_close_only_timeouts_end(tmp_path: Path) -> None:
    sessions, accounting = run(tmp_path, HANDSHAKE_AND_CLOSE, tcp_close=False)
    assert summary(sessions) == [(5, 3, "end")]
    assert accounting.skipped == {}


# --- kept packets ---------------------------------------------------------------------------


def test_assembler_keeps_first_and_first_payload_packets(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, HANDSHAKE_AND_CLOSE, keep_packets=2, keep_bytes=24)
    packets = sessions[0].packets
    assert [p.index for p in packets] == [0, 1, 3, 4]  # first 2, then 2 from the first payload
    assert [p.direction for p in packets] == [FORWARD, BACKWARD, FORWARD, BACKWARD]
    assert [p.payload_length for p in packets] == [0, 0, 5, 6]
    assert [p.tcp_flags for p in packets] == [SYN, SYN_ACK, PSH_ACK, PSH_ACK]
    assert all(len(p.data) == 24 and p.data[0] == 0x45 and p.l4_offset == 20 for p in packets)
    assert packets[2].ip_length == 45
    assert packets[3].ts_ns == T0_NS + 400 * MS


def test_assembler_payload_window_overlapping_first_window(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, HANDSHAKE_AND_CLOSE, keep_packets=3, keep_bytes=1500)
    assert [p.index for p in sessions[0].packets] == [0, 1, 2, 3, 4, 5]
    assert sessions[0].packets[3].data.endswith(b"GET /")


def test_assembler_keep_zero_keeps_only_counters(tmp_path: Path) -> None:
    sessions, _ = run(tmp_path, HANDSHAKE_AND_CLOSE, keep_packets=0, keep_bytes=100)
    assert sessions[0].packets == () and sessions[0].n_packets == 8


# --- events -------------------------------------------------------------------------------


def events_of(
    tmp_path: Path, packets: list[tuple[float, bytes]], **kwargs: object
) -> list[tuple[str, Session]]:
    records = [(T0_NS + round(t * S), p) for t, p in packets]
    path = write_pcap(tmp_path / "events.pcap", records, 101, nanosecond=True)
    config = kwargs.pop("config", SessionConfig(keep_packets=2, keep_bytes=64))
    return list(iter_session_events(path, config, **kwargs))


def test_events_ready_after_n_packets_then_end_without_packets(tmp_path: Path) -> None:
    events = events_of(tmp_path, HANDSHAKE_AND_CLOSE, ready_packets=3, ready_start="first")
    assert [kind for kind, _ in events] == ["ready", "end"]
    ready, end = events[0][1], events[1][1]
    assert [p.index for p in ready.packets] == [0, 1, 2]  # more than keep_packets=2 if needed
    assert (ready.n_packets, ready.end_reason, ready.last_ns) == (3, "", T0_NS + 200 * MS)
    assert (end.n_packets, end.end_reason, end.packets) == (8, "fin", ())


def test_events_trailing_packets_do_not_make_a_closed_session_ready(tmp_path: Path) -> None:
    # 7 packets up to the close, the 8th (the last ACK) comes in the grace period
    events = events_of(tmp_path, HANDSHAKE_AND_CLOSE, ready_packets=8, ready_start="first")
    assert [(kind, s.n_packets, len(s.packets), s.end_reason) for kind, s in events] == [
        ("end", 8, 8, "fin")
    ]


def test_events_each_session_once_with_syn_in_the_grace(tmp_path: Path) -> None:
    packets = HANDSHAKE_AND_CLOSE + [(1.0, seg(SYN)), (1.1, seg(SYN_ACK, back=True))]
    events = events_of(tmp_path, packets, ready_packets=2, ready_start="first")
    assert [(kind, s.n_packets, s.end_reason) for kind, s in events] == [
        ("ready", 2, ""), ("end", 8, "fin"), ("ready", 2, ""), ("end", 2, "end")
    ]


def test_events_short_session_only_ends_with_its_packets(tmp_path: Path) -> None:
    events = events_of(tmp_path, HANDSHAKE_AND_CLOSE[:2], ready_packets=3, ready_start="first")
    assert [(kind, s.n_packets, len(s.packets)) for kind, s in events] == [("end", 2, 2)]


def test_events_ready_from_first_payload_packet(tmp_path: Path) -> None:
    events = events_of(tmp_path, HANDSHAKE_AND_CLOSE, ready_packets=2, ready_start="payload")
    kind, ready = events[0]
    assert kind == "ready" and ready.n_packets == 5  # payload at index 3, ready at index 4
    assert [p.index for p in ready.packets] == [0, 1, 3, 4]


def test_events_ready_comes_before_the_end_of_capture(tmp_path: Path) -> None:
    first = HANDSHAKE_AND_CLOSE[:4]
    other = [(0.5, ip4("10.9.9.9", "10.0.0.2", 17, udp(1, 2, b"x")))]
    events = events_of(tmp_path, first + other, ready_packets=2, ready_start="first")
    assert [(kind, s.protocol) for kind, s in events] == [("ready", 6), ("end", 6), ("end", 17)]


def test_session_config_rejects_a_negative_close_grace() -> None:
    with pytest.raises(ConfigError, match="close_grace_s"):
        SessionConfig(close_grace_s=-0.5)
    with pytest.raises(ValueError, match="close_grace_ms"):
        _meter.Meter(Session, Packet, "m", 1, 1, close_grace_ms=-1)


def test_events_reject_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ready_start"):
        events_of(tmp_path, HANDSHAKE_AND_CLOSE, ready_packets=2, ready_start="middle")
    with pytest.raises(ConfigError, match="ready_packets"):
        events_of(tmp_path, HANDSHAKE_AND_CLOSE, ready_packets=0, ready_start="first")


# --- files and the streaming API ----------------------------------------------------------


def test_assembler_sessions_never_span_files(tmp_path: Path) -> None:
    one = write_pcap(tmp_path / "one.pcap", [(T0_NS, seg(SYN))], 101)
    two = write_pcap(tmp_path / "two.pcap", [(T0_NS + S, seg(SYN_ACK, back=True))], 101)
    accounting = Accounting()
    sessions = list(iter_sessions([one, two], accounting=accounting))
    assert [(s.capture, s.n_packets, s.end_reason) for s in sessions] == [
        (str(one), 1, "end"), (str(two), 1, "end")
    ]
    assert (accounting.files, accounting.sessions, accounting.packets_read) == (2, 2, 2)


def test_session_stream_iterates_like_nfstreamer(tmp_path: Path) -> None:
    records = [(T0_NS + round(t * S), p) for t, p in HANDSHAKE_AND_CLOSE]
    path = write_pcap(tmp_path / "s.pcap", records, 101)
    stream = SessionStream(path, tcp_close=False, keep_packets=1, keep_bytes=20)
    assert [s.n_packets for s in stream] == [8]
    assert stream.config.keep_packets == 1 and stream.accounting.packets_read == 8
    assert [[p.index for p in s.packets] for s in stream] == [[0, 3]]  # first, first payload
    assert stream.accounting.files == 1  # a new iteration starts the counts afresh


def test_meter_builds_other_record_classes_by_calling_them(tmp_path: Path) -> None:
    @dataclass(slots=True)
    class Labelled(Session):
        label: str = "unknown"

    records = [(T0_NS + round(t * S), p) for t, p in HANDSHAKE_AND_CLOSE]
    path = write_pcap(tmp_path / "c.pcap", records, 101)

    def sessions_with(cls: type) -> tuple[list, bool]:
        meter = _meter.Meter(cls, Packet, "c", 120_000, 1_800_000, keep_packets=2, keep_bytes=40)
        out = [s for chunk in iter_chunks(path) for s in meter.feed(chunk)] + meter.finish()
        return out, meter.stats()["fast_records"]

    (direct,), fast = sessions_with(Session)
    (called,), slow = sessions_with(Labelled)
    assert (fast, slow) == (True, False)
    assert called.label == "unknown"
    assert {k: v for k, v in asdict(called).items() if k != "label"} == asdict(direct)
    assert direct == Session(**asdict(direct) | {"packets": direct.packets})
