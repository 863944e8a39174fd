"""Model folders: ``weights.safetensors`` plus ``model.json``, never a pickle.

``model.json`` (the spec) holds everything needed to rebuild the model with
``create_model(spec["model"], input_length=spec["input_length"], **spec["model_kwargs"])``
and to cut samples from sessions exactly as in training (``sample_config``,
``session_config``), plus the decision threshold, the dataset it was trained on, the
package version, the training history and the final metrics.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from botunet.config import SampleConfig, SessionConfig, from_dict
from botunet.errors import BotunetError, CheckpointError
from botunet.models.registry import create_model

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
SPEC_FILE = "model.json"
SPEC_FORMAT = "botunet-model"
SPEC_FORMAT_VERSION = 1

# key -> type every spec must have; the rest (history, metrics, ...) is informative
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "model_kwargs": dict,
    "input_length": int,
    "sample_config": dict,
    "session_config": dict,
    "threshold": (int, float),
}


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as separate contiguous CPU tensors, ready for safetensors."""
    # clone: safetensors refuses tensors that share storage
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file through a temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    # serialise in memory and write as a plain file: the usual permissions, like model.json
    tmp.write_bytes(safetensors_bytes(tensors, metadata=metadata))
    os.replace(tmp, path)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; any failure is a CheckpointError naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from err


def save_checkpoint(model_dir: str | Path, model: nn.Module, spec: dict[str, Any]) -> Path:
    """Write the model's weights and its spec into model_dir; returns model_dir."""
    model_dir = Path(model_dir)
    _check_spec(spec, model_dir / SPEC_FILE)
    model_dir.mkdir(parents=True, exist_ok=True)
    spec = {"format": SPEC_FORMAT, "format_version": SPEC_FORMAT_VERSION, **spec}
    write_tensors(
        model_dir / WEIGHTS_FILE, state_tensors(model), {"format": "pt", "model": spec["model"]}
    )
    write_json(model_dir / SPEC_FILE, spec)
    logger.debug("saved model %s to %s", spec["model"], model_dir)
    return model_dir


def read_spec(model_dir: str | Path) -> dict[str, Any]:
    """Read and check ``model.json`` of a model folder."""
    path = Path(model_dir) / SPEC_FILE
    if not Path(model_dir).is_dir():
        raise CheckpointError(f"{model_dir}: model folder not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: not a valid model spec ({reason})") from err
    _check_spec(spec, path)
    return spec


def _check_spec(spec: Any, path: Path) -> None:
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: not a valid model spec (expected a JSON object)")
    for key, kind in _REQUIRED.items():
        if key not in spec:
            raise CheckpointError(f"{path}: model spec has no {key!r}")
        if not isinstance(spec[key], kind) or isinstance(spec[key], bool):
            raise CheckpointError(f"{path}: model spec {key!r} has the wrong type")
    if not 0.0 <= spec["threshold"] <= 1.0:
        raise CheckpointError(f"{path}: threshold must be in [0, 1], got {spec['threshold']!r}")
    try:
        sample = sample_config_of(spec)
        session_config_of(spec)
    except BotunetError as err:
        raise CheckpointError(f"{path}: {err}") from err
    except TypeError as err:
        raise CheckpointError(f"{path}: bad sample or session config ({err})") from err
    if sample.input_length != spec["input_length"]:
        raise CheckpointError(
            f"{path}: input_length {spec['input_length']} does not match "
            f"N={sample.n_packets} x L={sample.bytes_per_packet}"
        )


def sample_config_of(spec: dict[str, Any]) -> SampleConfig:
    """The SampleConfig a model was trained with."""
    return from_dict(SampleConfig, spec["sample_config"])


def session_config_of(spec: dict[str, Any]) -> SessionConfig:
    """The SessionConfig a model was trained with."""
    return from_dict(SessionConfig, spec["session_config"])


def build_model(spec: dict[str, Any], path: Path | None = None) -> nn.Module:
    """An untrained model of the spec's architecture; errors name the spec file."""
    try:
        return create_model(
            spec["model"], input_length=spec["input_length"], **spec["model_kwargs"]
        )
    except (BotunetError, TypeError, ValueError) as err:
        where = path or SPEC_FILE
        raise CheckpointError(f"{where}: cannot build model {spec['model']!r} ({err})") from err


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a safetensors state into model, checking every name and shape first."""
    tensors = read_tensors(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
        raise CheckpointError(f"{path}: weights do not fit the model: {', '.join(parts)}")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{path}: weights do not fit the model: {name!r} has shape "
                f"{tuple(tensor.shape)}, model expects {tuple(expected[name].shape)}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: weights are damaged: {name!r} holds NaN or infinity")
    model.load_state_dict(tensors, strict=True)


def load_checkpoint(
    model_dir: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model in eval mode; returns (model, spec)."""
    model_dir = Path(model_dir)
    spec = read_spec(model_dir)
    model = build_model(spec, model_dir / SPEC_FILE)
    load_weights(model, model_dir / WEIGHTS_FILE)
    model.to(device)
    model.eval()
    return model, spec


def check_compatible(
    spec: dict[str, Any],
    sample_config: SampleConfig | dict[str, Any],
    *,
    source: str | Path | None = None,
) -> None:
    """Raise CheckpointError if a dataset's samples are not cut the way the model expects."""
    if isinstance(sample_config, dict):
        sample_config = from_dict(SampleConfig, sample_config)
    model_sample = sample_config_of(spec)
    if model_sample == sample_config:
        return
    where = f" {source}" if source is not None else ""
    raise CheckpointError(
        f"model built for {_describe(model_sample)}; dataset{where} has "
        f"{_describe(sample_config)}; rebuild the dataset with the model's settings"
    )


def _describe(sample: SampleConfig) -> str:
    return (
        f"N={sample.n_packets}, L={sample.bytes_per_packet} (input {sample.input_length}), "
        f"start={sample.start}, mask={sample.mask}"
    )
