"""``botunet train``: train a model on a dataset folder and save its best epoch."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from botunet.config import TrainConfig
from botunet.errors import ConfigError

DESCRIPTION = """\
Train a model on the train split of a dataset folder (built by `botunet dataset`),
choosing the best epoch by validation F1. MODEL_DIR receives weights.safetensors and
model.json (architecture, sample and session settings, threshold, history, metrics),
plus a training state saved after every epoch so that --resume continues an
interrupted run exactly where it stopped.

Defaults are the paper's: Adam, learning rate 1e-3, batch 64, 40 epochs, binary
cross-entropy; botnet samples are weighted by the train split's benign/botnet ratio.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset_dir", metavar="DATASET_DIR", help="dataset folder")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL_DIR",
                        help="model folder to write")
    parser.add_argument("--model", metavar="NAME", help=f"architecture (default: {d.model})")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="model constructor argument, repeatable (VALUE read as JSON)")
    parser.add_argument("--epochs", type=int, help=f"epochs (default: {d.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"batch size (default: {d.batch_size})")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default: {d.lr})")
    parser.add_argument("--weight-decay", type=float,
                        help=f"Adam weight decay (default: {d.weight_decay})")
    parser.add_argument("--patience", type=int, metavar="EPOCHS",
                        help="stop after this many epochs without better validation F1; "
                        f"0 never stops (default: {d.patience})")
    parser.add_argument("--seed", type=int, help=f"the run's one seed (default: {d.seed})")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-class-weights", dest="class_weights", action="store_false",
                        default=None, help="do not weight botnet samples by the class ratio")
    parser.add_argument("--tune-threshold", action="store_true", default=None,
                        help="use the threshold that maximises validation F1 instead of 0.5")
    parser.add_argument("--device", metavar="DEVICE",
                        help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in MODEL_DIR")
    parser.set_defaults(func=run)


def parse_model_args(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings to a dict; VALUE is JSON when it parses, else a string."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--model-arg must be KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig of the defaults overridden by the flags that were given."""
    fields = ("model", "epochs", "batch_size", "lr", "weight_decay", "seed", "threads",
              "class_weights", "tune_threshold")
    given = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    if args.patience is not None:
        given["patience"] = args.patience or None
    if args.model_arg:
        given["model_kwargs"] = parse_model_args(args.model_arg)
    return dataclasses.replace(TrainConfig(), **given)


def run(args: argparse.Namespace) -> int:
    from botunet.training.checkpoint import read_spec
    from botunet.training.trainer import fit

    if args.patience is not None and args.patience < 0:
        raise ConfigError(f"patience must be >= 0, got {args.patience!r}")
    config = config_from_args(args)
    model_dir = fit(
        Path(args.dataset_dir), Path(args.output), config, resume=args.resume, device=args.device
    )
    spec = read_spec(model_dir)
    print(format_result(spec, model_dir))
    return 0


def format_result(spec: dict[str, Any], model_dir: Path) -> str:
    """The stdout summary of a finished training run."""
    history = spec.get("history") or []
    best = next((h for h in history if h["epoch"] == spec.get("best_epoch")), None)
    lines = [
        f"model      {spec['model']} ({spec.get('params', 0):,} parameters) -> {model_dir}",
        f"epochs     {spec.get('epochs_run')} run, best {spec.get('best_epoch')}"
        + (" (stopped early)" if spec.get("stopped_early") else ""),
        f"threshold  {spec['threshold']:.4f} ({spec.get('threshold_source', 'default')})",
    ]
    if best is not None:
        lines.append(f"best epoch train loss {best['train_loss']:.4f}, "
                     f"val f1 {best['val_f1']:.4f} at 0.5")
    for name, m in (spec.get("metrics") or {}).items():
        auc = "-" if m.get("roc_auc") is None else f"{m['roc_auc']:.4f}"
        lines.append(
            f"{name:<10} acc {m['accuracy']:.4f}  precision {m['precision']:.4f}  "
            f"recall {m['recall']:.4f}  f1 {m['f1']:.4f}  roc_auc {auc}  (n={m['n_samples']})"
        )
    return "\n".join(lines)
