"""``botunet export``: a model folder to ONNX (and int8) for ONNX Runtime on edge devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botunet.errors import ConfigError
from botunet.export.quantize import N_CALIBRATION

DESCRIPTION = """\
Export a model folder to ONNX: input "bytes" float32 (batch, 1, L) in [0, 1],
output "logit" (batch,), dynamic batch axis. The file is kept only if ONNX Runtime
agrees with PyTorch within 1e-4 at batch sizes 1 and 7.

With --int8 the model is also quantised to int8 (static, QDQ; the final fully
connected layer stays float), calibrated on the train split of --calibration
DATASET_DIR; the accuracy and F1 change on its test split and the file sizes are
printed and written to export.json beside the file.
Run the result with: botunet detect CAPTURE --model MODEL_DIR --onnx FILE
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model folder to ONNX (optionally int8)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder to export")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="ONNX file to write (default: MODEL_DIR/model.onnx)"
    )
    parser.add_argument(
        "--int8", action="store_true",
        help="also write an int8 model beside it (FILE with .int8.onnx)",
    )
    parser.add_argument(
        "--calibration", metavar="DATASET_DIR", help="dataset whose train split calibrates int8"
    )
    parser.add_argument(
        "--calibration-samples", type=int, default=N_CALIBRATION, metavar="N",
        help="train samples used for calibration (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botunet.export.onnx import export_onnx, write_report

    if args.int8 and not args.calibration:
        raise ConfigError("--int8 needs --calibration DATASET_DIR (a dataset with a train split)")
    if args.calibration_samples < 1:
        raise ConfigError(f"calibration samples must be >= 1, got {args.calibration_samples!r}")
    model_dir = Path(args.model_dir)
    out = Path(args.output) if args.output else None
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"{out}: its folder {str(out.parent)!r} does not exist")

    report = export_onnx(model_dir, out)
    if args.int8:
        report["int8"] = _quantize(report, args)
    report_path = write_report(report["fp32"]["path"], report)
    _print_report(report, report_path)
    return 0


def _quantize(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from botunet.export.quantize import quantize_int8
    from botunet.training.checkpoint import read_spec

    fp32_path = Path(report["fp32"]["path"])
    spec = read_spec(args.model_dir)
    return quantize_int8(
        fp32_path,
        int8_path(fp32_path),
        args.calibration,
        threshold=float(spec["threshold"]),
        sample_config=spec["sample_config"],
        n_calibration=args.calibration_samples,
    )


def int8_path(fp32_path: Path) -> Path:
    """model.onnx -> model.int8.onnx, beside it."""
    return fp32_path.with_name(fp32_path.stem + ".int8" + fp32_path.suffix)


def _print_report(report: dict[str, Any], report_path: Path) -> None:
    fp32 = report["fp32"]
    diffs = ", ".join(f"batch {b}: {d:.2g}" for b, d in fp32["max_abs_logit_diff"].items())
    lines = [
        f"model      {report['model']} from {report['model_dir']}",
        f"onnx       {fp32['path']}  {_size(fp32['bytes'])} (opset {fp32['opset']})",
        f"agreement  max |logit diff| vs PyTorch {diffs} (allowed {fp32['atol']:g})",
        f"weights    {_size(report['weights_bytes'])} safetensors",
    ]
    int8 = report.get("int8")
    if int8:
        a32, a8 = int8["fp32_test"], int8["int8_test"]
        lines += [
            f"int8       {int8['path']}  {_size(int8['bytes'])} "
            f"({int8['bytes'] / int8['fp32_bytes']:.0%} of fp32), "
            f"{'per-channel' if int8['per_channel'] else 'per-tensor'} weights, "
            f"{int8['calibration']['samples']} calibration samples",
            f"test split {int8['test_samples']} samples      accuracy     F1",
            f"  fp32                      {a32['accuracy']:8.4f}  {a32['f1']:.4f}",
            f"  int8                      {a8['accuracy']:8.4f}  {a8['f1']:.4f}",
            f"  change                    {int8['accuracy_change']:+8.4f}  {int8['f1_change']:+.4f}"
            f"  ({int8['verdicts_changed']} verdicts changed)",
        ]
    lines.append(f"report     {report_path}")
    print("\n".join(lines), file=sys.stdout)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.1f} KiB" if n_bytes < 1024 * 1024 else f"{n_bytes / 2**20:.2f} MiB"
