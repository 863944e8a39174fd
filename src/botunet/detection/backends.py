"""Scorers that turn byte vectors into botnet probabilities: PyTorch or ONNX Runtime.

The ONNX scorer never imports torch, so an edge device needs only onnxruntime and numpy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from botunet.detection.spec import ONNX_FILE, ModelSpec
from botunet.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")

# Names of the exported graph's input and output (see botunet.export.onnx).
ONNX_INPUT = "bytes"
ONNX_OUTPUT = "logit"


class Scorer:
    """Base class: ``score`` maps uint8 vectors (B, N*L) to probabilities (B,) float32.

    A batch runs through the model in chunks of at most ``max_input_bytes`` input bytes,
    since activation memory grows with the chunk: about 1.2 MB (ONNX Runtime) to 2 MB
    (PyTorch) per 800-byte sample for unet1d_light, so a batch of 256 would need 300 to
    500 MB. The chunk sizes keep a whole detection run near 300 MB peak.
    """

    name = ""
    max_input_bytes = 65536

    def score(self, vectors: np.ndarray) -> np.ndarray:
        if not len(vectors):
            return np.zeros(0, dtype=np.float32)
        rows = max(1, self.max_input_bytes // vectors.shape[1])
        scores = [self._score(vectors[i : i + rows]) for i in range(0, len(vectors), rows)]
        return np.concatenate(scores).astype(np.float32, copy=False)

    def _score(self, vectors: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TorchScorer(Scorer):
    """The model's safetensors weights run by PyTorch, through the training stage's predict."""

    name = "torch"
    # importing torch alone takes about 220 MB, so its chunks are smaller
    max_input_bytes = 8192

    def __init__(self, spec: ModelSpec, threads: int | None = None) -> None:
        import torch

        from botunet.training.checkpoint import load_checkpoint
        from botunet.training.predict import predict_scores

        if threads is not None:
            torch.set_num_threads(threads)  # process-wide: torch has no per-model setting
        self._predict = predict_scores
        self._model, _ = load_checkpoint(spec.model_dir)
        self._model.eval()

    def _score(self, vectors: np.ndarray) -> np.ndarray:
        return self._predict(self._model, vectors, batch_size=len(vectors))


class OnnxScorer(Scorer):
    """An exported model.onnx run by ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(
        self, spec: ModelSpec, onnx_path: str | Path | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        path = Path(onnx_path) if onnx_path is not None else spec.model_dir / ONNX_FILE
        if not path.is_file():
            raise CheckpointError(
                f"{path}: no ONNX model here; run `botunet export {spec.model_dir}` "
                "or pass --onnx FILE"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # a memory pattern plans one block for the largest batch seen and keeps it;
        # without it the arena reuses freed blocks: 40% less memory, no slower here
        options.enable_mem_pattern = False
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({err})") from err
        self.path = path
        self._check_io(spec)

    def _check_io(self, spec: ModelSpec) -> None:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if ONNX_INPUT not in inputs or ONNX_OUTPUT not in outputs:
            raise CheckpointError(
                f"{self.path}: expected input {ONNX_INPUT!r} and output {ONNX_OUTPUT!r}, "
                f"got {sorted(inputs)} and {sorted(outputs)}"
            )
        length = inputs[ONNX_INPUT].shape[-1]
        if isinstance(length, int) and length != spec.input_length:
            raise CheckpointError(
                f"{self.path}: takes {length} bytes per sample but {spec.model_dir} "
                f"model.json says {spec.input_length}"
            )

    def _score(self, vectors: np.ndarray) -> np.ndarray:
        x = to_unit_float(vectors)
        (logits,) = self._session.run([ONNX_OUTPUT], {ONNX_INPUT: x})
        return sigmoid(np.asarray(logits, dtype=np.float32).reshape(-1))


def to_unit_float(vectors: np.ndarray) -> np.ndarray:
    """uint8 (B, L) to float32 (B, 1, L) in [0, 1], as the models take them."""
    x = np.asarray(vectors, dtype=np.float32)
    x /= np.float32(255.0)
    return x.reshape(len(vectors), 1, -1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic function in float32, without overflow warnings for large |logit|."""
    out = np.empty_like(logits, dtype=np.float32)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    exp = np.exp(logits[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out


def create_scorer(
    backend: str,
    spec: ModelSpec,
    onnx_path: str | Path | None = None,
    *,
    threads: int | None = None,
) -> Scorer:
    """The scorer of ``backend`` ("torch" or "onnx") for the model of ``spec``."""
    if backend == "torch":
        if onnx_path is not None:
            raise ConfigError("an ONNX file was given but the backend is torch; use --backend onnx")
        return TorchScorer(spec, threads)
    if backend == "onnx":
        return OnnxScorer(spec, onnx_path, threads)
    raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
