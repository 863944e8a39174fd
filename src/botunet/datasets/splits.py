"""Train / validation / test splits, and duplicate vectors across them.

Modes (``SplitConfig.mode``):

- ``random``: the paper's split (section 4.1): samples shuffled and cut 3:1:1, within
  each label separately so that every split has each label's share.
- ``capture``: every capture lies wholly in one split, so that a model is tested on
  captures it has never seen (a capture shares a host, a network and a time window).
- ``host``: every host lies wholly in one split. A session's host is, in this order:
  the infected or listed host it touches (from a sidecar or IP list); else its
  initiator when that is an internal address (private, loopback, link-local, unique
  local); else its responder when that is internal; else its initiator. A host is an
  address across all captures: sandboxes reuse addresses, and keeping them together
  is the safer side.

Captures and hosts are "groups". Each group counts under the label most of its
samples have; within each label, groups are taken largest first (equal sizes in a
seeded order) and each goes to the split furthest below its share, relative to that
share. A split with no group yet is furthest below, so with at least three groups of a
label every split gets that label.

Identical vectors: a vector repeated within a split is kept; with deduplication a
vector already in an earlier split (train, then val, then test) is removed from the
later ones, so validation and test hold only vectors unseen before them.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from botunet.labels.sources import normalize_ip

SPLIT_NAMES = ("train", "val", "test")


def split_random(labels: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Stratified random split: split codes (int8, 0 train / 1 val / 2 test) per sample."""
    rng = np.random.default_rng(seed)
    shares = np.cumsum(ratios) / np.sum(ratios)
    codes = np.zeros(len(labels), dtype=np.int8)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(shares * members.size).astype(np.int64)
        codes[members[bounds[0] : bounds[1]]] = 1
        codes[members[bounds[1] :]] = 2
    return codes


def split_groups(
    groups: np.ndarray, labels: np.ndarray, ratios: Sequence[float], seed: int
) -> np.ndarray:
    """Split whole groups (int ids per sample), balancing each label's share per split."""
    rng = np.random.default_rng(seed)
    ratios = np.asarray(ratios, dtype=np.float64)
    n_groups = int(groups.max()) + 1 if groups.size else 0
    n_labels = int(labels.max()) + 1 if labels.size else 0
    counts = np.zeros((n_groups, max(n_labels, 1)), dtype=np.int64)
    np.add.at(counts, (groups, labels), 1)
    sizes = counts.sum(axis=1)
    primary = counts.argmax(axis=1)

    assigned = np.zeros(n_groups, dtype=np.int8)
    usable = np.flatnonzero(ratios > 0)
    for label in range(counts.shape[1]):
        members = np.flatnonzero((primary == label) & (sizes > 0))
        members = members[rng.permutation(members.size)]
        members = members[np.argsort(-sizes[members], kind="stable")]
        target = ratios[usable] / ratios.sum() * sizes[members].sum()
        filled = np.zeros(usable.size)
        for group in members:
            choice = int(np.argmax((target - filled) / target))
            assigned[group] = usable[choice]
            filled[choice] += sizes[group]
    return assigned[groups]


@functools.lru_cache(maxsize=65536)
def is_internal(address: str) -> bool:
    """Whether an address is private, loopback, link-local or unique local."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


def host_of(src_ip: str, dst_ip: str, infected: frozenset[str] = frozenset()) -> str:
    """The host a session belongs to, for the ``host`` split (see the module docstring)."""
    src, dst = normalize_ip(src_ip), normalize_ip(dst_ip)
    if src in infected:
        return src
    if dst in infected:
        return dst
    if is_internal(src):
        return src
    if is_internal(dst):
        return dst
    return src


def group_ids(keys: Sequence[str]) -> np.ndarray:
    """Integer ids of string keys, numbered in sorted key order."""
    _, ids = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return ids.astype(np.int64)


def vector_ids(vectors: np.ndarray) -> np.ndarray:
    """An id per row; identical rows share one.

    Rows are compared by 128-bit BLAKE2b digests, which keeps memory at 16 bytes a row
    (a collision is as likely as 2^-64 among four billion rows).
    """
    if vectors.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.ascontiguousarray(vectors)
    digests = b"".join(hashlib.blake2b(row, digest_size=16).digest() for row in rows)
    keys = np.frombuffer(digests, dtype=np.dtype((np.void, 16)))
    _, ids = np.unique(keys, return_inverse=True)
    return ids.astype(np.int64)


@dataclass(frozen=True)
class DuplicateReport:
    """What identical vectors there are, and which samples deduplication drops.

    Attributes:
        keep: bool per sample, False for the copies removed.
        unique_vectors: distinct vectors among all samples.
        repeated_samples: samples whose vector an earlier sample already has.
        cross_split: samples whose vector is also in an earlier split.
        conflicting_vectors: distinct vectors carried by both benign and botnet samples.
        removed: samples removed, per split name.
    """

    keep: np.ndarray
    unique_vectors: int
    repeated_samples: int
    cross_split: int
    conflicting_vectors: int
    removed: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "unique_vectors": self.unique_vectors,
            "repeated_samples": self.repeated_samples,
            "cross_split": self.cross_split,
            "conflicting_vectors": self.conflicting_vectors,
            "removed": dict(self.removed),
            "removed_total": sum(self.removed.values()),
        }


def find_duplicates(
    vectors: np.ndarray, labels: np.ndarray, codes: np.ndarray, *, drop: bool
) -> DuplicateReport:
    """Count identical vectors; with ``drop``, mark later-split copies for removal."""
    ids = vector_ids(vectors)
    n_ids = int(ids.max()) + 1 if ids.size else 0
    earliest = np.full(n_ids, len(SPLIT_NAMES), dtype=np.int8)
    np.minimum.at(earliest, ids, codes)
    later = codes > earliest[ids]

    lowest = np.full(n_ids, np.iinfo(np.int64).max, dtype=np.int64)
    highest = np.full(n_ids, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lowest, ids, labels)
    np.maximum.at(highest, ids, labels)

    keep = ~later if drop else np.ones(len(ids), dtype=bool)
    removed = {name: int(np.sum(~keep & (codes == i))) for i, name in enumerate(SPLIT_NAMES)}
    return DuplicateReport(
        keep=keep,
        unique_vectors=n_ids,
        repeated_samples=len(ids) - n_ids,
        cross_split=int(later.sum()),
        conflicting_vectors=int(np.sum(lowest != highest)),
        removed=removed,
    )
