"""Tune trainables by name: ``make(name, space, **options)`` returns a function trainable.

Each module exposes ``make(space, **options)``; options are validated before Ray starts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from search_spaces.base import SearchSpace

_REGISTRY: dict[str, str] = {
    "table": "raynas.trainables.table",
}


def names() -> list[str]:
    """Registered trainable names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The trainable ``name`` for ``space``.

    Raises:
        ValueError: unknown trainable, unknown option, or an option with a bad value.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown trainable {name!r}; choose one of: {', '.join(names())}")
    factory = importlib.import_module(_REGISTRY[name]).make
    params = inspect.signature(factory).parameters
    accepted = [p for p in params if p != "space"]
    for key in options:
        if key not in params:
            raise ValueError(
                f"unknown option {key!r} for trainable {name!r}; "
                f"valid options: {', '.join(accepted) or '(none)'}"
            )
    return factory(space, **options)
