"""Datasets of the whole shared capture collection: counts, reproducibility, group splits.

The captures are read once per module (sessions keeping 8 packets) and every dataset
is built from that reading with ``write_samples``; one test checks that this gives the
same files as ``build_dataset`` reading the captures itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from botunet.config import SampleConfig, SplitConfig
from botunet.datasets.build import build_dataset, write_samples
from botunet.datasets.dataset import load_dataset
from botunet.labels.sources import discover_captures
from botunet.samples.extract import extract_batch
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import iter_sessions

pytestmark = pytest.mark.slow

FILES = ("vectors.npy", "samples.parquet", "dataset.json")
MAX_N = 8


class Corpus:
    """The shared captures, their labels and their sessions, read once."""

    def __init__(self, pcaps_dir: Path) -> None:
        self.inputs = [str(pcaps_dir)]
        self.captures = discover_captures(self.inputs)
        self.session_config = SampleConfig(n_packets=MAX_N).session_config()
        self.accounting = Accounting()
        self.sessions = {
            c.name: list(iter_sessions([str(c.path)], self.session_config, self.accounting))
            for c in self.captures
        }
        self.n_sessions = sum(len(s) for s in self.sessions.values())

    def build(self, out: Path, sample: SampleConfig, split: SplitConfig) -> Path:
        return write_samples(
            self.captures, lambda source: self.sessions[source.name], out,
            sample=sample, split=split, session_config=self.session_config,
            accounting=self.accounting,
            provenance={"inputs": self.inputs, "botnet_ips": None},
        )


@pytest.fixture(scope="module")
def corpus(pcaps_dir: Path) -> Corpus:
    return Corpus(pcaps_dir)


def test_corpus_accounting_adds_up(corpus):
    acc = corpus.accounting
    assert acc.check() and acc.files == len(corpus.captures) == 454
    assert acc.sessions == corpus.n_sessions > 15000


def test_cached_sessions_build_the_same_files_as_build_dataset(corpus, tmp_path):
    sample = SampleConfig(n_packets=MAX_N)
    direct = build_dataset(corpus.inputs, tmp_path / "direct", sample=sample)
    cached = corpus.build(tmp_path / "cached", sample, SplitConfig())
    for name in FILES:
        assert (direct / name).read_bytes() == (cached / name).read_bytes(), name


@pytest.mark.parametrize("start", ["first", "payload"])
@pytest.mark.parametrize("n_packets", [1, MAX_N])
def test_real_dataset_counts_and_reproducibility(corpus, tmp_path, n_packets, start):
    sample = SampleConfig(n_packets=n_packets, start=start)
    split = SplitConfig(seed=7)
    first = load_dataset(corpus.build(tmp_path / "a", sample, split), verify=True)
    second = load_dataset(corpus.build(tmp_path / "b", sample, split))

    # one sample per session
    assert len(first) == corpus.n_sessions == first.info["counts"]["sessions"]
    assert first.info["accounting"]["sessions"] == corpus.n_sessions
    assert first.vectors.shape == (corpus.n_sessions, n_packets * 100)
    # every sample starts at an IPv4 or IPv6 header
    assert set(np.unique(first.vectors[:, 0] >> 4).tolist()) <= {4, 6}
    used = first.metadata.column("packets_used").to_numpy()
    assert used.min() >= 1 and used.max() <= n_packets
    assert first.label_counts() == {
        "benign": int(np.sum(first.labels == 0)), "botnet": int(np.sum(first.labels == 1))
    }
    assert min(first.label_counts("test").values()) > 0

    # the same seed gives the same splits and the same files
    assert np.array_equal(first.splits, second.splits)
    for name in FILES:
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes(), name


def test_real_payload_start_is_first_payload_packet(corpus, tmp_path):
    samples = load_dataset(corpus.build(tmp_path / "p", SampleConfig(n_packets=2, start="payload"),
                                        SplitConfig()))
    starts = samples.metadata.column("start_index").to_numpy()
    expected = []
    for source in corpus.captures:
        for session in corpus.sessions[source.name]:
            payload = [p.index for p in session.packets if p.payload_length > 0]
            expected.append(payload[0] if payload else 0)
    assert starts.tolist() == expected
    assert np.sum(starts > 0) > 1000  # TCP sessions start after their handshake


@pytest.mark.parametrize("mode, key", [("capture", "capture"), ("host", "host")])
def test_real_group_splits_share_no_group(corpus, tmp_path, mode, key):
    samples = load_dataset(corpus.build(tmp_path / mode, SampleConfig(n_packets=4),
                                        SplitConfig(mode=mode, seed=0)))
    groups = np.array(samples.metadata.column(key).to_pylist())
    members = {
        name: set(groups[samples.indices(name)].tolist()) for name in ("train", "val", "test")
    }
    assert not members["train"] & members["val"]
    assert not members["train"] & members["test"]
    assert not members["val"] & members["test"]
    for name in ("train", "val", "test"):
        assert set(samples.labels[samples.indices(name)].tolist()) == {0, 1}

    info = samples.info
    assert info["config"]["dedup_enabled"] is True
    removed = info["duplicates"]["removed_total"]
    assert len(samples) == corpus.n_sessions - removed
    # after deduplication no vector is in two splits
    rows = np.ascontiguousarray(samples.vectors).view(np.dtype((np.void, samples.input_length)))
    rows = rows.ravel()
    seen = {name: set(rows[samples.indices(name)].tolist()) for name in ("train", "val", "test")}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
    assert not seen["val"] & seen["test"]


def test_real_max_per_capture_caps_tinba(corpus, tmp_path):
    samples = load_dataset(corpus.build(tmp_path / "cap", SampleConfig(n_packets=2),
                                        SplitConfig(max_per_capture=200, seed=1)))
    captures = np.array(samples.metadata.column("capture").to_pylist())
    names, counts = np.unique(captures, return_counts=True)
    assert counts.max() == 200
    assert dict(zip(names, counts))["botnet/tinba/Tinba.pcap"] == 200
    assert samples.info["counts"]["dropped_max_per_capture"] == corpus.n_sessions - len(samples)


def _reference_strict(data: bytes, protocol: int, l4: int, length: int) -> bytes | None:
    """Strict masking written byte by byte, for TCP/UDP without IP options or extensions.

    Returns None for the packets it does not cover.
    """
    w = bytearray(data[:length].ljust(length, b"\0"))

    def zero(start: int, stop: int) -> None:
        for i in range(start, min(stop, length)):
            w[i] = 0

    if w[0] >> 4 == 4:
        fragment = ((w[6] & 0x1F) << 8) | w[7]
        if w[0] & 0x0F != 5 or fragment or w[9] != protocol or l4 != 20:
            return None
        for start, stop in ((4, 6), (8, 9), (10, 20)):
            zero(start, stop)
    elif w[0] >> 4 == 6:
        if w[6] != protocol or l4 != 40:
            return None
        w[1] &= 0xF0
        for start, stop in ((2, 4), (7, 40)):
            zero(start, stop)
    else:
        return None
    if protocol == 6:
        for start, stop in ((l4 + 4, l4 + 12), (l4 + 16, l4 + 18)):
            zero(start, stop)
        end = min(l4 + (w[l4 + 12] >> 4) * 4, length)
        i = l4 + 20
        while i < end and w[i] != 0:
            if w[i] == 1:
                i += 1
                continue
            if i + 1 >= end or w[i + 1] < 2:
                break
            kind, size = w[i], w[i + 1]
            if kind == 8 and size == 10:
                zero(i + 2, min(i + 10, end))
            elif kind == 5:
                zero(i + 2, min(i + size, end))
            i += size
    elif protocol == 17:
        zero(l4 + 6, l4 + 8)
        ports = ((w[l4] << 8) | w[l4 + 1], (w[l4 + 2] << 8) | w[l4 + 3])
        if set(ports) & {53, 5353, 5355}:
            zero(l4 + 8, l4 + 10)
    else:
        return None
    return bytes(w)


def test_real_strict_mask_matches_a_scalar_reference(corpus):
    sample = SampleConfig(n_packets=MAX_N)
    checked = 0
    for source in corpus.captures:
        sessions = corpus.sessions[source.name]
        if not sessions:
            continue
        vectors = extract_batch(sessions, sample).reshape(len(sessions), MAX_N, 100)
        for row, session in enumerate(sessions):
            for p in session.packets:
                if p.index < MAX_N:
                    expected = _reference_strict(p.data, session.protocol, p.l4_offset, 100)
                    if expected is not None:
                        assert vectors[row, p.index].tobytes() == expected, (source.name, row)
                        checked += 1
    assert checked > 50000
