"""What detection needs from a model folder, read from its model.json without torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from botunet.config import SampleConfig, SessionConfig, from_dict
from botunet.errors import CheckpointError, ConfigError

# The model shipped with the package, used when no model folder is given.
DEFAULT_MODEL = "unet1d_light"
SPEC_FILE = "model.json"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ModelSpec:
    """The parts of a model's model.json that detection uses.

    Attributes:
        model_dir: the folder the spec was read from.
        name: the registry name of the architecture.
        version: the version recorded with the weights.
        sample: N, L, start mode and masking the model was trained with.
        session: the session settings its training sessions were cut with.
        threshold: score at or above which a session is called botnet.
    """

    model_dir: Path
    name: str
    version: str
    sample: SampleConfig
    session: SessionConfig
    threshold: float

    @property
    def input_length(self) -> int:
        return self.sample.input_length


def default_model_dir() -> Path:
    """The folder of the model shipped with the package."""
    return Path(str(resources.files("botunet"))) / "pretrained" / DEFAULT_MODEL


def read_model_spec(model_dir: str | Path | None = None) -> ModelSpec:
    """Read model.json of ``model_dir`` (the shipped model when None) with plain json."""
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    path = model_dir / SPEC_FILE
    if not path.is_file():
        hint = "train one with `botunet train` or pass --model DIR"
        raise CheckpointError(f"{path}: no model.json here; {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not readable as JSON ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return _spec_from_dict(data, model_dir, path)


def _spec_from_dict(data: dict[str, Any], model_dir: Path, path: Path) -> ModelSpec:
    try:
        sample = from_dict(SampleConfig, _section(data, "sample", path))
        session = from_dict(SessionConfig, _section(data, "session", path, required=False))
        name = str(data.get("model") or data["name"])
        threshold = float(data.get("threshold", 0.5))
    except KeyError as err:
        raise CheckpointError(f"{path}: missing field {err.args[0]!r}") from err
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from err
    input_length = data.get("input_length")
    if input_length is not None and int(input_length) != sample.input_length:
        raise CheckpointError(
            f"{path}: input_length {input_length} does not match the sample config "
            f"({sample.n_packets} x {sample.bytes_per_packet} = {sample.input_length})"
        )
    return ModelSpec(
        model_dir=model_dir,
        name=name,
        version=str(data.get("version") or data.get("botunet_version") or ""),
        sample=sample,
        session=session,
        threshold=threshold,
    )


def _section(data: dict[str, Any], name: str, path: Path, required: bool = True) -> dict:
    """A config section, stored as ``name + "_config"`` (or plain ``name``)."""
    for key in (f"{name}_config", name):
        value = data.get(key)
        if isinstance(value, dict):
            return value
    if required:
        raise CheckpointError(f"{path}: missing the {name!r} config")
    return {}
