"""The REINFORCE searcher's policy: an ENAS-style LSTM controller over the keys of a Tune space.

The policy is autoregressive over the keys of the flat Tune space, in the space's key order.
The LSTM policy itself (``Controller``, ``cpu_state_dict``) lives in ``raynas.nn.controller``
(it knows only the number of choices per decision, so the ENAS one-shot search uses it too);
this module re-exports it and maps Tune domains to decisions.

Each key is one ``Decision``: a categorical domain has one choice per value; a numeric domain
(uniform / loguniform / randint) is discretised into ``num_bins`` equal-width bins, log-spaced
for log domains (an integer domain with at most ``num_bins`` values gets one choice per value).
A bin's value is drawn uniformly (log-uniformly for log domains) inside it with the searcher's
numpy RNG; a config's decision is the bin its value falls in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from raynas.nn.controller import Controller, cpu_state_dict
from raynas.searchers.base import integer_grid, is_log_domain

__all__ = ["Controller", "Decision", "cpu_state_dict", "decision"]


@dataclass(frozen=True)
class Decision:
    """How one Tune domain maps to a softmax over ``size`` choices."""

    key: str
    size: int
    categories: tuple | None = None  # categorical domain
    edges: tuple[float, ...] | None = None  # numeric: bin edges (in log space when ``log``)
    log: bool = False
    integer: bool = False
    lower: float = 0.0
    upper: float = 0.0
    q: float | None = None

    def index(self, value: Any) -> int | None:
        """The choice that ``value`` falls in; None when it is outside the domain."""
        if self.categories is not None:
            for i, c in enumerate(self.categories):
                if c is value or c == value:
                    return i
            return None
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v) or v < self.lower or v > self.upper:
            return None
        if self.log:
            if v <= 0:
                return None
            v = math.log(v)
        i = int(np.searchsorted(self.edges, v, side="right")) - 1
        return min(max(i, 0), self.size - 1)

    def value(self, index: int, rng: np.random.Generator) -> Any:
        """A value of choice ``index``: the category, or a uniform draw inside the bin."""
        if self.categories is not None:
            return self.categories[index]
        lo, hi = self.edges[index], self.edges[index + 1]
        x = float(rng.uniform(lo, hi))
        if self.log:
            x = math.exp(x)
        if self.integer:
            # Integer bins are [lo, hi) over integers (``edges`` hold integers, or their logs).
            x = math.floor(x)
        if self.q:
            x = self.lower + math.floor((x - self.lower) / self.q + 0.5) * self.q
        x = min(max(x, self.lower), self.upper)
        return int(x) if self.integer else float(x)


def decision(key: str, domain: Any, num_bins: int) -> Decision:
    from ray.tune.search.sample import Categorical, Float, Integer

    if isinstance(domain, Categorical):
        return Decision(key, len(domain.categories), categories=tuple(domain.categories))
    if not isinstance(domain, Float | Integer):
        raise ValueError(
            f"unsupported Tune domain for {key!r}: {domain!r}; use choice, randint or uniform"
        )
    is_log = is_log_domain(domain)
    if is_log and domain.lower <= 0:
        raise ValueError(f"log domain {key!r} needs lower > 0, got {domain.lower}")
    if isinstance(domain, Integer):
        first, top, step = integer_grid(domain)  # the values Tune draws: first..top by step
        grid = list(range(first, top + 1, step))
        if len(grid) <= num_bins:  # small integer domain: one choice per value
            return Decision(key, len(grid), categories=tuple(grid))
        space = np.geomspace if is_log else np.linspace
        edges = np.unique(np.round(space(first, top + 1, num_bins + 1)))
        edges = np.log(edges) if is_log else edges
        return Decision(
            key, len(edges) - 1, edges=tuple(edges.tolist()), log=is_log, integer=True,
            lower=float(first), upper=float(top), q=step if step > 1 else None,
        )  # fmt: skip
    lower, upper = float(domain.lower), float(domain.upper)
    q = getattr(domain.sampler, "q", None)
    space = np.geomspace if is_log else np.linspace
    edges = space(lower, upper, num_bins + 1)
    edges = np.log(edges) if is_log else edges
    return Decision(
        key, num_bins, edges=tuple(edges.tolist()), log=is_log, lower=lower, upper=upper, q=q
    )
