"""Torch views of a SampleSet: a map-style Dataset and a fast batch loader.

Vectors stay in the dataset's memory-mapped ``vectors.npy``; a batch reads its rows in
ascending order (kind to the page cache) and turns them into model input with
``botunet.models.to_input``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from botunet.models import to_input

if TYPE_CHECKING:
    from botunet.datasets.dataset import SampleSet


class VectorDataset(Dataset):
    """Samples of a SampleSet as (x float32 (1, input_length), y float32 scalar).

    Args:
        samples: the dataset.
        indices: rows of the dataset to use, in order (for example ``samples.indices("train")``).
    """

    def __init__(self, samples: SampleSet, indices: np.ndarray) -> None:
        self.samples = samples
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = int(self.indices[i])
        x = to_input(np.asarray(self.samples.vectors[row : row + 1]))[0]
        y = torch.tensor(float(self.samples.labels[row]), dtype=torch.float32)
        return x, y


class BatchLoader:
    """Batches of one split as (x float32 (B, 1, input_length), y float32 (B,)).

    Args:
        samples: the dataset.
        indices: rows of the dataset to iterate over.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: visit rows in a new random order each epoch.
        seed: with the epoch number (``set_epoch``), fixes the order, so a resumed run
            sees the same batches as an uninterrupted one.
    """

    def __init__(
        self,
        samples: SampleSet,
        indices: np.ndarray,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.samples = samples
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffled order the next iteration follows."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-int(self.indices.size) // self.batch_size)

    def order(self) -> np.ndarray:
        """Rows in the order of this epoch's iteration."""
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, self.epoch])
        return self.indices[rng.permutation(self.indices.size)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order()
        for start in range(0, order.size, self.batch_size):
            rows = np.sort(order[start : start + self.batch_size])
            x = to_input(np.asarray(self.samples.vectors[rows]))
            y = torch.from_numpy(np.asarray(self.samples.labels[rows], dtype=np.float32))
            yield x, y
