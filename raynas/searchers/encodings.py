"""Architecture encodings: configs of a flat Tune space as fixed-length feature vectors.

Performance predictors (``raynas.searchers.bananas``) read architectures through an encoding
(White et al. 2020, "A Study on Encodings for Neural Architecture Search"):

- ``onehot``: every key of the flat space in order; a categorical key is the one-hot of its
  value, a numeric key its value scaled to [0, 1] (in log scale for log domains). Works for
  every space. With a raynas space the config is first made canonical
  (``space.encode(space.decode(config))``), so keys that do not count (mobilenetv3 slots
  beyond a stage's depth) take their canonical value and equal architectures encode equally.
  For mobilenetv3 this is the one-hot of depths, kernels and expand ratios.
- ``adjacency``: cell spaces. One indicator per (edge, op) of the cell DAG: for nb201 the
  op of each of its 6 edges (the same vector as ``onehot``); for darts, per cell and node,
  which of the node's possible inputs it reads through which op (2 x 14 edges x 7 ops), so an
  input shared by different input pairs is one feature. ``macro`` spaces: the macro keys
  one-hot, then the cell's adjacency.
- ``path``: nb201 cells (also inside ``macro``). One indicator per path from the cell's input
  node to its output node, as the sequence of ops on it; edges with the ``none`` op are not
  edges (BANANAS' path encoding; 4 + 16 + 16 + 64 = 100 features with the five NB201 ops).

``auto`` is ``adjacency`` for nb201 and darts cells (also inside ``macro``) and ``onehot``
otherwise (the comparison behind that choice: benchmarks/README.md, issue 29).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.search.sample import Categorical, Domain, Float, Integer

from raynas.searchers.base import integer_grid, is_log_domain

NAMES = ("auto", "onehot", "adjacency", "path")
_CELL_ENCODINGS = {"nb201": ("adjacency", "path"), "darts": ("adjacency",)}


def _cell_space(space: Any) -> tuple[str, Any] | None:
    """``(prefix, cell space)`` of a cell space or a macro space around one; None otherwise."""
    name = getattr(space, "name", None)
    if name in _CELL_ENCODINGS:
        return "", space
    if name == "macro":
        from search_spaces.macro import PREFIX

        return PREFIX, space.micro
    return None


def resolve(name: str, space: Any) -> str:
    """The encoding ``name`` stands for with ``space`` (``auto`` resolved).

    Raises:
        ValueError: unknown encoding, or one that ``space`` does not support.
    """
    if name not in NAMES:
        raise ValueError(f"unknown encoding {name!r}; choose one of: {', '.join(NAMES)}")
    cell = _cell_space(space)
    cell_name = getattr(cell[1], "name", None) if cell else None
    if name == "auto":
        return "adjacency" if cell_name else "onehot"
    if name == "onehot" or (cell_name and name in _CELL_ENCODINGS[cell_name]):
        return name
    supported = [s for s, kinds in _CELL_ENCODINGS.items() if name in kinds]
    raise ValueError(
        f"encoding {name!r} needs a cell space ({', '.join(supported)}, or macro around one), "
        f"got space {getattr(space, 'name', None)!r}; use onehot"
    )


class Encoder:
    """Encodes configs of ``domains`` as float32 vectors of length ``dim`` (picklable).

    Args:
        name: an encoding of ``NAMES`` (``resolve``d against ``space``).
        domains: the flat Tune space searched.
        space: its raynas ``SearchSpace``, or None (then only ``onehot``).
    """

    def __init__(self, name: str, domains: Mapping[str, Domain], space: Any = None) -> None:
        self.name = resolve(name, space)
        self.space = space
        keys = list(domains)
        cell = _cell_space(space) if self.name != "onehot" else None
        parts: list[Callable[[Mapping[str, Any]], list[float]]] = []
        if cell is None:
            parts.append(_OneHot(keys, domains))
        else:
            prefix, cell_space = cell
            outer = [k for k in keys if not k.startswith(prefix)] if prefix else []
            if outer:
                parts.append(_OneHot(outer, domains))
            if cell_space.name == "darts":
                parts.append(_DartsAdjacency(prefix))
            elif self.name == "path":
                parts.append(_NB201Paths(prefix, cell_space.ops))
            else:
                parts.append(_OneHot([k for k in keys if k.startswith(prefix)], domains))
        self._parts = parts
        self.dim = sum(p.dim for p in parts)

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The encodings of ``configs``, one row each."""
        out = np.zeros((len(configs), self.dim), dtype=np.float32)
        for row, config in enumerate(configs):
            if self.space is not None:
                config = self.space.encode(self.space.decode(config))
            out[row] = [x for part in self._parts for x in part(config)]
        return out


