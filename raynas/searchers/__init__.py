"""Search algorithms by name: ``make(name, space, metric, mode, seed, **options)``.

Each entry is a factory returning a Ray Tune ``Searcher`` or search algorithm; peers
(random, optuna, hyperopt) are Tune's own integrations, raynas's own searchers live in this
package, one module each. Imports are lazy so listing names imports nothing heavy.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from search_spaces.base import SearchSpace

# name -> "module:factory"
_REGISTRY: dict[str, str] = {
    "random": "raynas.searchers.peers:make_random",
    "optuna": "raynas.searchers.peers:make_optuna",
    "hyperopt": "raynas.searchers.peers:make_hyperopt",
}

_COMMON = {"space", "metric", "mode", "seed", "max_concurrent"}


def names() -> list[str]:
    """Registered searcher names, sorted."""
    return sorted(_REGISTRY)


def factory(name: str) -> Callable[..., Any]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown searcher {name!r}; choose one of: {', '.join(names())}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)


def make(
    name: str,
    space: SearchSpace,
    metric: str | None = None,
    mode: str | None = None,
    seed: int | None = None,
    max_concurrent: int | None = None,
    **options: Any,
):
    """Build the searcher ``name`` over ``space``.

    Args:
        name: registry name (see ``names()``).
        space: the search space; its ``tune_space()`` is the param space of the Tuner.
        metric: metric to optimise (also set by the Tuner through ``set_search_properties``).
        mode: "max" or "min".
        seed: seed of the searcher's randomness (None = nondeterministic).
        max_concurrent: trials in flight; only passed to searchers that limit it themselves
            (Tune's random search); the Tuner limits the others.
        **options: searcher-specific options.

    Raises:
        ValueError: unknown name or option.
    """
    make_fn = factory(name)
    params = inspect.signature(make_fn).parameters
    accepted = [p for p in params if p not in _COMMON]
    for key in options:
        if key in _COMMON or key not in params:
            raise ValueError(
                f"unknown option {key!r} for searcher {name!r}; "
                f"valid options: {', '.join(accepted) or '(none)'}"
            )
    if "max_concurrent" in params:
        options["max_concurrent"] = max_concurrent
    return make_fn(space=space, metric=metric, mode=mode, seed=seed, **options)
