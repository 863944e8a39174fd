"""Shared test fixtures: where the real captures live, and a quiet, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BOTUNET_SHARED", REPO.parent / "shared"))
PCAPS = SHARED / "data" / "pcaps"
FIXTURES = SHARED / "data" / "fixtures"

try:
    import torch
except ImportError:  # the ONNX-only install has no torch
    torch = None
else:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED}; set BOTUNET_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def pcaps_dir(shared_dir: Path) -> Path:
    return PCAPS


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return FIXTURES
