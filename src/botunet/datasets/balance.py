"""Class and family balance: a cap per capture, counts and training class weights."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from botunet.labels.schema import Label


def cap_per_capture(
    captures: Sequence[str], limit: int | None, seed: int
) -> np.ndarray:
    """Keep at most ``limit`` samples of each capture: a bool mask over the samples.

    Each capture draws its own seeded sample (the seed and the capture's name), so
    adding or removing other captures leaves its choice unchanged.
    """
    keep = np.ones(len(captures), dtype=bool)
    if limit is None:
        return keep
    names = np.asarray(captures, dtype=object).astype(str)
    for name in np.unique(names):
        members = np.flatnonzero(names == name)
        if members.size > limit:
            rng = np.random.default_rng([seed, zlib.crc32(str(name).encode())])
            keep[members] = False
            keep[rng.choice(members, size=limit, replace=False)] = True
    return keep


def label_counts(labels: np.ndarray) -> dict[str, int]:
    """Samples per label name, every label listed."""
    return {label.display_name: int(np.sum(labels == label)) for label in Label}


def class_weights(labels: np.ndarray) -> dict[str, float]:
    """Inverse-frequency weights n / (classes * n_label); 0 for an absent label."""
    counts = label_counts(labels)
    total = sum(counts.values())
    return {
        name: (total / (len(counts) * count) if count else 0.0) for name, count in counts.items()
    }


def family_counts(
    label_names: Sequence[str], families: Sequence[str], splits: Sequence[str]
) -> list[dict[str, object]]:
    """Samples per (label, family) and split, sorted by label then family."""
    per_split = Counter(zip(label_names, families, splits))
    rows = []
    for label_name, family in sorted({(lab, fam) for lab, fam, _ in per_split}):
        counts = {s: per_split[(label_name, family, s)] for s in ("train", "val", "test")}
        rows.append(
            {"label": label_name, "family": family, **counts, "total": sum(counts.values())}
        )
    return rows
