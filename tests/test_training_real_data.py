"""unet1d_light on a small dataset of real captures: it learns, and evaluates on captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botunet.cli.main import main
from botunet.config import SampleConfig, SplitConfig, TrainConfig
from botunet.datasets.build import build_dataset
from botunet.evaluation.evaluate import evaluate
from botunet.training.checkpoint import SPEC_FILE
from botunet.training.trainer import fit

# a few hundred sessions: three botnet captures (labelled by their sidecars) and three
# benign ones
CAPTURES = (
    "botnet/hide-and-seek/hide-and-seek-short.pcap",
    "botnet/asyncrat/9596cf60-0da6-47a7-a375-1f25ae32d843.pcap",
    "botnet/agenttesla/a30789ce-1e1c-4f96-a097-78c34b9fb612.pcap",
    "benign/ndpi/srvloc.pcap",
    "benign/malcolm-protocols/MQTT.pcap",
    "benign/ndpi/dnscrypt-v1-and-resolver-pings.pcap",
)


@pytest.fixture(scope="module")
def real_model(pcaps_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("real")
    dataset = build_dataset(
        [pcaps_dir / c for c in CAPTURES],
        root / "dataset",
        sample=SampleConfig(n_packets=2),
        split=SplitConfig(seed=0, max_per_capture=120),
    )
    model_dir = fit(dataset, root / "model", TrainConfig(model="unet1d_light", epochs=2))
    return dataset, model_dir


def test_unet1d_light_beats_majority_class_on_real_captures(real_model):
    _, model_dir = real_model
    spec = json.loads((model_dir / SPEC_FILE).read_text())
    test = spec["metrics"]["test"]
    majority = max(test["n_botnet"], test["n_benign"]) / test["n_samples"]
    assert test["n_botnet"] > 0 and test["n_benign"] > 0
    assert test["accuracy"] > majority
    assert test["f1"] > 0.5
    assert spec["sample_config"]["n_packets"] == 2 and spec["input_length"] == 200


def test_evaluate_captures_with_model_settings(real_model, pcaps_dir: Path, tmp_path: Path):
    dataset, model_dir = real_model
    captures = [pcaps_dir / CAPTURES[1], pcaps_dir / CAPTURES[4]]
    result = evaluate(model_dir, captures)
    m = result.metrics
    assert m["split"] == "test"
    assert m["n_botnet"] > 0 and m["n_benign"] > 0
    assert {"asyncrat", "malcolm-protocols"} <= set(m["per_family"])
    assert m["dataset_hash"] != m["model_dataset_hash"]

    # the CLI takes several capture paths and writes the same report files
    out = tmp_path / "eval"
    argv = ["-q", "evaluate", str(model_dir), *map(str, captures), "-o", str(out)]
    assert main(argv) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["confusion"] == m["confusion"]
