"""raynas search spaces, each a :class:`search_spaces.base.SearchSpace`.

Use ``search_spaces.get(name, **options)``; ``names()`` lists what is registered. Modules are
imported lazily so that reading the registry does not import torch.
"""

from __future__ import annotations

from typing import Any

from search_spaces.base import SearchSpace

# name -> "module:ClassName"
_REGISTRY: dict[str, str] = {
    "nb201": "search_spaces.nb201:NB201Space",
    "darts": "search_spaces.darts:DartsSpace",
    "mobilenetv3": "search_spaces.mobilenetv3:MobileNetV3Space",
    "macro": "search_spaces.macro:MacroSpace",
}


def names() -> list[str]:
    """Registered search-space names, sorted."""
    return sorted(_REGISTRY)


def space_class(name: str) -> type[SearchSpace]:
    """The class registered under ``name``; ValueError listing valid names otherwise."""
    from raynas.registry import resolve

    return resolve("search space", name, _REGISTRY)


def get(name: str, **options: Any) -> SearchSpace:
    """Instantiate the search space ``name`` with its options (e.g. ``C=16, N=5`` for nb201).

    Raises:
        ValueError: unknown space name or unknown / invalid option.
    """
    from raynas.registry import check_options

    cls = space_class(name)
    check_options("search space", name, cls, options)
    return cls(**options)


__all__ = ["SearchSpace", "get", "names", "space_class"]
