"""A dataset on disk: ``vectors.npy``, ``samples.parquet`` and ``dataset.json``.

Files are written under temporary names and renamed, ``dataset.json`` last, so a
folder with a ``dataset.json`` holds a complete dataset. Nothing in them depends on
when or where the dataset was built: the same inputs and options give the same bytes.
The content hash is SHA-256 over the vectors (shape, then bytes) and the metadata
table (each column's name, type and values), independent of the Parquet encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from botunet.errors import DatasetError

VECTORS_FILE = "vectors.npy"
SAMPLES_FILE = "samples.parquet"
INFO_FILE = "dataset.json"
FORMAT_VERSION = 1

_HASH_CHUNK_ROWS = 65536


def content_hash(vectors: np.ndarray, table: pa.Table) -> str:
    """SHA-256 of the vectors and the metadata table, as ``sha256:<hex>``."""
    digest = hashlib.sha256()
    digest.update(f"vectors {vectors.dtype.str} {vectors.shape}\n".encode())
    for start in range(0, vectors.shape[0], _HASH_CHUNK_ROWS):
        digest.update(np.ascontiguousarray(vectors[start : start + _HASH_CHUNK_ROWS]).data)
    for name, column in zip(table.column_names, table.columns):
        digest.update(f"\ncolumn {name} {column.type}\n".encode())
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text = "\0".join(column.to_pylist())
            digest.update(text.encode("utf-8", "surrogatepass"))
        else:
            digest.update(_numeric_bytes(column))
    return "sha256:" + digest.hexdigest()


# Little-endian NumPy types of the Arrow types the metadata table uses.
_NUMPY_TYPES = {
    pa.int8(): "<i1", pa.int16(): "<i2", pa.int32(): "<i4", pa.int64(): "<i8",
    pa.uint8(): "<u1", pa.uint16(): "<u2", pa.uint32(): "<u4", pa.uint64(): "<u8",
    pa.float32(): "<f4", pa.float64(): "<f8",
}


def _numeric_bytes(column: pa.ChunkedArray) -> bytes:
    """The values of a column as little-endian bytes, read from its Arrow buffer.

    ``to_numpy`` would give them too, but its first call imports pandas (a second of
    start-up). Other types, and columns with nulls, are hashed as JSON of their values.
    """
    array = column.combine_chunks()
    dtype = _NUMPY_TYPES.get(array.type)
    if dtype is None or array.null_count:
        return json.dumps(array.to_pylist()).encode()
    if len(array) == 0:
        return b""
    values = np.frombuffer(array.buffers()[1], dtype=dtype)
    return values[array.offset : array.offset + len(array)].tobytes()


def write_dataset(
    out_dir: Path, vectors: np.ndarray, table: pa.Table, info: dict[str, Any]
) -> Path:
    """Write the three files of a dataset into ``out_dir`` (created if missing)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / INFO_FILE).unlink(missing_ok=True)
        _replace(out_dir / VECTORS_FILE, lambda out: np.save(out, vectors, allow_pickle=False))
        _replace(
            out_dir / SAMPLES_FILE,
            lambda out: pq.write_table(table, out, compression="zstd", row_group_size=1 << 20),
        )
        text = json.dumps(info, indent=2, sort_keys=True, allow_nan=False) + "\n"
        _replace(out_dir / INFO_FILE, lambda out: out.write(text.encode("utf-8")))
    except OSError as err:
        raise DatasetError(f"cannot write dataset to {out_dir}: {err}") from err
    return out_dir


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        write(handle)
    os.replace(tmp, path)


def read_dataset(path: Path) -> tuple[np.ndarray, pa.Table, dict[str, Any]]:
    """Vectors (memory-mapped), metadata table and info of a dataset folder.

    Raises:
        DatasetError: the folder or one of its files is missing, unreadable or
            inconsistent with the others.
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"dataset not found: {path}")
    info_path = path / INFO_FILE
    if not info_path.is_file():
        raise DatasetError(f"not a complete dataset (no {INFO_FILE}): {path}")
    for name in (VECTORS_FILE, SAMPLES_FILE):
        if not (path / name).is_file():
            raise DatasetError(f"incomplete dataset {path}: missing {name}")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        vectors = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        table = pq.read_table(path / SAMPLES_FILE)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DatasetError(f"cannot read dataset {path}: {err}") from err

    if info.get("format") != FORMAT_VERSION:
        raise DatasetError(
            f"dataset {path} has format {info.get('format')!r}; this botunet reads {FORMAT_VERSION}"
        )
    expected = (info["counts"]["samples"], info["input_length"])
    if vectors.dtype != np.uint8 or vectors.shape != expected:
        raise DatasetError(
            f"dataset {path}: {VECTORS_FILE} is {vectors.dtype} {vectors.shape}, "
            f"{INFO_FILE} says uint8 {expected}"
        )
    if table.num_rows != vectors.shape[0]:
        raise DatasetError(
            f"dataset {path}: {SAMPLES_FILE} has {table.num_rows} rows, "
            f"{VECTORS_FILE} {vectors.shape[0]}"
        )
    return vectors, table, info
