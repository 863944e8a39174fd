"""End to end: ``botunet run`` on a few real captures, both protocols, a few epochs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from botunet.cli.main import main

BOTNET = ("botnet/emotet", "botnet/asyncrat", "botnet/agenttesla", "botnet/dridex")
BENIGN = ("benign/chrissanders-packets", "benign/malcolm-protocols")
METRIC_KEYS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "confusion", "per_family",
    "n_samples", "params", "flops",
}


@pytest.fixture(scope="module")
def run_dir(pcaps_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    inputs = [str(pcaps_dir / sub) for sub in BOTNET + BENIGN]
    code = main(
        ["-q", "run", *inputs, "-o", str(out), "--packets", "2", "--epochs", "3",
         "--max-per-capture", "60"]
    )
    assert code == 0
    return out


def test_summary_has_one_row_per_protocol(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [row["protocol"] for row in summary["rows"]] == ["paper", "strict"]
    with open(run_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["protocol"] for r in rows] == ["paper", "strict"]
    assert "| paper | unet1d_light | 2 | first |" in (run_dir / "summary.md").read_text()


@pytest.mark.parametrize("protocol", ["paper", "strict"])
def test_metrics_agree_with_their_confusion_matrix(run_dir: Path, protocol: str) -> None:
    metrics = json.loads((run_dir / protocol / "report" / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    c = metrics["confusion"]
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
    assert tn + fp + fn + tp == metrics["n_samples"]
    assert metrics["accuracy"] == pytest.approx((tp + tn) / (tn + fp + fn + tp))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    assert metrics["precision"] == pytest.approx(precision)
    assert metrics["recall"] == pytest.approx(recall)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert metrics["f1"] == pytest.approx(f1)
    for name in ("report.md", "confusion_matrix.png", "roc_curve.png", "training_curves.png"):
        assert (run_dir / protocol / "report" / name).stat().st_size > 0


def test_paper_protocol_beats_the_majority_class(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "paper" / "report" / "metrics.json").read_text())
    c = metrics["confusion"]
    n = metrics["n_samples"]
    majority = max(c["tn"] + c["fp"], c["tp"] + c["fn"]) / n
    assert metrics["accuracy"] >= majority + 0.5 * (1 - majority)
    assert metrics["f1"] > 0.7


def test_model_folder_rebuilds_and_scores_a_capture_it_never_saw(
    run_dir: Path, pcaps_dir: Path, tmp_path: Path
) -> None:
    unseen = pcaps_dir / "botnet" / "quasarrat"
    out = tmp_path / "held-out"
    code = main(["-q", "evaluate", str(run_dir / "strict" / "model"), str(unseen), "-o", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    c = metrics["confusion"]
    assert c["tn"] + c["fp"] + c["fn"] + c["tp"] == metrics["n_samples"] > 0
    assert metrics["split"] == "test"
