"""Moves between configs of a flat Tune space: one-key mutations and neighbourhoods.

A *move* changes the value of one key. Categorical keys move to another category; numeric keys
(``uniform``, ``loguniform``, ``randint``, quantised or not) take a Gaussian step of sd
``NUMERIC_STEP`` x the key's range (in log scale for log domains), reflected at the bounds and
quantised when the domain is; an integer moves by at least one step. Evolution mutates with
these moves, local search and the predictor-guided searcher walk with them.

The *neighbourhood* of a config is every distinct architecture one move away. With a raynas
``SearchSpace`` it is the space's own ``neighbours`` (categorical keys; the space knows which
keys are inactive); over a plain flat Tune space it is every other value of each categorical or
integer key. A neighbourhood can be enumerated when every key is finite; ``bound`` is its size
before duplicates are removed (None when a key is continuous).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from ray.tune.search.sample import Categorical, Domain, Float, Integer

from raynas.searchers.base import integer_grid, is_log_domain

#: sd of a numeric move, as a fraction of the key's (log-)range.
NUMERIC_STEP = 0.2

#: A move recipe: ``(key, "cat", categories)`` or ``(key, kind, lower, upper, is_log, q)``
#: with kind "int" (``lower``/``upper``/``q``: first and last value Tune draws and the step) or
#: "float".
KeyMove = tuple


def key_move(key: str, domain: Domain) -> KeyMove | None:
    """Move recipe of one domain, or None when it has a single value."""
    if isinstance(domain, Categorical):
        cats = list(domain.categories)
        return (key, "cat", cats) if len(cats) > 1 else None
    is_log = is_log_domain(domain)
    if isinstance(domain, Integer):
        first, last, step = integer_grid(domain)  # the values Tune draws
        return None if last <= first else (key, "int", first, last, is_log, step)
    if isinstance(domain, Float):
        q = getattr(domain.sampler, "q", None)
        return (
            None
            if domain.upper <= domain.lower
            else (key, "float", domain.lower, domain.upper, is_log, q)
        )
    raise ValueError(f"unsupported Tune domain for {key!r}: {domain!r}")


def key_moves(domains: Mapping[str, Domain]) -> list[KeyMove]:
    """Move recipes of every key that can change, in the order of ``domains``."""
    return [m for m in (key_move(k, d) for k, d in domains.items()) if m is not None]


def new_value(
    move: KeyMove, value: Any, rng: np.random.Generator, resample: Callable[[str], Any]
) -> Any:
    """A value of ``move``'s key other than ``value`` (see the module docstring).

    Args:
        move: the key's recipe (``key_move``).
        value: the current value.
        rng: randomness of the move.
        resample: draws a fresh value of a key, used when ``value`` is not numeric.
    """
    key, kind = move[0], move[1]
    if kind == "cat":
        cats = move[2]
        others = [c for c in cats if not same(c, value)]
        if len(others) == len(cats):  # value not in the domain: resample everything
            others = cats
        return others[int(rng.integers(len(others)))]
    _, _, low, high, is_log, q = move
    try:
        x = math.log(value) if is_log else float(value)
    except (TypeError, ValueError):
        return resample(key)
    lo, hi = (math.log(low), math.log(high)) if is_log else (low, high)
    x = _reflect(x + rng.normal(0.0, NUMERIC_STEP * (hi - lo)), lo, hi)
    new = math.exp(x) if is_log else x
    if kind == "float":
        if q:
            new = min(max(round(new / q) * q, low), high)
        return float(new)
    step, top = q, high  # an int recipe holds (first, last, step) of the values Tune draws
    new = int(min(max(low + round((new - low) / step) * step, low), top))
    if new == value:  # move at least one step
        up = value + step <= top
        down = value - step >= low
        if up and (not down or rng.random() < 0.5):
            new = value + step
        elif down:
            new = value - step
    return int(new)


def same(a: Any, b: Any) -> bool:
    """``a == b`` for values of a domain, robust to types whose ``==`` is not a bool."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def _reflect(x: float, lo: float, hi: float) -> float:
    width = hi - lo
    if width <= 0:
        return lo
    x = (x - lo) % (2 * width)
    return lo + (x if x <= width else 2 * width - x)


# ------------------------------------------------------------------------------ neighbourhood
def neighbourhood_bound(domains: Mapping[str, Domain]) -> int | None:
    """Configs one move away from any config, duplicates included; None if a key is continuous
    (its neighbourhood cannot be enumerated)."""
    total = 0
    for move in key_moves(domains):
        if move[1] == "cat":
            total += len(move[2]) - 1
        elif move[1] == "int":
            _, _, first, last, _, step = move
            total += (last - first) // step
        else:
            return None
    return total


def neighbours(
    config: Mapping[str, Any],
    domains: Mapping[str, Domain],
    space: Any = None,
) -> list[dict]:
    """Every distinct architecture one move away from ``config``, in a deterministic order.

    Args:
        config: a config of ``domains``.
        domains: the flat Tune space searched (every key finite; see ``neighbourhood_bound``).
        space: the raynas ``SearchSpace`` of ``domains``, whose ``neighbours`` is used (its
            ``encode`` gives the configs), or None: every other value of each key.

    Raises:
        ValueError: a key is continuous.
    """
    if space is not None:
        return [space.encode(g) for g in space.neighbours(space.decode(config))]
    out = []
    for move in key_moves(domains):
        key = move[0]
        if move[1] == "cat":
            values = move[2]
        elif move[1] == "int":
            _, _, first, last, _, step = move
            values = range(first, last + 1, step)
        else:
            raise ValueError(f"the neighbours of continuous key {key!r} cannot be enumerated")
        out.extend(dict(config, **{key: v}) for v in values if not same(v, config[key]))
    return out


def sample_neighbours(
    config: Mapping[str, Any],
    moves: list[KeyMove],
    k: int,
    rng: np.random.Generator,
    key: Callable[[Mapping[str, Any]], str],
    exclude: set[str] | frozenset[str] = frozenset(),
    resample: Callable[[str], Any] | None = None,
    tries: int = 20,
) -> list[dict]:
    """Up to ``k`` random configs one move away from ``config``, of distinct architectures
    other than ``config``'s and not in ``exclude``.

    A draw picks a key uniformly among ``moves`` and a new value with ``new_value``; at most
    ``tries * k`` draws are made, so fewer than ``k`` come back when few neighbours are left.
    """
    if not moves or k < 1:
        return []
    own = key(config)
    taken = set(exclude) | {own}
    out = []
    for _ in range(tries * k):
        move = moves[int(rng.integers(len(moves)))]
        child = dict(config)
        child[move[0]] = new_value(move, config[move[0]], rng, resample or _no_resample)
        arch = key(child)
        if arch not in taken:
            taken.add(arch)
            out.append(child)
            if len(out) == k:
                break
    return out


def _no_resample(key: str) -> Any:
    raise ValueError(f"value of {key!r} is not numeric")
