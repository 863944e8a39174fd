"""Training runs on a tiny synthetic dataset: outputs, resume, early stopping, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from synthetic_dataset import TINY_KWARGS, TINY_MODEL, write_synthetic_dataset

from botunet import __version__
from botunet.cli.main import main
from botunet.config import TrainConfig
from botunet.datasets.dataset import load_dataset
from botunet.errors import CheckpointError, ConfigError, DatasetError
from botunet.evaluation.metrics import compute_metrics
from botunet.training import trainer
from botunet.training.checkpoint import SPEC_FILE, WEIGHTS_FILE, load_checkpoint
from botunet.training.loop import ValidationResult
from botunet.training.predict import predict_scores
from botunet.training.state import STATE_JSON_FILE, STATE_TENSORS_FILE


def _config(**changes) -> TrainConfig:
    settings = dict(model=TINY_MODEL, model_kwargs=TINY_KWARGS, epochs=2, batch_size=16, lr=1e-2)
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic")


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("models") / "tiny"
    return trainer.fit(dataset, model_dir, _config(epochs=3, tune_threshold=True))


def test_fit_writes_model_folder_with_full_spec(trained: Path, dataset: Path):
    spec = json.loads((trained / SPEC_FILE).read_text())
    samples = load_dataset(dataset)
    assert spec["model"] == TINY_MODEL and spec["model_kwargs"] == TINY_KWARGS
    assert spec["input_length"] == 40
    assert spec["sample_config"] == {
        "n_packets": 2, "bytes_per_packet": 20, "start": "first", "mask": "strict"
    }
    assert spec["session_config"]["keep_packets"] == 2
    assert spec["dataset_hash"] == samples.info["content_hash"]
    assert spec["version"] == __version__
    assert spec["train_config"]["epochs"] == 3 and spec["train_config"]["lr"] == 1e-2
    assert spec["params"] == sum(p.numel() for p in load_checkpoint(trained)[0].parameters())
    # pos_weight is benign / botnet of the train split: (48 + 12) / (22 + 14)
    assert spec["dataset"]["pos_weight"] == pytest.approx(60 / 36)
    assert spec["dataset"]["n_samples"] == {"train": 96, "val": 32, "test": 32}
    assert [h["epoch"] for h in spec["history"]] == [1, 2, 3]
    assert set(spec["history"][0]) == {
        "epoch", "train_loss", "val_loss", "val_accuracy", "val_f1", "seconds"
    }
    # best by validation F1, lower validation loss breaking ties
    best = max(spec["history"], key=lambda h: (h["val_f1"], -h["val_loss"]))
    assert spec["best_epoch"] == best["epoch"]
    assert spec["epochs_run"] == 3 and spec["stopped_early"] is False
    assert set(spec["metrics"]) == {"val", "test"}


def test_fit_tuned_threshold_is_recorded_and_best_on_val(trained: Path, dataset: Path):
    model, spec = load_checkpoint(trained)
    assert spec["threshold_source"] == "validation_f1"
    samples = load_dataset(dataset)
    val = np.sort(samples.indices("val"))
    scores = predict_scores(model, samples.vectors[val])
    tuned = compute_metrics(samples.labels[val], scores, threshold=spec["threshold"])
    assert tuned["f1"] == pytest.approx(spec["metrics"]["val"]["f1"])
    for cut in np.linspace(0.05, 0.95, 19):
        assert compute_metrics(samples.labels[val], scores, threshold=cut)["f1"] <= tuned["f1"]


def test_fit_learns_the_synthetic_task(trained: Path):
    test = json.loads((trained / SPEC_FILE).read_text())["metrics"]["test"]
    majority = max(test["n_botnet"], test["n_benign"]) / test["n_samples"]
    assert test["accuracy"] > majority


def test_fit_without_class_weights_and_default_threshold(dataset: Path, tmp_path: Path):
    spec = json.loads(
        (trainer.fit(dataset, tmp_path / "m", _config(epochs=1, class_weights=False)) / SPEC_FILE)
        .read_text()
    )
    assert spec["dataset"]["pos_weight"] == 1.0
    assert spec["threshold"] == 0.5 and spec["threshold_source"] == "default"


def test_resume_reaches_same_weights_as_uninterrupted_run(dataset: Path, tmp_path: Path):
    config = _config(epochs=3, patience=None)
    straight = trainer.fit(dataset, tmp_path / "straight", config, device="cpu")
    resumed = tmp_path / "resumed"
    trainer.fit(dataset, resumed, _config(epochs=2, patience=None), device="cpu")
    assert json.loads((resumed / STATE_JSON_FILE).read_text())["epoch"] == 2
    trainer.fit(dataset, resumed, config, resume=True, device="cpu")

    for name in (WEIGHTS_FILE, STATE_TENSORS_FILE):
        a, b = load_file(straight / name), load_file(resumed / name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{name}: {key}")
    spec_a = json.loads((straight / SPEC_FILE).read_text())
    spec_b = json.loads((resumed / SPEC_FILE).read_text())
    assert [h["train_loss"] for h in spec_a["history"]] == pytest.approx(
        [h["train_loss"] for h in spec_b["history"]], abs=1e-6
    )
    assert spec_a["best_epoch"] == spec_b["best_epoch"]
    assert spec_a["metrics"]["test"]["confusion"] == spec_b["metrics"]["test"]["confusion"]


def test_resume_refuses_other_settings(trained: Path, dataset: Path):
    with pytest.raises(ConfigError, match="lr=0.01, got 0.001") as excinfo:
        trainer.fit(dataset, trained, _config(epochs=3, lr=1e-3, tune_threshold=True), resume=True)
    assert STATE_JSON_FILE in str(excinfo.value)


def test_resume_without_state(dataset: Path, tmp_path: Path):
    with pytest.raises(CheckpointError, match="no training state"):
        trainer.fit(dataset, tmp_path / "empty", _config(), resume=True)


def test_resume_detects_half_written_state(dataset: Path, tmp_path: Path):
    model_dir = trainer.fit(dataset, tmp_path / "m", _config(epochs=1))
    info = json.loads((model_dir / STATE_JSON_FILE).read_text())
    info["epoch"] = 2
    (model_dir / STATE_JSON_FILE).write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="holds epoch 1"):
        trainer.fit(dataset, model_dir, _config(epochs=3), resume=True)


def test_fit_refuses_to_overwrite_a_model(trained: Path, dataset: Path):
    with pytest.raises(CheckpointError, match="already holds a model"):
        trainer.fit(dataset, trained, _config())


def test_fit_needs_both_classes_in_train(tmp_path: Path, monkeypatch):
    path = write_synthetic_dataset(tmp_path / "data")
    samples = load_dataset(path)
    samples.labels[:] = 0
    monkeypatch.setattr(trainer, "load_dataset", lambda _: samples)
    with pytest.raises(DatasetError, match="0 botnet and 96 benign"):
        trainer.fit(path, tmp_path / "m", _config())


def test_early_stopping_counts_epochs_without_improvement():
    stopper = trainer.EarlyStopping(patience=2)
    curve = [(0.5, 1.0), (0.6, 0.9), (0.55, 0.8), (0.6, 0.95), (0.6, 0.85), (0.58, 0.8)]
    stops = []
    for epoch, (f1, loss) in enumerate(curve, start=1):
        stopper.update(epoch, f1, loss)
        stops.append(stopper.should_stop)
    # epoch 5 ties F1 0.6 with a lower loss, so it becomes the best; 6 is one bad epoch
    assert stopper.best_epoch == 5
    assert stops == [False, False, False, True, False, False]
    assert trainer.EarlyStopping.from_dict(2, stopper.to_dict()) == stopper


def test_fit_stops_early_on_scripted_validation_curve(dataset: Path, tmp_path: Path, monkeypatch):
    # F1 of 10 botnet labels with k found and no false alarm: 2k / (10 + k)
    found = iter([2, 5, 4, 5, 3, 9, 9, 9])
    calls = []

    def scripted(model, loader, loss_fn, **kwargs):
        calls.append(1)
        k = next(found)
        return ValidationResult(
            loss=1.0, scores=np.r_[np.ones(k), np.zeros(10 - k)], labels=np.ones(10, np.int64)
        )

    monkeypatch.setattr(trainer, "validate_epoch", scripted)
    model_dir = trainer.fit(dataset, tmp_path / "m", _config(epochs=8, patience=2))
    spec = json.loads((model_dir / SPEC_FILE).read_text())
    assert len(calls) == 4
    assert spec["best_epoch"] == 2 and spec["epochs_run"] == 4
    assert spec["stopped_early"] is True
    f1_curve = [h["val_f1"] for h in spec["history"]]
    assert f1_curve == pytest.approx([4 / 12, 10 / 15, 8 / 14, 10 / 15])
    best_weights = load_file(model_dir / WEIGHTS_FILE)
    state = load_file(model_dir / STATE_TENSORS_FILE)
    for key, value in best_weights.items():
        assert torch.equal(value, state[f"best/{key}"])
    assert not all(torch.equal(v, state[f"model/{k}"]) for k, v in best_weights.items())


def test_cli_train_prints_summary(dataset: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli-model"
    argv = ["-q", "train", str(dataset), "-o", str(out), "--model", TINY_MODEL,
            "--model-arg", "widths=[4, 8]", "--epochs", "1", "--batch-size", "32",
            "--lr", "0.01", "--seed", "3", "--patience", "0", "--no-class-weights",
            "--tune-threshold", "--threads", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out and "test" in captured.out
    spec = json.loads((out / SPEC_FILE).read_text())
    assert spec["train_config"] == {
        "model": TINY_MODEL, "epochs": 1, "batch_size": 32, "lr": 0.01, "weight_decay": 0.0,
        "patience": None, "class_weights": False, "seed": 3, "threads": 1,
        "tune_threshold": True, "model_kwargs": {"widths": [4, 8]},
    }


def test_cli_train_resume_continues_to_more_epochs(dataset: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli-resume"
    argv = ["-q", "train", str(dataset), "-o", str(out), "--model-arg", "widths=[4, 8]",
            "--lr", "0.01", "--device", "cpu"]
    assert main([*argv, "--epochs", "1"]) == 0
    assert main([*argv, "--epochs", "1"]) == 1
    assert "already holds a model; use --resume" in capsys.readouterr().err
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    spec = json.loads((out / SPEC_FILE).read_text())
    assert spec["epochs_run"] == 2 and [h["epoch"] for h in spec["history"]] == [1, 2]


def test_fit_rejects_unknown_device(dataset: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="device must be a torch device"):
        trainer.fit(dataset, tmp_path / "m", _config(), device="abacus")


def test_fit_rejects_bad_model_arguments(dataset: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot build model 'unet1d_light' with"):
        trainer.fit(dataset, tmp_path / "m", _config(model_kwargs={"wings": 2}))


def test_cli_train_bad_model_arg(dataset: Path, tmp_path: Path, capsys):
    argv = ["train", str(dataset), "-o", str(tmp_path / "m"), "--model-arg", "widths"]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == "error: --model-arg must be KEY=VALUE, got 'widths'"
