"""Dataset building speed and memory, end to end: captures to a stored dataset folder.

For each (N, start) it runs ``build_dataset`` (read, assemble, extract and mask, label,
split, deduplicate, write) and, for the ratio, the sessions stage alone over the same
captures with the same session options. Each run is a separate process, so its peak
RSS is its own; the best of ``--repeat`` runs is shown.

    PYTHONPATH=src python benchmarks/bench_dataset.py
    PYTHONPATH=src python benchmarks/bench_dataset.py --copies 4 --packets 1 8 16

Inputs default to the shared capture collection; ``--copies K`` copies it K times into
a temporary folder first, for a larger workload with the same mix of traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BOTUNET_SHARED", REPO.parent / "shared"))


def _child(kind: str, inputs: list[str], n_packets: int, start: str, split: str, out: str) -> None:
    """Run one measurement in this process and print its figures as JSON."""
    import logging
    import resource

    logging.disable(logging.WARNING)
    from botunet.config import SampleConfig, SplitConfig
    from botunet.datasets.build import build_dataset
    from botunet.labels.sources import discover_captures
    from botunet.sessions.accounting import Accounting
    from botunet.sessions.assembler import iter_sessions

    sample = SampleConfig(n_packets=n_packets, start=start)
    began = time.perf_counter()
    if kind == "sessions":
        accounting = Accounting()
        captures = [str(c.path) for c in discover_captures(inputs)]
        n = sum(1 for _ in iter_sessions(captures, sample.session_config(), accounting))
        packets = accounting.packets_read
    else:
        path = build_dataset(inputs, out, sample=sample, split=SplitConfig(mode=split))
        info = json.loads((Path(path) / "dataset.json").read_text())
        n, packets = info["counts"]["samples"], info["accounting"]["packets_read"]
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"samples": n, "packets": packets, "seconds": seconds, "rss_kib": peak_kib}))


def _run(kind: str, inputs: list[str], n: int, start: str, split: str, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--packets", str(n), "--start", start,
               "--split", split, "--out", str(out), *inputs]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _copy_collection(source: Path, copies: int, target: Path) -> list[str]:
    for i in range(copies):
        shutil.copytree(source, target / f"copy{i}", ignore=shutil.ignore_patterns("*.csv", "*.md"))
    return [str(target)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*",
                        help="captures or folders (default: the shared collection)")
    parser.add_argument("--packets", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--starts", nargs="+", default=["first", "payload"])
    parser.add_argument("--split", default="random")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.inputs, args.packets[0], args.start, args.split, args.out)
        return

    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        inputs = args.inputs or [str(SHARED / "data" / "pcaps")]
        if args.copies > 1:
            inputs = _copy_collection(Path(inputs[0]), args.copies, Path(tmp) / "captures")
        print(f"inputs: {', '.join(inputs)} (x{args.copies}); split {args.split}; "
              f"best of {args.repeat}; CPU {os.cpu_count()} cores")
        print(f"{'run':<18}{'samples':>9}{'packets':>10}{'s':>8}{'samples/s':>11}"
              f"{'packets/s':>11}{'peak MiB':>10}{'vs sessions':>13}")
        for n in args.packets:
            for start in args.starts:
                base = None
                for kind in ("sessions", "dataset"):
                    runs = [_run(kind, inputs, n, start, args.split, Path(tmp) / f"ds{i}")
                            for i in range(args.repeat)]
                    best = min(runs, key=lambda r: r["seconds"])
                    peak = max(r["rss_kib"] for r in runs) / 1024
                    base = base or best["seconds"]
                    print(f"{kind + f' {n}-{start}':<18}{best['samples']:>9}{best['packets']:>10}"
                          f"{best['seconds']:>8.2f}{best['samples'] / best['seconds']:>11.0f}"
                          f"{best['packets'] / best['seconds']:>11.0f}{peak:>10.0f}"
                          f"{best['seconds'] / base:>12.2f}x")


if __name__ == "__main__":
    main()
