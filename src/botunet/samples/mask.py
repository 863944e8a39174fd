"""Masking: zero the bytes of a packet window that name a host or a capture, not a behaviour.

A window is the first L bytes of one packet from its IP header. A model trained on raw
bytes learns whatever separates the classes most easily; in lab captures that is often
the victim's address, the sandbox's TTL or a per-connection random number rather than
what the bot does. Masking removes those bytes. Offsets below are from the IP header
(IPv4, IPv6) or from the transport header ``l4`` (``Packet.l4_offset``, after IPv4
options and IPv6 extension headers); a field is masked only where it lies inside the
window, and fields past the fixed headers are found by walking the real header lengths
(IPv4 IHL, TCP data offset, option lengths), never at fixed positions.

``none``: nothing is changed.

``addresses``: every IP address in the window.

=====================  =============================  ====================================
header                 bytes zeroed                   why
=====================  =============================  ====================================
IPv4                   12..19 (source, destination)   names the hosts
IPv4 options           route data of Record Route,    addresses of routers on the path
                       LSRR, SSRR (opt+3..end) and
                       Timestamp (opt+4..end)
IPv6                   8..39 (source, destination)    names the hosts
IPv6 Routing header    ext+8..end (address list)      addresses of routers on the path
ICMP redirect (type 5) l4+4..7 (gateway)              a router's address
ICMPv6 NS/NA (135/136) l4+8..23 (target)              a host's address
ICMPv6 redirect (137)  l4+8..39 (target, dest.)       hosts' addresses
ICMP/ICMPv6 errors     addresses of the quoted        the quoted header is the original
                       IP header at l4+8              packet's header
=====================  =============================  ====================================

``strict`` (the default): ``addresses`` plus values that depend on where the capture was
taken, on a host's clock or state, or that are random per connection, so identify one
session rather than a kind of traffic.

=====================  =============================  ====================================
header                 bytes changed                  why
=====================  =============================  ====================================
IPv4                   8 (TTL)                        falls by one per hop: says how far
                                                      the capture point is from the host
IPv4                   4..5 (identification)          a per-host counter or random value
IPv4                   10..11 (header checksum)       sums the addresses, TTL and ID
IPv6                   7 (hop limit)                  as the IPv4 TTL
IPv6                   low 20 bits of 1..3 (flow      random per flow; the 8 traffic-class
                       label)                         bits are kept (byte 1 keeps its
                                                      high nibble)
IPv6 Fragment header   ext+4..7 (identification)      as the IPv4 identification
IPv6 AH header         ext+4..end (SPI, sequence,     per security association
                       ICV)
TCP                    l4+4..11 (sequence and         random initial numbers per
                       acknowledgement numbers)       connection
TCP                    l4+16..17 (checksum)           covers the addresses (pseudo-header)
TCP option 8 (len 10)  its 8 value bytes (TSval,      a host's uptime clock
                       TSecr)
TCP option 5 (SACK)    its block edges                sequence numbers
UDP                    l4+6..7 (checksum)             covers the addresses
UDP DNS/mDNS/LLMNR     l4+8..9 (transaction ID)       random per query
(port 53, 5353, 5355)
ICMP, ICMPv6           l4+2..3 (checksum)             ICMPv6's covers the addresses; both
                                                      sum the masked identifier
ICMP echo, timestamp,  l4+4..5 (identifier)           chosen per process or per host
information (0/8,
13/14, 15/16); ICMPv6
echo (128/129)
ICMP timestamp (13/14) l4+8..19 (three timestamps)    a host's clock
ICMP/ICMPv6 errors     the quoted IP header's TTL,    as for the outer headers
                       ID, checksum, flow label, and
                       quoted TCP sequence/ack/
                       checksum or UDP checksum
=====================  =============================  ====================================

Kept on purpose: versions, lengths, DSCP/ECN, IPv4 flags, protocol numbers, ports, TCP
flags, window sizes, urgent pointers, the other TCP options (MSS, window scale, SACK
permitted) and all payload bytes except the DNS transaction ID. They describe what a
host's software does (which service, how it opens and paces a connection, what it
sends), which is the behaviour the detector should learn, even where some of them (the
client port range, MSS, window size) also hint at the operating system. Payload
identifiers other than the DNS ID (QUIC connection IDs, DHCP client hardware
addresses, NDP link-layer address options, HTTP Host headers) are kept: finding them
means parsing application protocols, which this module does not do. Non-first
fragments have no transport header in their window, so only their IP header is masked.
"""

