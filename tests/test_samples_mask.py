"""Masking levels: exact bytes zeroed, for headers with options and extension headers."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from botunet.samples.mask import mask_windows
from packet_builders import icmp, ipv4, ipv6, tcp, tcp_timestamp, udp

HTTP = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" * 3


def _window(data: bytes, length: int) -> np.ndarray:
    row = np.zeros((1, length), dtype=np.uint8)
    cut = data[:length]
    row[0, : len(cut)] = np.frombuffer(cut, dtype=np.uint8)
    return row


def _masked(data: bytes, protocol: int, l4: int, level: str, length: int = 100) -> np.ndarray:
    windows = _window(data, length)
    mask_windows(windows, np.array([protocol]), np.array([l4]), level)
    return windows[0]


def _expect(data: bytes, zeroed: list[int], length: int = 100) -> np.ndarray:
    expected = _window(data, length)[0].copy()
    expected[[i for i in zeroed if i < length]] = 0
    return expected


def _ipv4_with_options_tcp() -> bytes:
    record_route = bytes([7, 11, 4]) + bytes([198, 51, 100, 1, 198, 51, 100, 2]) + bytes([1])
    sack = bytes([5, 10]) + struct.pack("!II", 0xA0A0A0A0, 0xB0B0B0B0)
    options = tcp_timestamp(0x01020304, 0x05060708) + sack
    body = tcp(49152, 80, options=options, payload=HTTP)
    return ipv4("10.1.2.3", "203.0.113.9", 6, body, ttl=128, ident=0x4242, options=record_route)


# IHL 8 (32 bytes): record route data at 23..30. TCP at 32: sequence and acknowledgement
# 36..43, checksum 48..49; options from 52: NOP NOP, timestamp kind at 54, values
# 56..63; SACK kind at 64, block edges 66..73.
IPV4_OPTS_ADDRESSES = [*range(12, 20), *range(23, 31)]
IPV4_OPTS_STRICT = IPV4_OPTS_ADDRESSES + [4, 5, 8, 10, 11, *range(36, 44), 48, 49,
                                         *range(56, 64), *range(66, 74)]


def test_mask_none_changes_nothing():
    data = _ipv4_with_options_tcp()
    assert np.array_equal(_masked(data, 6, 32, "none"), _window(data, 100)[0])


def test_mask_addresses_ipv4_with_options():
    data = _ipv4_with_options_tcp()
    assert data[0] == 0x48  # IHL 8
    assert np.array_equal(_masked(data, 6, 32, "addresses"), _expect(data, IPV4_OPTS_ADDRESSES))


def test_mask_strict_ipv4_with_options_and_tcp_options():
    data = _ipv4_with_options_tcp()
    masked = _masked(data, 6, 32, "strict")
    assert np.array_equal(masked, _expect(data, IPV4_OPTS_STRICT))
    assert masked[54] == 8 and masked[55] == 10  # option kind and length kept
    assert masked[46:48].tobytes() == data[46:48]  # window size kept
    assert masked[76:100].tobytes() == HTTP[:24]  # payload kept


def test_mask_strict_stops_at_window_end():
    data = _ipv4_with_options_tcp()
    masked = _masked(data, 6, 32, "strict", length=60)
    assert np.array_equal(masked, _expect(data, IPV4_OPTS_STRICT, length=60))
    assert masked.shape == (60,)


def _ipv6_extensions_tcp() -> bytes:
    fragment = struct.pack("!HI", 1, 0xDEADBEEF)  # offset 0, more fragments
    body = tcp(50000, 443, options=tcp_timestamp(0x11111111, 0x22222222), payload=HTTP)
    return ipv6(
        "2001:db8::1", "2001:db8:ffff::2", 6, body,
        extensions=[(0, b"\x01\x04\0\0\0\0"), (44, fragment), (60, b"\x01\x04\0\0\0\0")],
    )


def test_mask_strict_ipv6_with_extension_headers():
    # hop-by-hop 40..47, fragment 48..55 (identification 52..55), destination options
    # 56..63, TCP at 64: sequence/ack 68..75, checksum 80..81, timestamp values 88..95.
    data = _ipv6_extensions_tcp()
    masked = _masked(data, 6, 64, "strict")
    expected = _expect(data, [2, 3, 7, *range(8, 40), *range(52, 56), *range(68, 76), 80, 81,
                              *range(88, 96)])
    expected[1] = data[1] & 0xF0
    assert np.array_equal(masked, expected)
    assert masked[0] == 0x6B and masked[1] == 0x80  # version and traffic class 0xB8 kept


def test_mask_addresses_ipv6_routing_header_and_dns():
    routing = bytes([2, 1, 0, 0, 0, 0]) + bytes(range(0x10, 0x20))  # type 2, one address
    body = udp(5353, 53, b"\xab\xcd\x01\x00" + b"\0" * 40)
    data = ipv6("fe80::1", "2001:db8::53", 17, body, extensions=[(43, routing)])
    # routing header at 40..63, its address at 48..63; UDP at 64
    assert np.array_equal(
        _masked(data, 17, 64, "addresses"), _expect(data, [*range(8, 40), *range(48, 64)])
    )
    strict = _masked(data, 17, 64, "strict")
    assert strict[70:74].tolist() == [0, 0, 0, 0]  # UDP checksum and DNS transaction ID
    assert strict[74:76].tobytes() == b"\x01\x00"  # DNS flags kept


def test_mask_ipv6_non_first_fragment_keeps_transport_bytes():
    fragment = struct.pack("!HI", 185 << 3, 7)
    data = ipv6("2001:db8::1", "2001:db8::2", 17, b"\x55" * 60, extensions=[(44, fragment)])
    masked = _masked(data, 17, 48, "strict")
    assert masked[48:100].tobytes() == data[48:100]
    assert masked[44:48].tolist() == [0, 0, 0, 0]


def test_mask_ipv4_non_first_fragment_keeps_transport_bytes():
    data = ipv4("10.0.0.1", "10.0.0.2", 17, b"\x77" * 60, fragment=185)
    masked = _masked(data, 17, 20, "strict")
    assert masked[20:80].tobytes() == data[20:80]
    assert np.array_equal(masked[:20], _expect(data, [4, 5, 8, 10, 11, *range(12, 20)])[:20])


def test_mask_short_windows_do_not_overrun():
    v6 = _ipv6_extensions_tcp()
    masked = _masked(v6, 6, 64, "strict", length=20)
    assert masked[8:20].tolist() == [0] * 12 and masked[7] == 0
    v4 = ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, options=tcp_timestamp(9, 9)))
    masked = _masked(v4, 6, 20, "strict", length=30)
    assert masked[24:30].tolist() == [0] * 6  # sequence number, cut by the window


def test_mask_icmp_error_quoted_header():
    quoted = ipv4("10.9.9.9", "8.8.8.8", 17, udp(5555, 53, b"x" * 20), ttl=1, ident=0x7777)
    data = ipv4("192.0.2.1", "10.9.9.9", 1, icmp(3, 3, b"\0\0\0\0" + quoted[:28]))
    # ICMP at 20 (checksum 22..23); quoted IPv4 at 28: ID 32..33, TTL 36, checksum 38..39,
    # addresses 40..47; quoted UDP at 48, its checksum 54..55
    assert np.array_equal(
        _masked(data, 1, 20, "addresses"), _expect(data, [*range(12, 20), *range(40, 48)])
    )
    strict = _masked(data, 1, 20, "strict")
    assert np.array_equal(
        strict,
        _expect(data, [4, 5, 8, 10, 11, *range(12, 20), 22, 23, 32, 33, 36, 38, 39,
                       *range(40, 48), 54, 55]),
    )


def test_mask_icmp_echo_identifier():
    data = ipv4("10.0.0.1", "10.0.0.2", 1, icmp(8, 0, b"\x12\x34\x00\x01" + b"ping" * 8))
    strict = _masked(data, 1, 20, "strict")
    assert strict[22:26].tolist() == [0, 0, 0, 0]
    assert strict[26:28].tobytes() == b"\x00\x01"  # sequence number kept


def _random_tcp(rng: random.Random, v6: bool) -> tuple[bytes, int, list[int]]:
    """A TCP packet with a random option layout, and the offsets strict must zero."""
    options, secret = b"", []
    while len(options) < 28:
        kind = rng.choice(["nop", "mss", "ws", "sackok", "ts", "sack"])
        start = len(options)
        if kind == "nop":
            options += b"\x01"
        elif kind == "mss":
            options += b"\x02\x04\x05\xb4"
        elif kind == "ws":
            options += b"\x03\x03\x07"
        elif kind == "sackok":
            options += b"\x04\x02"
        elif kind == "ts":
            options += b"\x08\x0a" + rng.randbytes(8)
            secret += range(start + 2, start + 10)
        else:
            blocks = rng.randint(1, 2)
            options += bytes([5, 2 + 8 * blocks]) + rng.randbytes(8 * blocks)
            secret += range(start + 2, start + 2 + 8 * blocks)
    options = options[:40] if len(options) <= 40 else options[:28]
    secret = [s for s in secret if s < len(options)]
    body = tcp(rng.randint(1, 65535), 443, options=options, payload=b"\x99" * 30)
    if v6:
        ip = ipv6("2001:db8::1", "2001:db8::2", 6, body)
    else:
        ip = ipv4("10.0.0.1", "10.0.0.2", 6, body)
    l4 = 40 if v6 else 20
    base = [*range(8, 40), 2, 3, 7] if v6 else [4, 5, 8, 10, 11, *range(12, 20)]
    zeroed = base + [l4 + o for o in (*range(4, 12), 16, 17)] + [l4 + 20 + s for s in secret]
    return ip, l4, zeroed


def test_mask_tcp_options_walk_in_one_batch():
    rng = random.Random(7)
    cases = [_random_tcp(rng, v6=i % 3 == 0) for i in range(200)]
    length = 120
    windows = np.concatenate([_window(data, length) for data, _, _ in cases])
    mask_windows(windows, np.full(len(cases), 6), np.array([c[1] for c in cases]), "strict")
    for row, (data, _, zeroed) in zip(windows, cases):
        expected = _expect(data, zeroed, length)
        if data[0] >> 4 == 6:
            expected[1] = data[1] & 0xF0
        assert np.array_equal(row, expected)


def test_mask_rejects_unknown_level():
    with pytest.raises(ValueError, match="mask must be one of"):
        mask_windows(np.zeros((1, 40), np.uint8), np.array([6]), np.array([20]), "all")
