"""Label sources: folders, sidecars, IP lists, manifests, and their precedence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from botunet.errors import DatasetError
from botunet.labels.schema import Label
from botunet.labels.sources import (
    CaptureSource,
    discover_captures,
    folder_label,
    label_sessions,
    read_ip_list,
    read_manifest,
)
from packet_builders import ipv4, packet, session, udp, write_pcap


def _capture(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_pcap(path, [ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2))])


def _sidecar(capture: Path, hosts: list[str], **extra: object) -> None:
    data = {"infected_hosts": hosts, **extra}
    capture.with_name(capture.name + ".labels.json").write_text(json.dumps(data))


def _between(src: str, dst: str):
    return session([packet(0, b"", 20, 0)], src=(src, 1), dst=(dst, 2))


def test_label_parse_and_names():
    assert Label.parse(" Botnet ") is Label.BOTNET
    assert Label.parse("0") is Label.BENIGN
    assert Label.BOTNET.display_name == "botnet" and int(Label.BOTNET) == 1
    with pytest.raises(ValueError, match="benign or botnet"):
        Label.parse("malware")


def test_folder_label_takes_nearest_folder_and_family_below(tmp_path):
    capture = tmp_path / "benign" / "old" / "botnet" / "neris" / "day1" / "a.pcap"
    assert folder_label(capture) == (Label.BOTNET, "neris")
    assert folder_label(tmp_path / "Benign" / "x.pcap") == (Label.BENIGN, "unknown")
    assert folder_label(tmp_path / "captures" / "x.pcap") is None


def test_discover_labels_folders_and_names_captures_below_common_root(tmp_path):
    _capture(tmp_path / "data" / "botnet" / "neris" / "a.pcap")
    _capture(tmp_path / "data" / "benign" / "web" / "b.pcapng")
    (tmp_path / "data" / "benign" / "web" / "notes.txt").write_text("not a capture")

    sources = discover_captures([tmp_path / "data"])

    assert [s.name for s in sources] == ["benign/web/b.pcapng", "botnet/neris/a.pcap"]
    benign, botnet = sources
    assert (benign.label, benign.family, benign.label_source) == (Label.BENIGN, "web", "folder")
    assert (botnet.label, botnet.family, botnet.label_source) == (Label.BOTNET, "neris", "folder")
    assert botnet.label_of("1.2.3.4", "5.6.7.8") is Label.BOTNET


def test_sidecar_refines_botnet_folder_per_session(tmp_path):
    capture = _capture(tmp_path / "botnet" / "tinba" / "t.pcap")
    _sidecar(capture, ["10.0.2.108"])
    (source,) = discover_captures([capture])
    assert (source.label, source.family, source.label_source) == (None, "tinba", "sidecar")

    sessions = [
        _between("10.0.2.108", "8.8.8.8"),
        _between("8.8.8.8", "10.0.2.108"),  # infected host as responder
        _between("10.0.2.1", "10.0.2.255"),  # background traffic of another host
    ]
    assert label_sessions(sessions, source).tolist() == [1, 1, 0]


def test_sidecar_in_benign_folder_is_ignored(tmp_path, caplog):
    capture = _capture(tmp_path / "benign" / "lan" / "l.pcap")
    _sidecar(capture, ["10.0.0.1"])
    (source,) = discover_captures([capture])
    assert (source.label, source.label_source) == (Label.BENIGN, "folder")
    assert "ignoring l.pcap.labels.json" in caplog.text


def test_sidecar_without_folder_labels_and_names_family(tmp_path):
    capture = _capture(tmp_path / "x" / "c.pcap")
    _sidecar(capture, ["2001:DB8::0001"], family="emotet")
    (source,) = discover_captures([capture])
    assert source.family == "emotet"
    assert source.label_of("2001:db8::1", "2001:db8::2") is Label.BOTNET  # normalised


def test_ip_list_labels_unlabelled_captures_only(tmp_path):
    ips = tmp_path / "botnet_ips.txt"
    ips.write_text("# ISCX list\n147.32.84.165  # neris\n\n10.0.0.9\n")
    assert read_ip_list(ips) == {"147.32.84.165", "10.0.0.9"}
    plain = _capture(tmp_path / "iscx" / "day.pcap")
    folder = _capture(tmp_path / "benign" / "web" / "w.pcap")

    sources = discover_captures([plain, folder], read_ip_list(ips))

    by_name = {s.name: s for s in sources}
    day = by_name["iscx/day.pcap"]
    assert (day.label_source, day.family) == ("ip-list", "unknown")
    assert day.label_of("192.168.1.1", "147.32.84.165") is Label.BOTNET
    assert day.label_of("192.168.1.1", "147.32.84.166") is Label.BENIGN
    assert by_name["benign/web/w.pcap"].label_of("147.32.84.165", "1.1.1.1") is Label.BENIGN


def test_unlabelled_capture_is_an_error_naming_it(tmp_path):
    plain = _capture(tmp_path / "day.pcap")
    with pytest.raises(DatasetError, match=r"no label for .*day\.pcap"):
        discover_captures([plain])


def test_bad_ip_list_and_sidecar_are_errors_naming_the_file(tmp_path):
    bad = tmp_path / "ips.txt"
    bad.write_text("10.0.0.1\nnot-an-ip\n")
    with pytest.raises(DatasetError, match=r"ips\.txt:2: not an IP address"):
        read_ip_list(bad)
    capture = _capture(tmp_path / "botnet" / "x" / "c.pcap")
    capture.with_name("c.pcap.labels.json").write_text("{broken")
    with pytest.raises(DatasetError, match=r"c\.pcap\.labels\.json"):
        discover_captures([capture])


def test_manifest_input_with_relative_paths(tmp_path):
    _capture(tmp_path / "caps" / "one.pcap")
    _capture(tmp_path / "caps" / "two.pcap")
    manifest = tmp_path / "MANIFEST.csv"
    manifest.write_text(
        "path,label,family_or_source,notes\n"
        "caps/one.pcap,botnet,rbot,x\n"
        "caps/two.pcap,benign,office,y\n"
    )
    assert [(p.name, lab, fam) for p, lab, fam in read_manifest(manifest)] == [
        ("one.pcap", Label.BOTNET, "rbot"),
        ("two.pcap", Label.BENIGN, "office"),
    ]
    one, two = discover_captures([manifest])
    assert (one.name, one.label, one.family, one.label_source) == (
        "one.pcap", Label.BOTNET, "rbot", "manifest"
    )
    assert two.label is Label.BENIGN


def test_manifest_conflicting_with_folder_is_an_error(tmp_path):
    _capture(tmp_path / "benign" / "web" / "w.pcap")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,family_or_source\nbenign/web/w.pcap,botnet,x\n")
    with pytest.raises(DatasetError, match="label conflict"):
        discover_captures([manifest])


def test_missing_input_and_missing_manifest_capture(tmp_path):
    with pytest.raises(DatasetError, match="input not found"):
        discover_captures([tmp_path / "nope"])
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,family_or_source\ngone.pcap,benign,x\n")
    with pytest.raises(DatasetError, match=r"m\.csv:2: capture not found"):
        discover_captures([manifest])


def test_label_sessions_of_a_folder_label():
    source = CaptureSource(Path("x.pcap"), "x.pcap", "web", Label.BENIGN, "folder")
    labels = label_sessions([_between("10.0.0.1", "8.8.8.8")] * 2, source)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0]
    assert label_sessions([], source).size == 0


def test_shared_manifest_and_folders_agree(pcaps_dir):
    """The shared MANIFEST.csv and the folder layout give every capture the same label."""
    by_folder = {s.name: s for s in discover_captures([pcaps_dir])}
    by_manifest = {s.name: s for s in discover_captures([pcaps_dir / "MANIFEST.csv"])}
    assert by_folder.keys() == by_manifest.keys() and len(by_folder) == 454
    for name, source in by_folder.items():
        other = by_manifest[name]
        assert (source.label, source.family, source.hosts) == (
            other.label, other.family, other.hosts
        )
    sidecars = [s for s in by_folder.values() if s.label_source == "sidecar"]
    assert len(sidecars) == 15 and all(s.name.startswith("botnet/") for s in sidecars)