from __future__ import annotations

import numpy as np

from botunet.config import MASK_LEVELS

TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58

_DNS_PORTS = (53, 5353, 5355)
_ICMP_ID_TYPES = (0, 8, 13, 14, 15, 16)
_ICMP_ERROR_TYPES = (3, 4, 5, 11, 12)
_ICMPV6_ERROR_TYPES = (1, 2, 3, 4)
_IPV4_ROUTE_OPTIONS = (7, 131, 137)  # Record Route, LSRR, SSRR: addresses from opt+3
_IPV4_TIMESTAMP_OPTION = 68  # timestamps, optionally with addresses, from opt+4
_IPV6_EXT_HEADERS = (0, 43, 44, 51, 60, 135, 139, 140, 253, 254)


class _Zeroes:
    """Collects (row, column) positions to zero, kept only inside the window."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []

    def add(
        self, rows: np.ndarray, starts: np.ndarray, width: int, limits: np.ndarray | None = None
    ) -> None:
        """Zero ``width`` bytes from ``starts`` in each row, stopping before ``limits``."""
        if rows.size == 0:
            return
        cols = starts[:, None] + np.arange(width)
        stop = self.length if limits is None else np.minimum(limits, self.length)[:, None]
        keep = (cols >= 0) & (cols < stop)
        self.rows.append(np.broadcast_to(rows[:, None], cols.shape)[keep])
        self.cols.append(cols[keep])

    def add_span(self, row: int, start: int, stop: int) -> None:
        """Zero bytes start..stop-1 of one row (for the rare headers walked one by one)."""
        stop = min(stop, self.length)
        if start < stop:
            self.rows.append(np.full(stop - start, row, dtype=np.int64))
            self.cols.append(np.arange(start, stop, dtype=np.int64))

    def apply(self, windows: np.ndarray) -> None:
        if self.rows:
            windows[np.concatenate(self.rows), np.concatenate(self.cols)] = 0


def _read(windows: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bytes at (rows, cols) as int64, 0 where the column is outside the window."""
    length = windows.shape[1]
    inside = (cols >= 0) & (cols < length)
    values = windows[rows, np.clip(cols, 0, length - 1)].astype(np.int64)
    return np.where(inside, values, 0)


