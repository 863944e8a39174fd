"""Verdicts as EVE-style events, the JSON records Suricata writes, and their flat form."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import communityid

# Protocol names as Suricata writes them in "proto"; others are written as numbers.
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP"}

ALERT_SIGNATURE = "botunet botnet session"
# Suricata's classification text for trojan-activity, so dashboards group our alerts
# with signature-based trojan alerts.
ALERT_CATEGORY = "A Network Trojan was detected"

# flow_id is kept below 2**53: JSON readers that parse numbers as doubles (jq, browsers,
# many SIEMs) would otherwise round it and break joins on it.
FLOW_ID_MASK = (1 << 53) - 1

# Columns of the flat (CSV, Parquet) form, in order; nested objects are joined with ".".
COLUMNS = (
    "timestamp",
    "flow_id",
    "community_id",
    "event_type",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
    "pcap_filename",
    "flow.start",
    "flow.pkts_toserver",
    "flow.pkts_toclient",
    "flow.bytes_toserver",
    "flow.bytes_toclient",
    "botunet.packets",
    "botunet.score",
    "botunet.verdict",
    "botunet.trigger",
    "botunet.model",
    "botunet.model_version",
    "botunet.threshold",
    "alert.action",
    "alert.signature",
    "alert.category",
    "alert.severity",
)

_COMMUNITY_ID = communityid.CommunityID(seed=0)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The score of one session, with what its event needs.

    Attributes:
        capture: the capture the session came from ("-" for stdin).
        protocol, ip_version, src_ip, src_port, dst_ip, dst_port: the session's
            endpoints; src is the initiator.
        first_ns: timestamp of the session's first packet (ns since the epoch).
        ts_ns: when the verdict could be made: the last packet of its sample, or the
            session's last packet when it ended before filling its sample.
        packets: packets that went into the sample (N, or fewer at session end).
        trigger: "ready" (the sample filled up) or the session's end reason.
        packets_fwd, packets_bwd, bytes_fwd, bytes_bwd: session counters at the verdict.
        icmp_type, icmp_code: of the first packet, for ICMP sessions (community id).
        score: botnet probability in [0, 1].
        botnet: score at or above the threshold.
    """

    capture: str
    protocol: int
    ip_version: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    first_ns: int
    ts_ns: int
    packets: int
    trigger: str
    packets_fwd: int
    packets_bwd: int
    bytes_fwd: int
    bytes_bwd: int
    icmp_type: int | None
    icmp_code: int | None
    score: float
    botnet: bool


@dataclass(frozen=True)
class EventContext:
    """What every event of a run shares: the model and the threshold."""

    model: str
    model_version: str
    threshold: float


def format_timestamp(ts_ns: int) -> str:
    """ISO 8601 in UTC with microseconds, as Suricata writes: 2026-01-06T01:31:29.500330+0000."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1000:06d}+0000"


def flow_id(
    protocol: int, src_ip: str, src_port: int, dst_ip: str, dst_port: int, first_ns: int
) -> int:
    """A stable id of one session: a hash of its 5-tuple and first timestamp."""
    key = f"{protocol}|{src_ip}|{src_port}|{dst_ip}|{dst_port}|{first_ns}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") & FLOW_ID_MASK


def community_id(verdict: Verdict) -> str:
    """The Community ID (v1, seed 0) of the session's tuple, as Zeek and Suricata compute it."""
    proto, src, dst = verdict.protocol, verdict.src_ip, verdict.dst_ip
    if proto in (communityid.PROTO_ICMP, communityid.PROTO_ICMP6) and verdict.icmp_type is not None:
        make = communityid.FlowTuple.make_icmp if proto == 1 else communityid.FlowTuple.make_icmp6
        flow = make(src, dst, verdict.icmp_type, verdict.icmp_code or 0)
    elif proto in communityid.PORT_PROTOS:
        flow = communityid.FlowTuple(proto, src, dst, verdict.src_port, verdict.dst_port)
    else:
        flow = communityid.FlowTuple.make_ip(src, dst, proto)
    return _COMMUNITY_ID.calc(flow)


def proto_name(protocol: int) -> str:
    return PROTO_NAMES.get(protocol, str(protocol))


def alert_severity(score: float) -> int:
    """Suricata's scale, 1 the most severe: 1 for scores of 0.9 and above, else 2."""
    return 1 if score >= 0.9 else 2


def to_event(verdict: Verdict, context: EventContext) -> dict[str, Any]:
    """The EVE object of one verdict: event_type "alert" for botnet, "flow" otherwise."""
    event: dict[str, Any] = {
        "timestamp": format_timestamp(verdict.ts_ns),
        "flow_id": flow_id(
            verdict.protocol,
            verdict.src_ip,
            verdict.src_port,
            verdict.dst_ip,
            verdict.dst_port,
            verdict.first_ns,
        ),
        "community_id": community_id(verdict),
        "event_type": "alert" if verdict.botnet else "flow",
        "src_ip": verdict.src_ip,
        "src_port": verdict.src_port,
        "dest_ip": verdict.dst_ip,
        "dest_port": verdict.dst_port,
        "proto": proto_name(verdict.protocol),
        "pcap_filename": verdict.capture,
    }
    if verdict.botnet:
        event["alert"] = {
            "action": "allowed",
            "signature": ALERT_SIGNATURE,
            "category": ALERT_CATEGORY,
            "severity": alert_severity(verdict.score),
        }
    event["flow"] = {
        "start": format_timestamp(verdict.first_ns),
        "pkts_toserver": verdict.packets_fwd,
        "pkts_toclient": verdict.packets_bwd,
        "bytes_toserver": verdict.bytes_fwd,
        "bytes_toclient": verdict.bytes_bwd,
    }
    event["botunet"] = {
        "packets": verdict.packets,
        "score": verdict.score,
        "verdict": "botnet" if verdict.botnet else "benign",
        "trigger": verdict.trigger,
        "model": context.model,
        "model_version": context.model_version,
        "threshold": context.threshold,
    }
    return event


def flatten(event: dict[str, Any]) -> dict[str, Any]:
    """The event as one flat row over COLUMNS (missing values are None)."""
    row = dict.fromkeys(COLUMNS)
    for key, value in event.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                row[f"{key}.{inner}"] = inner_value
        else:
            row[key] = value
    return row
