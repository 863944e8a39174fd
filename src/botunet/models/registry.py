"""Model registry: variant functions register by name; create_model builds one by name."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from botunet.errors import UnknownModelError

logger = logging.getLogger(__name__)

ModelFn = TypeVar("ModelFn", bound=Callable[..., nn.Module])

# Modules whose variant functions register themselves when imported.
_MODEL_MODULES = ("botunet.models.unet1d", "botunet.models.mobilenet1d")

_registry: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Decorator: register a variant function under its own name; a name is taken once."""
    name = fn.__name__
    if name in _registry:
        raise ValueError(f"model {name!r} is already registered by {_registry[name].__module__}")
    _registry[name] = fn
    return fn


def _load_builtin_models() -> None:
    for module in _MODEL_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_builtin_models()
    return sorted(_registry)


def create_model(name: str, *, input_length: int, **kwargs: Any) -> nn.Module:
    """Build model name for inputs of shape (B, 1, input_length); kwargs go to its constructor.

    Raises:
        UnknownModelError: name is not registered; the message lists the known names.
    """
    _load_builtin_models()
    if name not in _registry:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    model = _registry[name](input_length=input_length, **kwargs)
    logger.debug("created %s for input length %d", name, input_length)
    return model
