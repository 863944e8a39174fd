"""Tiny pcap / pcapng writers and link-layer wrappers for the sessions-stage tests."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from pathlib import Path

# 1 Jan 2024, a fixed start for synthetic captures.
T0_NS = 1_704_067_200_000_000_000


# --- IP and transport ----------------------------------------------------------------


def ip4(src: str, dst: str, proto: int, payload: bytes, *, frag: int = 0, options: bytes = b"",
        total_length: int | None = None) -> bytes:
    """An IPv4 packet (checksum left 0: the meter never checks it)."""
    options += b"\0" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_length is None else total_length
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 7, frag, 64, proto, 0,
        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    )
    return header + options + payload


def ip6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    """An IPv6 packet; extension headers go in ``payload`` with their own next_header."""
    return struct.pack(
        "!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
        ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed,
    ) + payload


def ext6(next_header: int, body: bytes) -> bytes:
    """A generic IPv6 extension header (hop-by-hop, routing, destination options)."""
    body += b"\0" * (-(len(body) + 2) % 8)
    return struct.pack("!BB", next_header, (len(body) + 2) // 8 - 1) + body


def frag6(next_header: int, offset: int, more: bool, ident: int = 1) -> bytes:
    return struct.pack("!BBHI", next_header, 0, (offset << 3) | int(more), ident)


def tcp(sport: int, dport: int, flags: int = 0x10, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, 1024, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST = 0x02, 0x12, 0x10, 0x18, 0x11, 0x04


# --- link layers ---------------------------------------------------------------------

MACS = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def ethertype_of(ip: bytes) -> int:
    return 0x86DD if ip[0] >> 4 == 6 else 0x0800


def eth(ip: bytes, *, tags: Sequence[tuple[int, int]] = (), ethertype: int | None = None) -> bytes:
    """Ethernet with (TPID, VLAN id) tags outermost first."""
    frame = MACS
    for tpid, vid in tags:
        frame += struct.pack("!H", tpid) + struct.pack("!H", vid)
    return frame + struct.pack("!H", ethertype or ethertype_of(ip)) + ip


def pad60(frame: bytes) -> bytes:
    return frame + b"\0" * max(0, 60 - len(frame))


def mpls(ip: bytes, labels: Sequence[int] = (100, 200)) -> bytes:
    stack = b""
    for i, label in enumerate(labels):
        bottom = int(i == len(labels) - 1)
        stack += struct.pack("!I", (label << 12) | (bottom << 8) | 64)
    return MACS + b"\x88\x47" + stack + ip


def pppoe(ip: bytes, ppp_protocol: int | None = None) -> bytes:
    proto = ppp_protocol or (0x0057 if ip[0] >> 4 == 6 else 0x0021)
    header = struct.pack("!BBHH", 0x11, 0, 0x1234, len(ip) + 2) + struct.pack("!H", proto)
    return MACS + b"\x88\x64" + header + ip


def sll(ip: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", ethertype_of(ip)) + ip


def sll2(ip: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", ethertype_of(ip), 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + ip


def null_loop(ip: bytes, family: int, *, big_endian: bool = False) -> bytes:
    return struct.pack(">I" if big_endian else "<I", family) + ip


# --- files ---------------------------------------------------------------------------

Record = tuple[int, bytes]  # (timestamp in ns, frame)


def pcap_bytes(records: Sequence[Record], linktype: int = 1, *, nanosecond: bool = False,
               big_endian: bool = False) -> bytes:
    """A classic pcap in any of its four magics."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts_ns, frame in records:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        frac = frac if nanosecond else frac // 1000
        out.append(struct.pack(order + "IIII", sec, frac, len(frame), len(frame)) + frame)
    return b"".join(out)


def write_pcap(path: Path, records: Sequence[Record], linktype: int = 1, **kwargs: bool) -> Path:
    path.write_bytes(pcap_bytes(records, linktype, **kwargs))
    return path


def _block(kind: int, body: bytes, order: str) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def shb(order: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, tsresol: int | None = None, order: str = "<",
        tsoffset_s: int = 0) -> bytes:
    options = b""
    if tsresol is not None:
        options += struct.pack(order + "HHB3x", 9, 1, tsresol)
    if tsoffset_s:
        options += struct.pack(order + "HHq", 14, 8, tsoffset_s)
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return _block(1, struct.pack(order + "HHI", linktype, 0, 0) + options, order)


def epb(interface: int, ts_units: int, frame: bytes, order: str = "<") -> bytes:
    body = struct.pack(order + "IIIII", interface, ts_units >> 32, ts_units & 0xFFFFFFFF,
                       len(frame), len(frame)) + frame
    return _block(6, body, order)


def spb(frame: bytes, order: str = "<") -> bytes:
    return _block(3, struct.pack(order + "I", len(frame)) + frame, order)


def obsolete_pb(interface: int, ts_units: int, frame: bytes, order: str = "<") -> bytes:
    body = struct.pack(order + "HHIIII", interface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF,
                       len(frame), len(frame)) + frame
    return _block(2, body, order)


def other_block(kind: int = 4, order: str = "<") -> bytes:
    """A block without packets (name resolution by default)."""
    return _block(kind, b"\0\0\0\0", order)
