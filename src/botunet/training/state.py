"""Resumable training state, written after every epoch without pickle.

Two files in the model folder:

- ``train_state.safetensors``: the current model tensors (``model/<name>``), the best
  model so far (``best/<name>``) and Adam's moment tensors
  (``optimizer/<param index>/<name>``);
- ``train_state.json``: Adam's hyperparameters and step counts, the epoch reached, the
  history, the early-stopping record and the run's settings.

The JSON is written second and names the epoch that the tensors carry in their metadata,
so a run cut off between the two writes is detected rather than resumed wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from botunet.errors import CheckpointError
from botunet.training.checkpoint import read_tensors, state_tensors, write_json, write_tensors

STATE_TENSORS_FILE = "train_state.safetensors"
STATE_JSON_FILE = "train_state.json"
STATE_FORMAT = "botunet-train-state"


def has_train_state(model_dir: str | Path) -> bool:
    """Whether model_dir holds a resumable training state."""
    return (Path(model_dir) / STATE_JSON_FILE).is_file()


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict]:
    """Split the optimizer state into JSON (groups, step counts) and tensors (moments)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    steps: dict[str, float] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if name == "step":
                steps[str(index)] = float(value)
            elif isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value.detach().cpu().clone().contiguous()
            else:
                raise TypeError(f"optimizer state {name!r} is not a tensor: {type(value)}")
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state["param_groups"]
    ]
    return {"type": type(optimizer).__name__, "param_groups": groups, "steps": steps}, tensors


def save_train_state(
    model_dir: str | Path,
    *,
    model: nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> None:
    """Write the state after a finished epoch; info must hold "epoch" and be JSON-ready."""
    model_dir = Path(model_dir)
    optimizer_json, tensors = _optimizer_parts(optimizer)
    tensors.update({f"model/{k}": v for k, v in state_tensors(model).items()})
    tensors.update({f"best/{k}": v.detach().cpu().clone() for k, v in best_state.items()})
    epoch = str(info["epoch"])
    write_tensors(model_dir / STATE_TENSORS_FILE, tensors, {"format": "pt", "epoch": epoch})
    write_json(
        model_dir / STATE_JSON_FILE,
        {"format": STATE_FORMAT, **info, "optimizer": optimizer_json},
    )


def read_train_info(model_dir: str | Path) -> dict[str, Any]:
    """The JSON half of a training state."""
    path = Path(model_dir) / STATE_JSON_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no training state to resume (file not found)")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a valid training state ({err})") from err
    if not isinstance(info, dict) or info.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a botunet training state")
    for key in ("epoch", "optimizer", "history", "stopper"):
        if key not in info:
            raise CheckpointError(f"{path}: training state has no {key!r}")
    return info


def load_train_state(
    model_dir: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model and optimizer in place; returns (info, best model state)."""
    model_dir = Path(model_dir)
    info = read_train_info(model_dir)
    path = model_dir / STATE_TENSORS_FILE
    tensors = read_tensors(path)
    with safe_open(str(path), framework="pt") as handle:
        saved_epoch = (handle.metadata() or {}).get("epoch")
    if saved_epoch != str(info["epoch"]):
        raise CheckpointError(
            f"{path}: holds epoch {saved_epoch}, {STATE_JSON_FILE} says {info['epoch']}; "
            "the run stopped while saving, train again without --resume"
        )

    current = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    best = {k.removeprefix("best/"): v for k, v in tensors.items() if k.startswith("best/")}
    _load_model_state(model, current, path)
    _check_fits(model, best, path)
    _load_optimizer(optimizer, info["optimizer"], tensors, path)
    return info, best


def _check_fits(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        names = sorted(set(expected) ^ set(got)) or sorted(
            k for k in expected if expected[k] != got[k]
        )
        raise CheckpointError(
            f"{path}: saved state does not fit the model (first difference {names[0]!r})"
        )


def _load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    _check_fits(model, state, path)
    model.load_state_dict(state, strict=True)


def _load_optimizer(
    optimizer: torch.optim.Optimizer,
    saved: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    path: Path,
) -> None:
    """Rebuild the optimizer's state dict from JSON numbers and moment tensors."""
    if saved.get("type") != type(optimizer).__name__:
        raise CheckpointError(
            f"{path}: optimizer {saved.get('type')!r} saved, {type(optimizer).__name__} in use"
        )
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            per_param.setdefault(int(index), {})[name] = value
    for index, step in saved["steps"].items():
        per_param.setdefault(int(index), {})["step"] = torch.tensor(float(step))
    groups = [dict(group) for group in saved["param_groups"]]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path}: optimizer state does not fit ({err})") from err
