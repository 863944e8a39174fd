"""``botunet sessions``: group captures into bidirectional sessions and summarise them."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from botunet.config import SessionConfig
from botunet.errors import BotunetError
from botunet.pcap.reader import find_captures
from botunet.progress import progress
from botunet.sessions.accounting import Accounting
from botunet.sessions.assembler import iter_sessions
from botunet.sessions.records import OUTPUT_SUFFIXES, SessionWriter
from botunet.sessions.session import END_REASONS

logger = logging.getLogger(__name__)

PROTOCOL_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMPv6"}

_DEFAULTS = SessionConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sessions",
        help="group captures into bidirectional sessions",
        description=(
            "Read pcap / pcapng captures (gzip too; folders are searched) and group their "
            "packets into bidirectional sessions. Prints a summary; -o writes one record "
            "per session."
        ),
    )
    parser.add_argument(
        "captures", nargs="+", metavar="CAPTURE", help="capture file, folder, or - for stdin"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help=f"write one record per session ({', '.join(OUTPUT_SUFFIXES)})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=_DEFAULTS.idle_timeout_s,
        metavar="S",
        help="end a session after S seconds without packets (default: %(default)s)",
    )
    parser.add_argument(
        "--active-timeout",
        type=float,
        default=_DEFAULTS.active_timeout_s,
        metavar="S",
        help="end a session S seconds after its first packet (default: %(default)s)",
    )
    parser.add_argument(
        "--no-tcp-close",
        dest="tcp_close",
        action="store_false",
        default=_DEFAULTS.tcp_close,
        help="do not end TCP sessions at FIN / RST (only timeouts end them)",
    )
    parser.add_argument(
        "--close-grace",
        type=float,
        default=_DEFAULTS.close_grace_s,
        metavar="S",
        help="packets up to S seconds after a FIN / RST close (the last ACK, retransmissions) "
        "still join the session; 0 ends it at the closing packet (default: %(default)s)",
    )
    parser.add_argument(
        "--decode-tunnels",
        action="store_true",
        default=_DEFAULTS.decode_tunnels,
        help="use the inner packet of GRE, VXLAN, IP-in-IP and IPv6-in-IP",
    )
    parser.set_defaults(func=run)
    return parser


def _protocol_name(number: int) -> str:
    return PROTOCOL_NAMES.get(number, f"IP {number}")


def _counts(counter: Counter, order: tuple | None = None) -> str:
    keys = [k for k in order if counter.get(k)] if order else [k for k, _ in counter.most_common()]
    return ", ".join(f"{k} {counter[k]:,}" for k in keys) or "none"


def _summary(accounting: Accounting, protocols: Counter, ends: Counter, output: str) -> str:
    acc = accounting
    lines = [
        f"files       {acc.files:,}" + (f" ({acc.cut_files} cut short)" if acc.cut_files else ""),
        f"packets     {acc.packets_read:,} read, {acc.packets_in_sessions:,} in sessions, "
        f"{acc.packets_skipped:,} skipped ({acc.describe_skips()})",
        f"sessions    {acc.sessions:,}",
        f"  protocol  {_counts(protocols)}",
        f"  ended by  {_counts(ends, END_REASONS)}",
    ]
    if output:
        lines.append(f"output      {output}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = SessionConfig(
        idle_timeout_s=args.idle_timeout,
        active_timeout_s=args.active_timeout,
        tcp_close=args.tcp_close,
        close_grace_s=args.close_grace,
        decode_tunnels=args.decode_tunnels,
    )
    files = find_captures(args.captures)
    if not files:
        raise BotunetError(f"no capture files in {', '.join(map(str, args.captures))}")

    accounting = Accounting()
    protocols: Counter = Counter()
    ends: Counter = Counter()
    with ExitStack() as stack:
        writer = stack.enter_context(SessionWriter(args.output)) if args.output else None
        bar = stack.enter_context(progress(total=len(files), desc="sessions", unit="file"))
        for path in files:
            for session in iter_sessions([path], config, accounting):
                protocols[_protocol_name(session.protocol)] += 1
                ends[session.end_reason] += 1
                if writer is not None:
                    writer.write(session)
            bar.update(1)

    logger.info(
        "assembled %d sessions from %d packets in %d files",
        accounting.sessions,
        accounting.packets_read,
        accounting.files,
    )
    output = f"{args.output} ({writer.count:,} records)" if writer is not None else ""
    print(_summary(accounting, protocols, ends, output))
    return 0
