"""``botunet detect``: score every session of captures or a live pcap stream."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from botunet.config import DetectConfig
from botunet.detection.engine import DetectionSummary, Detector
from botunet.detection.writers import FORMATS, infer_format, open_writer
from botunet.errors import BotunetError
from botunet.pcap.reader import find_captures

DESCRIPTION = """\
Score every session of the captures with a trained model, using the model's own
sample settings (N packets of L bytes from the first or first payload packet). A
session is scored as soon as it has its N packets, or when it ends with fewer.

Live interfaces: give "-" as the capture and pipe a pcap stream in, e.g.
  tcpdump -i eth0 -U -w - | botunet detect - -o alerts.json
  tcpdump -i eth0 -U -w - | botunet detect - -o - --backend onnx | jq .
"""

EPILOG = """\
Output: EVE JSON lines as Suricata writes them (event_type "alert" for botnet
sessions, "flow" for the rest with --all), or the same fields as CSV or Parquet.
Without -o only the summary is printed. With -o FILE the summary is also written as
JSON beside it (events.json -> events.summary.json). With -o - the events go to stdout
and the summary to stderr.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="score the sessions of captures or a live pcap stream",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "captures", nargs="+", metavar="CAPTURE", help='pcap/pcapng files (.gz too); "-" is stdin'
    )
    parser.add_argument(
        "--model", metavar="MODEL_DIR", help="model folder (default: the shipped unet1d_light)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help='write events here ("-": stdout)')
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default: from the suffix, else eve)"
    )
    parser.add_argument(
        "--all", action="store_true", help="write every scored session, not only alerts"
    )
    defaults = DetectConfig()
    parser.add_argument(
        "--backend", choices=("torch", "onnx"),
        help=f"inference backend (default: onnx with --onnx, else {defaults.backend})",
    )
    parser.add_argument(
        "--onnx", metavar="FILE",
        help="ONNX model for the onnx backend (default: MODEL_DIR/model.onnx)",
    )
    parser.add_argument(
        "--threshold", type=float, metavar="T", help="botnet score threshold (default: the model's)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, metavar="B",
        help="sessions scored together (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=defaults.max_wait_s, metavar="S", dest="max_wait_s",
        help="longest a ready session waits for its batch, in capture seconds "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="T",
        help="CPU threads for inference (default: the backend's, all cores)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    backend = args.backend or ("onnx" if args.onnx else DetectConfig.backend)
    config = DetectConfig(
        threshold=args.threshold,
        batch_size=args.batch_size,
        max_wait_s=args.max_wait_s,
        backend=backend,
        threads=args.threads,
    )
    # check the output settings and inputs before the model loads, so mistakes fail fast
    infer_format(args.output, args.format)
    captures = find_captures(args.captures)
    if not captures:
        raise BotunetError(f"no capture files in {', '.join(map(str, args.captures))}")
    detector = Detector(args.model, config, onnx_path=args.onnx).load()
    summary = _detect(detector, captures, args)
    print_summary(summary, sys.stderr if args.output == "-" else sys.stdout)
    return 0


def _detect(
    detector: Detector, captures: list[str | Path], args: argparse.Namespace
) -> DetectionSummary:
    if args.output is None:
        return detector.detect(captures)
    with open_writer(args.output, args.format) as writer:
        summary = detector.detect(captures, writer=writer, all_sessions=args.all)
    if args.output != "-":
        path = summary_path(args.output)
        path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def summary_path(output: str) -> Path:
    """Where the run's summary JSON goes: events.json -> events.summary.json, beside it."""
    output_path = Path(output)
    return output_path.with_name(output_path.stem + ".summary.json")


def print_summary(summary: DetectionSummary, out: IO[str]) -> None:
    """The readable summary: sessions, alerts, top hosts, packet accounting."""
    ready = summary.triggers.get("ready", 0)
    rate = summary.sessions / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    lines = [
        f"model      {summary.model} {summary.model_version} on {summary.backend}, "
        f"N={summary.n_packets} from the {summary.start} packet, threshold {summary.threshold:.3f}",
        f"sessions   {summary.sessions} scored ({ready} at {summary.n_packets} packets, "
        f"{summary.sessions - ready} at their end) in {summary.elapsed_s:.1f} s "
        f"({rate:.0f}/s)",
        f"alerts     {summary.alerts}",
    ]
    top = summary.top_hosts(10)
    if top:
        width = max(15, *(len(host) for host, _, _ in top))
        lines += ["", "hosts with most alerts (session initiators)"]
        lines.append(f"  {'host':<{width}}  {'alerts':>7}  {'max score':>9}")
        lines += [f"  {h:<{width}}  {n:>7}  {s:>9.4f}" for h, n, s in top]
    lines += ["", "packets"] + _accounting_lines(summary)
    print("\n".join(lines), file=out)


def _accounting_lines(summary: DetectionSummary) -> list[str]:
    acc = summary.accounting
    skipped = dict(getattr(acc, "skipped", {}) or {})
    rows = [
        ("read", getattr(acc, "packets_read", 0)),
        ("in sessions", getattr(acc, "packets_in_sessions", 0)),
        ("used in samples", summary.packets_used),
        ("skipped", sum(skipped.values())),
    ]
    rows += [(f"  {reason}", n) for reason, n in sorted(skipped.items(), key=lambda kv: -kv[1])]
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {n:>12,}" for name, n in rows]
