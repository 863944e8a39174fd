"""Link, IP and transport decoding of single frames (botunet.pcap.decode)."""

from __future__ import annotations

import pytest
from capture_writers import (
    eth,
    ext6,
    frag6,
    ip4,
    ip6,
    mpls,
    null_loop,
    pad60,
    pppoe,
    sll,
    sll2,
    tcp,
    udp,
)

from botunet.pcap.decode import LinkType, decode_packet

V4 = ip4("10.0.0.1", "10.0.0.2", 6, tcp(1234, 80, 0x18, b"hello"))
V6 = ip6("2001:db8::1", "2001:db8::2", 17, udp(5353, 53, b"query"))


@pytest.mark.parametrize("ip", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize(
    ("link_type", "wrap"),
    [
        (LinkType.ETHERNET, eth),
        (LinkType.ETHERNET, lambda ip: eth(ip, tags=[(0x8100, 7)])),
        (LinkType.ETHERNET, lambda ip: eth(ip, tags=[(0x88A8, 100), (0x8100, 7)])),
        (LinkType.ETHERNET, lambda ip: eth(ip, tags=[(0x9100, 1), (0x88A8, 2), (0x8100, 3)])),
        (LinkType.ETHERNET, lambda ip: mpls(ip, labels=(16,))),
        (LinkType.ETHERNET, lambda ip: mpls(ip, labels=(16, 17, 18))),
        (LinkType.ETHERNET, pppoe),
        (LinkType.ETHERNET, lambda ip: pad60(eth(ip))),
        (LinkType.LINUX_SLL, sll),
        (LinkType.LINUX_SLL2, sll2),
        (LinkType.RAW, lambda ip: ip),
        (LinkType.RAW_12, lambda ip: ip),
        (LinkType.RAW_14, lambda ip: ip),
        (LinkType.NULL, lambda ip: null_loop(ip, 2 if ip[0] == 0x45 else 30)),
        (LinkType.NULL, lambda ip: null_loop(ip, 2 if ip[0] == 0x45 else 24, big_endian=True)),
        (LinkType.LOOP, lambda ip: null_loop(ip, 2 if ip[0] == 0x45 else 28, big_endian=True)),
    ],
)
def test_decode_gives_same_ip_bytes_on_every_link(link_type: int, wrap, ip: bytes) -> None:
    info = decode_packet(link_type, wrap(ip))
    assert info.skip_reason is None
    assert info.data == ip
    assert info.ip_length == len(ip)


def test_decode_raw_ipv4_and_ipv6_link_types_check_the_version() -> None:
    assert decode_packet(LinkType.IPV4, V4).version == 4
    assert decode_packet(LinkType.IPV6, V6).version == 6
    assert decode_packet(LinkType.IPV4, V6).skip_reason == "unsupported_ip"
    mislabelled = eth(V6, ethertype=0x0800)
    assert decode_packet(LinkType.ETHERNET, mislabelled).skip_reason == "unsupported_ip"


def test_decode_tcp_fields() -> None:
    info = decode_packet(LinkType.RAW, V4)
    endpoints = (info.src_ip, info.src_port, info.dst_ip, info.dst_port)
    assert endpoints == ("10.0.0.1", 1234, "10.0.0.2", 80)
    assert (info.protocol, info.l4_offset, info.payload_length, info.tcp_flags) == (6, 20, 5, 0x18)


def test_decode_udp_ipv6_fields() -> None:
    info = decode_packet(LinkType.RAW, V6)
    assert (info.version, info.protocol, info.l4_offset, info.payload_length) == (6, 17, 40, 5)
    assert (info.src_ip, info.dst_port) == ("2001:db8::1", 53)


def test_decode_other_protocol_has_no_ports_and_ip_payload() -> None:
    info = decode_packet(LinkType.RAW, ip4("10.0.0.1", "10.0.0.2", 1, b"\x08\0\0\0" + b"x" * 12))
    assert (info.protocol, info.src_port, info.dst_port, info.payload_length) == (1, 0, 0, 16)


def test_decode_ipv4_options_move_the_transport_header() -> None:
    packet = ip4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, b"abc"), options=b"\x94\x04\0\0")
    info = decode_packet(LinkType.RAW, packet)
    assert (info.l4_offset, info.src_port, info.dst_port, info.payload_length) == (24, 1, 2, 3)


