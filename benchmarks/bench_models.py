"""Inference speed of the three models on one CPU thread, against the machine's matmul peak.

For each model at N = 8 and N = 1 packets of L = 100 bytes, sessions scored per second
at batch 1 and batch 256, in torch (as trained, and with batch norms folded) and in
ONNX Runtime; achieved GFLOP/s (2 x MACs x sessions/s) as a share of the GFLOP/s of a
dense 1024 x 1024 float32 matrix product measured in the same run. Then the
alternatives that decided how the models are written: depthwise convolution
formulations, memory layout, and a wider three-level light model.

Run: cd /work/main && PYTHONPATH=src /work/venv/bin/python benchmarks/bench_models.py
Timings are the best of several rounds, in CPU seconds of the calling thread (see CLOCKS),
since the machine may be shared.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import sys
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from botunet.models import create_model, list_models
from botunet.models.flops import count_flops
from botunet.models.inference import MAX_POSITIONS, forward_in_chunks, fuse_batchnorm

BYTES_PER_PACKET = 100
PACKETS = (8, 1)
BATCHES = (1, 256)


# The clock: CPU seconds of this thread by default. Every backend runs on the calling
# thread here (one intra-op thread), so this is the time the work takes on an idle core
# while other processes on a shared machine do not count; "--clock wall" for wall time.
CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}
clock = CLOCKS["thread"]


def best_time(fn: Callable[[], Any], rounds: int, round_s: float = 0.25) -> float:
    """Seconds per call: the best over rounds of the mean over calls filling round_s."""
    fn()
    start = clock()
    fn()
    once = clock() - start
    calls = max(1, int(round_s / max(once, 1e-6)))
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        for _ in range(calls):
            fn()
        best = min(best, (clock() - start) / calls)
    return best


def ort_session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def matmul_peaks(rounds: int, n: int = 1024) -> dict[str, float]:
    """GFLOP/s of an n x n float32 matrix product in torch and in ONNX Runtime."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch_s = best_time(lambda: torch.mm(a, b), rounds)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort_session(model.SerializeToString())
    feeds = {"a": a.numpy(), "b": b.numpy()}
    ort_s = best_time(lambda: session.run(None, feeds), rounds)
    flops = 2 * n**3
    return {"torch": flops / torch_s / 1e9, "onnxruntime": flops / ort_s / 1e9}


def export_onnx(model: nn.Module, input_length: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, input_length),),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["logit"],
            dynamic_axes={"x": {0: "batch"}, "logit": {0: "batch"}},
        )
    return buffer.getvalue()


def realistic(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics, as after training (speed does not depend on them)."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model.eval()


def runners(model: nn.Module, input_length: int) -> dict[str, Callable[[torch.Tensor], Any]]:
    """Ways to score a batch: torch as trained, with folded norms, and also in sub-batches
    of at most MAX_POSITIONS bytes; ONNX Runtime."""
    fused = fuse_batchnorm(model)
    session = ort_session(export_onnx(model, input_length))

    def run_torch(m: nn.Module) -> Callable[[torch.Tensor], Any]:
        def call(x: torch.Tensor) -> Any:
            with torch.inference_mode():
                return m(x)

        return call

    def run_chunks(x: torch.Tensor) -> Any:
        with torch.inference_mode():
            return forward_in_chunks(fused, x)

    return {
        "torch": run_torch(model),
        "torch+fold": run_torch(fused),
        "torch+fold+sub": run_chunks,
        "onnxruntime": lambda x: session.run(None, {"x": x.numpy()})[0],
    }


def bench_models(rounds: int, peak: float) -> list[dict[str, Any]]:
    rows = []
    for n_packets in PACKETS:
        input_length = n_packets * BYTES_PER_PACKET
        for name in list_models():
            torch.manual_seed(0)
            model = realistic(create_model(name, input_length=input_length))
            macs = count_flops(model, input_length)
            for backend, run in runners(model, input_length).items():
                for batch in BATCHES:
                    x = torch.rand(batch, 1, input_length)
                    seconds = best_time(functools.partial(run, x), rounds)
                    rate = batch / seconds
                    gflops = 2 * macs * rate / 1e9
                    row = {
                        "model": name,
                        "n_packets": n_packets,
                        "input_length": input_length,
                        "macs": macs,
                        "backend": backend,
                        "batch": batch,
                        "sessions_per_s": rate,
                        "gflop_per_s": gflops,
                        "share_of_peak": gflops / peak,
                    }
                    rows.append(row)
                    print_row(row)
    return rows


def print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['model']:<13} {row['n_packets']:>2} {row['macs'] / 1e6:>8.2f} "
        f"{row['backend']:<14} {row['batch']:>5} {row['sessions_per_s']:>11.0f} "
        f"{row['gflop_per_s']:>8.1f} {100 * row['share_of_peak']:>6.0f}%",
        flush=True,
    )


