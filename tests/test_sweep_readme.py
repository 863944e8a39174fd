"""The README's result tables and results/<sweep>/sweep.* say the same as its sweep.json.

Each folder under results/ holds the output of one ``botunet sweep``; the README carries
its tables between markers named after the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botunet.experiments.results import rows_to_csv
from botunet.experiments.tables import readme_tables, render_report, render_tables, splice_tables

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
SWEEPS = sorted(p.parent for p in RESULTS.glob("*/sweep.json"))


def test_results_hold_sweeps() -> None:
    assert SWEEPS, "results/ holds no sweep (results/<name>/sweep.json)"


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.name)
def test_readme_tables_match_the_sweep(sweep: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme_tables(readme, sweep.name)
    assert block is not None, f"README.md has no table block for {sweep.name}"
    assert block == render_tables(sweep / "sweep.json").strip()


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.name)
def test_results_csv_and_md_match_sweep_json(sweep: Path) -> None:
    document = json.loads((sweep / "sweep.json").read_text(encoding="utf-8"))
    assert document["complete"] is True
    assert (sweep / "sweep.csv").read_text(encoding="utf-8") == rows_to_csv(document["rows"])
    assert (sweep / "sweep.md").read_text(encoding="utf-8") == render_report(document)


def test_splice_tables_replaces_only_the_named_block() -> None:
    readme = (
        "a\n<!-- botunet-sweep-tables:begin x -->\nold\n<!-- botunet-sweep-tables:end x -->\n"
        "<!-- botunet-sweep-tables:begin y -->\nkeep\n<!-- botunet-sweep-tables:end y -->\n"
    )
    spliced = splice_tables(readme, "new", "x")
    assert readme_tables(spliced, "x") == "new"
    assert readme_tables(spliced, "y") == "keep"
