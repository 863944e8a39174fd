"""Static int8 quantisation of an exported model, calibrated on a dataset's train split.

Weights and activations are quantised in QDQ form (QuantizeLinear / DequantizeLinear
pairs, which every ONNX Runtime execution provider understands). The final fully
connected layer stays in float: it sums one value per input position (800 at N=8), so
the rounding of its int8 input adds up over the whole vector and moved verdicts of
small models in our tests, while its weights are a few KB. Per-channel weight scales
are kept only when they score better than per-tensor ones on the validation split; the
change in accuracy and F1 is then measured on the test split.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from botunet.detection.backends import ONNX_INPUT, to_unit_float
from botunet.errors import DatasetError, ExportError
from botunet.evaluation.metrics import confusion_counts, predict_labels, rates_from_confusion
from botunet.export.onnx import run_onnx

logger = logging.getLogger(__name__)

# Calibration samples drawn from the train split; min/max ranges settle well before this.
N_CALIBRATION = 512
CALIBRATION_BATCH = 64


class _VectorReader:
    """Feeds calibration vectors to onnxruntime's calibrator, one batch per call."""

    def __init__(self, vectors: np.ndarray, batch_size: int = CALIBRATION_BATCH) -> None:
        self._vectors = vectors
        self._batch_size = batch_size
        self._start = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._start >= len(self._vectors):
            return None
        chunk = self._vectors[self._start : self._start + self._batch_size]
        self._start += self._batch_size
        return {ONNX_INPUT: to_unit_float(chunk)}

    def rewind(self) -> None:
        self._start = 0


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration_dir: str | Path,
    *,
    threshold: float,
    sample_config: dict[str, Any],
    n_calibration: int = N_CALIBRATION,
    seed: int = 0,
) -> dict[str, Any]:
    """Quantise ``fp32_path`` to int8 at ``out_path``; returns sizes and metric changes.

    Args:
        fp32_path: the exported float model.
        out_path: where the int8 model goes.
        calibration_dir: a dataset folder cut with the model's sample settings.
        threshold: the model's decision threshold, for accuracy and F1.
        sample_config: the model's sample config (checked against the dataset's).
        n_calibration: train samples used to calibrate activation ranges.
        seed: picks the calibration samples.
    """
    import onnxruntime as ort

    from botunet.datasets.dataset import load_dataset
    from botunet.training.checkpoint import check_compatible

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    dataset = load_dataset(calibration_dir)
    check_compatible(
        {"sample_config": sample_config}, dataset.sample_config, source=calibration_dir
    )
    calibration = _calibration_vectors(dataset, calibration_dir, n_calibration, seed)

    # keep per-channel weight scales only where they beat per-tensor ones on val
    val = _split(dataset, "val")
    candidates = {}
    with tempfile.TemporaryDirectory(prefix="botunet-int8-") as tmp:
        source = _preprocess(fp32_path, Path(tmp) / "pre.onnx")
        float_nodes = classifier_nodes(source)
        for per_channel in (True, False):
            path = Path(tmp) / f"int8-{per_channel}.onnx"
            _quantize(source, path, calibration, per_channel, float_nodes)
            f1 = _metrics(_scores(ort, path, val[0]), val[1], threshold)["f1"]
            candidates[per_channel] = (f1, path.read_bytes())
            logger.debug("int8 per_channel=%s: val F1 %.4f", per_channel, f1)
        per_channel = candidates[True][0] >= candidates[False][0]
        out_path.write_bytes(candidates[per_channel][1])

    test_vectors, test_labels = _split(dataset, "test")
    if not len(test_vectors):
        raise DatasetError(f"{calibration_dir}: the test split is empty; nothing to measure on")
    fp32_scores = _scores(ort, fp32_path, test_vectors)
    int8_scores = _scores(ort, out_path, test_vectors)
    fp32 = _metrics(fp32_scores, test_labels, threshold)
    int8 = _metrics(int8_scores, test_labels, threshold)
    changed = predict_labels(fp32_scores, threshold) != predict_labels(int8_scores, threshold)
    report = {
        "path": str(out_path),
        "bytes": out_path.stat().st_size,
        "fp32_bytes": fp32_path.stat().st_size,
        "calibration": {
            "dataset": str(calibration_dir),
            "split": "train",
            "samples": len(calibration),
            "method": "minmax",
        },
        "format": "QDQ",
        "per_channel": per_channel,
        "float_nodes": float_nodes,
        "test_samples": int(len(test_labels)),
        "fp32_test": fp32,
        "int8_test": int8,
        "accuracy_change": int8["accuracy"] - fp32["accuracy"],
        "f1_change": int8["f1"] - fp32["f1"],
        "verdicts_changed": int(np.sum(changed)),
        "max_abs_score_diff": float(np.max(np.abs(fp32_scores - int8_scores))),
    }
    logger.info("quantised %s to int8 at %s (%d bytes)", fp32_path, out_path, report["bytes"])
    return report


def _calibration_vectors(
    dataset: Any, calibration_dir: str | Path, n_samples: int, seed: int
) -> np.ndarray:
    train = np.asarray(dataset.indices("train"))
    if not len(train):
        raise DatasetError(f"{calibration_dir}: the train split is empty; nothing to calibrate on")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(train, size=min(n_samples, len(train)), replace=False))
    return np.asarray(dataset.vectors[chosen])


def _split(dataset: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    index = np.sort(np.asarray(dataset.indices(name)))
    return np.asarray(dataset.vectors[index]), np.asarray(dataset.labels[index])


def _preprocess(fp32_path: Path, out: Path) -> Path:
    """Shape inference and graph fusion before quantisation, as onnxruntime advises."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_path), str(out), skip_symbolic_shape=True)
    except Exception as err:  # preprocessing is an optimisation; quantise the raw graph
        logger.warning("%s: quantisation preprocessing failed (%s); using it as is", fp32_path, err)
        return fp32_path
    return out


def classifier_nodes(model_path: Path) -> list[str]:
    """Names of the last fully connected node (Gemm or MatMul) before the graph output."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    producers = {out: node for node in graph.node for out in node.output}
    todo = [o.name for o in graph.output]
    seen: set[int] = set()
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in ("Gemm", "MatMul"):
            return [node.name] if node.name else []
        if node.op_type not in ("Conv", "ConvTranspose"):
            todo += list(node.input)
    return []


def _quantize(
    source: Path, out: Path, calibration: np.ndarray, per_channel: bool, float_nodes: list[str]
) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    try:
        quantize_static(
            str(source),
            str(out),
            _VectorReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
        )
    except Exception as err:  # onnxruntime raises untyped errors
        raise ExportError(f"{source}: int8 quantisation failed ({err})") from err


def _scores(ort: Any, path: Path, vectors: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return run_onnx(session, vectors)


def _metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    confusion = confusion_counts(labels, predict_labels(scores, threshold))
    rates = rates_from_confusion(confusion)
    return {"accuracy": rates["accuracy"], "f1": rates["f1"], **confusion}