# depthwise formulations: (x (B, C, L), weight (C, k), stride) -> (B, C, ceil(L / stride))
def dw_conv1d(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    return F.conv1d(x, w.unsqueeze(1), stride=stride, padding=w.shape[1] // 2, groups=x.shape[1])


def dw_conv2d_channels_last(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    weight = w[:, None, None, :]
    return F.conv2d(x, weight, stride=(1, stride), padding=(0, w.shape[1] // 2), groups=x.shape[1])


def dw_shifted(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    k = w.shape[1]
    padded = F.pad(x, (k // 2, k // 2))
    n = x.shape[-1]
    out = padded[..., 0:n:stride] * w[:, 0:1]
    for tap in range(1, k):
        out.addcmul_(padded[..., tap : tap + n : stride], w[:, tap : tap + 1])
    return out


def dw_shifted_nlc(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    # x here is (B, L, C): the products vectorise over channels
    k = w.shape[1]
    padded = F.pad(x, (0, 0, k // 2, k // 2))
    n = x.shape[1]
    out = padded[:, 0:n:stride] * w[:, 0]
    for tap in range(1, k):
        out.addcmul_(padded[:, tap : tap + n : stride], w[:, tap])
    return out


def dw_unfold(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
    k = w.shape[1]
    windows = F.pad(x, (k // 2, k // 2)).unfold(2, k, stride)
    return torch.einsum("bclk,ck->bcl", windows, w)


DEPTHWISE = {
    "conv1d (B, C, L), groups=C": (dw_conv1d, "ncl"),
    "conv2d channels-last (shipped)": (dw_conv2d_channels_last, "cl"),
    "k shifted products (B, C, L)": (dw_shifted, "ncl"),
    "k shifted products (B, L, C)": (dw_shifted_nlc, "nlc"),
    "unfold + einsum": (dw_unfold, "ncl"),
}


def depthwise_shapes(model: nn.Module, input_length: int) -> list[tuple[int, int, int, int]]:
    """(channels, length, kernel, stride) of each depthwise convolution of one forward."""
    shapes = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = args[0]
        shapes.append((x.shape[1], x.shape[-1], module.kernel_size[1], module.stride[1]))

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1
    ]
    with torch.no_grad():
        model(torch.zeros(1, 1, input_length))
    for handle in handles:
        handle.remove()
    return shapes


def bench_depthwise(rounds: int, batch: int = 256) -> list[dict[str, Any]]:
    """Total time of the light model's depthwise convolutions in each formulation."""
    rows = []
    for n_packets in PACKETS:
        input_length = n_packets * BYTES_PER_PACKET
        model = create_model("unet1d_light", input_length=input_length)
        shapes = depthwise_shapes(model, input_length)
        totals = dict.fromkeys(DEPTHWISE, 0.0)
        for channels, length, kernel, stride in shapes:
            x = torch.rand(batch, channels, length)
            w = torch.randn(channels, kernel)
            reference = dw_conv1d(x, w, stride)
            inputs = {
                "ncl": x,
                "nlc": x.transpose(1, 2).contiguous(),
                "cl": x.unsqueeze(2).contiguous(memory_format=torch.channels_last),
            }
            for label, (fn, layout) in DEPTHWISE.items():
                xi = inputs[layout]
                out = fn(xi, w, stride)
                out = out.transpose(1, 2) if layout == "nlc" else out.reshape(reference.shape)
                torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
                call = functools.partial(fn, xi, w, stride)
                with torch.inference_mode():
                    totals[label] += best_time(call, rounds, 0.05)
        for label, seconds in totals.items():
            row = {"n_packets": n_packets, "formulation": label, "ms_per_batch": 1e3 * seconds}
            rows.append(row)
            print(f"{n_packets:>2}  {label:<32} {row['ms_per_batch']:>8.2f} ms", flush=True)
    return rows


def channels_first(model: nn.Module) -> nn.Module:
    """The same weights run in (B, C, 1, L) contiguous memory, the layout nn.Conv1d uses.

    torch computes a Conv1d as a Conv2d over (B, C, 1, L) in this layout, so this is the
    speed the models would have if written with Conv1d and (B, C, L) tensors.
    """
    from botunet.models.layers import ConvNormAct1d

    copy = fuse_batchnorm(model)
    for module in copy.modules():
        if isinstance(module, ConvNormAct1d):
            module.forward = types.MethodType(
                lambda self, x: nn.Sequential.forward(self, x.contiguous()), module
            )
    return copy


def bench_alternatives(rounds: int, peak: float, batch: int = 256) -> list[dict[str, Any]]:
    """Whole models: memory layout, and a wider three-level light variant."""
    variants: list[tuple[str, str, dict[str, Any], bool]] = [
        ("unet1d", "channels-last (shipped)", {}, False),
        ("unet1d", "(B, C, L) layout", {}, True),
        ("unet1d_light", "channels-last (shipped)", {}, False),
        ("unet1d_light", "(B, C, L) layout", {}, True),
        ("unet1d_light", "widths 64-128-256, 3 levels", {"widths": [64, 128, 256]}, False),
    ]
    rows = []
    for n_packets in PACKETS:
        input_length = n_packets * BYTES_PER_PACKET
        x = torch.rand(batch, 1, input_length)
        for name, label, kwargs, first in variants:
            torch.manual_seed(0)
            model = realistic(create_model(name, input_length=input_length, **kwargs))
            params = sum(p.numel() for p in model.parameters())
            macs = count_flops(model, input_length)
            run_model = channels_first(model) if first else fuse_batchnorm(model)
            with torch.inference_mode():
                seconds = best_time(functools.partial(run_model, x), rounds)
                torch.testing.assert_close(run_model(x), model(x), rtol=1e-3, atol=1e-4)
            rate = batch / seconds
            row = {
                "model": name,
                "variant": label,
                "n_packets": n_packets,
                "params": params,
                "macs": macs,
                "sessions_per_s": rate,
                "share_of_peak": 2 * macs * rate / 1e9 / peak,
            }
            rows.append(row)
            print(
                f"{name:<13} {label:<30} {n_packets:>2} {params / 1e6:>7.3f} "
                f"{macs / 1e6:>8.2f} {rate:>11.0f} {100 * row['share_of_peak']:>6.0f}%",
                flush=True,
            )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    """Targets: unet1d_light at >= 50 % of peak at batch 256, and faster than unet1d."""
    lines = []
    by_key = {(r["model"], r["n_packets"], r["backend"], r["batch"]): r for r in rows}
    for n_packets in PACKETS:
        for backend in ("torch", "torch+fold", "torch+fold+sub", "onnxruntime"):
            light = by_key[("unet1d_light", n_packets, backend, 256)]
            full = by_key[("unet1d", n_packets, backend, 256)]
            share = light["share_of_peak"]
            speedup = light["sessions_per_s"] / full["sessions_per_s"]
            lines.append(
                f"N={n_packets} {backend:<14} unet1d_light at batch 256: "
                f"{100 * share:.0f}% of peak ({'met' if share >= 0.5 else 'not met'}), "
                f"{speedup:.2f}x the sessions/s of unet1d "
                f"({'faster' if speedup > 1 else 'not faster'})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (best is kept)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread")
    parser.add_argument("--skip-alternatives", action="store_true")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    warnings.simplefilter("ignore")

    peaks = matmul_peaks(args.rounds)
    peak = peaks["torch"]
    print(
        f"one thread; dense 1024x1024 float32 matmul: torch {peaks['torch']:.1f} GFLOP/s "
        f"(the peak below), onnxruntime {peaks['onnxruntime']:.1f} GFLOP/s"
    )
    print("MACs per sample from botunet.models.flops; GFLOP/s = 2 x MACs x sessions/s")
    print(f"torch+fold+sub: sub-batches of at most {MAX_POSITIONS} bytes (forward_in_chunks)\n")
    print(f"{'model':<13} {'N':>2} {'MACs (M)':>8} {'backend':<14} {'batch':>5} "
          f"{'sessions/s':>11} {'GFLOP/s':>8} {'% peak':>7}")  # fmt: skip
    rows = bench_models(args.rounds, peak)
    results: dict[str, Any] = {"peaks": peaks, "models": rows}
    if not args.skip_alternatives:
        print("\ndepthwise convolutions of unet1d_light, batch 256, one forward pass")
        results["depthwise"] = bench_depthwise(args.rounds)
        print("\ntorch, folded norms, batch 256")
        print(f"{'model':<13} {'variant':<30} {'N':>2} {'params M':>7} {'MACs (M)':>8} "
              f"{'sessions/s':>11} {'% peak':>7}")  # fmt: skip
        results["alternatives"] = bench_alternatives(args.rounds, peak)

    # on a shared machine the first peak may have been measured in a busy moment
    again = matmul_peaks(args.rounds)["torch"]
    print(f"\nmatmul peak measured again at the end: {again:.1f} GFLOP/s")
    if again > peak:
        for row in rows + results.get("alternatives", []):
            row["share_of_peak"] *= peak / again
        print("shares of peak below are against this higher figure")
    results["peak_end"] = again
    results["summary"] = summarise(rows)
    print("\n".join(results["summary"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
