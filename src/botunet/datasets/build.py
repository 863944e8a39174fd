"""Build a dataset: captures -> sessions -> labelled byte vectors -> splits -> files.

Steps: find the captures and their label sources (errors before any reading), read
each capture's sessions (captures in name order, sessions in the order the sessions
stage ends them), turn them into vectors in batches, keep at most
``max_per_capture`` sessions per capture, split, drop duplicate vectors across splits
when asked, and write the folder (botunet.datasets.store).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from botunet import __version__
from botunet.config import SampleConfig, SessionConfig, SplitConfig, to_dict
from botunet.datasets.balance import cap_per_capture, class_weights, family_counts, label_counts
from botunet.datasets.splits import (
    SPLIT_NAMES,
    find_duplicates,
    group_ids,
    host_of,
    split_groups,
    split_random,
)
from botunet.datasets.store import FORMAT_VERSION, content_hash, write_dataset
from botunet.errors import ConfigError
from botunet.labels.schema import LABEL_NAMES
from botunet.labels.sources import (
    CaptureSource,
    discover_captures,
    normalize_ip,
    read_ip_list,
)
from botunet.progress import progress
from botunet.samples.extract import extract_batch_positions
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import iter_sessions
from botunet.sessions.session import Session

logger = logging.getLogger(__name__)

# Sessions turned into vectors at a time: large enough for vectorised masking, small
# enough that a batch's kept packets stay a few megabytes.
BATCH_SESSIONS = 4096

# Metadata columns of samples.parquet, in order, with their Arrow types.
COLUMNS: dict[str, pa.DataType] = {
    "row": pa.int64(),
    "label": pa.int8(),
    "label_name": pa.string(),
    "family": pa.string(),
    "label_source": pa.string(),
    "capture": pa.string(),
    "host": pa.string(),
    "src_ip": pa.string(),
    "src_port": pa.int32(),
    "dst_ip": pa.string(),
    "dst_port": pa.int32(),
    "protocol": pa.int16(),
    "ip_version": pa.int8(),
    "first_ts": pa.float64(),
    "first_ns": pa.int64(),
    "duration_s": pa.float64(),
    "n_packets": pa.int64(),
    "n_bytes": pa.int64(),
    "end_reason": pa.string(),
    "start_index": pa.int32(),
    "packets_used": pa.int16(),
    "split": pa.string(),
}


# Session attributes copied into the metadata as they are.
_SESSION_FIELDS = (
    "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "ip_version", "first_ns",
    "last_ns", "packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", "end_reason",
)
_session_values = attrgetter(*_SESSION_FIELDS)


@dataclass
class _Collected:
    """Vectors and metadata of every session read, before capping and splitting.

    Sessions wait in ``pending`` until a batch is full, across captures, so that many
    small captures still make batches large enough for vectorised masking.
    """

    sample: SampleConfig
    vectors: list[np.ndarray] = field(default_factory=list)
    parts: dict[str, list[Any]] = field(default_factory=dict)
    pending: list[tuple[Session, CaptureSource]] = field(default_factory=list)

    def add(self, session: Session, source: CaptureSource) -> None:
        self.pending.append((session, source))
        if len(self.pending) >= BATCH_SESSIONS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sessions = [s for s, _ in self.pending]
        vectors, starts, used = extract_batch_positions(sessions, self.sample)
        self.vectors.append(vectors)
        labels = [src.label_of(s.src_ip, s.dst_ip) for s, src in self.pending]
        values = dict(zip(_SESSION_FIELDS, zip(*map(_session_values, sessions))))
        values.update(
            label=[int(label) for label in labels],
            label_name=[label.display_name for label in labels],
            family=[src.family for _, src in self.pending],
            label_source=[src.label_source for _, src in self.pending],
            capture=[src.name for _, src in self.pending],
            host=[host_of(s.src_ip, s.dst_ip, src.hosts) for s, src in self.pending],
            start_index=starts,
            packets_used=used,
        )
        for name, column in values.items():
            self.parts.setdefault(name, []).append(column)
        self.pending = []

    def result(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """All vectors (n, N*L) and the metadata columns, in the order read."""
        self.flush()
        if not self.vectors:
            empty = {name: np.zeros(0, _numpy_type(kind)) for name, kind in COLUMNS.items()}
            return np.zeros((0, self.sample.input_length), dtype=np.uint8), empty
        raw = {
            name: _object_array(parts) if isinstance(parts[0][0], str) else np.concatenate(parts)
            for name, parts in self.parts.items()
        }
        first_ns, last_ns = raw["first_ns"].astype(np.int64), raw["last_ns"].astype(np.int64)
        raw.update(
            first_ts=first_ns / 1e9,
            duration_s=(last_ns - first_ns) / 1e9,
            n_packets=raw["packets_fwd"] + raw["packets_bwd"],
            n_bytes=raw["bytes_fwd"] + raw["bytes_bwd"],
        )
        columns = {
            name: raw[name].astype(_numpy_type(kind))
            for name, kind in COLUMNS.items()
            if name not in ("row", "split")
        }
        return np.concatenate(self.vectors), columns


def _object_array(parts: list[Sequence[Any]]) -> np.ndarray:
    """One object array of the items of all parts, reusing the items (no string copies)."""
    out = np.empty(sum(len(p) for p in parts), dtype=object)
    start = 0
    for part in parts:
        out[start : start + len(part)] = part
        start += len(part)
    return out


def build_dataset(
    inputs: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    sample: SampleConfig | None = None,
    split: SplitConfig | None = None,
    session: SessionConfig | None = None,
    botnet_ips: str | os.PathLike[str] | Set[str] | None = None,
) -> Path:
    """Build a dataset folder from captures, capture folders or manifest CSVs.

    Args:
        inputs: capture files, folders searched for captures, manifest CSVs.
        out_dir: the dataset folder (created; its dataset files are replaced).
        sample: N, L, start mode and masking.
        split: split mode, ratios, deduplication, cap per capture and seed.
        session: session options; ``sample.session_config`` raises what is kept.
        botnet_ips: a botnet IP list file, or a set of addresses, for captures no
            folder, manifest or sidecar labels.

    Returns:
        The dataset folder.
    """
    sample = sample or SampleConfig()
    session_config = sample.session_config(session)
    inputs = [str(i) for i in inputs]
    ips = _botnet_ip_set(botnet_ips)
    captures = discover_captures(inputs, ips)
    accounting = Accounting()

    def read(source: CaptureSource) -> Iterable[Session]:
        return iter_sessions([str(source.path)], session_config, accounting)

    provenance = {"inputs": inputs, "botnet_ips": _describe_ips(botnet_ips, ips)}
    return write_samples(
        captures, read, out_dir, sample=sample, split=split or SplitConfig(),
        session_config=session_config, accounting=accounting, provenance=provenance,
    )


def write_samples(
    captures: Sequence[CaptureSource],
    sessions_of: Callable[[CaptureSource], Iterable[Session]],
    out_dir: str | os.PathLike[str],
    *,
    sample: SampleConfig,
    split: SplitConfig,
    session_config: SessionConfig,
    accounting: Accounting,
    provenance: dict[str, Any],
) -> Path:
    """The steps after finding the captures: vectors, cap, split, deduplicate, write.

    Args:
        captures: labelled captures, in the order their samples are stored.
        sessions_of: the sessions of one capture (``iter_sessions`` in build_dataset;
            a cache of sessions read once when one reading serves many datasets).
        session_config: the options the sessions were cut with; they must keep at
            least N packets and L bytes.
        accounting: the packet accounting of reading them (filled while
            ``sessions_of`` runs, or before).
        provenance: what the dataset was built from, stored in dataset.json.
    """
    if (
        session_config.keep_packets < sample.n_packets
        or session_config.keep_bytes < sample.bytes_per_packet
    ):
        raise ConfigError(
            f"sessions keep {session_config.keep_packets} packets of "
            f"{session_config.keep_bytes} bytes; samples need {sample.n_packets} of "
            f"{sample.bytes_per_packet} (use SampleConfig.session_config)"
        )
    vectors, columns = _collect(captures, sessions_of, sample).result()
    per_capture = _per_capture(captures, columns)
    n_sessions = len(vectors)
    if n_sessions == 0:
        logger.warning("no sessions in %d captures: the dataset is empty", len(captures))

    # cap per capture, split, deduplicate
    capped = cap_per_capture(columns["capture"], split.max_per_capture, split.seed)
    vectors, columns = _select(vectors, columns, capped)
    labels = columns["label"].astype(np.int64)
    codes = _assign_splits(split, labels, columns)
    duplicates = find_duplicates(vectors, labels, codes, drop=split.dedup_enabled)
    keep = duplicates.keep
    vectors, columns = _select(vectors, columns, keep)
    columns["split"] = np.asarray(SPLIT_NAMES, dtype=object)[codes[keep]]
    columns["row"] = np.arange(len(vectors), dtype=np.int64)
    table = pa.Table.from_arrays(
        [_arrow_array(columns[name], kind) for name, kind in COLUMNS.items()], names=list(COLUMNS)
    )
    counts = _counts(columns, n_sessions, int(capped.sum()), len(vectors))
    _warn_missing_labels(counts["splits"], split)

    info = {
        "format": FORMAT_VERSION,
        "botunet_version": __version__,
        **provenance,
        "input_length": sample.input_length,
        "config": {
            "sample": to_dict(sample),
            "session": to_dict(session_config),
            "split": to_dict(split),
            "dedup_enabled": split.dedup_enabled,
        },
        "counts": counts,
        "class_weights": class_weights(columns["label"][columns["split"] == "train"]),
        "duplicates": duplicates.to_dict(),
        "accounting": accounting.to_dict(),
        "captures": per_capture,
        "content_hash": content_hash(vectors, table),
    }
    out = write_dataset(Path(out_dir), vectors, table, info)
    logger.info(
        "dataset %s: %d samples from %d sessions of %d captures (%d duplicates removed)",
        out, len(vectors), n_sessions, len(captures), sum(duplicates.removed.values()),
    )
    return out


def _collect(
    captures: Sequence[CaptureSource],
    sessions_of: Callable[[CaptureSource], Iterable[Session]],
    sample: SampleConfig,
) -> _Collected:
    collected = _Collected(sample)
    for source in progress(captures, total=len(captures), desc="captures", unit="capture"):
        for session in sessions_of(source):
            collected.add(session, source)
    return collected


def _per_capture(
    captures: Sequence[CaptureSource], columns: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Sessions per label of each capture, before capping and deduplication."""
    counts = Counter(zip(columns["capture"].tolist(), columns["label_name"].tolist()))
    rows = []
    for source in captures:
        per_label = {name: counts[(source.name, name)] for name in LABEL_NAMES}
        rows.append(
            {
                "name": source.name,
                "family": source.family,
                "label_source": source.label_source,
                "sessions": sum(per_label.values()),
                **per_label,
            }
        )
    return rows


