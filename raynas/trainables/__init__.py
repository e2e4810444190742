"""Tune trainables by name: ``make(name, space, **options)`` returns a function trainable.

Each entry is a ``make(space, **options)`` factory; options are validated before Ray starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raynas.registry import check_options, resolve
from search_spaces.base import SearchSpace

_REGISTRY: dict[str, str] = {
    "table": "raynas.trainables.table:make",
    "train": "raynas.trainables.train:make",
    "proxy": "raynas.trainables.proxy:make",
    "darts": "raynas.trainables.darts:make",
    "curves": "raynas.trainables.curves:make",
}


def names() -> list[str]:
    """Registered trainable names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The trainable ``name`` for ``space``.

    Raises:
        ValueError: unknown trainable, unknown option, or an option with a bad value.
    """
    factory = resolve("trainable", name, _REGISTRY)
    check_options("trainable", name, factory, options, reserved=("space",))
    return factory(space, **options)
