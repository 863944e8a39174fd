"""Detection speed and memory, end to end: read, assemble, extract, infer, write EVE.

For N = 8 from the first packet and N = 1 from the first payload packet, and for the
torch and onnx backends, runs ``Detector.detect`` over one capture with every session
written as EVE JSON, and the sessions stage alone over the same capture for the ratio.
Each run is a separate process, so its peak RSS is its own.

    PYTHONPATH=src python benchmarks/bench_detect.py --size-gb 0.2
    PYTHONPATH=src python benchmarks/bench_detect.py --size-gb 2 --runs onnx-8-first

The capture is generated under /tmp by bench_sessions.py's generator (a shared botnet
capture repeated with its addresses and times shifted, so every copy is a new set of
sessions) unless --capture is given. Models are untrained unet1d_light weights: speed
does not depend on training.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RSS_LIMIT_MB = 300
CONFIGS = {"8-first": (8, "first"), "1-payload": (1, "payload")}
RUNS = tuple(
    f"{kind}-{cfg}" for cfg in CONFIGS for kind in ("sessions", "torch", "onnx")
)

# capture generator


def generate_capture(path: Path, size_gb: float) -> Path:
    """Write a pcap of about ``size_gb`` GB with the generator of bench_sessions.py."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_sessions

    bench_sessions.generate(bench_sessions.DEFAULT_TEMPLATE, path, int(size_gb * 1e9))
    return path


# one measured run, in its own process


def _model_dir(root: Path, n_packets: int, start: str) -> Path:
    """An untrained unet1d_light folder for (N, start), with its model.onnx.

    Built in a child process: a parent that imported torch would pass its RSS on to
    every later child through fork, and spoil their peak RSS.
    """
    out = root / f"unet1d_light-{n_packets}-{start}"
    if not (out / "model.onnx").is_file():
        command = [sys.executable, __file__, "--make-model", f"{n_packets}-{start}",
                   "--out-dir", str(out)]
        subprocess.run(command, check=True)
    return out


def _make_model(out: Path, n_packets: int, start: str) -> None:
    import torch

    from botunet import __version__
    from botunet.config import SampleConfig, SessionConfig, to_dict
    from botunet.export.onnx import export_onnx
    from botunet.models.registry import create_model
    from botunet.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    sample = SampleConfig(n_packets=n_packets, start=start)
    model = create_model("unet1d_light", input_length=sample.input_length)
    spec = {
        "model": "unet1d_light",
        "model_kwargs": {},
        "input_length": sample.input_length,
        "sample_config": to_dict(sample),
        "session_config": to_dict(SessionConfig()),
        "threshold": 0.5,
        "version": __version__,
    }
    save_checkpoint(out, model.eval(), spec)
    export_onnx(out)


def _worker(run: str, capture: Path, model_dir: Path, out_dir: Path, options: dict) -> dict:
    kind, n_packets, start = run.split("-")
    started = time.perf_counter()
    if kind == "sessions":
        from botunet.config import SampleConfig, SessionConfig
        from botunet.sessions.accounting import Accounting
        from botunet.sessions.assembler import iter_session_events

        accounting = Accounting()
        config = SampleConfig(n_packets=int(n_packets), start=start).session_config(SessionConfig())
        sessions = sum(
            1
            for kind_, s in iter_session_events(
                [capture], config, ready_packets=int(n_packets), ready_start=start,
                accounting=accounting,
            )
            if kind_ == "ready" or s.packets
        )
    else:
        from botunet.config import DetectConfig
        from botunet.detection.engine import Detector
        from botunet.detection.writers import open_writer

        detector = Detector(model_dir, DetectConfig(backend=kind, **options)).load()
        with open_writer(out_dir / f"{run}.json", "eve") as writer:
            summary = detector.detect([capture], writer=writer, all_sessions=True)
        accounting, sessions = summary.accounting, summary.sessions
        (out_dir / f"{run}.json").unlink()
    elapsed = time.perf_counter() - started
    return {
        "run": run,
        "elapsed_s": elapsed,
        "packets": accounting.packets_read,
        "sessions": sessions,
        "packets_per_s": accounting.packets_read / elapsed,
        "sessions_per_s": sessions / elapsed,
        "torch_loaded": "torch" in sys.modules,
    }


