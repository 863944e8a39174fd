"""``botunet dataset``: captures to a labelled, split dataset folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from botunet.config import (
    MASK_LEVELS,
    SPLIT_MODES,
    START_MODES,
    SampleConfig,
    SessionConfig,
    SplitConfig,
)

DESCRIPTION = """\
Cut every session of the captures into one byte vector (N packets x L bytes from the
IP header, zero-padded), label it, split the samples into train/val/test and write
DATASET_DIR: vectors.npy, samples.parquet (one row per sample) and dataset.json (the
settings, counts, packet accounting and a content hash).

INPUT is a folder (searched for pcap and pcapng files, gzipped or not, known by their
first bytes), a capture file, or a manifest CSV with columns path,label,
family_or_source. Labels come from a botnet/ or benign/ folder above each capture (the
folder below it names the family), refined per session by a <capture>.labels.json
sidecar listing infected_hosts; --botnet-ips labels the captures nothing else labels.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    sample, split = SampleConfig(), SplitConfig()
    parser = subparsers.add_parser(
        "dataset",
        help="build a dataset folder from captures",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="capture folder, capture file or manifest CSV")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET_DIR",
                        help="dataset folder to write")

    group = parser.add_argument_group("samples")
    group.add_argument("--packets", type=int, metavar="N",
                       help=f"packets per sample (default: {sample.n_packets})")
    group.add_argument("--bytes", type=int, metavar="L",
                       help=f"bytes per packet (default: {sample.bytes_per_packet})")
    group.add_argument("--start", choices=START_MODES,
                       help="first packet of the session (Exp1) or first packet with "
                       f"payload (Exp2) (default: {sample.start})")
    group.add_argument("--mask", choices=MASK_LEVELS,
                       help=f"bytes zeroed in each packet (default: {sample.mask}; "
                       "see botunet.samples.mask)")

    group = parser.add_argument_group("labels and splits")
    group.add_argument("--botnet-ips", metavar="FILE",
                       help="botnet addresses, one per line, for captures nothing else labels")
    group.add_argument("--split", choices=SPLIT_MODES,
                       help=f"how samples are divided 3:1:1 (default: {split.mode})")
    group.add_argument("--seed", type=int,
                       help=f"seed of sampling and splits (default: {split.seed})")
    group.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=None,
                       help="drop vectors already in an earlier split "
                       "(default: on for capture and host splits)")
    group.add_argument("--max-per-capture", type=int, metavar="K",
                       help="keep a seeded sample of at most K sessions per capture")

    add_session_arguments(parser)
    parser.set_defaults(func=run)


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the session options (SessionConfig)."""
    d = SessionConfig()
    group = parser.add_argument_group("sessions")
    group.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                       help="end a session after this long without a packet "
                       f"(default: {d.idle_timeout_s:g})")
    group.add_argument("--active-timeout", type=float, metavar="SECONDS",
                       help="end a session this long after it began "
                       f"(default: {d.active_timeout_s:g})")
    group.add_argument("--no-tcp-close", dest="tcp_close", action="store_false", default=None,
                       help="do not end TCP sessions at FIN or RST")
    group.add_argument("--close-grace", type=float, metavar="SECONDS",
                       help="packets this long after a FIN or RST close still join the "
                       f"session; 0 ends it at the closing packet (default: {d.close_grace_s:g})")
    group.add_argument("--decode-tunnels", action="store_true", default=None,
                       help="use the inner packet of GRE, VXLAN, IP-in-IP and IPv6-in-IP")


def session_config_from_args(args: argparse.Namespace) -> SessionConfig:
    """A SessionConfig of the defaults overridden by the flags that were given."""
    given = {
        "idle_timeout_s": args.idle_timeout,
        "active_timeout_s": args.active_timeout,
        "tcp_close": args.tcp_close,
        "close_grace_s": args.close_grace,
        "decode_tunnels": args.decode_tunnels,
    }
    return SessionConfig(**{k: v for k, v in given.items() if v is not None})


def configs_from_args(args: argparse.Namespace) -> tuple[SampleConfig, SplitConfig, SessionConfig]:
    """The sample, split and session configs of the defaults overridden by given flags."""
    sample = {
        "n_packets": args.packets,
        "bytes_per_packet": args.bytes,
        "start": args.start,
        "mask": args.mask,
    }
    split = {
        "mode": args.split,
        "seed": args.seed,
        "dedup": args.dedup,
        "max_per_capture": args.max_per_capture,
    }
    return (
        SampleConfig(**{k: v for k, v in sample.items() if v is not None}),
        SplitConfig(**{k: v for k, v in split.items() if v is not None}),
        session_config_from_args(args),
    )


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print its summary."""
    from botunet.datasets.build import build_dataset
    from botunet.datasets.store import INFO_FILE

    sample, split, session = configs_from_args(args)
    out = build_dataset(
        args.inputs, args.output, sample=sample, split=split, session=session,
        botnet_ips=args.botnet_ips,
    )
    info = json.loads((Path(out) / INFO_FILE).read_text(encoding="utf-8"))
    sys.stdout.write(format_summary(out, info))
    return 0


def format_summary(out: Path, info: dict[str, Any]) -> str:
    """The readable summary of a built dataset."""
    from botunet.datasets.splits import SPLIT_NAMES

    sample = info["config"]["sample"]
    split = info["config"]["split"]
    counts = info["counts"]
    lines = [
        f"dataset {out}",
        f"  {counts['samples']} samples of {sample['n_packets']} packets x "
        f"{sample['bytes_per_packet']} bytes (start {sample['start']}, mask {sample['mask']}) "
        f"from {counts['sessions']} sessions of {len(info['captures'])} captures",
        f"  split {split['mode']}, seed {split['seed']}",
        "",
        f"  {'split':<8}{'benign':>10}{'botnet':>10}{'total':>10}",
    ]
    for name in SPLIT_NAMES:
        per_label = counts["splits"][name]
        total = sum(per_label.values())
        lines.append(
            f"  {name:<8}{per_label['benign']:>10}{per_label['botnet']:>10}{total:>10}"
        )
    lines += ["", f"  {'label':<8}{'family':<24}{'train':>8}{'val':>8}{'test':>8}"]
    for row in counts["families"]:
        per_split = "".join(f"{row[name]:>8}" for name in SPLIT_NAMES)
        lines.append(f"  {row['label']:<8}{row['family']:<24}{per_split}")

    dup = info["duplicates"]
    lines += [
        "",
        f"  dropped by --max-per-capture: {counts['dropped_max_per_capture']}",
        f"  identical vectors: {dup['unique_vectors']} distinct, {dup['repeated_samples']} "
        f"repeats, {dup['cross_split']} also in an earlier split, "
        f"{dup['conflicting_vectors']} with both labels",
        f"  duplicates removed: {dup['removed_total']} "
        + "(" + ", ".join(f"{k} {dup['removed'][k]}" for k in SPLIT_NAMES) + ")",
    ]
    acc = info["accounting"]
    skipped = ", ".join(f"{k} {v}" for k, v in acc["skipped"].items()) or "none"
    lines += [
        f"  packets: {acc['packets_read']} read, {acc['packets_in_sessions']} in sessions, "
        f"skipped: {skipped}",
        f"  content hash {info['content_hash']}",
    ]
    return "\n".join(lines) + "\n"