def test_decode_ipv4_total_length_zero_uses_captured_length() -> None:
    packet = ip4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 0x18, b"x" * 100), total_length=0)
    info = decode_packet(LinkType.ETHERNET, eth(packet))
    assert (info.skip_reason, info.ip_length, info.payload_length) == (None, 140, 100)


def test_decode_ethernet_padding_is_not_kept() -> None:
    packet = ip4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2))
    info = decode_packet(LinkType.ETHERNET, pad60(eth(packet)))
    assert len(info.data) == info.ip_length == 40


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (eth(b"\0\x01\x08\0\x06\x04\0\x01" + b"\0" * 20, ethertype=0x0806), "non_ip"),  # ARP
        (b"\x01\x80\xc2\0\0\0" + b"\0" * 6 + b"\0\x26\x42\x42\x03" + b"\0" * 35, "non_ip"),  # STP
        (pppoe(V4, ppp_protocol=0xC021), "non_ip"),  # LCP
        (b"\0" * 13, "truncated_link"),
        (eth(V4, tags=[(0x8100, 1)])[:15], "truncated_link"),
        (eth(V4)[:14 + 19], "truncated_ip"),
        (eth(V6)[:14 + 39], "truncated_ip"),
        (eth(b"\x55" + V4[1:]), "unsupported_ip"),
        (eth(ip4("10.0.0.1", "10.0.0.2", 6, b"\0\x50\0")), "truncated_l4"),
        (eth(ip4("10.0.0.1", "10.0.0.2", 17, b"\0")), "truncated_l4"),
    ],
    ids=["arp", "stp", "pppoe-lcp", "short-eth", "short-vlan", "short-ipv4", "short-ipv6",
         "version-5", "tcp-no-ports", "udp-no-ports"],
)
def test_decode_skip_reasons(frame: bytes, reason: str) -> None:
    assert decode_packet(LinkType.ETHERNET, frame).skip_reason == reason


def test_decode_snap_encapsulated_ipv4() -> None:
    frame = eth(b"\xaa\xaa\x03\0\0\0\x08\x00" + V4, ethertype=8 + len(V4))
    assert decode_packet(LinkType.ETHERNET, frame).data == V4


def test_decode_unknown_link_type_is_unsupported_link() -> None:
    assert decode_packet(105, V4).skip_reason == "unsupported_link"


def test_decode_tcp_with_ports_but_cut_header_is_kept() -> None:
    info = decode_packet(LinkType.RAW, ip4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 0x02)[:10]))
    assert (info.skip_reason, info.src_port, info.dst_port, info.tcp_flags) == (None, 1, 2, 0)


def test_decode_never_checks_checksums() -> None:
    broken = bytearray(V4)
    broken[10:12] = b"\xde\xad"
    assert decode_packet(LinkType.RAW, bytes(broken)).skip_reason is None


# --- fragments ------------------------------------------------------------------------


def test_decode_ipv4_first_fragment_has_ports_later_ones_skipped() -> None:
    first = ip4("10.0.0.1", "10.0.0.2", 17, udp(123, 137, b"x" * 16), frag=0x2000)
    later = ip4("10.0.0.1", "10.0.0.2", 17, b"y" * 16, frag=0x0003)
    assert decode_packet(LinkType.RAW, first).src_port == 123
    assert decode_packet(LinkType.RAW, later).skip_reason == "fragment"


def test_decode_ipv6_fragment_header() -> None:
    src, dst = "2001:db8::1", "2001:db8::2"
    first = ip6(src, dst, 44, frag6(17, 0, True) + udp(5353, 53, b"x" * 8))
    later = ip6(src, dst, 44, frag6(17, 2, False) + b"y" * 8)
    info = decode_packet(LinkType.RAW, first)
    assert (info.protocol, info.l4_offset, info.src_port) == (17, 48, 5353)
    assert decode_packet(LinkType.RAW, later).skip_reason == "fragment"