def _measure(run: str, capture: Path, model_dir: Path, out_dir: Path, options: dict) -> dict:
    """Run one measurement in a child process; adds its peak RSS."""
    command = [sys.executable, __file__, "--worker", run, "--capture", str(capture),
               "--model-dir", str(model_dir), "--out-dir", str(out_dir),
               "--options", json.dumps(options)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"run {run} failed (status {status})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=0.2, help="generated capture size")
    parser.add_argument("--capture", type=Path, help="use this capture instead of generating")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--keep", action="store_true", help="keep the generated capture")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument(
        "--max-wait", type=float, help="DetectConfig.max_wait_s (default: its default)"
    )
    parser.add_argument("--options", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--make-model", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.make_model:
        n_packets, start = args.make_model.split("-")
        _make_model(args.out_dir, int(n_packets), start)
        return 0
    if args.worker:
        result = _worker(args.worker, args.capture, args.model_dir, args.out_dir, args.options)
        print(json.dumps(result))
        return 0

    options = {"threads": args.threads}
    if args.max_wait is not None:
        options["max_wait_s"] = args.max_wait
    with tempfile.TemporaryDirectory(prefix="bench-detect-", dir="/tmp") as tmp:
        tmp_dir = Path(tmp)
        capture = args.capture
        if capture is None:
            capture = Path("/tmp") / f"bench-detect-{args.size_gb:g}gb.pcap"
            if not capture.is_file():
                started = time.perf_counter()
                generate_capture(capture, args.size_gb)
                print(f"generated {capture} ({capture.stat().st_size / 1e9:.2f} GB) "
                      f"in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        print(f"capture {capture} ({capture.stat().st_size / 1e9:.2f} GB), "
              f"{os.cpu_count()} CPUs, detect options {options}", file=sys.stderr)
        results = []
        for run in args.runs:
            kind, n_packets, start = run.split("-")
            needs_model = kind != "sessions"
            model_dir = _model_dir(tmp_dir, int(n_packets), start) if needs_model else tmp_dir
            results.append(_measure(run, capture, model_dir, tmp_dir, options))
            r = results[-1]
            print(f"  {run:<20} {r['elapsed_s']:7.1f} s  {r['packets_per_s']:>11,.0f} pkt/s  "
                  f"{r['sessions_per_s']:>9,.0f} sess/s  {r['peak_rss_mb']:6.0f} MB",
                  file=sys.stderr)
        if args.capture is None and not args.keep:
            capture.unlink()
    _print_table(results)
    worst = max(r["peak_rss_mb"] for r in results)
    return 0 if worst <= RSS_LIMIT_MB else 1


def _print_table(results: list[dict]) -> None:
    by_run = {r["run"]: r for r in results}
    print(f"{'run':<20} {'pkt/s':>11} {'sessions/s':>11} {'vs sessions':>11} "
          f"{'peak RSS':>9} {'torch':>6}")
    for r in results:
        kind, cfg = r["run"].split("-", 1)
        base = by_run.get(f"sessions-{cfg}")
        ratio = f"{r['packets_per_s'] / base['packets_per_s']:.2f}" if base else "-"
        print(f"{r['run']:<20} {r['packets_per_s']:>11,.0f} {r['sessions_per_s']:>11,.0f} "
              f"{ratio:>11} {r['peak_rss_mb']:>7.0f} MB {str(r['torch_loaded']):>6}")
    print(f"peak RSS limit {RSS_LIMIT_MB} MB: "
          f"{'ok' if max(r['peak_rss_mb'] for r in results) <= RSS_LIMIT_MB else 'EXCEEDED'}")


if __name__ == "__main__":
    sys.exit(main())
