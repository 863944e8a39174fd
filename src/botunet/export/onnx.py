"""ONNX export of a model folder, checked against PyTorch before it is kept.

The graph takes ``bytes``, float32 (B, 1, L) with bytes scaled to [0, 1], and returns
``logit`` (B,); the batch axis is dynamic. The model's spec travels in the file's
metadata so the file can be traced back to its weights.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from botunet import __version__
from botunet.detection.backends import ONNX_INPUT, ONNX_OUTPUT, sigmoid
from botunet.detection.spec import ONNX_FILE
from botunet.errors import ExportError

logger = logging.getLogger(__name__)

# Opset 17 runs on every onnxruntime since 1.12, which covers most edge images.
OPSET = 17
# Largest |PyTorch - ONNX Runtime| logit difference accepted at export.
ATOL = 1e-4
CHECK_BATCHES = (1, 7)
REPORT_FILE = "export.json"


def export_onnx(
    model_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    opset: int = OPSET,
    atol: float = ATOL,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``model_dir`` to ONNX at ``out_path`` (``model_dir/model.onnx`` when None).

    The file is kept only if ONNX Runtime's logits agree with PyTorch's within ``atol``
    at batch sizes 1 and 7.

    Returns:
        The export report (paths, sizes, largest differences), also in ``export.json``.

    Raises:
        ExportError: the export failed or the outputs disagree.
    """
    import torch

    from botunet.training.checkpoint import load_checkpoint

    model_dir = Path(model_dir)
    out_path = Path(out_path) if out_path is not None else model_dir / ONNX_FILE
    model, spec = load_checkpoint(model_dir)
    input_length = int(spec["input_length"])

    if out_path.is_dir():
        raise ExportError(f"{out_path}: is a folder; give the ONNX file to write")
    tmp = out_path.with_name(out_path.name + ".tmp")
    example = torch.rand(2, 1, input_length, generator=torch.Generator().manual_seed(seed))
    try:
        _torch_export(model, example, tmp, opset)
        _add_metadata(tmp, spec, model_dir)
        diffs = check_agreement(model, tmp, input_length, atol=atol, seed=seed)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out_path)

    report = {
        "botunet_version": __version__,
        "model_dir": str(model_dir),
        "model": spec["model"],
        "input_length": input_length,
        "threshold": spec["threshold"],
        "fp32": {
            "path": str(out_path),
            "bytes": out_path.stat().st_size,
            "opset": opset,
            "input": f"{ONNX_INPUT}: float32 (batch, 1, {input_length}) in [0, 1]",
            "output": f"{ONNX_OUTPUT}: float32 (batch,)",
            "max_abs_logit_diff": {str(b): d for b, d in diffs.items()},
            "atol": atol,
        },
        "weights_bytes": (model_dir / "weights.safetensors").stat().st_size,
    }
    logger.info("exported %s to %s (%d bytes)", model_dir, out_path, report["fp32"]["bytes"])
    return report


def _torch_export(model: Any, example: Any, path: Path, opset: int) -> None:
    import torch

    # The TorchScript-based exporter: it works offline without onnxscript, which the
    # dynamo exporter needs; its deprecation warning is not for our users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                input_names=[ONNX_INPUT],
                output_names=[ONNX_OUTPUT],
                dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
            )
        except Exception as err:  # the exporter raises many unrelated types
            raise ExportError(f"{path}: ONNX export failed ({err})") from err


def _add_metadata(path: Path, spec: dict[str, Any], model_dir: Path) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "botunet_version": __version__,
        "model": spec["model"],
        "threshold": json.dumps(spec["threshold"]),
        "sample_config": json.dumps(spec["sample_config"], sort_keys=True),
        "source": model_dir.name,
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "botunet"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def check_agreement(
    model: Any,
    onnx_path: str | Path,
    input_length: int,
    *,
    batch_sizes: tuple[int, ...] = CHECK_BATCHES,
    atol: float = ATOL,
    seed: int = 0,
) -> dict[int, float]:
    """Largest |logit| difference between PyTorch and ONNX Runtime per batch size.

    Raises:
        ExportError: a difference is above ``atol``.
    """
    import onnxruntime as ort
    import torch

    from botunet.models import to_input

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    model.eval()
    diffs: dict[int, float] = {}
    for batch in batch_sizes:
        vectors = rng.integers(0, 256, size=(batch, input_length), dtype=np.uint8)
        x = to_input(vectors)
        with torch.inference_mode():
            expected = model(x).reshape(-1).float().numpy()
        (got,) = session.run([ONNX_OUTPUT], {ONNX_INPUT: x.numpy()})
        if got.shape != (batch,):
            raise ExportError(f"{onnx_path}: output shape {got.shape}, expected ({batch},)")
        diffs[batch] = float(np.max(np.abs(expected - got)))
        logger.debug("batch %d: max |logit diff| %.3g", batch, diffs[batch])
    worst = max(diffs, key=diffs.__getitem__)
    if diffs[worst] > atol:
        raise ExportError(
            f"{onnx_path}: ONNX Runtime disagrees with PyTorch by {diffs[worst]:.3g} "
            f"at batch {worst} (allowed {atol:g}); the file was not kept"
        )
    return diffs


def run_onnx(session: Any, vectors: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Probabilities of an ONNX Runtime session for uint8 vectors (n, L), in batches."""
    from botunet.detection.backends import to_unit_float

    scores = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), batch_size):
        chunk = np.asarray(vectors[start : start + batch_size])
        (logits,) = session.run([ONNX_OUTPUT], {ONNX_INPUT: to_unit_float(chunk)})
        scores[start : start + len(chunk)] = sigmoid(logits.reshape(-1).astype(np.float32))
    return scores


def write_report(out_path: str | Path, report: dict[str, Any]) -> Path:
    """Write the export report as export.json beside the exported file."""
    path = Path(out_path).with_name(REPORT_FILE)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path
