"""``botunet run``: the main job, the paper's pipeline under two protocols side by side."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from botunet.config import START_MODES, JobConfig, TrainConfig
from botunet.errors import ConfigError

# Where the shared captures sit next to a checkout of this repository.
DEFAULT_CAPTURES = Path("..") / "shared" / "data" / "pcaps"


def add_parser(subparsers: Any) -> None:
    job = JobConfig()
    parser = subparsers.add_parser(
        "run",
        help="the main job: build a dataset, train, evaluate, under both protocols",
        description=(
            "Build the dataset, train a model and evaluate it on held-out sessions, once per "
            "protocol: 'paper' (random 3:1:1 split, nothing masked, as in the paper) and "
            "'strict' (split by capture, identifying fields masked, duplicates removed). "
            "Prints one summary table and writes RUN_DIR with both reports."
        ),
    )
    parser.add_argument(
        "captures", nargs="*", metavar="CAPTURES",
        help=f"capture files or folders (default: {DEFAULT_CAPTURES})",
    )
    parser.add_argument(
        "-o", "--out", metavar="RUN_DIR",
        help="output folder (default: runs/run-<date>-<time>)",
    )
    parser.add_argument(
        "--protocols", default=",".join(job.protocols), metavar="NAME,...",
        help=f"protocols to run (default: {','.join(job.protocols)})",
    )
    parser.add_argument("--model", default=job.model, help=f"model (default: {job.model})")
    parser.add_argument(
        "--packets", type=int, default=job.n_packets, metavar="N",
        help=f"packets per session (default: {job.n_packets})",
    )
    parser.add_argument(
        "--start", choices=START_MODES, default=job.start,
        help=f"where the packets start (default: {job.start})",
    )
    parser.add_argument(
        "--max-per-capture", type=int, default=job.max_per_capture, metavar="K",
        help=f"at most K sessions of each capture, 0 for all (default: {job.max_per_capture})",
    )
    parser.add_argument(
        "--epochs", type=int, default=job.epochs,
        help=f"most epochs (default: {job.epochs}; the paper trained 40)",
    )
    parser.add_argument(
        "--patience", type=int, default=job.patience, metavar="EPOCHS",
        help=f"stop after this many epochs without a better validation F1, 0 never "
        f"(default: {job.patience})",
    )
    parser.add_argument("--seed", type=int, default=job.seed, help=f"seed (default: {job.seed})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botunet.experiments.mainjob import format_table, run_main_job

    captures = [Path(p) for p in args.captures] or [DEFAULT_CAPTURES]
    for path in captures:
        if not path.exists():
            raise ConfigError(f"{path}: no such capture file or folder")
    out = Path(args.out) if args.out else Path("runs") / time.strftime("run-%Y%m%d-%H%M%S")
    job = JobConfig(
        protocols=tuple(p.strip() for p in args.protocols.split(",") if p.strip()),
        model=args.model,
        n_packets=args.packets,
        start=args.start,
        max_per_capture=args.max_per_capture or None,
        seed=args.seed,
        epochs=args.epochs,
        patience=args.patience or None,
    )
    results = run_main_job(captures, out, job, TrainConfig())

    print(format_table([r.row for r in results]))
    print()
    for r in results:
        print(f"{r.row['protocol']:<9} report {r.report_dir / 'report.md'}")
    print(f"summary   {out / 'summary.md'}")
    return 0
