"""The main job: one model trained and tested under each evaluation protocol, side by side.

For every protocol (see botunet.experiments.protocols) the job builds a dataset from
the captures, trains the model on its train split (validation picks the best epoch),
and evaluates it on the test split with the same code as ``botunet evaluate``:

    RUN_DIR/
      summary.md, summary.json, summary.csv     one row per protocol
      <protocol>/dataset/                       the dataset (dataset.json, vectors, samples)
      <protocol>/model/                         weights.safetensors + model.json
      <protocol>/report/                        metrics.json, report.md, PNG plots
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botunet import __version__
from botunet.config import JobConfig, SessionConfig, TrainConfig, to_dict
from botunet.experiments.protocols import get_protocol, protocol_configs

logger = logging.getLogger(__name__)

SUMMARY_FIELDS = (
    "protocol",
    "model",
    "n_packets",
    "start",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "tn",
    "fp",
    "fn",
    "tp",
    "n_train",
    "n_test",
    "params",
    "flops",
    "epochs_run",
    "seconds",
)


@dataclass
class ProtocolResult:
    """One protocol's row of the summary and where its files are."""

    row: dict[str, Any]
    dataset_dir: Path
    model_dir: Path
    report_dir: Path


def run_main_job(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    job: JobConfig,
    train: TrainConfig,
    session: SessionConfig | None = None,
) -> list[ProtocolResult]:
    """Build, train and evaluate once per protocol; write the summary files into out_dir."""
    from botunet.datasets.build import build_dataset
    from botunet.experiments.stages import evaluate_cell
    from botunet.training.trainer import fit

    out_dir = Path(out_dir)
    for name in job.protocols:
        get_protocol(name)
    train = replace(train, model=job.model, seed=job.seed, epochs=job.epochs, patience=job.patience)
    results = []
    for name in job.protocols:
        started = time.monotonic()
        sample, split = protocol_configs(
            name, job.n_packets, job.start, max_per_capture=job.max_per_capture, seed=job.seed
        )
        folder = out_dir / name
        logger.info("protocol %s: %s", name, get_protocol(name).description)
        dataset_dir = build_dataset(
            [str(p) for p in inputs], folder / "dataset", sample=sample, split=split,
            session=session,
        )
        model_dir = fit(dataset_dir, folder / "model", train)
        row = evaluate_cell(model_dir, dataset_dir, folder / "report")
        row.update(
            protocol=name,
            model=job.model,
            n_packets=job.n_packets,
            start=job.start,
            seconds=round(time.monotonic() - started, 1),
        )
        results.append(ProtocolResult(row, dataset_dir, model_dir, folder / "report"))
    write_summary(out_dir, results, job, train)
    return results


def write_summary(
    out_dir: Path, results: list[ProtocolResult], job: JobConfig, train: TrainConfig
) -> list[Path]:
    """summary.json, summary.csv and summary.md of a finished job."""
    rows = [{key: r.row[key] for key in SUMMARY_FIELDS} for r in results]
    document = {
        "format": "botunet-run",
        "botunet_version": __version__,
        "job": to_dict(job),
        "train": to_dict(train),
        "rows": rows,
        "reports": {r.row["protocol"]: str(r.report_dir) for r in results},
    }
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    paths = {
        "summary.json": json.dumps(document, indent=2) + "\n",
        "summary.csv": buffer.getvalue(),
        "summary.md": summary_markdown(results),
    }
    for name, text in paths.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in paths]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a fixed-width table for the terminal."""
    header = ("protocol", "model", "N", "start", "accuracy", "precision", "recall", "F1",
              "params", "time")
    lines = ["{:<9} {:<13} {:>2} {:<8} {:>9} {:>9} {:>7} {:>7} {:>8} {:>7}".format(*header)]
    for row in rows:
        lines.append(
            "{:<9} {:<13} {:>2} {:<8} {:>9} {:>9} {:>7} {:>7} {:>8} {:>7}".format(
                row["protocol"], row["model"], row["n_packets"], row["start"],
                _pct(row["accuracy"]), _pct(row["precision"]), _pct(row["recall"]),
                _pct(row["f1"]), f"{row['params'] / 1e6:.3f}M", f"{row['seconds']:.0f}s",
            )
        )
    return "\n".join(lines)


def summary_markdown(results: list[ProtocolResult]) -> str:
    """summary.md: the table, what each protocol means, and links to the reports."""
    lines = [
        "# botunet run",
        "",
        "| protocol | model | N | start | accuracy | precision | recall | F1 | ROC-AUC "
        "| test samples | params | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        row = r.row
        auc = row["roc_auc"]
        lines.append(
            f"| {row['protocol']} | {row['model']} | {row['n_packets']} | {row['start']} "
            f"| {_pct(row['accuracy'])} | {_pct(row['precision'])} | {_pct(row['recall'])} "
            f"| {_pct(row['f1'])} | {'-' if auc is None else f'{auc:.4f}'} | {row['n_test']} "
            f"| {row['params']:,} | {row['seconds']:.0f} s |"
        )
    lines += ["", "Protocols:", ""]
    for r in results:
        name = r.row["protocol"]
        lines.append(f"- **{name}**: {get_protocol(name).description}; "
                     f"report: [{name}/report/report.md]({name}/report/report.md)")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
