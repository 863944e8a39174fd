"""The grid sweep behind the paper's Tables 2-5: every (N, start) dataset, every model.

Each (N, start) dataset is built once and shared by the models of that cell; each
(N, start, model) cell is trained, evaluated on the test split and cached in its own
folder, so an interrupted sweep resumes where it stopped:

    SWEEP_DIR/
      sweep.json, sweep.csv, sweep.md, f1_<start>.png    results of the last invocation
      datasets/<protocol>-<start>-n<NN>-<key>/data/      the built dataset (+ done)
      cells/<protocol>-<start>-n<NN>-<model>-<key>/      cell.json, model/, evaluation/,
                                                         metrics.json, done

The keys hash everything a result depends on (captures, configs, model, training
settings), so other settings in the same SWEEP_DIR make new folders beside the old
ones and never reuse a result computed with different settings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botunet.config import SampleConfig, SessionConfig, SplitConfig, SweepConfig, TrainConfig
from botunet.config import to_dict
from botunet.errors import BotunetError, ConfigError, PcapFormatError
from botunet.experiments import cache
from botunet.experiments.protocols import get_protocol, protocol_configs
from botunet.experiments.results import ROW_FIELDS, sweep_document, write_outputs
from botunet.progress import progress

logger = logging.getLogger(__name__)

# TrainConfig fields that do not change what a cell learns, left out of its key.
_KEY_IGNORED_TRAIN_FIELDS = ("threads",)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a model trained on one (protocol, start, N) dataset."""

    protocol: str
    start: str
    n_packets: int
    model: str

    def __str__(self) -> str:
        return f"{self.start} N={self.n_packets} {self.model}"


@dataclass(frozen=True)
class Stages:
    """The pipeline steps a sweep runs, one callable each.

    Args:
        build: (inputs, out_dir, sample, split, session) -> dataset folder.
        train: (dataset_dir, model_dir, train_config, resume) -> model folder; with
            resume, continue the training state an interrupted run left in model_dir.
        evaluate: (model_dir, dataset_dir, report_dir) -> the metric fields of a row
            (see botunet.experiments.results.ROW_FIELDS: all but the cell's own fields
            and train_seconds); the evaluation report goes to report_dir.
        known_models: the registered model names, checked before any work starts.
    """

    build: Callable[[Sequence[Path], Path, SampleConfig, SplitConfig, SessionConfig], Path]
    train: Callable[[Path, Path, TrainConfig, bool], Path]
    evaluate: Callable[[Path, Path, Path], dict[str, Any]]
    known_models: Callable[[], list[str]]


@dataclass
class SweepResult:
    """What a sweep did: its rows in grid order, how many cells it reused and trained."""

    out_dir: Path
    rows: list[dict[str, Any]]
    reused: int
    trained: int
    files: list[Path]


def default_stages() -> Stages:
    """The real dataset, training and evaluation stages (imported on first use)."""
    from botunet.experiments import stages

    return Stages(
        build=stages.build_cell_dataset,
        train=stages.train_cell,
        evaluate=stages.evaluate_cell,
        known_models=stages.known_models,
    )


def grid_cells(config: SweepConfig) -> list[Cell]:
    """Every cell of the grid, in the order the sweep runs them (start, N, model)."""
    return [
        Cell(config.protocol, start, n_packets, model)
        for start in config.starts
        for n_packets in config.packets
        for model in config.models
    ]


def run_sweep(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    config: SweepConfig,
    train: TrainConfig | None = None,
    *,
    session: SessionConfig | None = None,
    stages: Stages | None = None,
) -> SweepResult:
    """Build, train and evaluate every cell of ``config`` not already cached in ``out_dir``.

    ``train`` gives the training settings of every cell; its model and seed are set
    per cell from the grid and ``config.seed``.
    """
    inputs = [Path(p) for p in inputs]
    out_dir = Path(out_dir)
    train = train or TrainConfig()
    session = session or SessionConfig()
    stages = stages or default_stages()
    _check_inputs(inputs, config, stages)

    fingerprint = cache.fingerprint_inputs(inputs)
    cells = grid_cells(config)
    settings = _settings(inputs, fingerprint, config, train, session)
    out_dir.mkdir(parents=True, exist_ok=True)
    _warn_if_settings_changed(out_dir, settings)
    logger.info(
        "sweep of %d cells (%d N x %d starts x %d models), protocol %s, %d input files, in %s",
        len(cells),
        len(config.packets),
        len(config.starts),
        len(config.models),
        config.protocol,
        len(fingerprint),
        out_dir,
    )

    rows: dict[Cell, dict[str, Any]] = {}
    reused = 0
    with progress(total=len(cells), desc="sweep", unit="cell", leave=True) as bar:
        for start in config.starts:
            for n_packets in config.packets:
                group = [c for c in cells if c.start == start and c.n_packets == n_packets]
                plan = _plan_group(group, out_dir, fingerprint, config, train, session)
                for cell, row, was_reused in _run_group(plan, inputs, stages, bar):
                    rows[cell] = row
                    reused += was_reused
                    bar.update(1)
                    ordered = [rows[c] for c in cells if c in rows]
                    write_outputs(out_dir, sweep_document(settings, ordered, len(cells)))

    ordered = [rows[c] for c in cells]
    trained = len(cells) - reused
    files = write_outputs(out_dir, sweep_document(settings, ordered, len(cells)), plots=True)
    logger.info("reused %d finished cells, trained %d", reused, trained)
    return SweepResult(out_dir=out_dir, rows=ordered, reused=reused, trained=trained, files=files)