def _select(
    vectors: np.ndarray, columns: dict[str, np.ndarray], keep: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The kept rows of the vectors and columns (no copy when every row is kept)."""
    if keep.all():
        return vectors, columns
    return vectors[keep], {name: values[keep] for name, values in columns.items()}


def _assign_splits(split: SplitConfig, labels: np.ndarray, columns: dict[str, Any]) -> np.ndarray:
    if split.mode == "random":
        return split_random(labels, split.ratios, split.seed)
    keys = columns["capture"] if split.mode == "capture" else columns["host"]
    return split_groups(group_ids(keys), labels, split.ratios, split.seed)


def _warn_missing_labels(splits: dict[str, dict[str, int]], split: SplitConfig) -> None:
    """Warn when a split that should hold samples lacks a label (too few groups)."""
    for name, ratio in zip(SPLIT_NAMES, split.ratios):
        missing = [label for label, n in splits[name].items() if n == 0]
        if ratio > 0 and missing and sum(splits[name].values()):
            logger.warning(
                "the %s split has no %s samples (%s split, too few captures or hosts)",
                name, " or ".join(missing), split.mode,
            )


def _counts(
    columns: dict[str, np.ndarray], n_sessions: int, n_capped: int, n_samples: int
) -> dict[str, Any]:
    labels, splits = columns["label"], columns["split"]
    return {
        "sessions": n_sessions,
        "dropped_max_per_capture": n_sessions - n_capped,
        "duplicates_removed": n_capped - n_samples,
        "samples": n_samples,
        "labels": label_counts(labels),
        "splits": {name: label_counts(labels[splits == name]) for name in SPLIT_NAMES},
        "families": family_counts(
            columns["label_name"].tolist(), columns["family"].tolist(), splits.tolist()
        ),
        "label_sources": dict(sorted(Counter(columns["label_source"].tolist()).items())),
        "captures_with_samples": len(set(columns["capture"].tolist())),
    }


def _numpy_type(kind: pa.DataType) -> Any:
    return object if pa.types.is_string(kind) else np.dtype(str(kind))


def _arrow_array(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """An Arrow array built from its buffers.

    ``pa.array`` would do, but its first call imports pandas, which costs a second of
    every ``botunet dataset`` run.
    """
    if pa.types.is_string(kind):
        encoded = [str(v).encode("utf-8", "replace") for v in values]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        if ends.size and ends[-1] >= 2**31:
            raise ValueError(f"string column of {ends[-1]} bytes is too large for Arrow string")
        offsets = np.concatenate([[0], ends]).astype(np.int32)
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    else:
        buffers = [None, pa.py_buffer(np.ascontiguousarray(values, dtype=np.dtype(str(kind))))]
    return pa.Array.from_buffers(kind, len(values), buffers)


def _botnet_ip_set(botnet_ips: str | os.PathLike[str] | Set[str] | None) -> frozenset[str] | None:
    if botnet_ips is None:
        return None
    if isinstance(botnet_ips, (str, os.PathLike)):
        return read_ip_list(botnet_ips)
    return frozenset(normalize_ip(a) for a in botnet_ips)


def _describe_ips(botnet_ips: Any, ips: frozenset[str] | None) -> dict[str, Any] | None:
    if ips is None:
        return None
    origin = str(botnet_ips) if isinstance(botnet_ips, (str, os.PathLike)) else None
    return {"file": origin, "addresses": sorted(ips)}
