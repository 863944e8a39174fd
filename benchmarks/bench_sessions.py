"""Speed and memory of the sessions stage against nfstream and a plain dpkt loop.

Two workloads, each tool in its own subprocess (peak RSS of its whole process tree is
sampled with psutil):

1. the shared captures (shared/data/pcaps, about 450 small files), and
2. one generated capture of --size-gb GB (default 2) under /tmp, built by repeating a
   shared capture with shifted IPv4/IPv6 addresses and timestamps, plus one a quarter
   of that size, to show that memory does not grow with the file.

Throughput is records per second of wall time (the same record count for every tool).
Targets: botunet >= 1,000,000 packets/s on one core, peak RSS <= 300 MB at any size.

    PYTHONPATH=src python benchmarks/bench_sessions.py [--size-gb 2] [--template PCAP]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BOTUNET_SHARED", REPO.parent / "shared"))
PCAPS = SHARED / "data" / "pcaps"
DEFAULT_TEMPLATE = PCAPS / "botnet" / "dridex" / "2020-06-03-Dridex-infection-traffic.pcap"
TOOLS = ("botunet", "nfstream", "dpkt")
T_START = 1_600_000_000  # first second of a generated capture
WORKER_MODULES = {"botunet": "botunet.sessions.assembler", "nfstream": "nfstream", "dpkt": "dpkt"}


# --- workers (run in a subprocess each) ---------------------------------------------------


def work_botunet(files: list[str]) -> int:
    from botunet.config import SessionConfig
    from botunet.sessions.accounting import Accounting
    from botunet.sessions.assembler import iter_sessions

    accounting = Accounting()
    for _ in iter_sessions(files, SessionConfig(), accounting):
        pass
    return accounting.packets_read


def work_nfstream(files: list[str]) -> int:
    from nfstream import NFStreamer

    streamer = NFStreamer(
        source=files if len(files) > 1 else files[0],
        decode_tunnels=False,
        idle_timeout=120,
        active_timeout=1800,
        n_dissections=0,
        statistical_analysis=False,
        splt_analysis=0,
        n_meters=1,
    )
    return sum(flow.bidirectional_packets for flow in streamer)


def work_dpkt(files: list[str]) -> int:
    import dpkt

    records = 0
    for name in files:
        with open(name, "rb") as handle:
            try:
                reader = dpkt.pcap.UniversalReader(handle)
                ethernet = reader.datalink() == dpkt.pcap.DLT_EN10MB
                for _, frame in reader:
                    records += 1
                    if ethernet:
                        dpkt.ethernet.Ethernet(frame)
            except (ValueError, dpkt.dpkt.Error):
                continue  # dpkt cannot read a few of the shared captures; count what it read
    return records


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (nfstream's meter)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_worker(tool: str, list_file: str) -> None:
    files = Path(list_file).read_text().split("\n")
    importlib.import_module(WORKER_MODULES[tool])  # imports are not part of the timing
    start, start_cpu = time.perf_counter(), cpu_seconds()
    processed = {"botunet": work_botunet, "nfstream": work_nfstream, "dpkt": work_dpkt}[tool](files)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    print(json.dumps({"processed": processed, "seconds": seconds, "cpu_seconds": cpu}))


# --- the parent: generation, measurement, report ------------------------------------------


def measure(tool: str, files: list[str]) -> dict:
    """Run one tool over the files in a subprocess; wall time and peak RSS of its tree."""
    list_file = Path("/tmp") / f"bench-sessions-{os.getpid()}-{tool}.txt"
    list_file.write_text("\n".join(files))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    command = [sys.executable, __file__, "--worker", tool, "--list", str(list_file)]
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out = process.stdout.read().decode()
    list_file.unlink()
    if process.returncode != 0:
        raise RuntimeError(f"{tool} worker failed with exit code {process.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak / 2**20
    return result


def count_records(files: list[str]) -> int:
    from botunet.pcap.reader import iter_chunks

    from botunet import _meter

    total = 0
    for name in files:
        framer = _meter.Framer()
        for chunk in iter_chunks(name):
            total += len(framer.feed(chunk))
        framer.finish()
    return total


def generate(template: Path, out: Path, size_bytes: int) -> int:
    """Repeat the template capture with shifted addresses and times until size_bytes."""
    from botunet.pcap.reader import iter_packets

    records = list(iter_packets(template))
    link = records[0].link_type
    start, end = records[0].ts_ns, max(r.ts_ns for r in records)
    period = end - start + 10**9
    written, copies, count = 24, 0, 0
    with out.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, link))
        while written < size_bytes:
            a, b = copies & 0xFF, (copies >> 8) & 0xFF
            shift = copies * period
            chunk = []
            for record in records:
                frame = bytearray(record.data)
                if link == 1 and frame[12:14] == b"\x08\x00" and len(frame) >= 34:
                    for at in (27, 31):  # second octet of source and destination
                        frame[at] ^= a
                    frame[28] ^= b
                    frame[32] ^= b
                elif link == 1 and frame[12:14] == b"\x86\xdd" and len(frame) >= 54:
                    for at in (29, 45):
                        frame[at] ^= a
                        frame[at + 1] ^= b
                sec, usec = divmod((record.ts_ns - start + shift) // 1000, 1_000_000)
                header = struct.pack("<IIII", T_START + sec, usec, len(frame), len(frame))
                chunk.append(header)
                chunk.append(bytes(frame))
                written += 16 + len(frame)
                count += 1
            handle.write(b"".join(chunk))
            copies += 1
    return count


def report(title: str, records: int, results: dict[str, dict]) -> None:
    """A table per workload: wall and CPU rates, peak RSS, and botunet's speed-up."""
    print(f"\n{title}: {records:,} records")
    print(
        f"{'tool':10} {'wall s':>8} {'packets/s':>11} {'cpu s':>8} {'packets/cpu-s':>14} "
        f"{'peak RSS MB':>12} {'botunet is (wall / cpu)':>24}"
    )
    base = results.get("botunet")
    for tool, result in results.items():
        rate, cpu_rate = records / result["seconds"], records / result["cpu_seconds"]
        ratio = ""
        if base is not None and tool != "botunet":
            ratio = (
                f"{result['seconds'] / base['seconds']:.1f}x / "
                f"{result['cpu_seconds'] / base['cpu_seconds']:.1f}x"
            )
        print(
            f"{tool:10} {result['seconds']:8.2f} {rate:11,.0f} {result['cpu_seconds']:8.2f} "
            f"{cpu_rate:14,.0f} {result['peak_rss_mb']:12.0f} {ratio:>24}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--keep-files", action="store_true", help="leave the generated captures")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.list)
        return
    sys.path.insert(0, str(REPO / "src"))
    tools = args.tools.split(",")

    if not args.skip_shared:
        from botunet.pcap.reader import find_captures

        files = [str(p) for p in find_captures([PCAPS])]
        records = count_records(files)
        results = {t: measure(t, files) for t in tools}
        report(f"shared captures ({len(files)} files)", records, results)

    if not args.skip_big:
        for fraction in (0.25, 1.0):
            size = int(args.size_gb * fraction * 2**30)
            path = Path("/tmp") / f"botunet-bench-{size >> 20}MiB.pcap"
            if not path.exists() or path.stat().st_size < size:
                print(f"\ngenerating {path} from {args.template.name} ...", flush=True)
                generate(args.template, path, size)
            records = count_records([str(path)])
            title = f"generated capture {path.stat().st_size / 2**30:.2f} GiB"
            report(title, records, {t: measure(t, [str(path)]) for t in tools})
            if not args.keep_files:
                path.unlink()


if __name__ == "__main__":
    main()
