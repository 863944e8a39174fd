"""Evaluation of a trained tiny model: metrics.json, report.md, plots, CLI output."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from synthetic_dataset import FAMILIES, TINY_KWARGS, TINY_MODEL, write_synthetic_dataset

from botunet.cli.main import main
from botunet.config import TrainConfig
from botunet.datasets.dataset import load_dataset
from botunet.errors import ConfigError, DatasetError
from botunet.evaluation.evaluate import evaluate
from botunet.evaluation.report import write_report
from botunet.training.trainer import fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic")


@pytest.fixture(scope="module")
def model_dir(dataset: Path, tmp_path_factory) -> Path:
    config = TrainConfig(model=TINY_MODEL, model_kwargs=TINY_KWARGS, epochs=2, batch_size=16)
    return fit(dataset, tmp_path_factory.mktemp("models") / "tiny", config)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_evaluate_test_split_metrics(model_dir: Path, dataset: Path):
    result = evaluate(model_dir, dataset)
    m = result.metrics
    samples = load_dataset(dataset)
    test = samples.indices("test")
    assert m["split"] == "test" and m["n_samples"] == test.size == result.scores.size
    assert m["n_botnet"] == int(samples.labels[test].sum())
    c = m["confusion"]
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
    assert tn + fp + fn + tp == m["n_samples"]
    assert m["accuracy"] == pytest.approx((tp + tn) / m["n_samples"])
    assert m["precision"] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert tp + fp == int(np.sum(result.scores >= m["threshold"]))
    assert set(m["per_family"]) == set(FAMILIES)
    assert sum(f["count"] for f in m["per_family"].values()) == m["n_samples"]
    detected = sum(f["recall"] * f["n_botnet"] for f in m["per_family"].values() if f["n_botnet"])
    assert detected == pytest.approx(tp)
    assert m["params"] > 0 and m["flops"] > 0
    assert m["threshold"] == 0.5 and m["threshold_source"] == "default"


def test_evaluate_split_all_and_unknown_split(model_dir: Path, dataset: Path):
    assert evaluate(model_dir, dataset, split="all").metrics["n_samples"] == 160
    assert evaluate(model_dir, dataset, split="val").metrics["n_samples"] == 32
    with pytest.raises(ConfigError, match="split must be one of"):
        evaluate(model_dir, dataset, split="holdout")


def test_evaluate_missing_capture_path(model_dir: Path, tmp_path: Path):
    with pytest.raises(DatasetError, match="no such file"):
        evaluate(model_dir, tmp_path / "missing.pcap")


def test_write_report_files(model_dir: Path, dataset: Path, tmp_path: Path):
    result = evaluate(model_dir, dataset)
    out = tmp_path / "report"
    paths = write_report(out, result.metrics, labels=result.labels, scores=result.scores,
                         history=result.history, metadata=result.metadata)
    names = {p.name for p in paths}
    assert names == {"metrics.json", "report.md", "training_curves.png", "confusion_matrix.png",
                     "roc_curve.png", "predictions.csv"}
    for name in ("training_curves.png", "confusion_matrix.png", "roc_curve.png"):
        width, height = _png_size(out / name)
        assert width > 100 and height > 100

    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "confusion", "per_family",
                "n_samples", "params", "flops", "threshold"):
        assert key in metrics
    assert metrics["confusion"] == result.metrics["confusion"]

    report = (out / "report.md").read_text()
    for heading in ("## Summary", "## Confusion matrix", "## Per family", "## Training history"):
        assert heading in report
    assert f"| botnet | {metrics['confusion']['fn']} | {metrics['confusion']['tp']} |" in report
    assert report.count("\n| 1 |") == 1 and "\n| 2 |" in report  # one row per epoch

    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("row,capture,family,label,")
    assert len(rows) == 1 + metrics["n_samples"]
    predicted = sum(int(r.rsplit(",", 1)[1]) for r in rows[1:])
    assert predicted == metrics["confusion"]["tp"] + metrics["confusion"]["fp"]


def test_write_report_single_class_skips_roc(tmp_path: Path):
    from botunet.evaluation.metrics import compute_metrics

    labels, scores = np.zeros(5, np.int64), np.linspace(0.1, 0.9, 5)
    metrics = compute_metrics(labels, scores, threshold=0.5)
    paths = write_report(tmp_path, metrics, labels=labels, scores=scores)
    assert {p.name for p in paths} == {"metrics.json", "report.md", "confusion_matrix.png"}
    assert json.loads((tmp_path / "metrics.json").read_text())["roc_auc"] is None


def test_cli_evaluate_prints_summary_and_writes_report(
    model_dir: Path, dataset: Path, tmp_path: Path, capsys
):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", str(model_dir), str(dataset), "--split", "all",
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "accuracy" in captured.out and "[all]: 160 samples" in captured.out
    assert "neris" in captured.out
    assert captured.err == ""
    assert json.loads((out / "metrics.json").read_text())["split"] == "all"


def test_cli_evaluate_other_start_mode_fails(model_dir: Path, tmp_path: Path, capsys):
    other = write_synthetic_dataset(tmp_path / "payload", start="payload")
    assert main(["evaluate", str(model_dir), str(other)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "start=payload" in err
