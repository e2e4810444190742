"""Search algorithms by name: ``make(name, space, metric, mode, seed, **options)``.

raynas's own searchers (this package, one module each) are registered as their classes:
``make`` checks the options against the class's ``__init__`` and calls it with them, so a
searcher's options are stated once, in its constructor. The peers (random, optuna, hyperopt, bohb)
are Tune's own integrations, registered as factories that adapt Tune's classes (seeded
samplers, option names), and ``fixed`` as a factory that resolves the architectures it runs.
Imports are lazy so listing names imports nothing heavy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from raynas.registry import check_options, resolve
from search_spaces.base import SearchSpace

# name -> "module:class" (raynas's searchers) or "module:factory" (Tune's, and ``fixed``)
_REGISTRY: dict[str, str] = {
    "random": "raynas.searchers.peers:make_random",
    "optuna": "raynas.searchers.peers:make_optuna",
    "hyperopt": "raynas.searchers.peers:make_hyperopt",
    "bohb": "raynas.searchers.peers:make_bohb",
    "evolution": "raynas.searchers.evolution:EvolutionSearcher",
    "reinforce": "raynas.searchers.reinforce:ReinforceSearcher",
    "local": "raynas.searchers.local:LocalSearcher",
    "bananas": "raynas.searchers.bananas:BananasSearcher",
    "fixed": "raynas.searchers.fixed:make_fixed",
}

_COMMON = {"space", "metric", "mode", "seed", "max_concurrent"}


def names() -> list[str]:
    """Registered searcher names, sorted."""
    return sorted(_REGISTRY)


def factory(name: str) -> Callable[..., Any]:
    """The class or factory registered under ``name``; ValueError listing valid names otherwise.

    Either is called as ``factory(name)(space=..., metric=..., mode=..., seed=..., **options)``.
    """
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
    build = factory(name)
    check_options("searcher", name, build, options, reserved=_COMMON)
    if "max_concurrent" in inspect.signature(build).parameters:
        options["max_concurrent"] = max_concurrent
    return build(space=space, metric=metric, mode=mode, seed=seed, **options)
