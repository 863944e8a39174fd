"""``botunet models``: the registered models' size and cost beside the paper's."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

from botunet.config import SampleConfig

_DEFAULTS = SampleConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="list the models with their size and cost",
        description=(
            "Build every registered model for samples of N packets x L bytes and print "
            "its parameters, multiply-accumulates per sample and weights file size, "
            "beside the paper's figures for 8 x 100 (Table 4) and 1 x 100 bytes (Table 5)."
        ),
    )
    parser.add_argument(
        "--packets",
        type=int,
        default=_DEFAULTS.n_packets,
        metavar="N",
        help="packets per sample (default: %(default)s)",
    )
    parser.add_argument(
        "--bytes",
        type=int,
        default=_DEFAULTS.bytes_per_packet,
        metavar="L",
        help="bytes per packet (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)
    return parser


def weights_file_size(model: Any) -> int:
    """Bytes of the model's state saved as a safetensors file (float32 weights)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "weights.safetensors")
        save_file(tensors, path)
        return os.path.getsize(path)


def describe_models(input_length: int) -> list[dict[str, Any]]:
    """One row per registered model: our size and cost, and the paper's at 800 and 100."""
    from botunet.models import create_model, list_models
    from botunet.models.flops import count_flops
    from botunet.models.reference import PAPER_COSTS

    rows = []
    for name in list_models():
        model = create_model(name, input_length=input_length)
        paper = PAPER_COSTS.get(name, {})
        rows.append(
            {
                "model": name,
                "input_length": input_length,
                "params": sum(p.numel() for p in model.parameters()),
                "macs": count_flops(model, input_length),
                "weights_bytes": weights_file_size(model),
                "paper_params": {str(n): c.params for n, c in sorted(paper.items())},
                "paper_macs": {str(n): c.macs for n, c in sorted(paper.items())},
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table; M = 1e6 parameters, G = 1e9 multiply-accumulates."""
    length = rows[0]["input_length"] if rows else 0
    header = [
        "model",
        "params (M)",
        "paper 800",
        "paper 100",
        "MACs (G)",
        "paper 800",
        "paper 100",
        "weights (KB)",
    ]
    lines = [header]
    for row in rows:
        paper_p, paper_m = row["paper_params"], row["paper_macs"]
        lines.append(
            [
                row["model"],
                f"{row['params'] / 1e6:.3f}",
                _scaled(paper_p.get("800"), 1e6),
                _scaled(paper_p.get("100"), 1e6),
                f"{row['macs'] / 1e9:.4f}",
                _scaled(paper_m.get("800"), 1e9),
                _scaled(paper_m.get("100"), 1e9),
                f"{row['weights_bytes'] / 1024:.1f}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(line, widths, strict=True)))
        for line in lines
    ]  # fmt: skip
    text.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        f"input length {length} bytes; MACs: multiply-accumulates per sample, the paper's",
        "FLOPs (Eq. 5); weights: safetensors file of the float32 state",
    ]
    return "\n".join(text + [""] + notes)


def _scaled(value: int | None, unit: float) -> str:
    return "-" if value is None else f"{value / unit:.3f}"


def run(args: argparse.Namespace) -> int:
    config = SampleConfig(n_packets=args.packets, bytes_per_packet=args.bytes)
    rows = describe_models(config.input_length)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
    return 0
