"""One flat record per session, written as JSON lines, CSV or Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from botunet.errors import ConfigError
from botunet.sessions.key import community_id
from botunet.sessions.session import Session

__all__ = ["OUTPUT_SUFFIXES", "RECORD_SCHEMA", "SessionWriter", "session_record"]

RECORD_SCHEMA = pa.schema(
    [
        ("community_id", pa.string()),
        ("src_ip", pa.string()),
        ("src_port", pa.int32()),
        ("dst_ip", pa.string()),
        ("dst_port", pa.int32()),
        ("protocol", pa.int16()),
        ("first_ts", pa.float64()),
        ("last_ts", pa.float64()),
        ("packets_fwd", pa.int64()),
        ("packets_bwd", pa.int64()),
        ("bytes_fwd", pa.int64()),
        ("bytes_bwd", pa.int64()),
        ("end_reason", pa.string()),
        ("capture", pa.string()),
    ]
)
RECORD_FIELDS = tuple(RECORD_SCHEMA.names)
OUTPUT_SUFFIXES = (".jsonl", ".csv", ".parquet")

# Rows buffered before a Parquet row group is written.
PARQUET_BATCH = 65536


def session_record(session: Session) -> dict[str, Any]:
    """The record of one session; times in seconds since the epoch."""
    return {
        "community_id": community_id(session),
        "src_ip": session.src_ip,
        "src_port": session.src_port,
        "dst_ip": session.dst_ip,
        "dst_port": session.dst_port,
        "protocol": session.protocol,
        "first_ts": session.first_ts,
        "last_ts": session.last_ts,
        "packets_fwd": session.packets_fwd,
        "packets_bwd": session.packets_bwd,
        "bytes_fwd": session.bytes_fwd,
        "bytes_bwd": session.bytes_bwd,
        "end_reason": session.end_reason,
        "capture": session.capture,
    }


class SessionWriter:
    """Writes session records to a file whose suffix picks the format.

    Use as a context manager; ``write`` takes one Session, ``count`` says how many
    were written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in OUTPUT_SUFFIXES:
            raise ConfigError(
                f"output must end in {', '.join(OUTPUT_SUFFIXES)}, got {str(self.path)!r}"
            )
        self.count = 0
        self._file: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._rows: list[dict[str, Any]] = []

    def __enter__(self) -> SessionWriter:
        try:
            if self.format == ".parquet":
                self._parquet = pq.ParquetWriter(self.path, RECORD_SCHEMA)
            else:
                self._file = open(self.path, "w", newline="", encoding="utf-8")
                if self.format == ".csv":
                    self._csv = csv.DictWriter(self._file, fieldnames=RECORD_FIELDS)
                    self._csv.writeheader()
        except OSError as err:
            raise ConfigError(f"cannot write {str(self.path)!r}: {err.strerror or err}") from err
        return self

    def write(self, session: Session) -> None:
        record = session_record(session)
        if self._csv is not None:
            self._csv.writerow(record)
        elif self._file is not None:
            self._file.write(json.dumps(record) + "\n")
        else:
            self._rows.append(record)
            if len(self._rows) >= PARQUET_BATCH:
                self._flush()
        self.count += 1

    def _flush(self) -> None:
        if self._parquet is not None and self._rows:
            self._parquet.write_table(pa.Table.from_pylist(self._rows, schema=RECORD_SCHEMA))
            self._rows = []

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._parquet is not None:
            self._flush()
            self._parquet.close()
        if self._file is not None:
            self._file.close()
