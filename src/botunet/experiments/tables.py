"""Markdown tables of a sweep laid out like the paper's, with the paper's numbers beside ours.

``render_tables`` depends only on sweep.json, so the README can carry its output between
the README markers and a test can check that the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botunet.experiments.paper import (
    PAPER_BY_PACKETS,
    PAPER_COMPARISON,
    PAPER_MODEL_NAMES,
    PAPER_TABLE_OF_COMPARISON,
    PAPER_TABLE_OF_START,
)

# The README holds render_tables' output between these two lines.
TABLES_BEGIN = "<!-- botunet-sweep-tables:begin -->"
TABLES_END = "<!-- botunet-sweep-tables:end -->"

START_TITLES = {
    "first": "Sessions from their first packet",
    "payload": "Sessions from their first packet with payload",
}
METRICS = (("accuracy", "acc"), ("precision", "prec"), ("recall", "rec"), ("f1", "F1"))
MISSING = "–"
_TEXT_COLUMNS = ("model", "source", "start")


def load_sweep(sweep: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A sweep document, read from a sweep.json path unless already loaded."""
    if isinstance(sweep, dict):
        return sweep
    return json.loads(Path(sweep).read_text(encoding="utf-8"))


def render_tables(sweep: str | Path | dict[str, Any]) -> str:
    """Markdown tables of a sweep: one per start mode (rows N) and the model comparisons."""
    document = load_sweep(sweep)
    rows = document["rows"]
    settings = document.get("settings", {})
    grid = settings.get("sweep", {})
    starts = grid.get("starts") or _unique(r["start"] for r in rows)
    packets = grid.get("packets") or sorted(_unique(r["n_packets"] for r in rows))
    models = grid.get("models") or _unique(r["model"] for r in rows)
    by_cell = {(r["start"], r["n_packets"], r["model"]): r for r in rows}

    parts = [_preamble(document)]
    for start in starts:
        parts.append(_packets_section(start, packets, models, by_cell))
    for (start, n_packets), paper in PAPER_COMPARISON.items():
        if start in starts and n_packets in packets:
            parts.append(_comparison_section(start, n_packets, models, by_cell, paper))
    return "\n".join(parts)


def render_report(sweep: str | Path | dict[str, Any]) -> str:
    """The whole sweep.md: the tables, every cell's counts, and the F1 plots."""
    document = load_sweep(sweep)
    parts = ["# botunet sweep", "", render_tables(document), _cells_section(document["rows"])]
    if document.get("complete"):
        parts.append("## F1 against N\n")
        for start in document["settings"]["sweep"]["starts"]:
            parts.append(f"![F1 against N, start {start}](f1_{start}.png)\n")
    return "\n".join(parts)


def _markers(name: str | None) -> tuple[str, str]:
    if not name:
        return TABLES_BEGIN, TABLES_END
    return TABLES_BEGIN.replace(" -->", f" {name} -->"), TABLES_END.replace(" -->", f" {name} -->")


def splice_tables(readme: str, tables: str, name: str | None = None) -> str:
    """``readme`` with the text between the table markers (of sweep ``name``) replaced."""
    begin_marker, end_marker = _markers(name)
    begin, end = readme.find(begin_marker), readme.find(end_marker)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no {begin_marker} ... {end_marker} block")
    head = readme[: begin + len(begin_marker)]
    return f"{head}\n{tables.strip()}\n{readme[end:]}"


def readme_tables(readme: str, name: str | None = None) -> str | None:
    """The text between the table markers (of sweep ``name``), or None without markers."""
    begin_marker, end_marker = _markers(name)
    begin, end = readme.find(begin_marker), readme.find(end_marker)
    if begin < 0 or end < begin:
        return None
    return readme[begin + len(begin_marker) : end].strip()


def _preamble(document: dict[str, Any]) -> str:
    settings = document.get("settings", {})
    train = settings.get("train", {})
    grid = settings.get("sweep", {})
    limit = grid.get("max_per_capture")
    per_capture = f", at most {limit} sessions per capture" if limit else ""
    patience = train.get("patience")
    stopping = f"patience {patience}" if patience else "no early stopping"
    lines = [
        f"Protocol `{settings.get('protocol', '?')}`: {settings.get('protocol_description', '')}.",
        f"Training: at most {train.get('epochs', '?')} epoch(s), {stopping}, "
        f"batch {train.get('batch_size', '?')}, "
        f"lr {train.get('lr', '?')}, seed {grid.get('seed', '?')}; "
        f"{settings.get('n_input_files', '?')} input files{per_capture}.",
        "Accuracy, precision, recall and F1 in percent on the test split (botnet is the "
        "positive class); paper values from Li et al., Tables 2-5 (Exp1 = start `first`, "
        "Exp2 = start `payload`).",
    ]
    if not document.get("complete", True):
        lines.append(
            f"Partial sweep: {len(document['rows'])} of {document['n_cells']} cells finished."
        )
    return "\n".join(lines) + "\n"