@dataclass
class _GroupPlan:
    """The dataset of one (start, N) and the cells trained on it."""

    dataset_dir: Path
    sample: SampleConfig
    split: SplitConfig
    session: SessionConfig
    cells: list[tuple[Cell, Path, TrainConfig]]


def _plan_group(
    group: list[Cell],
    out_dir: Path,
    fingerprint: list[dict[str, Any]],
    config: SweepConfig,
    train: TrainConfig,
    session: SessionConfig,
) -> _GroupPlan:
    first = group[0]
    sample, split = protocol_configs(
        config.protocol,
        first.n_packets,
        first.start,
        max_per_capture=config.max_per_capture,
        seed=config.seed,
    )
    session = sample.session_config(session)
    dataset_key = cache.content_key(
        {
            "inputs": fingerprint,
            "sample": to_dict(sample),
            "split": to_dict(split),
            "session": to_dict(session),
        }
    )
    stem = f"{first.protocol}-{first.start}-n{first.n_packets:02d}"
    dataset_dir = out_dir / "datasets" / f"{stem}-{dataset_key}"

    cells = []
    for cell in group:
        cell_train = dataclasses.replace(train, model=cell.model, seed=config.seed)
        train_key = {
            k: v for k, v in to_dict(cell_train).items() if k not in _KEY_IGNORED_TRAIN_FIELDS
        }
        key = cache.content_key({"dataset": dataset_key, "train": train_key})
        cells.append((cell, out_dir / "cells" / f"{stem}-{cell.model}-{key}", cell_train))
    return _GroupPlan(dataset_dir, sample, split, session, cells)


def _run_group(
    plan: _GroupPlan, inputs: list[Path], stages: Stages, bar: Any
) -> Iterator[tuple[Cell, dict[str, Any], bool]]:
    """(cell, row, reused) for each cell of one dataset, building it only when needed."""
    dataset_dir = None
    for cell, cell_dir, cell_train in plan.cells:
        bar.set_postfix_str(str(cell))
        row = _load_finished(cell_dir)
        if row is not None:
            logger.info("cell %s: reused %s", cell, cell_dir.name)
            yield cell, row, True
            continue
        if dataset_dir is None:
            dataset_dir = _ensure_dataset(plan, inputs, stages)
        yield cell, _run_cell(cell, cell_dir, cell_train, dataset_dir, plan, stages), False


def _ensure_dataset(plan: _GroupPlan, inputs: list[Path], stages: Stages) -> Path:
    """The built dataset of ``plan``, building it unless a finished one is cached."""
    data_dir = plan.dataset_dir / "data"
    if cache.is_done(plan.dataset_dir):
        logger.info("dataset %s: reused", plan.dataset_dir.name)
        return data_dir

    cache.fresh_folder(plan.dataset_dir)
    logger.info("dataset %s: building", plan.dataset_dir.name)
    built = Path(stages.build(inputs, data_dir, plan.sample, plan.split, plan.session))
    cache.mark_done(plan.dataset_dir, {"dataset": str(built.relative_to(plan.dataset_dir))})
    return built


