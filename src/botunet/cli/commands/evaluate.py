"""``botunet evaluate``: metrics, report and plots of a model on a dataset or captures."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Evaluate a model folder on a split of a dataset folder, or on capture files and
folders: captures are cut into samples with the model's own settings (N, L, start
mode, masking, session options) and labelled as `botunet dataset` labels them.

Prints a summary; with -o OUT_DIR also writes metrics.json, report.md, predictions.csv
and PNG plots (training curves, confusion matrix, ROC curve). Botnet is the positive
class.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on a dataset split or on captures",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder")
    parser.add_argument("data", nargs="+", metavar="DATA",
                        help="dataset folder, or capture files / folders")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                        help="split of a dataset folder (default: %(default)s)")
    parser.add_argument("-o", "--output", metavar="OUT_DIR",
                        help="folder for metrics.json, report.md and plots")
    parser.add_argument("--batch-size", type=int, default=512, metavar="N",
                        help="samples scored together (default: %(default)s)")
    parser.add_argument("--botnet-ips", metavar="FILE",
                        help="for captures no folder or sidecar labels: a botnet IP list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botunet.errors import ConfigError
    from botunet.evaluation.evaluate import evaluate
    from botunet.evaluation.report import format_summary, write_report

    if args.batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {args.batch_size!r}")
    result = evaluate(args.model_dir, args.data, split=args.split, batch_size=args.batch_size,
                      botnet_ips=args.botnet_ips)
    print(format_summary(result.metrics))
    if args.output:
        out_dir = Path(args.output)
        write_report(out_dir, result.metrics, labels=result.labels, scores=result.scores,
                     history=result.history, metadata=result.metadata)
        print(f"report     {out_dir / 'report.md'}")
    return 0
