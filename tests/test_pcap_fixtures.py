"""Every capture in shared/data/fixtures/CASES.md, with the values given there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from botunet.cli.main import main
from botunet.config import SessionConfig
from botunet.pcap.decode import decode_packet
from botunet.pcap.reader import iter_packets
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import iter_sessions
from botunet.sessions.session import Session

ALL_FIXTURES = (
    "header-only.pcap",
    "header-only.pcapng",
    "frame-shorter-than-ethernet.pcap",
    "ip4-truncated-header.pcap",
    "raw-ipv4.pcap",
    "raw-ipv6.pcap",
    "tcp-handshake-nanosecond-sll.pcap",
    "linux-sll2.pcap",
    "linux-sll-arp.pcap",
    "pcapng-multi-interface.pcapng",
    "http-qinq.pcap",
    "mpls-in-vlan.pcap",
    "pppoe-over-qinq.pcap",
    "ipv4-fragmented.pcap",
    "ipv6-fragmented-dns.pcap",
    "ipv4-tso-zero-length.pcap",
    "ip-mix-arp-stp.pcap",
    "lldp-cdp-no-ip.pcap",
)

# Keep whole packets so the tests can look at bytes and timestamps.
KEEP = SessionConfig(keep_packets=64, keep_bytes=65535)


def sessions_of(path: Path, **options: object) -> tuple[list[Session], Accounting]:
    accounting = Accounting()
    config = dataclasses.replace(KEEP, **options)
    sessions = list(iter_sessions(path, config, accounting))
    assert accounting.check()
    return sessions, accounting


def endpoints(session: Session) -> tuple[str, int, str, int]:
    return session.src_ip, session.src_port, session.dst_ip, session.dst_port


def test_fixtures_cases_md_lists_every_fixture(fixtures_dir: Path) -> None:
    on_disk = {p.name for p in fixtures_dir.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert on_disk == set(ALL_FIXTURES)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_accounts_for_every_record(fixtures_dir: Path, name: str) -> None:
    records = sum(1 for _ in iter_packets(fixtures_dir / name))
    sessions, accounting = sessions_of(fixtures_dir / name)
    assert accounting.packets_read == records
    assert accounting.packets_in_sessions == sum(s.n_packets for s in sessions)
    assert accounting.sessions == len(sessions)
    assert not any(s.protocol in (6, 17) and 0 in (s.src_port, s.dst_port) for s in sessions)


@pytest.mark.parametrize("name", ["header-only.pcap", "header-only.pcapng"])
def test_header_only_capture_gives_nothing_and_exit_0(fixtures_dir: Path, name: str) -> None:
    sessions, accounting = sessions_of(fixtures_dir / name)
    assert sessions == []
    assert (accounting.packets_read, accounting.files) == (0, 1)
    assert main(["-q", "sessions", str(fixtures_dir / name)]) == 0


def test_frame_shorter_than_ethernet_is_truncated_link(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "frame-shorter-than-ethernet.pcap")
    assert sessions == []
    assert accounting.skipped == {"truncated_link": 1}


def test_cut_ipv4_header_is_truncated_ip(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "ip4-truncated-header.pcap")
    assert sessions == []
    assert accounting.skipped == {"truncated_ip": 1}


@pytest.mark.parametrize(
    ("name", "src", "dst", "first_byte"),
    [
        ("raw-ipv4.pcap", "192.168.1.100", "9.9.9.9", 0x45),
        ("raw-ipv6.pcap", "2001:db8::1", "2620:fe::9", 0x60),
    ],
)
def test_raw_ip_dns_query(
    fixtures_dir: Path, name: str, src: str, dst: str, first_byte: int
) -> None:
    sessions, accounting = sessions_of(fixtures_dir / name)
    (session,) = sessions
    assert session.protocol == 17
    assert endpoints(session) == (src, 12345, dst, 53)
    assert session.packets[0].data[0] == first_byte
    assert accounting.skipped == {}


def test_nanosecond_sll_handshake_keeps_nanoseconds(fixtures_dir: Path) -> None:
    sessions, _ = sessions_of(fixtures_dir / "tcp-handshake-nanosecond-sll.pcap")
    (session,) = sessions
    assert session.protocol == 6
    assert endpoints(session) == ("131.155.215.69", 46656, "137.116.81.94", 80)
    assert (session.packets_fwd, session.packets_bwd) == (2, 1)
    times = [p.ts_ns for p in session.packets]
    assert [b - a for a, b in zip(times, times[1:])] == [127_521_774, 87_895]
    assert [p.tcp_flags for p in session.packets] == [0x02, 0x12, 0x10]


def test_sll2_icmp_and_icmpv6_arp_is_non_ip(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "linux-sll2.pcap")
    by_protocol = {s.protocol: s for s in sessions}
    assert sorted(by_protocol) == [1, 58]
    assert by_protocol[1].src_ip == "192.0.2.1" and by_protocol[1].n_packets == 2
    assert by_protocol[58].src_ip == "fe80::8c36:6ff:fe44:acaf" and by_protocol[58].n_packets == 2
    assert all(s.src_port == s.dst_port == 0 for s in sessions)
    assert accounting.skipped == {"non_ip": 2}


def test_sll_arp_only_is_all_non_ip(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "linux-sll-arp.pcap")
    assert sessions == []
    assert (accounting.packets_read, accounting.skipped) == (12, {"non_ip": 12})


def test_pcapng_interfaces_keep_their_own_resolution(fixtures_dir: Path) -> None:
    sessions, _ = sessions_of(fixtures_dir / "pcapng-multi-interface.pcapng")
    assert len(sessions) == 3
    assert all(s.protocol == 17 and (s.dst_ip, s.dst_port) == ("1.1.1.1", 53) for s in sessions)
    assert all((s.packets_fwd, s.packets_bwd) == (1, 1) for s in sessions)
    first = sorted(s.first_ns for s in sessions)
    assert first[0] == 1_767_663_089_500_330_493  # nanosecond interface
    assert all(t % 1000 == 0 for t in first[1:])  # microsecond interface


def test_qinq_http_download(fixtures_dir: Path) -> None:
    # tcp_close off: CASES.md counts the conversation, final ACK included
    sessions, _ = sessions_of(fixtures_dir / "http-qinq.pcap", tcp_close=False)
    (session,) = sessions
    assert endpoints(session) == ("141.142.228.5", 59856, "192.150.187.43", 80)
    assert (session.packets_fwd, session.packets_bwd) == (7, 7)


def test_qinq_http_download_closes_at_second_fin_with_its_last_ack(fixtures_dir: Path) -> None:
    # default settings: the last ACK comes within the close grace period and joins
    sessions, accounting = sessions_of(fixtures_dir / "http-qinq.pcap")
    (session,) = sessions
    assert endpoints(session) == ("141.142.228.5", 59856, "192.150.187.43", 80)
    assert session.end_reason == "fin"
    assert (session.packets_fwd, session.packets_bwd) == (7, 7)
    assert session.packets[-2].tcp_flags & 0x01  # the second FIN, then the last ACK
    assert session.packets[-1].tcp_flags == 0x10
    assert accounting.packets_in_sessions == 14
    assert accounting.skipped == {}


def test_qinq_http_download_without_grace_ends_at_second_fin(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "http-qinq.pcap", close_grace_s=0)
    (session,) = sessions
    assert (session.packets_fwd, session.packets_bwd, session.end_reason) == (6, 7, "fin")
    assert session.packets[-1].tcp_flags & 0x01
    assert accounting.skipped == {"after_close": 1}  # the last ACK


def test_mpls_in_vlan_gives_three_one_packet_sessions(fixtures_dir: Path) -> None:
    sessions, _ = sessions_of(fixtures_dir / "mpls-in-vlan.pcap")
    assert sorted((s.src_port, s.dst_port) for s in sessions) == [
        (80, 32828), (19244, 80), (61193, 80)
    ]
    assert all(s.protocol == 6 and s.n_packets == 1 for s in sessions)
    assert all(s.src_ip == s.dst_ip == "65.65.65.65" for s in sessions)


def test_pppoe_over_qinq_is_one_tls_session(fixtures_dir: Path) -> None:
    sessions, _ = sessions_of(
        fixtures_dir / "pppoe-over-qinq.pcap", tcp_close=False, idle_timeout_s=3600.0
    )
    (session,) = sessions
    assert endpoints(session) == ("1.1.1.1", 20394, "2.2.2.2", 443)
    assert session.n_packets == 86
    assert session.packets[0].data[0] == 0x45


def test_pppoe_over_qinq_splits_at_idle_gap(fixtures_dir: Path) -> None:
    # the capture pauses 273 s before the last 5 packets: longer than the 120 s default
    sessions, _ = sessions_of(fixtures_dir / "pppoe-over-qinq.pcap", tcp_close=False)
    assert [(s.n_packets, s.end_reason) for s in sessions] == [(81, "idle"), (5, "end")]
    assert sessions[1].first_ns - sessions[0].last_ns > 120 * 10**9


def test_ipv4_fragments_only_first_fragments_in_session(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "ipv4-fragmented.pcap")
    (session,) = sessions
    assert endpoints(session) == ("164.1.123.163", 123, "164.1.123.61", 137)
    assert session.n_packets == 2  # the two records with offset 0 and more-fragments set
    assert accounting.skipped == {"fragment": 1}


def test_ipv6_fragments_no_port_zero_session(fixtures_dir: Path) -> None:
    sessions, accounting = sessions_of(fixtures_dir / "ipv6-fragmented-dns.pcap")
    assert sorted(s.src_port for s in sessions) == [51850, 51851]
    assert all((s.dst_ip, s.dst_port, s.protocol) == ("2607:f740:b::f93", 53, 17) for s in sessions)
    assert accounting.skipped == {"fragment": 3}


def test_tso_zero_length_packet_is_kept(fixtures_dir: Path) -> None:
    path = fixtures_dir / "ipv4-tso-zero-length.pcap"
    (record,) = iter_packets(path)
    sessions, _ = sessions_of(path)
    (session,) = sessions
    assert endpoints(session) == ("30.7.181.121", 39556, "199.43.68.163", 8080)
    (packet,) = session.packets
    assert packet.data[2:4] == b"\0\0"  # the header really says 0
    assert packet.ip_length == len(record.data) - 14 == len(packet.data)
    assert session.bytes_fwd == packet.ip_length


def test_ip_mix_non_ip_frames_counted_never_sessions(fixtures_dir: Path) -> None:
    path = fixtures_dir / "ip-mix-arp-stp.pcap"
    sessions, accounting = sessions_of(path)
    assert accounting.skipped == {"non_ip": 7}
    assert accounting.packets_in_sessions == 33 - 7
    ip_frames = [r for r in iter_packets(path) if decode_packet(r.link_type, r.data).version]
    assert len(ip_frames) == sum(s.n_packets for s in sessions) == 26


def test_lldp_cdp_only_is_non_ip_and_exit_0(fixtures_dir: Path) -> None:
    path = fixtures_dir / "lldp-cdp-no-ip.pcap"
    sessions, accounting = sessions_of(path)
    assert sessions == []
    assert accounting.skipped == {"non_ip": 12}
    assert main(["-q", "sessions", str(path)]) == 0
