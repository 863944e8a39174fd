"""Capture framing: pcap magics, pcapng blocks, gzip, stdin, chunking and bad files."""

from __future__ import annotations

import gzip
import io
import logging
import random
import struct
import sys
from pathlib import Path

import pytest
from capture_writers import (
    T0_NS,
    epb,
    eth,
    idb,
    ip4,
    obsolete_pb,
    other_block,
    pcap_bytes,
    shb,
    spb,
    tcp,
    udp,
    write_pcap,
)

from botunet import _meter
from botunet.config import SessionConfig
from botunet.errors import PcapFormatError
from botunet.pcap.reader import find_captures, is_capture, iter_packets, sniff_format
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import iter_sessions
from botunet.sessions.session import Packet, Session

FRAMES = [eth(ip4("10.0.0.1", "10.0.0.2", 17, udp(1000 + i, 53, b"q" * i))) for i in range(5)]
RECORDS = [(T0_NS + i * 1_000_123_456, frame) for i, frame in enumerate(FRAMES)]


def packets(path: Path) -> list[tuple[int, int, bytes]]:
    return [(p.ts_ns, p.link_type, p.data) for p in iter_packets(path)]


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
def test_reader_reads_all_four_pcap_magics(
    tmp_path: Path, nanosecond: bool, big_endian: bool
) -> None:
    path = write_pcap(tmp_path / "x.pcap", RECORDS, nanosecond=nanosecond, big_endian=big_endian)
    unit = 1 if nanosecond else 1000
    assert packets(path) == [(ts // unit * unit, 1, frame) for ts, frame in RECORDS]
    assert sniff_format(path.read_bytes()) == "pcap"


def test_reader_reads_pcap_fraction_as_signed_like_libpcap(tmp_path: Path) -> None:
    # a damaged microsecond field of 0xfffbe770 is -268432 us, not 71 minutes
    data = bytearray(pcap_bytes([(1_614_582_000 * 10**9, FRAMES[0])]))
    data[28:32] = struct.pack("<i", -268_432)
    path = tmp_path / "fraction.pcap"
    path.write_bytes(bytes(data))
    assert [p.ts_ns for p in iter_packets(path)] == [1_614_582_000 * 10**9 - 268_432_000]


def test_reader_pcapng_interfaces_link_types_and_resolutions(tmp_path: Path) -> None:
    raw = ip4("10.0.0.9", "10.0.0.8", 6, tcp(1, 2))
    data = (
        shb()
        + idb(1)  # default: microseconds
        + idb(101, tsresol=9)  # nanoseconds
        + idb(1, tsresol=0x80 | 10)  # 2^-10 s
        + idb(101, tsresol=3, tsoffset_s=100)  # milliseconds, plus 100 s
        + epb(0, 1_700_000_000_123_456, FRAMES[0])
        + other_block()
        + epb(1, 1_700_000_000_123_456_789, raw)
        + epb(2, 1024 * 1_700_000_000 + 512, FRAMES[1])
        + obsolete_pb(3, 1_700_000_000_250, raw)
        + spb(FRAMES[2])
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    assert packets(path) == [
        (1_700_000_000_123_456_000, 1, FRAMES[0]),
        (1_700_000_000_123_456_789, 101, raw),
        (1_700_000_000_500_000_000, 1, FRAMES[1]),
        (1_700_000_100_250_000_000, 101, raw),
        (1_700_000_100_250_000_000, 1, FRAMES[2]),  # simple packet: interface 0, last time
    ]


def test_reader_pcapng_big_endian_and_new_section(tmp_path: Path) -> None:
    data = (
        shb(">") + idb(1, order=">") + epb(0, 5_000_000, FRAMES[0], order=">")
        + shb("<") + idb(101, tsresol=9) + epb(0, 7, FRAMES[3][14:])
    )
    path = tmp_path / "sections.pcapng"
    path.write_bytes(data)
    assert packets(path) == [(5_000_000_000, 1, FRAMES[0]), (7, 101, FRAMES[3][14:])]


def test_reader_pcapng_undescribed_interface_is_unsupported_link(tmp_path: Path) -> None:
    path = tmp_path / "noif.pcapng"
    path.write_bytes(shb() + idb(1) + epb(0, 1, FRAMES[0]) + epb(5, 2, FRAMES[1]))
    assert [p.link_type for p in iter_packets(path)] == [1, -1]
    accounting = Accounting()
    list(iter_sessions(path, accounting=accounting))
    assert accounting.skipped == {"unsupported_link": 1}
    assert accounting.packets_in_sessions == 1


def test_reader_chooses_format_from_bytes_not_name(tmp_path: Path) -> None:
    ng = tmp_path / "really-pcapng.pcap"
    ng.write_bytes(shb() + idb(1) + epb(0, 1, FRAMES[0]))
    classic = write_pcap(tmp_path / "really-pcap.txt.pcapng", RECORDS[:1])
    assert [p.data for p in iter_packets(ng)] == [FRAMES[0]]
    assert [p.data for p in iter_packets(classic)] == [FRAMES[0]]


def test_reader_reads_gzip_by_magic(tmp_path: Path) -> None:
    plain = pcap_bytes(RECORDS)
    packed = tmp_path / "capture.pcap.gz"
    packed.write_bytes(gzip.compress(plain))
    disguised = tmp_path / "capture.pcap"
    disguised.write_bytes(gzip.compress(plain))
    plain_path = write_pcap(tmp_path / "p.pcap", RECORDS)
    assert packets(packed) == packets(disguised) == packets(plain_path)
    assert is_capture(packed)


def test_reader_reads_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(pcap_bytes(RECORDS)))))
    monkeypatch.setattr(sys, "stdin", stdin)
    sessions = list(iter_sessions("-"))
    assert len(sessions) == 5
    assert {s.capture for s in sessions} == {"<stdin>"}


