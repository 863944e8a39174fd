"""The README's result tables and results/sweep.* say the same as results/sweep.json.

results/ holds the output of the full ``botunet sweep``; these tests are skipped until
it is there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botunet.experiments.results import rows_to_csv
from botunet.experiments.tables import TABLES_BEGIN, readme_tables, render_report, render_tables

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
SWEEP_JSON = RESULTS / "sweep.json"

pytestmark = pytest.mark.skipif(
    not SWEEP_JSON.is_file(), reason="results/sweep.json not written yet (run botunet sweep)"
)


def test_readme_tables_match_results_sweep_json():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme_tables(readme)
    assert block is not None, f"README.md has no {TABLES_BEGIN} block"
    assert block == render_tables(SWEEP_JSON).strip(), (
        "README tables differ from results/sweep.json; paste render_tables('results/sweep.json') "
        "with botunet.experiments.tables.splice_tables"
    )


def test_results_csv_and_md_match_sweep_json():
    document = json.loads(SWEEP_JSON.read_text(encoding="utf-8"))
    assert document["complete"] is True
    assert (RESULTS / "sweep.csv").read_text(encoding="utf-8") == rows_to_csv(document["rows"])
    assert (RESULTS / "sweep.md").read_text(encoding="utf-8") == render_report(document)
