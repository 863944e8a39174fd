"""``botunet sessions`` run in-process: summary, output files, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import communityid
import pyarrow.parquet as pq
import pytest
from capture_writers import T0_NS, ip4, pcap_bytes, udp, write_pcap

from botunet.cli.commands.dataset import add_session_arguments, session_config_from_args
from botunet.cli.main import main
from botunet.config import SessionConfig

FIELDS = [
    "community_id", "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "first_ts", "last_ts",
    "packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", "end_reason", "capture",
]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sessions_prints_summary(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "sessions", str(fixtures_dir / "ip-mix-arp-stp.pcap"))
    assert code == 0
    assert "files       1" in out
    assert "packets     33 read, 26 in sessions, 7 skipped (non_ip 7)" in out
    assert "sessions    8" in out
    assert "protocol  UDP 5, TCP 2, ICMP 1" in out
    assert err == ""


def test_cli_sessions_writes_jsonl(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "s.jsonl"
    capture = str(fixtures_dir / "http-qinq.pcap")
    code, out, _ = run_cli(capsys, "sessions", capture, "--no-tcp-close", "-o", str(out_file))
    assert code == 0 and "(1 records)" in out
    (record,) = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert list(record) == FIELDS
    assert (record["packets_fwd"], record["packets_bwd"], record["end_reason"]) == (7, 7, "end")
    flow = communityid.FlowTuple.make_tcp("141.142.228.5", "192.150.187.43", 59856, 80)
    assert record["community_id"] == communityid.CommunityID().calc(flow)


def test_cli_sessions_writes_csv_and_parquet(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = str(fixtures_dir / "pcapng-multi-interface.pcapng")
    assert run_cli(capsys, "sessions", capture, "-o", str(tmp_path / "s.csv"))[0] == 0
    assert run_cli(capsys, "sessions", capture, "-o", str(tmp_path / "s.parquet"))[0] == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    table = pq.read_table(tmp_path / "s.parquet")
    assert len(rows) == table.num_rows == 3
    assert table.column_names == FIELDS
    assert sorted(table.column("first_ts").to_pylist())[0] == pytest.approx(1767663089.500330493)
    assert {r["dst_ip"] for r in rows} == {"1.1.1.1"}


def test_cli_sessions_options_reach_the_meter(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = str(fixtures_dir / "pppoe-over-qinq.pcap")
    _, out, _ = run_cli(capsys, "sessions", capture)
    assert "sessions    2" in out and "fin" not in out
    _, out, _ = run_cli(capsys, "sessions", capture, "--idle-timeout", "300", "--no-tcp-close")
    assert "sessions    1" in out and "ended by  end 1" in out


def test_cli_sessions_close_grace(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(fixtures_dir / "http-qinq.pcap")
    _, out, _ = run_cli(capsys, "sessions", capture)
    assert "packets     14 read, 14 in sessions, 0 skipped (none)" in out
    _, out, _ = run_cli(capsys, "sessions", capture, "--close-grace", "0")
    assert "packets     14 read, 13 in sessions, 1 skipped (after_close 1)" in out
    assert "ended by  fin 1" in out
    code, _, err = run_cli(capsys, "sessions", capture, "--close-grace", "-1")
    assert code == 1
    one_error_line(err, "close_grace_s must be a finite number >= 0, got -1.0")


def test_dataset_session_flags_include_close_grace() -> None:
    parser = argparse.ArgumentParser()
    add_session_arguments(parser)
    assert session_config_from_args(parser.parse_args([])) == SessionConfig()
    config = session_config_from_args(parser.parse_args(["--close-grace", "0.5"]))
    assert config == SessionConfig(close_grace_s=0.5)


def test_cli_sessions_walks_folders(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "sessions", str(fixtures_dir))
    assert code == 0
    assert "files       18" in out  # CASES.md left out


def test_cli_sessions_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pcap_bytes([(T0_NS, ip4("10.0.0.1", "10.0.0.2", 17, udp(1, 2)))], 101)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    code, out, _ = run_cli(capsys, "sessions", "-")
    assert code == 0 and "sessions    1" in out


def one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty file"),
        (b"just some text\n", "not a pcap or pcapng capture"),
        (pcap_bytes([]) + b"\x01\0\0\0\0\0\0\0\xff\xff\xff\xff<\0\0\0" + b"x" * 60,
         "corrupt record length 4294967295 (more than 262144) at offset 24"),
    ],
    ids=["empty", "text", "corrupt-length"],
)
def test_cli_sessions_bad_file_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "sessions", str(path))
    assert code == 1
    one_error_line(err, str(path), fragment)


def test_cli_sessions_cut_capture_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [(T0_NS + i, ip4("10.0.0.1", "10.0.0.2", 17, udp(i + 1, 2))) for i in range(3)]
    path = write_pcap(tmp_path / "cut.pcap", frames, 101)
    path.write_bytes(path.read_bytes()[:-3])
    code, out, err = run_cli(capsys, "sessions", str(path))
    assert code == 0
    assert "(1 cut short)" in out and "sessions    2" in out
    assert err.count("cut short") == 1


def test_cli_sessions_bad_output_suffix(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "sessions", str(fixtures_dir / "raw-ipv4.pcap"), "-o", "out.txt")
    assert code == 1
    one_error_line(err, "output must end in .jsonl, .csv, .parquet")


def test_cli_sessions_bad_timeout(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(fixtures_dir / "raw-ipv4.pcap")
    code, _, err = run_cli(capsys, "sessions", capture, "--idle-timeout", "-5")
    assert code == 1
    one_error_line(err, "idle_timeout_s must be > 0, got -5")


def test_cli_sessions_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "sessions", str(tmp_path))
    assert code == 1
    one_error_line(err, "no capture files")


def test_cli_sessions_icmp_has_no_community_id(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "icmp.jsonl"
    run_cli(capsys, "sessions", str(fixtures_dir / "linux-sll2.pcap"), "-o", str(out_file))
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert sorted(r["protocol"] for r in records) == [1, 58]
    assert all(r["community_id"] is None for r in records)