@pytest.mark.parametrize("chunk", [1, 7, 16, 100])
def test_meter_keeps_partial_records_across_chunks(chunk: int) -> None:
    data = pcap_bytes(RECORDS * 3)

    def run(step: int) -> list[tuple]:
        meter = _meter.Meter(Session, Packet, "x", 120_000, 1_800_000)
        out = []
        for i in range(0, len(data), step):
            out += meter.feed(data[i : i + step])
        out += meter.finish()
        return [(s.src_port, s.n_packets, s.first_ns) for s in out]

    assert run(chunk) == run(len(data))


def test_find_captures_walks_folders_by_magic(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_pcap(tmp_path / "a" / "one.bin", RECORDS)
    (tmp_path / "a" / "two.pcapng").write_bytes(shb() + idb(1))
    (tmp_path / "a" / "one.bin.labels.json").write_text("{}")
    (tmp_path / "a" / "notes.md").write_text("# notes")
    (tmp_path / "a" / "junk.pcap").write_text("not a capture")
    assert find_captures([tmp_path]) == [tmp_path / "a" / "one.bin", tmp_path / "a" / "two.pcapng"]


# --- bad files ----------------------------------------------------------------------------


def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(PcapFormatError) as info:
        list(iter_sessions(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    expect_error(path, "empty file")


def test_text_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "readme.pcap"
    path.write_text("hello, this is not a capture\n")
    expect_error(path, "not a pcap or pcapng capture")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    expect_error(tmp_path / "missing.pcap", "cannot open")


def test_cut_file_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    path.write_bytes(pcap_bytes([])[:10])
    expect_error(path, "file header")


def test_corrupt_record_length_names_offset(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(RECORDS))
    second = 24 + 16 + len(FRAMES[0])
    data[second + 8 : second + 12] = struct.pack("<I", 0x7FFFFFFF)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt record length", f"offset {second}")


def test_corrupt_pcapng_block_length_is_an_error(tmp_path: Path) -> None:
    data = bytearray(shb() + idb(1) + epb(0, 1, FRAMES[0]))
    data[len(shb()) + 4 : len(shb()) + 8] = struct.pack("<I", 13)
    path = tmp_path / "corrupt.pcapng"
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt block length 13", f"offset {len(shb())}")


def test_corrupt_gzip_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pcap.gz"
    path.write_bytes(gzip.compress(pcap_bytes(RECORDS))[:-30])
    expect_error(path, "cannot read")


def test_cut_last_record_keeps_the_others_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(RECORDS)[:-5])
    accounting = Accounting()
    with caplog.at_level(logging.WARNING, logger="botunet"):
        sessions = list(iter_sessions(path, accounting=accounting))
    assert len(sessions) == 4
    assert (accounting.packets_read, accounting.cut_files) == (4, 1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cut short" in warnings[0].getMessage()


# --- robustness ---------------------------------------------------------------------------


def test_random_damage_never_crashes(fixtures_dir: Path) -> None:
    rng = random.Random(1234)
    sources = sorted(p for p in fixtures_dir.iterdir() if p.suffix in (".pcap", ".pcapng"))
    config = SessionConfig(keep_packets=4, keep_bytes=64, decode_tunnels=True)
    outcomes = {"ok": 0, "error": 0}
    for trial in range(600):
        data = bytearray(rng.choice(sources).read_bytes())
        if trial % 3 == 0:
            data = data[: rng.randrange(len(data) + 1)]
        for _ in range(rng.randrange(1, 12)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        meter = _meter.Meter(
            Session, Packet, "fuzz", 120_000, 1_800_000, decode_tunnels=True,
            keep_packets=config.keep_packets, keep_bytes=config.keep_bytes,
        )
        try:
            step = rng.choice([17, 256, len(data) + 1])
            for i in range(0, len(data), step):
                meter.feed(bytes(data[i : i + step]))
            meter.finish()
        except _meter.FormatError:
            outcomes["error"] += 1
            continue
        stats = meter.stats()
        skipped = sum(stats["skipped"].values())
        assert stats["packets_read"] == stats["packets_in_sessions"] + skipped
        outcomes["ok"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 10
