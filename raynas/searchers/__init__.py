"""Search algorithms by name: ``make(name, space, metric, mode, seed, **options)``.

Each entry is a factory returning a Ray Tune ``Searcher`` or search algorithm; peers
(random, optuna, hyperopt) are Tune's own integrations, raynas's own searchers live in this
package, one module each. Imports are lazy so listing names imports nothing heavy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from raynas.registry import check_options, resolve
from search_spaces.base import SearchSpace

# name -> "module:factory"
_REGISTRY: dict[str, str] = {
    "random": "raynas.searchers.peers:make_random",
    "optuna": "raynas.searchers.peers:make_optuna",
    "hyperopt": "raynas.searchers.peers:make_hyperopt",
    "evolution": "raynas.searchers.evolution:make_evolution",
    "reinforce": "raynas.searchers.reinforce:make_reinforce",
    "local": "raynas.searchers.local:make_local",
    "bananas": "raynas.searchers.bananas:make_bananas",
    "fixed": "raynas.searchers.fixed:make_fixed",
}

_COMMON = {"space", "metric", "mode", "seed", "max_concurrent"}


def names() -> list[str]:
    """Registered searcher names, sorted."""
    return sorted(_REGISTRY)


def factory(name: str) -> Callable[..., Any]:
    """The factory registered under ``name``; ValueError listing valid names otherwise."""
    return resolve("searcher", name, _REGISTRY)


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
    check_options("searcher", name, make_fn, options, reserved=_COMMON)
    params = inspect.signature(make_fn).parameters
    if "max_concurrent" in params:
        options["max_concurrent"] = max_concurrent
    return make_fn(space=space, metric=metric, mode=mode, seed=seed, **options)
