"""A stored dataset opened for reading: vectors, labels, splits and the build's record."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from botunet.config import SampleConfig, SessionConfig, SplitConfig, from_dict
from botunet.datasets.balance import class_weights, label_counts
from botunet.datasets.splits import SPLIT_NAMES
from botunet.datasets.store import content_hash, read_dataset
from botunet.errors import ConfigError, DatasetError


@dataclass
class SampleSet:
    """Samples of one dataset folder.

    Attributes:
        path: the dataset folder.
        vectors: uint8 (n, N*L), memory-mapped read-only.
        labels: int64 (n,), 0 benign / 1 botnet.
        splits: str (n,), "train", "val" or "test".
        families: str (n,), botnet family or benign source of each sample's capture.
        metadata: the ``samples.parquet`` table, one row per sample.
        info: the contents of ``dataset.json``.
    """

    path: Path
    vectors: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    families: np.ndarray
    metadata: pa.Table
    info: dict[str, Any]
    sample_config: SampleConfig = field(init=False)
    session_config: SessionConfig = field(init=False)
    split_config: SplitConfig = field(init=False)

    def __post_init__(self) -> None:
        try:
            config = self.info["config"]
            self.sample_config = from_dict(SampleConfig, config["sample"])
            self.session_config = from_dict(SessionConfig, config["session"])
            self.split_config = from_dict(SplitConfig, config["split"])
        except (KeyError, TypeError, ConfigError) as err:
            raise DatasetError(f"dataset {self.path}: bad config in dataset.json: {err}") from err

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def input_length(self) -> int:
        """N*L, the length of every vector."""
        return int(self.vectors.shape[1])

    @property
    def content_hash(self) -> str:
        return str(self.info["content_hash"])

    def indices(self, split: str) -> np.ndarray:
        """Row numbers (int64) of one split, in stored order."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
        return np.flatnonzero(self.splits == split).astype(np.int64)

    def label_counts(self, split: str | None = None) -> dict[str, int]:
        """Samples per label, in one split or in all."""
        labels = self.labels if split is None else self.labels[self.indices(split)]
        return label_counts(labels)

    def class_weights(self, split: str = "train") -> dict[str, float]:
        """Inverse-frequency class weights of a split (see botunet.datasets.balance)."""
        return class_weights(self.labels[self.indices(split)])

    def verify(self) -> None:
        """Recompute the content hash; DatasetError if the files were changed."""
        actual = content_hash(self.vectors, self.metadata)
        if actual != self.content_hash:
            raise DatasetError(
                f"dataset {self.path} was modified: content hash {actual}, "
                f"dataset.json says {self.content_hash}"
            )


def load_dataset(path: str | os.PathLike[str], *, verify: bool = False) -> SampleSet:
    """Open a dataset folder written by botunet.datasets.build.build_dataset.

    Raises:
        DatasetError: the folder is missing, incomplete or inconsistent (or, with
            ``verify``, its content hash does not match).
    """
    path = Path(path)
    vectors, table, info = read_dataset(path)
    samples = SampleSet(
        path=path,
        vectors=vectors,
        labels=table.column("label").to_numpy().astype(np.int64),
        splits=np.asarray(table.column("split").to_pylist(), dtype=str),
        families=np.asarray(table.column("family").to_pylist(), dtype=str),
        metadata=table,
        info=info,
    )
    if verify:
        samples.verify()
    return samples