def _run_cell(
    cell: Cell,
    cell_dir: Path,
    train: TrainConfig,
    dataset_dir: Path,
    plan: _GroupPlan,
    stages: Stages,
) -> dict[str, Any]:
    """Train and evaluate one cell; its metrics.json, then its done marker, come last.

    A cell folder left by an interrupted run continues its training from the last
    finished epoch; when that fails, the cell starts again from scratch.
    """
    if _has_partial_training(cell_dir):
        logger.info("cell %s: resuming the interrupted training", cell)
        try:
            return _train_and_evaluate(cell, cell_dir, train, dataset_dir, stages, resume=True)
        except BotunetError as err:
            logger.warning("cell %s: cannot resume (%s); starting again", cell, err)

    cache.fresh_folder(cell_dir)
    cache.write_json_atomic(
        cell_dir / "cell.json",
        {
            "cell": dataclasses.asdict(cell),
            "dataset": str(dataset_dir),
            "sample": to_dict(plan.sample),
            "split": to_dict(plan.split),
            "session": to_dict(plan.session),
            "train": to_dict(train),
        },
    )

    logger.info("cell %s: training", cell)
    return _train_and_evaluate(cell, cell_dir, train, dataset_dir, stages, resume=False)


def _train_and_evaluate(
    cell: Cell,
    cell_dir: Path,
    train: TrainConfig,
    dataset_dir: Path,
    stages: Stages,
    *,
    resume: bool,
) -> dict[str, Any]:
    """Train (or resume), evaluate on test, then write metrics.json and the done marker."""
    began = time.perf_counter()
    model_dir = Path(stages.train(dataset_dir, cell_dir / "model", train, resume))
    train_seconds = time.perf_counter() - began
    metrics = stages.evaluate(model_dir, dataset_dir, cell_dir / "evaluation")

    row = {**dataclasses.asdict(cell), **metrics, "train_seconds": round(train_seconds, 1)}
    missing = [name for name in ROW_FIELDS if name not in row]
    if missing:
        raise ValueError(f"evaluation of {cell} gave no {', '.join(missing)}")
    row = {name: row[name] for name in ROW_FIELDS}
    cache.write_json_atomic(cell_dir / "metrics.json", row)
    cache.mark_done(cell_dir, {"cell": str(cell)})
    logger.info(
        "cell %s: accuracy %.4f, F1 %.4f, %d epochs in %.0f s",
        cell,
        row["accuracy"],
        row["f1"],
        row["epochs_run"],
        train_seconds,
    )
    return row


def _has_partial_training(cell_dir: Path) -> bool:
    """Whether an interrupted run left training state in this (unfinished) cell."""
    model_dir = cell_dir / "model"
    return (cell_dir / "cell.json").is_file() and model_dir.is_dir() and any(model_dir.iterdir())


def _load_finished(cell_dir: Path) -> dict[str, Any] | None:
    """The row of a finished cell, or None when the cell must be (re)run."""
    if not cache.is_done(cell_dir):
        return None
    try:
        row = json.loads((cell_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("cell %s: unreadable metrics.json, running it again", cell_dir.name)
        return None
    if not isinstance(row, dict) or any(name not in row for name in ROW_FIELDS):
        logger.warning("cell %s: incomplete metrics.json, running it again", cell_dir.name)
        return None
    return row


def _warn_if_settings_changed(out_dir: Path, settings: dict[str, Any]) -> None:
    """Say so when SWEEP_DIR's result files came from other settings (its cells stay)."""
    try:
        previous = json.loads((out_dir / "sweep.json").read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
    if changed:
        logger.warning(
            "%s held the results of other settings (%s differ); its result files now describe "
            "this sweep, and the cached cells of both are kept",
            out_dir,
            ", ".join(changed),
        )


def _check_inputs(inputs: list[Path], config: SweepConfig, stages: Stages) -> None:
    """Fail before any work on a missing capture, unknown protocol or unknown model."""
    if not inputs:
        raise ConfigError("no captures given")
    for path in inputs:
        if not path.exists():
            raise PcapFormatError(f"{path}: no such file or folder")
    get_protocol(config.protocol)
    known = stages.known_models()
    unknown = [m for m in config.models if m not in known]
    if unknown:
        raise ConfigError(f"unknown model {unknown[0]!r}; available: {', '.join(sorted(known))}")


def _settings(
    inputs: list[Path],
    fingerprint: list[dict[str, Any]],
    config: SweepConfig,
    train: TrainConfig,
    session: SessionConfig,
) -> dict[str, Any]:
    """The sweep's settings as written into sweep.json."""
    protocol = get_protocol(config.protocol)
    train_settings = {k: v for k, v in to_dict(train).items() if k not in ("model", "seed")}
    return {
        "protocol": protocol.name,
        "protocol_description": protocol.description,
        "sweep": to_dict(config),
        "train": train_settings,
        "session": to_dict(session),
        "bytes_per_packet": SampleConfig().bytes_per_packet,
        "inputs": [str(p) for p in inputs],
        "n_input_files": len(fingerprint),
        "input_bytes": sum(entry["bytes"] for entry in fingerprint),
    }
