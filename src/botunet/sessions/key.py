"""Direction-agnostic session keys and Community IDs, for matching sessions in Python.

The C meter keys its table the same way: TCP and UDP by 5-tuple, every other IP
protocol by address pair and protocol with ports 0; the two endpoints are ordered so
that both directions give one key.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

import communityid

from botunet.sessions.session import Session

PORT_PROTOCOLS = (6, 17)


class SessionKey(NamedTuple):
    """Both endpoints in a fixed order, plus the protocol."""

    protocol: int
    ip_a: str
    port_a: int
    ip_b: str
    port_b: int


def _endpoint(ip: str, port: int) -> tuple[int, bytes, int]:
    addr = ipaddress.ip_address(ip)
    return addr.version, addr.packed, port


def session_key(
    src_ip: str, src_port: int, dst_ip: str, dst_port: int, protocol: int
) -> SessionKey:
    """The key shared by both directions of a flow (ports dropped outside TCP/UDP)."""
    if protocol not in PORT_PROTOCOLS:
        src_port = dst_port = 0
    if _endpoint(src_ip, src_port) <= _endpoint(dst_ip, dst_port):
        return SessionKey(protocol, src_ip, src_port, dst_ip, dst_port)
    return SessionKey(protocol, dst_ip, dst_port, src_ip, src_port)


def key_of(session: Session) -> SessionKey:
    """The direction-agnostic key of a session."""
    return session_key(
        session.src_ip, session.src_port, session.dst_ip, session.dst_port, session.protocol
    )


_COMMUNITY_ID = communityid.CommunityID()


# Protocols whose Community ID needs ports (or ICMP type and code) that a botunet
# session of that protocol does not have.
_NEEDS_PORTS = set(communityid.PORT_PROTOS) - set(PORT_PROTOCOLS)


def community_id(session: Session) -> str | None:
    """The Community ID (v1, seed 0) of a session, or None for ICMP, ICMPv6 and SCTP.

    TCP and UDP use the 5-tuple, other protocols addresses and protocol. A botunet
    session groups all ICMP (or SCTP) between two hosts, so there is no single ICMP
    type and code (or port pair) to hash, and no Community ID.
    """
    src, dst = session.src_ip, session.dst_ip
    if session.protocol == 6:
        flow = communityid.FlowTuple.make_tcp(src, dst, session.src_port, session.dst_port)
    elif session.protocol == 17:
        flow = communityid.FlowTuple.make_udp(src, dst, session.src_port, session.dst_port)
    elif session.protocol in _NEEDS_PORTS:
        return None
    else:
        flow = communityid.FlowTuple(session.protocol, src, dst)
    return _COMMUNITY_ID.calc(flow)