class _OneHot:
    def __init__(self, keys: list[str], domains: Mapping[str, Domain]) -> None:
        self.items: list[tuple[str, Any]] = []
        dim = 0
        for key in keys:
            domain = domains[key]
            if isinstance(domain, Categorical):
                index = {_hashable(c): i for i, c in enumerate(domain.categories)}
                self.items.append((key, index))
                dim += len(index)
            elif isinstance(domain, Integer | Float):
                if isinstance(domain, Integer):
                    first, last, _ = integer_grid(domain)
                    lower, upper = float(first), float(last)
                else:
                    lower, upper = float(domain.lower), float(domain.upper)
                log = is_log_domain(domain)
                if log:
                    lower, upper = math.log(lower), math.log(upper)
                self.items.append((key, (lower, upper, log)))
                dim += 1
            else:
                raise ValueError(f"unsupported Tune domain for {key!r}: {domain!r}")
        self.dim = dim

    def __call__(self, config: Mapping[str, Any]) -> list[float]:
        out: list[float] = []
        for key, spec in self.items:
            if isinstance(spec, dict):
                hot = [0.0] * len(spec)
                i = spec.get(_hashable(config[key]))
                if i is not None:
                    hot[i] = 1.0
                out.extend(hot)
            else:
                lower, upper, log = spec
                x = float(config[key])
                x = math.log(x) if log and x > 0 else x
                out.append((x - lower) / (upper - lower) if upper > lower else 0.0)
        return out


class _NB201Paths:
    """Input-to-output paths of an nb201 cell as op sequences (no ``none`` edges)."""

    def __init__(self, prefix: str, ops: Sequence[str]) -> None:
        from search_spaces.nb201 import EDGES, KEYS

        edge_key = {e: prefix + k for e, k in zip(EDGES, KEYS, strict=True)}
        routes = [  # node sequences from node 0 to node 3
            (0, 3),
            (0, 1, 3),
            (0, 2, 3),
            (0, 1, 2, 3),
        ]
        self.routes = [[edge_key[(b, a)] for a, b in itertools.pairwise(r)] for r in routes]
        live = [o for o in ops if o != "none"]
        self.index: dict[tuple, int] = {}
        for r, route in enumerate(self.routes):
            for seq in itertools.product(live, repeat=len(route)):
                self.index[(r, *seq)] = len(self.index)
        self.dim = len(self.index)

    def __call__(self, config: Mapping[str, Any]) -> list[float]:
        out = [0.0] * self.dim
        for r, route in enumerate(self.routes):
            i = self.index.get((r, *(config[k] for k in route)))
            if i is not None:
                out[i] = 1.0
        return out


class _DartsAdjacency:
    """Per cell, node and possible input: the op the node applies to that input (if any)."""

    def __init__(self, prefix: str) -> None:
        from search_spaces.darts import CELLS, NODES, OPS

        self.prefix = prefix
        self.cells, self.nodes = CELLS, NODES
        self.op_index = {op: i for i, op in enumerate(OPS)}
        self.offset: dict[tuple[str, int, int], int] = {}
        for cell in CELLS:
            for n in range(NODES):
                for i in range(n + 2):
                    self.offset[(cell, n, i)] = len(self.offset) * len(OPS)
        self.dim = len(self.offset) * len(OPS)

    def __call__(self, config: Mapping[str, Any]) -> list[float]:
        out = [0.0] * self.dim
        p = self.prefix
        for cell in self.cells:
            for n in range(self.nodes):
                lo, hi = (int(i) for i in str(config[f"{p}{cell}.n{n}.inputs"]).split(","))
                for src, part in ((lo, "op0"), (hi, "op1")):
                    op = self.op_index[config[f"{p}{cell}.n{n}.{part}"]]
                    out[self.offset[(cell, n, src)] + op] = 1.0
        return out


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


__all__ = ["NAMES", "Encoder", "resolve"]
