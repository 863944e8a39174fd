"""Open captures (files, ``.gz``, stdin) and read them in chunks for the C framer.

The format is chosen from the first bytes, never from the file name: pcap (four magics:
micro- or nanosecond timestamps, either byte order) or pcapng, each optionally gzip
compressed. Records are framed in C (``botunet._meter``); Python only moves chunks.
"""

from __future__ import annotations

import gzip
import io
import logging
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

from botunet import _meter
from botunet.errors import PcapFormatError

logger = logging.getLogger(__name__)

# Bytes handed to the C framer per call: large enough that Python's share is negligible,
# small enough to keep memory flat.
CHUNK_SIZE = 4 * 1024 * 1024

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",  # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4",  # microseconds, big-endian
    b"\x4d\x3c\xb2\xa1",  # nanoseconds, little-endian
    b"\xa1\xb2\x3c\x4d",  # nanoseconds, big-endian
)
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Files that sit beside captures in our data folders and are never captures.
SIDECAR_SUFFIXES = (".labels.json", ".csv", ".md", ".json", ".txt")


class RawPacket(NamedTuple):
    """One capture record as stored: time, link type and the captured bytes."""

    ts_ns: int
    link_type: int
    data: bytes
    wire_length: int


def capture_name(path: str | Path) -> str:
    """The name a capture goes by in sessions and messages ("-" is stdin)."""
    return "<stdin>" if str(path) == STDIN else str(path)


def sniff_format(head: bytes) -> str | None:
    """The capture format of these first bytes: "pcap", "pcapng", or None."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def _open_raw(path: str | Path) -> BinaryIO:
    if str(path) == STDIN:
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by open_capture
    except OSError as err:
        raise PcapFormatError(f"{path}: cannot open: {err.strerror or err}") from err


@contextmanager
def open_capture(path: str | Path) -> Iterator[BinaryIO]:
    """A binary stream of the capture, decompressed when it starts with the gzip magic."""
    raw = _open_raw(path)
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        head = buffered.peek(2)[:2]
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=buffered, mode="rb") as stream:
                yield stream
        else:
            yield buffered
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def iter_chunks(path: str | Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of a capture (decompressed), chunk by chunk; read errors name the file."""
    name = capture_name(path)
    with open_capture(path) as stream:
        while True:
            try:
                chunk = stream.read(chunk_size)
            except (OSError, EOFError, zlib.error) as err:
                raise PcapFormatError(f"{name}: cannot read: {err}") from err
            if not chunk:
                return
            yield chunk


def is_capture(path: str | Path) -> bool:
    """Whether the file starts like a pcap or pcapng capture (gzip-compressed or not)."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(4)
            if head[:2] == GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    head = stream.read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return sniff_format(head) is not None


# File names that promise a capture: one of these that is not one is worth a warning.
CAPTURE_LIKE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def find_captures(paths: Iterable[str | Path]) -> list[str | Path]:
    """Expand folders into the capture files below them (by magic bytes), in sorted order.

    Files named directly are kept as given (so a bad one is reported, not skipped);
    inside folders, label sidecars, CSV and Markdown files and anything that does not
    start like a capture are left out.
    """
    found: list[str | Path] = []
    for path in paths:
        if str(path) == STDIN or not Path(path).is_dir():
            found.append(path)
            continue
        for child in sorted(Path(path).rglob("*")):
            if not child.is_file() or child.name.endswith(SIDECAR_SUFFIXES):
                continue
            if is_capture(child):
                found.append(child)
            elif child.name.lower().endswith(CAPTURE_LIKE_SUFFIXES):
                logger.warning("%s: named like a capture but is not one (empty or another "
                               "format); left out", child)
            else:
                logger.debug("not a capture, left out: %s", child)
    return found


def iter_packets(path: str | Path) -> Iterator[RawPacket]:
    """Every record of a capture as a RawPacket, in file order.

    For inspection and tests: the sessions stage does not go through Python per packet.
    A pcapng packet naming an undescribed interface has link_type -1.
    """
    name = capture_name(path)
    framer = _meter.Framer()
    try:
        for chunk in iter_chunks(path):
            for record in framer.feed(chunk):
                yield RawPacket(*record)
        tail_bytes, tail_offset = framer.finish()
    except _meter.FormatError as err:
        raise PcapFormatError(f"{name}: {err}") from err
    if tail_bytes:
        warn_cut_record(name, tail_bytes, tail_offset)


def warn_cut_record(name: str, tail_bytes: int, tail_offset: int) -> None:
    """The one warning for a capture whose last record is cut short."""
    logger.warning(
        "%s: last record cut short at offset %d (%d bytes ignored); earlier records kept",
        name,
        tail_offset,
        tail_bytes,
    )
