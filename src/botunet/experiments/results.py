"""The sweep's result files: sweep.json, sweep.csv, sweep.md and F1 plots."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from botunet import __version__
from botunet.experiments.cache import write_atomic, write_json_atomic

logger = logging.getLogger(__name__)

# One row per cell, in this order, in sweep.csv and sweep.json. Ratios in [0, 1];
# params counted, flops in multiply-accumulates per sample.
ROW_FIELDS = (
    "protocol",
    "start",
    "n_packets",
    "model",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "tn",
    "fp",
    "fn",
    "tp",
    "params",
    "flops",
    "epochs_run",
    "train_seconds",
    "n_train",
    "n_test",
)

SWEEP_FORMAT = "botunet-sweep"
SWEEP_FORMAT_VERSION = 1


def sweep_document(
    settings: dict[str, Any], rows: list[dict[str, Any]], n_cells: int
) -> dict[str, Any]:
    """The content of sweep.json: settings, and the rows of the finished cells."""
    return {
        "format": SWEEP_FORMAT,
        "format_version": SWEEP_FORMAT_VERSION,
        "botunet_version": __version__,
        "complete": len(rows) == n_cells,
        "n_cells": n_cells,
        "settings": settings,
        "rows": [{name: row[name] for name in ROW_FIELDS} for row in rows],
    }


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text with a header line of ROW_FIELDS."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _csv_value(row[name]) for name in ROW_FIELDS})
    return buffer.getvalue()


def write_outputs(out_dir: Path, document: dict[str, Any], *, plots: bool = False) -> list[Path]:
    """Write sweep.json, sweep.csv and sweep.md (and the F1 plots) into ``out_dir``."""
    from botunet.experiments.tables import render_report

    paths = [out_dir / "sweep.json", out_dir / "sweep.csv", out_dir / "sweep.md"]
    write_json_atomic(paths[0], document)
    write_atomic(paths[1], rows_to_csv(document["rows"]))
    write_atomic(paths[2], render_report(document))
    if plots:
        from botunet.experiments.plots import plot_f1

        paths += plot_f1(document, out_dir)
    logger.debug("wrote %s", ", ".join(p.name for p in paths))
    return paths


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value
