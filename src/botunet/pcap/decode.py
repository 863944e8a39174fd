"""Link, IP and transport headers of one frame, decoded by the C meter.

The sessions stage decodes inside C; this module gives the same decoder to Python
for inspection and tests. What it does with awkward input:

- Link layers: Ethernet (with 802.3 LLC/SNAP), 802.1Q / 802.1ad / QinQ tags of any
  depth (0x8100, 0x88a8, 0x9100), MPLS label stacks (IPv4 or IPv6 guessed from the
  first nibble after the bottom label), PPPoE sessions (PPP 0x0021 / 0x0057), Linux
  cooked capture v1 and v2, raw IP, BSD loopback (AF_INET6 as 24, 28 or 30), PPP and
  Cisco HDLC. The bytes kept for a packet always start at its IP header and stop at
  the IP length, so link padding never enters them.
- IPv4: options skipped by the header length; a total length of 0 (captured before
  segmentation offload) means the captured length; checksums are never checked.
- IPv6: the extension chain (hop-by-hop, routing, fragment, destination options, AH,
  mobility) is walked to the transport header; ESP ends it.
- Fragments: a first fragment (offset 0, more-fragments set) carries the transport
  header and is decoded like any packet; a later fragment has no ports and is skipped
  with reason "fragment". Nothing is reassembled and no port-0 session is invented.
- Tunnels (decode_tunnels): GRE (with or without checksum, key and sequence fields,
  IPv4 / IPv6 / Ethernet payload), VXLAN on UDP 4789, IPv4-in-IP and IPv6-in-IP
  are unwrapped to the inner packet; if the inner packet cannot be decoded the outer
  one is used.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from botunet import _meter


class LinkType(enum.IntEnum):
    """Link types (tcpdump.org LINKTYPE_* numbers) the decoder understands."""

    NULL = 0
    ETHERNET = 1
    PPP = 9
    RAW_12 = 12
    RAW_14 = 14
    PPP_HDLC = 50
    RAW = 101
    C_HDLC = 104
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


# Why a record was not given to a session; the accounting counts each.
SKIP_REASONS: tuple[str, ...] = tuple(_meter.SKIP_REASONS)


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """What the decoder found in one frame.

    Attributes:
        skip_reason: None when the packet goes to a session, else one of SKIP_REASONS
            (and the other fields are empty).
        data: the IP packet as captured, from its IP header, cut at ip_length.
    """

    skip_reason: str | None
    version: int = 0
    protocol: int = 0
    src_ip: str = ""
    src_port: int = 0
    dst_ip: str = ""
    dst_port: int = 0
    ip_length: int = 0
    l4_offset: int = 0
    payload_length: int = 0
    tcp_flags: int = 0
    data: bytes = b""


def decode_packet(link_type: int, frame: bytes, *, decode_tunnels: bool = False) -> PacketInfo:
    """Decode one captured frame of the given link type."""
    fields = _meter.decode(int(link_type), frame, decode_tunnels)
    return PacketInfo(*fields)
