"""Batches of a SampleSet, one epoch of training, BatchNorm statistics."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from synthetic_dataset import write_synthetic_dataset
from torch import nn

from botunet.datasets.dataset import load_dataset
from botunet.datasets.torchdata import BatchLoader, VectorDataset
from botunet.training.loop import recalibrate_batchnorm, train_epoch, validate_epoch


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return load_dataset(write_synthetic_dataset(tmp_path_factory.mktemp("data") / "d"))


def test_batch_loader_covers_split_once_in_seeded_order(samples):
    train = samples.indices("train")
    loader = BatchLoader(samples, train, batch_size=25, shuffle=True, seed=4)
    loader.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    assert [x.shape for x, _ in batches] == [(25, 1, 40)] * 3 + [(21, 1, 40)]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # every train vector exactly once, each with its own label
    rows = np.round(x[:, 0, :].numpy() * 255).astype(np.uint8)
    expected = np.asarray(samples.vectors[train])
    assert sorted(map(bytes, rows)) == sorted(map(bytes, expected))
    assert int(y.sum()) == int(samples.labels[train].sum())

    first = loader.order()
    loader.set_epoch(2)
    assert not np.array_equal(loader.order(), first)
    loader.set_epoch(1)
    assert np.array_equal(loader.order(), first)


def test_vector_dataset_item(samples):
    rows = samples.indices("test")
    dataset = VectorDataset(samples, rows)
    x, y = dataset[3]
    assert len(dataset) == rows.size
    assert x.shape == (1, 40)
    np.testing.assert_allclose(x[0].numpy() * 255, samples.vectors[rows[3]], atol=1e-4)
    assert float(y) == float(samples.labels[rows[3]])


class _Tiny(nn.Module):
    """A BatchNorm on the raw input, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(1)
        self.fc = nn.Linear(40, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x)[:, 0, :]).squeeze(1)


def test_recalibrate_batchnorm_averages_batch_statistics(samples):
    torch.manual_seed(0)
    model = _Tiny()
    model.norm.running_mean.fill_(5.0)
    weight_before = model.fc.weight.clone()
    train = samples.indices("train")  # 96 rows: three equal batches of 32
    loader = BatchLoader(samples, train, batch_size=32)

    assert recalibrate_batchnorm(model, loader) == 1
    values = np.asarray(samples.vectors[train], dtype=np.float64) / 255
    assert float(model.norm.running_mean) == pytest.approx(values.mean(), abs=1e-6)
    assert model.norm.momentum == 0.1
    assert torch.equal(model.fc.weight, weight_before)
    assert recalibrate_batchnorm(nn.Linear(2, 1), loader) == 0


def test_train_epoch_lowers_loss_and_validate_scores_every_row(samples):
    torch.manual_seed(0)
    model = _Tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = BatchLoader(samples, samples.indices("train"), batch_size=16, shuffle=True)
    losses = [train_epoch(model, loader, optimizer, loss_fn) for _ in range(3)]
    assert losses[-1] < losses[0]

    val = validate_epoch(model, BatchLoader(samples, samples.indices("val"), batch_size=10),
                         loss_fn)
    assert val.scores.shape == val.labels.shape == (32,)
    assert int(val.labels.sum()) == int(samples.labels[samples.indices("val")].sum())
    assert np.all((val.scores > 0) & (val.scores < 1))
    assert not model.training


def test_batch_loader_rejects_bad_batch_size(samples):
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(samples, samples.indices("train"), batch_size=0)
