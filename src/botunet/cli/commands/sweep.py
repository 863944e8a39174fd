"""``botunet sweep``: the paper's experiments over N, start mode and model, in one command."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from botunet.config import START_MODES, SweepConfig, TrainConfig

DEFAULT_OUT = "sweep"


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def _patience(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}")


def _joined(values: tuple[Any, ...]) -> str:
    return ",".join(str(v) for v in values)


def add_parser(subparsers: Any) -> None:
    grid, train = SweepConfig(), TrainConfig()
    parser = subparsers.add_parser(
        "sweep",
        help="reproduce the paper's tables: train and test every (N, start, model)",
        description=(
            "Build one dataset per (N, start) from the captures, train and test every model "
            "on it, and write sweep.md (tables laid out like the paper's, with its numbers "
            "beside ours), sweep.csv, sweep.json and F1 plots into SWEEP_DIR. Datasets and "
            "finished cells are cached in SWEEP_DIR under a hash of their settings: the same "
            "command again resumes where it stopped, and other settings add new cells beside "
            "the old ones."
        ),
    )
    parser.add_argument("captures", nargs="+", metavar="CAPTURES", help="capture files or folders")
    parser.add_argument(
        "-o",
        "--out",
        default=DEFAULT_OUT,
        metavar="SWEEP_DIR",
        help=f"output and cache folder (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--packets",
        type=_int_list,
        default=grid.packets,
        metavar="N,...",
        help=f"values of N (default: {_joined(grid.packets)})",
    )
    parser.add_argument(
        "--start",
        type=_name_list,
        default=grid.starts,
        dest="starts",
        metavar="MODE,...",
        help=f"start modes among {', '.join(START_MODES)} (default: {_joined(grid.starts)})",
    )
    parser.add_argument(
        "--models",
        type=_name_list,
        default=grid.models,
        metavar="NAME,...",
        help=f"models (default: {_joined(grid.models)})",
    )
    parser.add_argument(
        "--protocol",
        default=grid.protocol,
        help=f"paper or strict (default: {grid.protocol}; see botunet.experiments.protocols)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=train.epochs,
        help=f"most epochs per cell (default: {train.epochs})",
    )
    parser.add_argument(
        "--patience",
        type=_patience,
        default=train.patience,
        metavar="EPOCHS",
        help=f"stop after this many epochs without progress, or none (default: {train.patience})",
    )
    parser.add_argument(
        "--max-per-capture",
        type=int,
        default=grid.max_per_capture,
        metavar="K",
        help="keep at most K sessions of each capture (default: all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=grid.seed,
        help=f"seed of every split and training run (default: {grid.seed})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botunet.experiments.sweep import run_sweep

    config = SweepConfig(
        packets=args.packets,
        starts=args.starts,
        models=args.models,
        protocol=args.protocol,
        max_per_capture=args.max_per_capture,
        seed=args.seed,
    )
    train = dataclasses.replace(TrainConfig(), epochs=args.epochs, patience=args.patience)
    result = run_sweep(args.captures, args.out, config, train)

    print(f"{'start':<8} {'N':>3} {'model':<14} {'acc':>7} {'F1':>7} {'test n':>7}")
    for row in result.rows:
        print(
            f"{row['start']:<8} {row['n_packets']:>3} {row['model']:<14} "
            f"{100 * row['accuracy']:>7.2f} {100 * row['f1']:>7.2f} {row['n_test']:>7}"
        )
    print(f"{len(result.rows)} cells: {result.reused} reused, {result.trained} trained")
    for path in result.files:
        print(f"wrote {path}")
    return 0
