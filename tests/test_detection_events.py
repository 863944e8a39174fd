"""EVE events of verdicts and the writers that put them in files."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import datetime

import communityid
import pyarrow.parquet as pq
import pytest

from botunet.detection.events import (
    ALERT_SIGNATURE,
    COLUMNS,
    EventContext,
    Verdict,
    community_id,
    flatten,
    flow_id,
    format_timestamp,
    proto_name,
    to_event,
)
from botunet.detection.writers import infer_format, open_writer
from botunet.errors import ConfigError

CONTEXT = EventContext(model="unet1d_light", model_version="0.1.0", threshold=0.5)


def make_verdict(**changes: object) -> Verdict:
    verdict = Verdict(
        capture="cap.pcap",
        protocol=6,
        ip_version=4,
        src_ip="10.0.0.5",
        src_port=49152,
        dst_ip="203.0.113.7",
        dst_port=443,
        first_ns=1_767_663_089_000_000_000,
        ts_ns=1_767_663_089_500_330_493,
        packets=8,
        trigger="ready",
        packets_fwd=5,
        packets_bwd=3,
        bytes_fwd=700,
        bytes_bwd=1900,
        icmp_type=None,
        icmp_code=None,
        score=0.93,
        botnet=True,
    )
    return replace(verdict, **changes)


def test_format_timestamp_matches_suricata_layout() -> None:
    # the pcapng fixture's packet at 1767663089.500330493 s
    assert format_timestamp(1_767_663_089_500_330_493) == "2026-01-06T01:31:29.500330+0000"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000+0000"
    text = format_timestamp(1_767_663_089_500_330_493)
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert parsed.timestamp() == pytest.approx(1767663089.500330, abs=1e-6)


def test_flow_id_is_stable_and_depends_on_tuple_and_start() -> None:
    base = (6, "10.0.0.5", 49152, "203.0.113.7", 443, 1_000)
    assert flow_id(*base) == flow_id(*base)
    assert 0 < flow_id(*base) < 2**53
    assert flow_id(*base) != flow_id(6, "10.0.0.5", 49153, "203.0.113.7", 443, 1_000)
    assert flow_id(*base) != flow_id(6, "10.0.0.5", 49152, "203.0.113.7", 443, 1_001)
    assert flow_id(*base) != flow_id(17, "10.0.0.5", 49152, "203.0.113.7", 443, 1_000)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, communityid.FlowTuple.make_tcp("10.0.0.5", "203.0.113.7", 49152, 443)),
        ({"protocol": 17}, communityid.FlowTuple.make_udp("10.0.0.5", "203.0.113.7", 49152, 443)),
        (
            {"protocol": 1, "src_port": 0, "dst_port": 0, "icmp_type": 8, "icmp_code": 0},
            communityid.FlowTuple.make_icmp("10.0.0.5", "203.0.113.7", 8, 0),
        ),
        (
            {"protocol": 58, "ip_version": 6, "src_ip": "fe80::1", "dst_ip": "fe80::2",
             "src_port": 0, "dst_port": 0, "icmp_type": 128, "icmp_code": 0},
            communityid.FlowTuple.make_icmp6("fe80::1", "fe80::2", 128, 0),
        ),
        (
            {"protocol": 47, "src_port": 0, "dst_port": 0},
            communityid.FlowTuple.make_ip("10.0.0.5", "203.0.113.7", 47),
        ),
    ],
)
def test_community_id_matches_communityid_package(changes: dict, expected: object) -> None:
    assert community_id(make_verdict(**changes)) == communityid.CommunityID().calc(expected)


def test_community_id_ignores_direction() -> None:
    forward = make_verdict()
    backward = make_verdict(src_ip="203.0.113.7", src_port=443, dst_ip="10.0.0.5", dst_port=49152)
    assert community_id(forward) == community_id(backward)


def test_to_event_alert_has_suricata_fields_and_botunet_object() -> None:
    event = to_event(make_verdict(), CONTEXT)
    assert event["event_type"] == "alert"
    assert event["timestamp"] == "2026-01-06T01:31:29.500330+0000"
    assert (event["src_ip"], event["src_port"], event["dest_ip"], event["dest_port"]) == (
        "10.0.0.5", 49152, "203.0.113.7", 443,
    )
    assert event["proto"] == "TCP"
    assert event["pcap_filename"] == "cap.pcap"
    assert event["alert"]["signature"] == ALERT_SIGNATURE
    assert event["alert"]["severity"] == 1
    assert event["botunet"] == {
        "packets": 8,
        "score": 0.93,
        "verdict": "botnet",
        "trigger": "ready",
        "model": "unet1d_light",
        "model_version": "0.1.0",
        "threshold": 0.5,
    }
    assert event["flow"]["pkts_toserver"] == 5 and event["flow"]["bytes_toclient"] == 1900
    assert event["flow"]["start"] == "2026-01-06T01:31:29.000000+0000"


def test_to_event_benign_is_a_flow_without_alert() -> None:
    event = to_event(make_verdict(score=0.2, botnet=False, trigger="fin", packets=3), CONTEXT)
    assert event["event_type"] == "flow"
    assert "alert" not in event
    assert event["botunet"]["verdict"] == "benign"
    assert event["botunet"]["trigger"] == "fin"


def test_proto_name_uses_names_then_numbers() -> None:
    assert [proto_name(p) for p in (1, 6, 17, 58, 47)] == ["ICMP", "TCP", "UDP", "IPv6-ICMP", "47"]


def test_flatten_covers_every_column() -> None:
    row = flatten(to_event(make_verdict(), CONTEXT))
    assert list(row) == list(COLUMNS)
    assert row["botunet.score"] == 0.93
    assert row["alert.signature"] == ALERT_SIGNATURE
    benign = flatten(to_event(make_verdict(botnet=False), CONTEXT))
    assert benign["alert.signature"] is None


@pytest.mark.parametrize(("name", "expected"), [("a.json", "eve"), ("a.CSV", "csv"),
                                                ("a.parquet", "parquet"), ("a.log", "eve")])
def test_infer_format_from_suffix(name: str, expected: str) -> None:
    assert infer_format(name, None) == expected
    assert infer_format(name, "csv") == "csv"


def test_infer_format_rejects_unknown_format() -> None:
    with pytest.raises(ConfigError, match="format must be one of eve, csv, parquet"):
        infer_format("a.json", "xml")


def test_writers_round_trip_the_same_fields(tmp_path) -> None:
    events = [to_event(make_verdict(), CONTEXT),
              to_event(make_verdict(botnet=False, score=0.1, src_port=1), CONTEXT)]
    for fmt in ("eve", "csv", "parquet"):
        with open_writer(tmp_path / f"out.{fmt}", fmt) as writer:
            for event in events:
                writer.write(event)
            writer.flush()

    lines = (tmp_path / "out.eve").read_text().splitlines()
    assert [json.loads(line) for line in lines] == events

    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["community_id"] == events[0]["community_id"]
    assert float(rows[1]["botunet.score"]) == 0.1 and rows[1]["alert.signature"] == ""

    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == list(COLUMNS)
    assert table.column("flow_id").to_pylist() == [e["flow_id"] for e in events]
    assert table.column("alert.severity").to_pylist() == [1, None]


def test_open_writer_names_a_missing_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_writer(tmp_path / "missing" / "out.json")
