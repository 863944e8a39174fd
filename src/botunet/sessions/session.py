"""Records handed out by the sessions stage."""

from __future__ import annotations

from dataclasses import dataclass, field

# Why a session ended.
END_REASONS = ("idle", "active", "fin", "rst", "end")

# Directions of a packet, seen from the session's initiator (its first packet's sender).
FORWARD = 0
BACKWARD = 1


@dataclass(frozen=True, slots=True)
class Packet:
    """One kept packet of a session.

    Attributes:
        index: position of the packet in its session, from 0.
        ts_ns: capture timestamp in nanoseconds since the epoch.
        direction: FORWARD (from the initiator) or BACKWARD.
        data: the packet from its IP header, at most ``keep_bytes`` long (less when the
            capture cut it).
        ip_length: length of the IP packet (from its header, or the captured length
            when the header says 0, as with segmentation offload).
        l4_offset: offset of the transport header within ``data``'s IP packet (after
            IPv4 options and IPv6 extension headers).
        payload_length: transport payload bytes (TCP/UDP data beyond the header; for
            other protocols, the IP payload).
        tcp_flags: TCP flags byte, 0 for other protocols.
    """

    index: int
    ts_ns: int
    direction: int
    data: bytes
    ip_length: int
    l4_offset: int
    payload_length: int
    tcp_flags: int = 0


@dataclass(slots=True)
class Session:
    """A bidirectional session: both directions of one 5-tuple, in time order.

    Non-TCP/UDP sessions are keyed by address pair and protocol, with ports 0.
    The initiator (``src_*``) sent the session's first packet.
    """

    capture: str
    protocol: int
    ip_version: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    first_ns: int
    last_ns: int
    packets_fwd: int
    packets_bwd: int
    bytes_fwd: int
    bytes_bwd: int
    end_reason: str
    packets: tuple[Packet, ...] = field(default=())

    @property
    def n_packets(self) -> int:
        return self.packets_fwd + self.packets_bwd

    @property
    def n_bytes(self) -> int:
        return self.bytes_fwd + self.bytes_bwd

    @property
    def first_ts(self) -> float:
        return self.first_ns / 1e9

    @property
    def last_ts(self) -> float:
        return self.last_ns / 1e9

    @property
    def duration_s(self) -> float:
        return (self.last_ns - self.first_ns) / 1e9
