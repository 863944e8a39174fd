"""Progress bars on stderr, off when stderr is not a terminal or with -q."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    return sys.stderr.isatty() and logging.getLogger("botunet").level <= logging.INFO


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> Iterator[T] | tqdm:
    """A tqdm bar on stderr that library code can use without knowing about the CLI."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, file=sys.stderr, **kwargs)