def _packets_section(
    start: str,
    packets: list[int],
    models: list[str],
    by_cell: dict[tuple[str, int, str], dict[str, Any]],
) -> str:
    """Rows N, columns metric per model; then the paper's table for the same N."""
    title = START_TITLES.get(start, start)
    caption = PAPER_TABLE_OF_START.get(start)
    lines = [f"### {title} (start `{start}`)", ""]
    header = ["N", "test sessions"] + [f"{m} {short}" for m in models for _, short in METRICS]
    lines += _table_head(header)
    for n_packets in packets:
        cells = [by_cell.get((start, n_packets, m)) for m in models]
        n_test = next((c["n_test"] for c in cells if c is not None), None)
        values = [str(n_packets), MISSING if n_test is None else str(n_test)]
        for cell in cells:
            values += [_percent(cell and cell[name]) for name, _ in METRICS]
        lines.append(_table_row(values))

    paper = PAPER_BY_PACKETS.get(start, {})
    paper_models = [m for m in models if m in paper]
    paper_packets = [n for n in packets if any(n in paper[m] for m in paper_models)]
    if paper_models and paper_packets:
        lines += ["", f"Paper, {caption}:", ""]
        header = ["N"] + [
            f"{PAPER_MODEL_NAMES[m]} {short}" for m in paper_models for _, short in METRICS
        ]
        lines += _table_head(header)
        for n_packets in paper_packets:
            values = [str(n_packets)]
            for model in paper_models:
                reported = paper[model].get(n_packets)
                values += [f"{v:.2f}" for v in reported] if reported else [MISSING] * 4
            lines.append(_table_row(values))
    return "\n".join(lines) + "\n"


def _comparison_section(
    start: str,
    n_packets: int,
    models: list[str],
    by_cell: dict[tuple[str, int, str], dict[str, Any]],
    paper: dict[str, tuple[float, ...]],
) -> str:
    """Rows model (ours, then the paper's), with params and FLOPs."""
    caption = PAPER_TABLE_OF_COMPARISON[(start, n_packets)]
    lines = [f"### Models at start `{start}`, N = {n_packets} (paper {caption})", ""]
    lines += _table_head(
        ["model", "source", "acc", "prec", "rec", "F1", "params (M)", "FLOPs (G, MACs)"]
    )
    for model in models + [m for m in paper if m not in models]:
        cell = by_cell.get((start, n_packets, model))
        if model in models:
            values = [_percent(cell and cell[name]) for name, _ in METRICS]
            values += [_scaled(cell and cell["params"], 1e6), _scaled(cell and cell["flops"], 1e9)]
            lines.append(_table_row([model, "ours", *values]))
        reported = paper.get(model)
        if reported is not None:
            values = [f"{v:.2f}" for v in reported[:4]] + [f"{v:.3f}" for v in reported[4:]]
            lines.append(_table_row([model, f"paper ({PAPER_MODEL_NAMES[model]})", *values]))
    return "\n".join(lines) + "\n"


def _cells_section(rows: list[dict[str, Any]]) -> str:
    """Counts behind every cell: confusion matrix, ROC-AUC, epochs and time."""
    lines = ["## Cells", ""]
    lines += _table_head(
        ["start", "N", "model", "tn", "fp", "fn", "tp", "ROC-AUC", "epochs", "train s", "train n"]
    )
    for r in rows:
        auc = MISSING if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
        values = [r["start"], r["n_packets"], r["model"], r["tn"], r["fp"], r["fn"], r["tp"]]
        values += [auc, r["epochs_run"], f"{r['train_seconds']:.0f}", r["n_train"]]
        lines.append(_table_row([str(v) for v in values]))
    return "\n".join(lines) + "\n"


def _table_head(header: list[str]) -> list[str]:
    align = [":---" if h in _TEXT_COLUMNS else "---:" for h in header]
    return [_table_row(header), _table_row(align)]


def _table_row(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}"


def _scaled(value: float | None, unit: float) -> str:
    return MISSING if value is None else f"{value / unit:.3f}"


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))
