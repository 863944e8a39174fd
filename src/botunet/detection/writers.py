"""Event sinks: EVE JSON lines, CSV and Parquet, written as verdicts arrive."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import IO, Any

from botunet.detection.events import COLUMNS, flatten
from botunet.errors import ConfigError

FORMATS = ("eve", "csv", "parquet")
_SUFFIXES = {".json": "eve", ".jsonl": "eve", ".eve": "eve", ".csv": "csv", ".parquet": "parquet"}

# Parquet rows are buffered into row groups of this many events.
PARQUET_ROW_GROUP = 16384


class EventWriter:
    """Base class: ``write`` one event dict, ``flush`` after each batch, then ``close``."""

    def write(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Push written events out, so a reader of a live run sees them."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EveWriter(EventWriter):
    """One compact JSON object per line, as Suricata's eve.json."""

    def __init__(self, stream: IO[str], *, owned: bool) -> None:
        self._stream = stream
        self._owned = owned

    def write(self, event: dict[str, Any]) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()


class CsvWriter(EventWriter):
    """One row per event over COLUMNS, nested fields joined with "."."""

    def __init__(self, stream: IO[str], *, owned: bool) -> None:
        self._stream = stream
        self._owned = owned
        self._writer = csv.DictWriter(stream, fieldnames=COLUMNS, extrasaction="ignore")
        self._writer.writeheader()

    def write(self, event: dict[str, Any]) -> None:
        self._writer.writerow(flatten(event))

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()


class ParquetWriter(EventWriter):
    """The flat rows in a Parquet file, one row group per PARQUET_ROW_GROUP events."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([(name, _ARROW_TYPES.get(name, "string")) for name in COLUMNS])
        self._writer = pq.ParquetWriter(str(path), self._schema)
        self._rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        self._n_rows = 0

    def write(self, event: dict[str, Any]) -> None:
        row = flatten(event)
        for name in COLUMNS:
            self._rows[name].append(row[name])
        self._n_rows += 1
        if self._n_rows >= PARQUET_ROW_GROUP:
            self._write_group()

    def close(self) -> None:
        self._write_group()
        self._writer.close()

    def _write_group(self) -> None:
        if not self._n_rows:
            return
        table = self._pa.Table.from_pydict(self._rows, schema=self._schema)
        self._writer.write_table(table)
        self._rows = {name: [] for name in COLUMNS}
        self._n_rows = 0


_ARROW_TYPES = {
    "flow_id": "int64",
    "src_port": "int32",
    "dest_port": "int32",
    "flow.pkts_toserver": "int64",
    "flow.pkts_toclient": "int64",
    "flow.bytes_toserver": "int64",
    "flow.bytes_toclient": "int64",
    "botunet.packets": "int32",
    "botunet.score": "float64",
    "botunet.threshold": "float64",
    "alert.severity": "int32",
}


def infer_format(path: str | Path | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file suffix, else "eve"."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    if path is None or str(path) == "-":
        return "eve"
    return _SUFFIXES.get(Path(path).suffix.lower(), "eve")


def open_writer(path: str | Path, fmt: str | None = None) -> EventWriter:
    """A writer to ``path`` ("-" for stdout) in ``fmt`` (inferred from the suffix when None)."""
    fmt = infer_format(path, fmt)
    if str(path) == "-":
        if fmt == "parquet":
            raise ConfigError("parquet output needs a file, not stdout; use -o FILE.parquet")
        stream = sys.stdout
        return EveWriter(stream, owned=False) if fmt == "eve" else CsvWriter(stream, owned=False)
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ConfigError(f"{path}: its folder {str(path.parent)!r} does not exist")
    try:
        if fmt == "parquet":
            return ParquetWriter(path)
        stream = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as err:
        raise ConfigError(f"{path}: cannot write ({err.strerror})") from err
    return EveWriter(stream, owned=True) if fmt == "eve" else CsvWriter(stream, owned=True)
