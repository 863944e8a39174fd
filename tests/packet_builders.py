"""Hand-built IPv4/IPv6/TCP/UDP/ICMP packets, sessions and pcap files for tests."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from pathlib import Path

from botunet.sessions.session import Packet, Session

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ident: int = 0x1234,
    options: bytes = b"",
    fragment: int = 0,
    tos: int = 0,
) -> bytes:
    """An IPv4 packet; ``options`` padded to 4 bytes; ``fragment`` is flags+offset."""
    options += b"\0" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl, tos, ihl * 4 + len(payload), ident, fragment, ttl, protocol, 0,
        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    ) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv6(
    src: str,
    dst: str,
    next_header: int,
    payload: bytes,
    *,
    hop_limit: int = 64,
    traffic_class: int = 0xB8,
    flow_label: int = 0xABCDE,
    extensions: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """An IPv6 packet; ``extensions`` are (header type, body after its first 2 bytes)."""
    chain = b""
    types = [t for t, _ in extensions] + [next_header]
    for (kind, body), following in zip(extensions, types[1:]):
        if kind == 44:
            chain += struct.pack("!BB", following, 0) + body
        else:
            body += b"\0" * (-(len(body) + 2) % 8)
            chain += struct.pack("!BB", following, (len(body) + 2) // 8 - 1) + body
    first = types[0]
    word = (6 << 28) | (traffic_class << 20) | flow_label
    header = struct.pack(
        "!IHBB16s16s", word, len(chain) + len(payload), first, hop_limit,
        ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed,
    )
    return header + chain + payload


def tcp(
    sport: int,
    dport: int,
    *,
    seq: int = 0x11223344,
    ack: int = 0x55667788,
    flags: int = 0x18,
    window: int = 0x7210,
    options: bytes = b"",
    payload: bytes = b"",
    check: int = 0xBEEF,
) -> bytes:
    options += b"\0" * (-len(options) % 4)
    offset = 5 + len(options) // 4
    return struct.pack(
        "!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, check, 0
    ) + options + payload


def tcp_timestamp(tsval: int, tsecr: int) -> bytes:
    return struct.pack("!BBBBII", 1, 1, 8, 10, tsval, tsecr)


def udp(sport: int, dport: int, payload: bytes = b"", check: int = 0xCAFE) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), check) + payload


def icmp(kind: int, code: int, rest: bytes, check: int = 0xD00D) -> bytes:
    return struct.pack("!BBH", kind, code, check) + rest


def packet(
    index: int,
    data: bytes,
    l4_offset: int,
    payload_length: int,
    *,
    direction: int = 0,
    ts_ns: int | None = None,
) -> Packet:
    return Packet(
        index=index,
        ts_ns=1_700_000_000_000_000_000 + index * 1000 if ts_ns is None else ts_ns,
        direction=direction,
        data=data,
        ip_length=len(data),
        l4_offset=l4_offset,
        payload_length=payload_length,
    )


def session(
    packets: Sequence[Packet],
    *,
    protocol: int = 6,
    src: tuple[str, int] = ("10.0.0.1", 40000),
    dst: tuple[str, int] = ("192.0.2.10", 80),
    capture: str = "test.pcap",
) -> Session:
    version = 6 if ":" in src[0] else 4
    fwd = sum(p.direction == 0 for p in packets)
    return Session(
        capture=capture,
        protocol=protocol,
        ip_version=version,
        src_ip=src[0],
        src_port=src[1],
        dst_ip=dst[0],
        dst_port=dst[1],
        first_ns=packets[0].ts_ns if packets else 0,
        last_ns=packets[-1].ts_ns if packets else 0,
        packets_fwd=fwd,
        packets_bwd=len(packets) - fwd,
        bytes_fwd=0,
        bytes_bwd=0,
        end_reason="end",
        packets=tuple(packets),
    )


def ethernet(ip_packet: bytes, *, vlans: Sequence[int] = ()) -> bytes:
    """An Ethernet frame around an IP packet, with 802.1Q/802.1ad tags when given."""
    ethertype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    frame = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02"
    for depth, vid in enumerate(vlans):
        tpid = 0x88A8 if depth == 0 and len(vlans) > 1 else 0x8100
        frame += struct.pack("!HH", tpid, vid)
    return frame + struct.pack("!H", ethertype) + ip_packet


def write_pcap(
    path: Path,
    frames: Sequence[bytes],
    *,
    linktype: int = LINKTYPE_RAW,
    start_s: int = 1_700_000_000,
) -> Path:
    """A microsecond pcap of the frames, one millisecond apart."""
    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            handle.write(struct.pack("<IIII", start_s, i * 1000, len(frame), len(frame)))
            handle.write(frame)
    return path


def read_pcap(path: Path) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Link type and (record header, frame) pairs of a classic pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    records, offset = [], 24
    while offset + 16 <= len(data):
        header = data[offset : offset + 16]
        caplen = struct.unpack(endian + "I", header[8:12])[0]
        records.append((header, data[offset + 16 : offset + 16 + caplen]))
        offset += 16 + caplen
    return linktype, records
