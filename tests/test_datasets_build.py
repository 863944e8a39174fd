"""Captures to stored datasets through the real sessions stage: bytes, labels, files, CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from botunet.cli.main import main
from botunet.config import SampleConfig, SessionConfig, SplitConfig
from botunet.datasets.build import COLUMNS, build_dataset
from botunet.datasets.dataset import load_dataset
from botunet.errors import ConfigError, DatasetError
from botunet.samples.extract import extract_batch, extract_sample
from botunet.sessions.assembler import iter_sessions
from packet_builders import (
    LINKTYPE_ETHERNET,
    ethernet,
    ipv4,
    ipv6,
    read_pcap,
    tcp,
    tcp_timestamp,
    udp,
    write_pcap,
)

RAW = SampleConfig(n_packets=4, bytes_per_packet=100, mask="none")


def _sessions(path: Path, sample: SampleConfig = RAW):
    return list(iter_sessions([path], sample.session_config()))


# fixtures of the shared collection


def test_raw_ip_fixtures_start_at_the_ip_header(fixtures_dir):
    for name, first in (("raw-ipv4.pcap", 0x45), ("raw-ipv6.pcap", 0x60)):
        (session,) = _sessions(fixtures_dir / name)
        _, ((_, frame),) = read_pcap(fixtures_dir / name)  # link type 101: frame = IP packet
        vector = extract_sample(session, RAW)
        assert vector[0] == first
        assert vector[: len(frame)].tobytes() == frame[:100]
        assert not vector[len(frame) :].any()


def _strip_vlan_tags(source: Path, target: Path) -> Path:
    """The same capture with the two 4-byte VLAN tags (bytes 12..19) cut from each frame."""
    header = source.read_bytes()[:24]
    _, records = read_pcap(source)
    with target.open("wb") as out:
        out.write(header)
        for record, frame in records:
            assert frame[12:14] in (b"\x88\xa8", b"\x81\x00", b"\x91\x00")
            untagged = frame[:12] + frame[20:]
            out.write(record[:8] + struct.pack("<II", len(untagged), len(untagged)) + untagged)
    return target


@pytest.mark.parametrize("mask", ["none", "strict"])
def test_qinq_session_matches_its_untagged_copy(fixtures_dir, tmp_path, mask):
    untagged = _strip_vlan_tags(fixtures_dir / "http-qinq.pcap", tmp_path / "untagged.pcap")
    sample = SampleConfig(n_packets=8, bytes_per_packet=100, mask=mask)
    tagged_sessions = _sessions(fixtures_dir / "http-qinq.pcap", sample)
    plain_sessions = _sessions(untagged, sample)

    assert len(tagged_sessions) == len(plain_sessions) == 1
    tagged = extract_batch(tagged_sessions, sample)
    assert np.array_equal(tagged, extract_batch(plain_sessions, sample))
    assert tagged[0, 0] == 0x45 and tagged[0, 100] == 0x45


def test_start_payload_begins_at_first_data_packet(fixtures_dir):
    (session,) = _sessions(fixtures_dir / "http-qinq.pcap")
    first = extract_sample(session, RAW).reshape(4, 100)
    payload = extract_sample(session, SampleConfig(n_packets=4, start="payload", mask="none"))
    payload = payload.reshape(4, 100)

    assert first[0, 33] == 0x02  # TCP flags of the SYN (IPv4 20 bytes + 13)
    assert first[1, 33] == 0x12  # SYN-ACK
    data = next(p for p in session.packets if p.payload_length > 0)
    assert data.index == 3
    assert payload[0, 33] & 0x08  # PSH: the first data segment, not the handshake
    assert payload[0].tobytes() == data.data[:100]
    assert not np.array_equal(first[0], payload[0])


# masks through the real stage


def _options_capture(path: Path) -> Path:
    record_route = bytes([7, 11, 4, 198, 51, 100, 1, 198, 51, 100, 2, 1])
    v4 = ipv4("10.1.2.3", "203.0.113.9", 6,
              tcp(49152, 80, options=tcp_timestamp(0x01020304, 0x05060708), payload=b"GET /"),
              ttl=128, ident=0x4242, options=record_route)
    fragment = struct.pack("!HI", 1, 0xDEADBEEF)
    v6 = ipv6("2001:db8::1", "2001:db8:ffff::2", 6,
              tcp(50000, 443, options=tcp_timestamp(0x11111111, 0x22222222), payload=b"x" * 40),
              extensions=[(0, b"\x01\x04\0\0\0\0"), (44, fragment), (60, b"\x01\x04\0\0\0\0")])
    return write_pcap(path, [ethernet(v4), ethernet(v6, vlans=[7])], linktype=LINKTYPE_ETHERNET)


def test_strict_mask_offsets_through_the_sessions_stage(tmp_path):
    capture = _options_capture(tmp_path / "options.pcap")
    sample = SampleConfig(n_packets=1, bytes_per_packet=100)
    sessions = {s.ip_version: s for s in _sessions(capture, sample)}
    v4, v6 = sessions[4], sessions[6]
    assert v4.packets[0].l4_offset == 32 and v6.packets[0].l4_offset == 64

    raw4 = v4.packets[0].data
    masked4 = extract_sample(v4, sample)
    zero4 = [4, 5, 8, 10, 11, *range(12, 20), *range(23, 31), *range(36, 44), 48, 49,
             *range(56, 64)]
    assert masked4[zero4].tolist() == [0] * len(zero4)
    kept4 = sorted(set(range(len(raw4))) - set(zero4))
    assert masked4[kept4].tobytes() == bytes(raw4[i] for i in kept4)

    raw6 = v6.packets[0].data
    masked6 = extract_sample(v6, sample)
    zero6 = [2, 3, 7, *range(8, 40), *range(52, 56), *range(68, 76), 80, 81, *range(88, 96)]
    assert masked6[zero6].tolist() == [0] * len(zero6)
    assert masked6[1] == raw6[1] & 0xF0
    kept6 = sorted(set(range(100)) - set(zero6) - {1})
    assert masked6[kept6].tobytes() == bytes(raw6[i] for i in kept6)


# building and loading datasets


def _dns_frames(host: str, n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        name = bytes(rng.integers(97, 123, 12).astype(np.uint8))
        header = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0)
        query = header + b"\x0c" + name + b"\x00\x00\x01\x00\x01"
        frames.append(ipv4(host, "10.0.0.53", 17, udp(40000 + i, 53, query)))
        frames.append(ipv4("10.0.0.53", host, 17, udp(53, 40000 + i, query)))
    return frames


def _tree(root: Path) -> Path:
    """botnet/dga (sidecar: 10.0.2.108 infected) and benign/office captures."""
    bot = root / "botnet" / "dga"
    bot.mkdir(parents=True)
    frames = _dns_frames("10.0.2.108", 20, seed=1) + _dns_frames("10.0.2.50", 5, seed=2)
    write_pcap(bot / "dga.pcap", frames)
    (bot / "dga.pcap.labels.json").write_text(json.dumps({"infected_hosts": ["10.0.2.108"]}))
    for i in range(3):
        office = root / "benign" / "office"
        office.mkdir(parents=True, exist_ok=True)
        write_pcap(office / f"day{i}.pcap", _dns_frames(f"192.168.1.{10 + i}", 12, seed=10 + i))
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return _tree(tmp_path / "captures")


def test_build_dataset_files_labels_and_counts(tree, tmp_path):
    sample = SampleConfig(n_packets=2, bytes_per_packet=60)
    out = build_dataset([tree], tmp_path / "ds", sample=sample, split=SplitConfig(seed=1))
    samples = load_dataset(out, verify=True)

    assert len(samples) == 20 + 5 + 36
    assert samples.vectors.shape == (61, 120) and samples.vectors.dtype == np.uint8
    assert isinstance(samples.vectors, np.memmap)
    assert samples.labels.dtype == np.int64
    assert samples.sample_config == sample
    assert samples.session_config.keep_packets == 2
    assert samples.metadata.column_names == list(COLUMNS)

    meta = samples.metadata.to_pydict()
    assert meta["row"] == list(range(61))
    for i, src in enumerate(meta["src_ip"]):
        botnet = src == "10.0.2.108"
        assert samples.labels[i] == int(botnet)
        assert meta["label_name"][i] == ("botnet" if botnet else "benign")
        if meta["capture"][i] == "botnet/dga/dga.pcap":
            assert meta["family"][i] == "dga" and meta["label_source"][i] == "sidecar"
        else:
            assert meta["family"][i] == "office" and meta["label_source"][i] == "folder"
    assert set(meta["end_reason"]) <= {"idle", "active", "fin", "rst", "end"}
    assert all(n == 2 for n in meta["n_packets"]) and all(n == 2 for n in meta["packets_used"])

    info = samples.info
    assert info["counts"]["labels"] == {"benign": 41, "botnet": 20}
    assert info["counts"]["sessions"] == 61
    assert info["accounting"]["sessions"] == 61 and info["accounting"]["packets_read"] == 122
    assert sum(sum(v.values()) for v in info["counts"]["splits"].values()) == 61
    families = {(r["label"], r["family"]): r for r in info["counts"]["families"]}
    assert {key: r["total"] for key, r in families.items()} == {
        ("benign", "dga"): 5, ("benign", "office"): 36, ("botnet", "dga"): 20
    }
    assert sum(families[("botnet", "dga")][s] for s in ("train", "val", "test")) == 20
    assert samples.label_counts("train") == {"benign": 25, "botnet": 12}
    assert samples.indices("val").tolist() == np.flatnonzero(samples.splits == "val").tolist()

    # DNS: the strict mask zeroes UDP checksum and transaction ID at 26..29
    assert not samples.vectors[:, 26:30].any() and not samples.vectors[:, 12:20].any()


def test_build_dataset_is_byte_identical_and_seeded(tree, tmp_path):
    split = SplitConfig(mode="random", seed=4)
    a = build_dataset([tree], tmp_path / "a", split=split)
    b = build_dataset([tree], tmp_path / "b", split=split)
    for name in ("vectors.npy", "samples.parquet", "dataset.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    c = build_dataset([tree], tmp_path / "c", split=SplitConfig(mode="random", seed=5))
    assert (a / "vectors.npy").read_bytes() == (c / "vectors.npy").read_bytes()
    assert not np.array_equal(load_dataset(a).splits, load_dataset(c).splits)
    assert load_dataset(a).content_hash != load_dataset(c).content_hash


@pytest.mark.parametrize("mode", ["capture", "host"])
def test_group_splits_keep_groups_whole(tree, tmp_path, mode):
    out = build_dataset([tree], tmp_path / mode, split=SplitConfig(mode=mode, seed=0))
    samples = load_dataset(out)
    key = "capture" if mode == "capture" else "host"
    groups = samples.metadata.column(key).to_pylist()
    owner: dict[str, str] = {}
    for group, split in zip(groups, samples.splits):
        assert owner.setdefault(group, split) == split
    assert samples.info["config"]["dedup_enabled"] is True
    if mode == "host":
        hosts = set(groups)
        assert hosts == {"10.0.2.108", "10.0.2.50", "192.168.1.10", "192.168.1.11",
                         "192.168.1.12"}


def test_dedup_removes_later_split_copies(tmp_path):
    root = tmp_path / "caps"
    for label, family in (("botnet", "a"), ("benign", "b")):
        folder = root / label / family
        folder.mkdir(parents=True)
        for i in range(3):  # the same one-packet session in every capture
            frame = ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000, 2000, bytes([ord(label[1])] * 8)))
            write_pcap(folder / f"c{i}.pcap", [frame])
    sample = SampleConfig(n_packets=1, bytes_per_packet=40)
    kept = load_dataset(build_dataset([root], tmp_path / "kept", sample=sample,
                                      split=SplitConfig(mode="capture", dedup=False)))
    assert len(kept) == 6 and kept.info["duplicates"]["cross_split"] == 4

    deduped = load_dataset(build_dataset([root], tmp_path / "dedup", sample=sample,
                                         split=SplitConfig(mode="capture")))
    assert len(deduped) == 2 and set(deduped.splits) == {"train"}
    assert deduped.info["duplicates"]["removed"] == {"train": 0, "val": 2, "test": 2}
    assert deduped.info["counts"]["duplicates_removed"] == 4


def test_max_per_capture_and_botnet_ips(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    write_pcap(plain / "day.pcap", _dns_frames("10.9.9.9", 30, seed=3) + _dns_frames(
        "10.9.9.8", 10, seed=4))
    ips = tmp_path / "ips.txt"
    ips.write_text("10.9.9.9\n")
    out = build_dataset([plain], tmp_path / "ds", botnet_ips=ips,
                        split=SplitConfig(max_per_capture=15, seed=2))
    samples = load_dataset(out)
    assert len(samples) == 15
    assert samples.info["counts"]["sessions"] == 40
    assert samples.info["counts"]["dropped_max_per_capture"] == 25
    assert set(samples.metadata.column("label_source").to_pylist()) == {"ip-list"}
    src = np.array(samples.metadata.column("src_ip").to_pylist())
    assert np.array_equal(samples.labels, (src == "10.9.9.9").astype(np.int64))
    assert samples.info["botnet_ips"] == {"file": str(ips), "addresses": ["10.9.9.9"]}


def test_build_dataset_without_label_source_is_an_error(tmp_path):
    write_pcap(tmp_path / "day.pcap", _dns_frames("10.0.0.1", 1, seed=0))
    with pytest.raises(DatasetError, match=r"no label for .*day\.pcap"):
        build_dataset([tmp_path / "day.pcap"], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_load_dataset_errors_name_the_folder(tree, tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no dataset\.json.*empty"):
        load_dataset(tmp_path / "empty")

    out = build_dataset([tree], tmp_path / "ds")
    (out / "samples.parquet").unlink()
    with pytest.raises(DatasetError, match=r"missing samples\.parquet"):
        load_dataset(out)

    out = build_dataset([tree], tmp_path / "ds2")
    np.save(out / "vectors.npy", np.zeros((3, 800), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"vectors\.npy is uint8 \(3, 800\)"):
        load_dataset(out)


def test_verify_detects_changed_metadata(tree, tmp_path):
    out = build_dataset([tree], tmp_path / "ds")
    table = pq.read_table(out / "samples.parquet")
    labels = table.column("label").to_numpy().copy()
    labels[0] ^= 1
    pq.write_table(table.set_column(1, "label", pa.array(labels)), out / "samples.parquet")
    with pytest.raises(DatasetError, match="was modified"):
        load_dataset(out, verify=True)


def test_session_config_must_keep_enough():
    from botunet.datasets.build import write_samples
    from botunet.sessions.accounting import Accounting

    with pytest.raises(ConfigError, match="sessions keep 1 packets"):
        write_samples(
            [], lambda s: [], "unused", sample=SampleConfig(n_packets=2),
            split=SplitConfig(), session_config=SessionConfig(keep_packets=1, keep_bytes=100),
            accounting=Accounting(), provenance={},
        )


# command line


def test_cli_dataset_builds_and_summarises(tree, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["dataset", str(tree), "-o", str(out), "--packets", "2", "--bytes", "40",
                 "--start", "payload", "--mask", "addresses", "--split", "capture",
                 "--seed", "3", "--no-dedup", "--max-per-capture", "20",
                 "--idle-timeout", "60", "--no-tcp-close"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    samples = load_dataset(out)
    assert samples.sample_config == SampleConfig(2, 40, "payload", "addresses")
    assert samples.split_config == SplitConfig(mode="capture", seed=3, dedup=False,
                                               max_per_capture=20)
    assert samples.session_config.idle_timeout_s == 60 and not samples.session_config.tcp_close
    assert len(samples) == 20 + 3 * 12  # the 25 sessions of dga.pcap capped to 20
    assert "train" in captured.out and "dga" in captured.out
    assert "duplicates removed" in captured.out
    assert "packets: 122 read, 122 in sessions" in captured.out


def test_cli_dataset_reports_errors(tmp_path, capsys):
    write_pcap(tmp_path / "day.pcap", _dns_frames("10.0.0.1", 1, seed=0))
    assert main(["dataset", str(tmp_path / "day.pcap"), "-o", str(tmp_path / "ds")]) == 1
    assert "error: no label for" in capsys.readouterr().err
    assert main(["dataset", str(tmp_path / "day.pcap"), "-o", str(tmp_path / "ds"),
                 "--packets", "0"]) == 1
    assert "error: n_packets must be in 1..64, got 0" in capsys.readouterr().err


def test_cli_flags_map_onto_configs():
    from botunet.cli.commands.dataset import configs_from_args
    from botunet.cli.main import build_parser

    args = build_parser().parse_args(
        ["dataset", "in", "-o", "out", "--active-timeout", "900", "--decode-tunnels", "--dedup",
         "--split", "random"]
    )
    sample, split, session = configs_from_args(args)
    assert sample == SampleConfig()
    assert split == SplitConfig(mode="random", dedup=True) and split.dedup_enabled
    assert session == SessionConfig(active_timeout_s=900.0, decode_tunnels=True)
    defaults = configs_from_args(build_parser().parse_args(["dataset", "in", "-o", "out"]))
    assert defaults == (SampleConfig(), SplitConfig(), SessionConfig())
