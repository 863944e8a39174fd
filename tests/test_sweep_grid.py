"""The sweep's orchestration with stand-in stages: grid, cache, resume and result files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from botunet.config import SweepConfig, TrainConfig
from botunet.errors import CheckpointError, ConfigError, PcapFormatError
from botunet.experiments.protocols import PROTOCOLS, apply_protocol, protocol_configs
from botunet.experiments.results import ROW_FIELDS
from botunet.experiments.sweep import Stages, grid_cells, run_sweep
from botunet.experiments.tables import readme_tables, render_tables, splice_tables


class FakeStages:
    """Stand-in stages that count their calls and give metrics from a made-up confusion."""

    def __init__(self, fail_on_train: int | None = None) -> None:
        self.builds: list[tuple[int, str, str]] = []
        self.trains: list[str] = []
        self.resumes: list[bool] = []
        self.fail_on_train = fail_on_train

    def stages(self) -> Stages:
        return Stages(
            build=self.build,
            train=self.train,
            evaluate=self.evaluate,
            known_models=lambda: ["mobilenet1d", "unet1d", "unet1d_light"],
        )

    def build(self, inputs, out_dir, sample, split, session):
        self.builds.append((sample.n_packets, sample.start, sample.mask))
        out_dir.mkdir(parents=True)
        info = {"n_packets": sample.n_packets, "start": sample.start, "split": split.mode}
        (out_dir / "dataset.json").write_text(json.dumps(info))
        return out_dir

    def train(self, dataset_dir, model_dir, config, resume):
        self.resumes.append(resume)
        if self.fail_on_train is not None and len(self.trains) == self.fail_on_train:
            model_dir.mkdir(parents=True)
            (model_dir / "state.json").write_text("{}")
            raise KeyboardInterrupt
        self.trains.append(config.model)
        model_dir.mkdir(parents=True, exist_ok=resume)
        info = json.loads((dataset_dir / "dataset.json").read_text())
        (model_dir / "model.json").write_text(json.dumps({**info, "model": config.model}))
        return model_dir

    def evaluate(self, model_dir, dataset_dir, report_dir):
        spec = json.loads((model_dir / "model.json").read_text())
        n = spec["n_packets"]
        tn, fp, fn, tp = 50 + n, 3, 2 + (spec["start"] == "first"), 40 + len(spec["model"])
        return {
            "accuracy": (tp + tn) / (tn + fp + fn + tp),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": 0.99,
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "tp": tp,
            "params": 1000 * len(spec["model"]),
            "flops": 5000 * n,
            "epochs_run": 1,
            "n_train": 300,
            "n_test": tn + fp + fn + tp,
        }


@pytest.fixture()
def captures(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "captures"
    folder.mkdir()
    paths = [folder / "a.pcap", folder / "b.pcap"]
    for path in paths:
        path.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    return paths


GRID = SweepConfig(packets=(1, 8), starts=("first", "payload"), models=("unet1d", "unet1d_light"))
TRAIN = TrainConfig(epochs=1, patience=None)


def test_protocol_configs_follow_the_protocol_table():
    sample, split = protocol_configs("paper", 4, "payload", max_per_capture=50, seed=3)
    assert (sample.n_packets, sample.start, sample.mask) == (4, "payload", "none")
    assert (split.mode, split.dedup_enabled, split.max_per_capture, split.seed) == (
        "random",
        False,
        50,
        3,
    )
    sample, split = protocol_configs("strict", 2, "first")
    assert (sample.mask, split.mode, split.dedup_enabled) == ("strict", "capture", True)
    assert set(PROTOCOLS) == {"paper", "strict"}


def test_apply_protocol_rejects_unknown_name():
    sample, split = protocol_configs("paper", 1, "first")
    with pytest.raises(ConfigError, match="unknown protocol 'leaky'; available: paper, strict"):
        apply_protocol("leaky", sample, split)


def test_grid_cells_run_start_then_n_then_model():
    cells = grid_cells(GRID)
    assert len(cells) == 8
    assert [(c.start, c.n_packets, c.model) for c in cells[:3]] == [
        ("first", 1, "unet1d"),
        ("first", 1, "unet1d_light"),
        ("first", 8, "unet1d"),
    ]


def test_sweep_builds_each_dataset_once_and_writes_every_cell(tmp_path, captures):
    fake = FakeStages()
    result = run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=fake.stages())

    assert sorted(fake.builds) == [
        (1, "first", "none"),
        (1, "payload", "none"),
        (8, "first", "none"),
        (8, "payload", "none"),
    ]
    assert sorted(fake.trains) == ["unet1d"] * 4 + ["unet1d_light"] * 4
    assert (result.reused, result.trained) == (0, 8)

    out = tmp_path / "out"
    document = json.loads((out / "sweep.json").read_text())
    assert document["complete"] is True
    assert [(r["start"], r["n_packets"], r["model"]) for r in document["rows"]] == [
        (c.start, c.n_packets, c.model) for c in grid_cells(GRID)
    ]
    with open(out / "sweep.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert list(csv_rows[0]) == list(ROW_FIELDS)
    assert len(csv_rows) == 8
    assert float(csv_rows[5]["f1"]) == document["rows"][5]["f1"]
    assert {p.name for p in result.files} >= {"f1_first.png", "f1_payload.png", "sweep.md"}
    assert (out / "f1_first.png").read_bytes()[:4] == b"\x89PNG"

    cell_dirs = sorted((out / "cells").iterdir())
    assert len(cell_dirs) == 8
    assert all((d / "done").is_file() and (d / "metrics.json").is_file() for d in cell_dirs)
    assert len(list((out / "datasets").iterdir())) == 4


def test_sweep_second_run_reuses_every_cell(tmp_path, captures, caplog):
    run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=FakeStages().stages())
    first = (tmp_path / "out" / "sweep.json").read_text()

    again = FakeStages()
    with caplog.at_level("INFO", logger="botunet"):
        result = run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=again.stages())
    assert again.builds == [] and again.trains == []
    assert (result.reused, result.trained) == (8, 0)
    assert "reused 8 finished cells, trained 0" in caplog.text
    assert (tmp_path / "out" / "sweep.json").read_text() == first


def test_sweep_resumes_after_an_interrupted_cell(tmp_path, captures):
    interrupted = FakeStages(fail_on_train=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=interrupted.stages())
    partial = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert partial["complete"] is False and len(partial["rows"]) == 3
    assert "Partial sweep: 3 of 8 cells finished." in (tmp_path / "out" / "sweep.md").read_text()

    resumed = FakeStages()
    result = run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=resumed.stages())
    assert (result.reused, result.trained) == (3, 5)
    # the dataset of the cells already finished is not built again
    assert (1, "first", "none") not in resumed.builds
    assert len(resumed.trains) == 5
    # the interrupted cell continues its training state; the others start fresh
    assert resumed.resumes == [True, False, False, False, False]


def test_sweep_other_settings_never_reuse_cells(tmp_path, captures, caplog):
    run_sweep(captures, tmp_path / "out", GRID, TRAIN, stages=FakeStages().stages())

    longer = FakeStages()
    with caplog.at_level("WARNING", logger="botunet"):
        result = run_sweep(
            captures, tmp_path / "out", GRID, TrainConfig(epochs=2), stages=longer.stages()
        )
    assert result.trained == 8 and len(longer.builds) == 0
    assert "held the results of other settings (train differ)" in caplog.text

    strict = FakeStages()
    grid = SweepConfig(packets=(1,), starts=("first",), models=("unet1d",), protocol="strict")
    result = run_sweep(captures, tmp_path / "out", grid, TRAIN, stages=strict.stages())
    assert result.trained == 1 and strict.builds == [(1, "first", "strict")]
    assert len(list((tmp_path / "out" / "cells").iterdir())) == 17


def test_sweep_rejects_unknown_model_and_missing_capture(tmp_path, captures):
    grid = SweepConfig(packets=(1,), starts=("first",), models=("unet2d",))
    with pytest.raises(ConfigError, match="unknown model 'unet2d'; available: mobilenet1d"):
        run_sweep(captures, tmp_path / "out", grid, TRAIN, stages=FakeStages().stages())
    with pytest.raises(PcapFormatError, match="nope.pcap: no such file"):
        stages = FakeStages().stages()
        run_sweep([tmp_path / "nope.pcap"], tmp_path / "out", GRID, TRAIN, stages=stages)


def test_sweep_config_rejects_bad_grid():
    with pytest.raises(ConfigError, match="packets must be in 1..64"):
        SweepConfig(packets=(0, 2))
    with pytest.raises(ConfigError, match="starts must be among first, payload"):
        SweepConfig(starts=("middle",))
    with pytest.raises(ConfigError, match="models must not repeat"):
        SweepConfig(models=("unet1d", "unet1d"))


def test_render_tables_puts_paper_numbers_beside_ours(tmp_path, captures):
    grid = SweepConfig(packets=(1, 8), starts=("first", "payload"), models=("unet1d_light",))
    run_sweep(captures, tmp_path / "out", grid, TRAIN, stages=FakeStages().stages())
    tables = render_tables(tmp_path / "out" / "sweep.json")

    # ours at (first, N=8): tn 58, fp 3, fn 3, tp 52 -> accuracy 110/116
    assert "| 8 | 116 | 94.83 |" in tables
    # the paper's Table 2 row for 1DL-UNet at N=8, and Table 5's 1DL-UNet row
    assert "| 8 | 99.66 | 99.54 | 99.68 | 99.61 |" in tables
    paper_row = "| paper (1DL-UNet) | 99.26 | 98.92 | 99.35 | 99.14 | 0.243 | 0.007 |"
    assert f"| unet1d_light {paper_row}" in tables
    # models the sweep did not train still show the paper's rows in the comparison
    assert "| mobilenet1d | paper (1D-MobileNet) | 99.68 |" in tables
    assert "### Models at start `first`, N = 8 (paper Table 4: Exp1, 8 packets)" in tables
    assert "### Models at start `payload`, N = 1 (paper Table 5: Exp2, 1 packet)" in tables

    readme = (
        "# x\n\nbefore\n<!-- botunet-sweep-tables:begin -->\nold\n"
        "<!-- botunet-sweep-tables:end -->\nafter\n"
    )
    spliced = splice_tables(readme, tables)
    assert readme_tables(spliced) == tables.strip()
    assert spliced.endswith("<!-- botunet-sweep-tables:end -->\nafter\n")


def test_sweep_restarts_a_cell_whose_training_cannot_resume(tmp_path, captures):
    grid = SweepConfig(packets=(1,), starts=("first",), models=("unet1d",))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(captures, tmp_path / "out", grid, TRAIN, stages=FakeStages(0).stages())

    class NoResume(FakeStages):
        def train(self, dataset_dir, model_dir, config, resume):
            if resume:
                self.resumes.append(resume)
                raise CheckpointError(f"{model_dir}: state.json is damaged")
            return super().train(dataset_dir, model_dir, config, resume)

    fake = NoResume()
    result = run_sweep(captures, tmp_path / "out", grid, TRAIN, stages=fake.stages())
    assert fake.resumes == [True, False] and result.trained == 1
    cell_dir = next((tmp_path / "out" / "cells").iterdir())
    assert not (cell_dir / "model" / "state.json").exists()
    assert json.loads((cell_dir / "metrics.json").read_text())["tn"] == 51
