"""The sweep's on-disk cache: content keys, atomic writes and done markers.

A cached step (a dataset, or a trained and evaluated cell) lives in its own folder
whose name ends in a key: a hash of everything its result depends on (the captures'
paths, sizes and modification times, the configs, the trained model). The step's
``done`` marker is written last, atomically; a folder without it is a step that was
interrupted, and is redone from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Bump when the layout or the meaning of a cached result changes, so that older cells
# are not reused.
CACHE_VERSION = 1

DONE_MARKER = "done"


def content_key(payload: Any, length: int = 12) -> str:
    """A short hex key of a JSON-ready payload (stable across runs and machines)."""
    text = json.dumps({"cache_version": CACHE_VERSION, "payload": payload}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fingerprint_inputs(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Path, size and mtime of every input file (folders walked, sorted)."""
    entries = []
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            stat = file.stat()
            entries.append(
                {"path": str(file.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            )
    return entries


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def is_done(folder: Path) -> bool:
    return (folder / DONE_MARKER).is_file()


def mark_done(folder: Path, info: dict[str, Any]) -> None:
    """Write the done marker of ``folder``: the last file of a finished step."""
    write_json_atomic(folder / DONE_MARKER, info)


def fresh_folder(folder: Path) -> Path:
    """An empty ``folder``, removing what an interrupted step left there."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
