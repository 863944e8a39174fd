"""Captures to bidirectional sessions, with every packet accounted for.

The per-packet work (framing, decoding, the session table, timeouts) runs in the C
meter ``botunet._meter``; this module feeds it chunks and hands out its sessions.

How sessions are cut (``SessionConfig``):

- Key: TCP and UDP by 5-tuple, other IP protocols by address pair and protocol
  (ports 0), whichever the direction. The sender of the first packet is ``src``.
  VLAN ids are not part of the key (nfstream's are): one IP conversation seen on
  two VLANs is one session.
- Idle timeout: a session with no packet for ``idle_timeout_s`` ends ("idle").
  Active timeout: the first packet ``active_timeout_s`` or more after a session's
  first packet ends it ("active") and starts the next one. Both are compared on a
  millisecond clock that never goes back (an out-of-order timestamp counts as the
  latest one seen), the way nfstream compares them, so the two cut sessions at the
  same packets; only packets given to a session move the clock. Idle sessions are expired from the least-recently-seen end of the
  table as capture time advances, so memory follows the live sessions only.
- TCP close (``tcp_close``): a RST closes its session ("rst"); a FIN closes it once
  FINs have been seen in both directions, at the packet carrying the second FIN
  ("fin"). A closed session lingers for ``close_grace_s`` after the closing packet:
  packets of its 5-tuple in that time (the last ACK, a retransmitted FIN or RST)
  still join it, without moving its end reason or making it "ready". It is handed
  out when the grace period is over, or at once when a SYN without ACK on the
  5-tuple starts a new session, or at the end of the capture. Closing sessions wait
  in a FIFO of their own (one grace period for all, so close order is expiry order),
  so none is held longer than the grace period after its close. Packets of the
  5-tuple after the grace period are counted as skipped ("after_close") until a SYN
  without ACK starts a new session, or the 5-tuple has been quiet for the idle
  timeout. ``close_grace_s=0`` hands the session out at the closing packet.
- End of capture: sessions still open end with "end". Sessions never span files.
- Kept packets: the first ``keep_packets`` packets of a session, and the
  ``keep_packets`` packets from its first packet with payload when that comes later,
  each cut to ``keep_bytes`` bytes from the IP header.
- Bytes: ``bytes_fwd`` / ``bytes_bwd`` count IP bytes (headers included, link layer
  not), so the same traffic counts the same on any link type.
- Timestamps: integer nanoseconds, whatever the capture's resolution (pcapng
  if_tsresol, decimal or binary, and if_tsoffset honoured). A pcap fraction is read
  as signed, as libpcap reads it, so one corrupt fraction cannot push the clock on.
- Fragments and tunnels: see ``botunet.pcap.decode``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from botunet import _meter
from botunet.config import START_MODES, SessionConfig
from botunet.errors import ConfigError, PcapFormatError
from botunet.pcap.reader import capture_name, find_captures, iter_chunks, warn_cut_record
from botunet.sessions.accounting import Accounting
from botunet.sessions.session import Packet, Session

logger = logging.getLogger(__name__)

__all__ = ["SessionStream", "iter_session_events", "iter_sessions"]

PathLike = str | Path

# Skips that ordinary traffic produces; others are worth a warning.
EXPECTED_SKIPS = ("non_ip", "after_close")


def _as_paths(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return find_captures(paths)


def _log_file(name: str, stats: dict[str, Any]) -> None:
    skipped = stats["skipped"]
    n_skipped = sum(skipped.values())
    detail = ", ".join(f"{reason} {count}" for reason, count in skipped.items()) or "none"
    if any(reason not in EXPECTED_SKIPS for reason in skipped):
        logger.warning(
            "%s: %d of %d packets skipped (%s)", name, n_skipped, stats["packets_read"], detail
        )
    else:
        logger.debug(
            "%s: %d packets, %d sessions, skipped: %s",
            name,
            stats["packets_read"],
            stats["sessions"],
            detail,
        )


def _meter_capture(
    path: PathLike, config: SessionConfig, accounting: Accounting, **options: Any
) -> Iterator[Any]:
    """Run one capture through a fresh meter; yields what the meter hands out."""
    name = capture_name(path)
    meter = _meter.Meter(
        Session,
        Packet,
        name,
        max(1, round(config.idle_timeout_s * 1000)),
        max(1, round(config.active_timeout_s * 1000)),
        tcp_close=config.tcp_close,
        close_grace_ms=round(config.close_grace_s * 1000),
        decode_tunnels=config.decode_tunnels,
        keep_packets=config.keep_packets,
        keep_bytes=config.keep_bytes,
        **options,
    )
    try:
        for chunk in iter_chunks(path):
            done = meter.feed(chunk)
            while done:  # the meter pauses after each batch of finished sessions
                yield from done
                done = meter.feed(b"")
        yield from meter.finish()
    except _meter.FormatError as err:
        raise PcapFormatError(f"{name}: {err}") from err
    stats = meter.stats()
    cut = stats["tail_bytes"] > 0
    if cut:
        warn_cut_record(name, stats["tail_bytes"], stats["tail_offset"])
    accounting.add_file(stats, cut=cut)
    _log_file(name, stats)


def iter_sessions(
    paths: PathLike | Iterable[PathLike],
    config: SessionConfig | None = None,
    accounting: Accounting | None = None,
) -> Iterator[Session]:
    """Sessions of the captures, each as it ends (in capture time), file after file.

    Args:
        paths: capture files, folders (searched for captures) or "-" for stdin; pcap or
            pcapng, gzip-compressed or not.
        config: how sessions are cut and what they keep; defaults to SessionConfig().
        accounting: filled with the packet and session counts as each file finishes.

    Raises:
        PcapFormatError: a file is empty, not a capture, or has a corrupt record.
    """
    config = config or SessionConfig()
    accounting = accounting if accounting is not None else Accounting()
    for path in _as_paths(paths):
        yield from _meter_capture(path, config, accounting)


def iter_session_events(
    paths: PathLike | Iterable[PathLike],
    config: SessionConfig | None = None,
    *,
    ready_packets: int,
    ready_start: str,
    accounting: Accounting | None = None,
) -> Iterator[tuple[str, Session]]:
    """Sessions as early as a detector can score them, then as they end.

    Yields ("ready", snapshot) once a session holds ``ready_packets`` kept packets
    counted from its first packet (ready_start "first") or from its first packet with
    payload ("payload"); the snapshot's end_reason is "" (still open). The session then
    drops its kept packets and keeps counting. ("end", session) follows when it ends,
    with no packets if it was ready before, else with the packets it kept. The meter
    keeps at least ``ready_packets`` packets whatever ``config.keep_packets`` says.
    """
    if ready_start not in START_MODES:
        raise ConfigError(
            f"ready_start must be one of {', '.join(START_MODES)}, got {ready_start!r}"
        )
    if ready_packets < 1:
        raise ConfigError(f"ready_packets must be >= 1, got {ready_packets!r}")
    config = config or SessionConfig()
    accounting = accounting if accounting is not None else Accounting()
    for path in _as_paths(paths):
        yield from _meter_capture(
            path,
            config,
            accounting,
            events=True,
            ready_packets=ready_packets,
            ready_payload=ready_start == "payload",
        )


class SessionStream:
    """Sessions of captures, iterated the way nfstream users iterate flows.

    ``for session in SessionStream("day1.pcap", idle_timeout_s=60): ...``; keyword
    options override fields of ``config``. After (or during) iteration ``accounting``
    holds the counts of the files finished so far; each new iteration starts it afresh.
    """

    def __init__(
        self,
        source: PathLike | Iterable[PathLike],
        config: SessionConfig | None = None,
        **options: Any,
    ) -> None:
        self.source = source
        self.config = dataclasses.replace(config or SessionConfig(), **options)
        self.accounting = Accounting()

    def __iter__(self) -> Iterator[Session]:
        self.accounting = Accounting()
        return iter_sessions(self.source, self.config, self.accounting)