def _read16(windows: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return (_read(windows, rows, cols) << 8) | _read(windows, rows, cols + 1)


def mask_windows(
    windows: np.ndarray, protocols: np.ndarray, l4_offsets: np.ndarray, level: str
) -> None:
    """Mask packet windows in place.

    Args:
        windows: (P, L) uint8, one packet per row starting at its IP header.
        protocols: (P,) transport protocol of each packet's session.
        l4_offsets: (P,) offset of each packet's transport header (``Packet.l4_offset``).
        level: "none", "addresses" or "strict".
    """
    if level not in MASK_LEVELS:
        raise ValueError(f"mask must be one of {', '.join(MASK_LEVELS)}, got {level!r}")
    if level == "none" or windows.shape[0] == 0:
        return
    strict = level == "strict"
    zeroes = _Zeroes(windows.shape[1])
    protocols = np.asarray(protocols, dtype=np.int64)
    l4 = np.asarray(l4_offsets, dtype=np.int64)
    rows = np.arange(windows.shape[0], dtype=np.int64)
    base = np.zeros_like(rows)

    has_l4 = _mask_ip_headers(windows, rows, base, protocols, l4, strict, zeroes, outer=True)
    rows, protocols, l4 = rows[has_l4], protocols[has_l4], l4[has_l4]
    _mask_tcp(windows, rows[protocols == TCP], l4[protocols == TCP], strict, zeroes)
    _mask_udp(windows, rows[protocols == UDP], l4[protocols == UDP], strict, zeroes)
    for proto in (ICMP, ICMPV6):
        chosen = protocols == proto
        _mask_icmp(windows, rows[chosen], l4[chosen], proto, strict, zeroes)
    zeroes.apply(windows)


def _mask_ip_headers(
    windows: np.ndarray,
    rows: np.ndarray,
    base: np.ndarray,
    protocols: np.ndarray,
    l4: np.ndarray,
    strict: bool,
    zeroes: _Zeroes,
    *,
    outer: bool,
) -> np.ndarray:
    """Mask the IPv4/IPv6 headers at ``base``; True where a transport header follows at l4."""
    version = _read(windows, rows, base) >> 4
    has_l4 = np.zeros(rows.size, dtype=bool)

    # IPv4
    v4 = version == 4
    r4, b4 = rows[v4], base[v4]
    zeroes.add(r4, b4 + 12, 8)
    if strict:
        zeroes.add(r4, b4 + 4, 2)
        zeroes.add(r4, b4 + 8, 1)
        zeroes.add(r4, b4 + 10, 2)
    ihl = (_read(windows, r4, b4) & 0x0F) * 4
    fragment_offset = _read16(windows, r4, b4 + 6) & 0x1FFF
    ip_protocol = _read(windows, r4, b4 + 9)
    has_l4[v4] = (
        (ihl >= 20) & (l4[v4] == b4 + ihl) & (fragment_offset == 0) & (ip_protocol == protocols[v4])
    )
    for i in np.flatnonzero(ihl > 20):
        _mask_ipv4_options(windows, int(r4[i]), int(b4[i]), int(ihl[i]), zeroes)

    # IPv6
    v6 = version == 6
    r6, b6 = rows[v6], base[v6]
    zeroes.add(r6, b6 + 8, 32)
    if strict:
        zeroes.add(r6, b6 + 2, 2)
        zeroes.add(r6, b6 + 7, 1)
        inside = b6 + 1 < windows.shape[1]
        windows[r6[inside], b6[inside] + 1] &= 0xF0
    l4_6 = l4[v6]
    direct = (_read(windows, r6, b6 + 6) == protocols[v6]) & (l4_6 == b6 + 40)
    ok6 = direct.copy()
    if outer:
        for i in np.flatnonzero(~direct & (l4_6 > b6 + 40)):
            ok6[i] = _mask_ipv6_extensions(
                windows, int(r6[i]), int(b6[i]), int(l4_6[i]), strict, zeroes
            )
    has_l4[v6] = ok6
    return has_l4


def _mask_ipv4_options(windows: np.ndarray, row: int, base: int, ihl: int, zeroes: _Zeroes) -> None:
    """Zero the addresses and timestamps carried by IPv4 options."""
    length = windows.shape[1]
    end = min(base + ihl, length)
    offset = base + 20
    while offset < end:
        kind = int(windows[row, offset])
        if kind == 0:
            return
        if kind == 1:
            offset += 1
            continue
        if offset + 1 >= end:
            return
        size = int(windows[row, offset + 1])
        if size < 2:
            return
        stop = min(offset + size, base + ihl)
        if kind in _IPV4_ROUTE_OPTIONS:
            zeroes.add_span(row, offset + 3, stop)
        elif kind == _IPV4_TIMESTAMP_OPTION:
            zeroes.add_span(row, offset + 4, stop)
        offset += size


def _mask_ipv6_extensions(
    windows: np.ndarray, row: int, base: int, l4: int, strict: bool, zeroes: _Zeroes
) -> bool:
    """Walk the IPv6 extension headers up to l4; False when l4 is not a transport header."""
    length = windows.shape[1]
    next_header = int(windows[row, base + 6]) if base + 6 < length else -1
    offset = base + 40
    while offset < l4:
        if next_header not in _IPV6_EXT_HEADERS or offset + 4 > length:
            # unknown header, or one whose fields lie past the window (so does l4)
            return False
        following = int(windows[row, offset])
        if next_header == 44:
            size = 8
            if strict:
                zeroes.add_span(row, offset + 4, offset + 8)
            if (int(windows[row, offset + 2]) << 8 | int(windows[row, offset + 3])) >> 3:
                return False  # a non-first fragment: no transport header follows
        elif next_header == 51:
            size = (int(windows[row, offset + 1]) + 2) * 4
            if strict:
                zeroes.add_span(row, offset + 4, offset + size)
        else:
            size = (int(windows[row, offset + 1]) + 1) * 8
            if next_header == 43:
                zeroes.add_span(row, offset + 8, offset + size)
        next_header = following
        offset += size
    return offset == l4


def _mask_tcp(
    windows: np.ndarray, rows: np.ndarray, l4: np.ndarray, strict: bool, zeroes: _Zeroes
) -> None:
    if not strict or rows.size == 0:
        return
    zeroes.add(rows, l4 + 4, 8)
    zeroes.add(rows, l4 + 16, 2)
    _mask_tcp_options(windows, rows, l4, zeroes)


def _mask_tcp_options(
    windows: np.ndarray, rows: np.ndarray, l4: np.ndarray, zeroes: _Zeroes
) -> None:
    """Walk the TCP options of all rows at once; zero timestamp values and SACK blocks."""
    data_offset = (_read(windows, rows, l4 + 12) >> 4) * 4
    end = np.minimum(l4 + data_offset, windows.shape[1])
    cursor = l4 + 20
    active = cursor < end
    rows, cursor, end = rows[active], cursor[active], end[active]
    while rows.size:
        kind = windows[rows, cursor].astype(np.int64)
        size = _read(windows, rows, cursor + 1)
        sized = (kind > 1) & (cursor + 1 < end) & (size >= 2)
        timestamp = sized & (kind == 8) & (size == 10)
        zeroes.add(rows[timestamp], cursor[timestamp] + 2, 8, end[timestamp])
        sack = sized & (kind == 5)
        zeroes.add(rows[sack], cursor[sack] + 2, 32, np.minimum(end, cursor + size)[sack])
        step = np.where(kind == 1, 1, np.where(sized, size, 0))
        cursor = cursor + step
        going = (step > 0) & (cursor < end)
        rows, cursor, end = rows[going], cursor[going], end[going]


def _mask_udp(
    windows: np.ndarray, rows: np.ndarray, l4: np.ndarray, strict: bool, zeroes: _Zeroes
) -> None:
    if not strict or rows.size == 0:
        return
    zeroes.add(rows, l4 + 6, 2)
    ports = np.stack([_read16(windows, rows, l4), _read16(windows, rows, l4 + 2)], axis=1)
    dns = np.isin(ports, _DNS_PORTS).any(axis=1)
    zeroes.add(rows[dns], l4[dns] + 8, 2)


def _mask_icmp(
    windows: np.ndarray,
    rows: np.ndarray,
    l4: np.ndarray,
    protocol: int,
    strict: bool,
    zeroes: _Zeroes,
) -> None:
    if rows.size == 0:
        return
    kind = _read(windows, rows, l4)
    if protocol == ICMP:
        error = np.isin(kind, _ICMP_ERROR_TYPES)
        redirect = kind == 5
        zeroes.add(rows[redirect], l4[redirect] + 4, 4)
        with_id = np.isin(kind, _ICMP_ID_TYPES)
        if strict:
            clock = (kind == 13) | (kind == 14)
            zeroes.add(rows[clock], l4[clock] + 8, 12)
    else:
        error = np.isin(kind, _ICMPV6_ERROR_TYPES)
        target = (kind == 135) | (kind == 136)
        zeroes.add(rows[target], l4[target] + 8, 16)
        redirect = kind == 137
        zeroes.add(rows[redirect], l4[redirect] + 8, 32)
        with_id = (kind == 128) | (kind == 129)
    if strict:
        zeroes.add(rows, l4 + 2, 2)
        zeroes.add(rows[with_id], l4[with_id] + 4, 2)
    _mask_quoted(windows, rows[error], l4[error] + 8, strict, zeroes)


def _mask_quoted(
    windows: np.ndarray, rows: np.ndarray, base: np.ndarray, strict: bool, zeroes: _Zeroes
) -> None:
    """Mask the IP header (and first transport bytes) quoted in an ICMP error message."""
    if rows.size == 0:
        return
    version = _read(windows, rows, base) >> 4
    protocol = np.where(
        version == 4, _read(windows, rows, base + 9), _read(windows, rows, base + 6)
    )
    l4 = np.where(version == 4, base + (_read(windows, rows, base) & 0x0F) * 4, base + 40)
    has_l4 = _mask_ip_headers(windows, rows, base, protocol, l4, strict, zeroes, outer=False)
    if not strict:
        return
    tcp = has_l4 & (protocol == TCP)
    zeroes.add(rows[tcp], l4[tcp] + 4, 8)
    zeroes.add(rows[tcp], l4[tcp] + 16, 2)
    udp = has_l4 & (protocol == UDP)
    zeroes.add(rows[udp], l4[udp] + 6, 2)