# --- IPv6 extension headers -----------------------------------------------------------


def test_decode_ipv6_extension_chain() -> None:
    chain = ext6(43, b"\0" * 6) + ext6(60, b"\0" * 14) + ext6(135, b"\0" * 6) + ext6(6, b"\0" * 6)
    packet = ip6("2001:db8::1", "2001:db8::2", 0, chain + tcp(1, 2, 0x02, b"data"))
    info = decode_packet(LinkType.RAW, packet)
    assert (info.protocol, info.l4_offset) == (6, 40 + len(chain))
    assert (info.src_port, info.payload_length) == (1, 4)


def test_decode_ipv6_ah_counts_four_byte_words() -> None:
    ah = bytes([17, 4]) + b"\0" * 22  # (4 + 2) * 4 = 24 bytes
    info = decode_packet(LinkType.RAW, ip6("2001:db8::1", "2001:db8::2", 51, ah + udp(7, 8)))
    assert (info.protocol, info.l4_offset, info.src_port) == (17, 64, 7)


def test_decode_ipv6_esp_ends_the_chain() -> None:
    info = decode_packet(LinkType.RAW, ip6("2001:db8::1", "2001:db8::2", 50, b"\0" * 24))
    assert (info.protocol, info.src_port, info.payload_length) == (50, 0, 24)


def test_decode_ipv6_cut_extension_chain_is_truncated_ip() -> None:
    packet = ip6("2001:db8::1", "2001:db8::2", 0, ext6(6, b"\0" * 14) + tcp(1, 2))
    assert decode_packet(LinkType.RAW, packet[:44]).skip_reason == "truncated_ip"


# --- tunnels ---------------------------------------------------------------------------

INNER = ip4("192.168.0.1", "192.168.0.2", 6, tcp(4444, 443, 0x02))
INNER6 = ip6("fd00::1", "fd00::2", 17, udp(9, 10))
VXLAN_HEADER = b"\x08\0\0\0\0\0\x01\0"  # I flag, VNI 1


def gre(payload: bytes, protocol: int, flags: int = 0, extra: bytes = b"") -> bytes:
    return flags.to_bytes(2, "big") + protocol.to_bytes(2, "big") + extra + payload


@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        (ip4("1.1.1.1", "2.2.2.2", 47, gre(INNER, 0x0800)), INNER),
        (ip4("1.1.1.1", "2.2.2.2", 47, gre(INNER, 0x0800, 0xB000, b"\0" * 12)), INNER),
        (ip4("1.1.1.1", "2.2.2.2", 47, gre(INNER6, 0x86DD, 0x2000, b"\0" * 4)), INNER6),
        (ip4("1.1.1.1", "2.2.2.2", 47, gre(eth(INNER), 0x6558)), INNER),
        (ip4("1.1.1.1", "2.2.2.2", 17, udp(50000, 4789, VXLAN_HEADER + eth(INNER))), INNER),
        (ip4("1.1.1.1", "2.2.2.2", 4, INNER), INNER),
        (ip4("1.1.1.1", "2.2.2.2", 41, INNER6), INNER6),
        (ip6("2001:db8::1", "2001:db8::2", 4, INNER), INNER),
    ],
    ids=[
        "gre", "gre-csum-key-seq", "gre-key-ipv6", "gre-ethernet", "vxlan", "ipip", "6in4", "4in6"
    ],
)
def test_decode_tunnels_use_the_inner_packet(outer: bytes, inner: bytes) -> None:
    wrapped = decode_packet(LinkType.RAW, outer, decode_tunnels=True)
    assert wrapped.data == inner
    plain = decode_packet(LinkType.RAW, outer)
    assert plain.data == outer


def test_decode_tunnel_with_bad_inner_packet_keeps_outer() -> None:
    outer = ip4("1.1.1.1", "2.2.2.2", 47, gre(b"\x99" * 30, 0x0800))
    info = decode_packet(LinkType.RAW, outer, decode_tunnels=True)
    assert (info.protocol, info.src_ip) == (47, "1.1.1.1")
