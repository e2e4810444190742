"""Genotypes derived from a supernet's architecture weights (DARTS, PC-DARTS, NB201).

* darts: per node keep the 2 incoming edges whose strongest non-``none`` op weight is the
  largest, each with that op (DARTS' ``genotype()``); with edge normalisation the op weights
  of an edge are first multiplied by the edge's normalised β (PC-DARTS' ``genotype()``).
* nb201: every edge keeps its argmax op over all 5 ops, ``none`` included, as in the NB201
  paper's DARTS baseline (``TinyNetworkDarts.genotype``); β does not change a per-edge argmax.

The supernets (``raynas.nn.supernet``) know nothing of search spaces; this module turns their
``derivation_weights()`` into the space's genotype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.nn.supernet import (
    DARTS_EDGES,
    DARTS_PRIMITIVES,
    NB201_EDGES,
    NB201_PRIMITIVES,
    DartsSupernet,
    Supernet,
)
from search_spaces import darts as darts_space
from search_spaces import nb201 as nb201_space


def genotype(model: Supernet) -> Any:
    """The genotype ``model`` derives from its current α (and β), in its space's form."""
    w = model.derivation_weights()
    if isinstance(model, DartsSupernet):
        return derive_darts(w["normal"], w["reduce"])
    return derive_nb201(w["normal"], model.primitives)


def derive_darts(normal: Any, reduce: Any) -> darts_space.Genotype:
    """DARTS' derivation from op weights (14 x 8 arrays in ``DARTS_PRIMITIVES`` order).

    Per node, the 2 incoming edges with the largest best non-``none`` weight are kept, each
    with its best non-``none`` op; ties go to the lower input index.

    Returns:
        The canonical ``search_spaces.darts.Genotype``.
    """
    none = DARTS_PRIMITIVES.index("none")

    def parse(weights: Any, cell: str) -> list[tuple[str, int]]:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(DARTS_EDGES), len(DARTS_PRIMITIVES)):
            raise ValueError(
                f"{cell} weights must have shape ({len(DARTS_EDGES)}, {len(DARTS_PRIMITIVES)}), "
                f"got {w.shape}"
            )
        masked = w.copy()
        masked[:, none] = -np.inf
        gene: list[tuple[str, int]] = []
        start = 0
        for n in range(darts_space.NODES):
            rows = masked[start : start + n + 2]
            strength = rows.max(axis=1)
            # Stable sort: on equal strength the lower input index wins.
            keep = sorted(np.argsort(-strength, kind="stable")[:2].tolist())
            gene.extend((DARTS_PRIMITIVES[int(rows[j].argmax())], int(j)) for j in keep)
            start += n + 2
        return gene

    return darts_space.canonical(
        darts_space.Genotype(
            normal=parse(normal, "normal"),
            normal_concat=list(darts_space.CONCAT),
            reduce=parse(reduce, "reduce"),
            reduce_concat=list(darts_space.CONCAT),
        )
    )


def derive_nb201(
    weights: Any, primitives: Sequence[str] = NB201_PRIMITIVES
) -> nb201_space.NB201Genotype:
    """NB201 derivation: the argmax op of each edge over all ops (``none`` included).

    Args:
        weights: 6 x len(primitives) op weights (or α), rows in ``search_spaces.nb201.EDGES``
            order; ties go to the earlier op.
        primitives: the op of each column (default: the 5 NB201 ops).
    """
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(NB201_EDGES), len(primitives)):
        raise ValueError(
            f"nb201 weights must have shape ({len(NB201_EDGES)}, {len(primitives)}), got {w.shape}"
        )
    return nb201_space.NB201Genotype(tuple(primitives[int(i)] for i in w.argmax(axis=1)))


def genotype_of_path(model: Supernet, path: Mapping[str, Sequence[int]]) -> Any:
    """The genotype of a single path (one op index per edge and cell type) of ``model``.

    A darts path must be a valid cell: per node two edges with a non-``none`` op.
    """
    weights = {}
    for t in model.cell_types:
        one_hot = np.zeros((len(model.edges), len(model.primitives)))
        one_hot[np.arange(len(model.edges)), list(path[t])] = 1.0
        weights[t] = one_hot
    if isinstance(model, DartsSupernet):
        return derive_darts(weights["normal"], weights["reduce"])
    return derive_nb201(weights["normal"], model.primitives)


def path_of(model: Supernet, genotype: Any) -> dict[str, list[int]]:
    """The single path of ``model`` that computes ``genotype`` (the inverse of
    ``genotype_of_path``): unused darts edges take ``none``."""
    if not isinstance(model, DartsSupernet):
        return {"normal": [model.primitives.index(op) for op in genotype.ops]}
    none = DARTS_PRIMITIVES.index("none")
    starts = np.cumsum([0, *model.inputs_per_node])
    path = {}
    for t in model.cell_types:
        cell = [none] * len(model.edges)
        for k, (op, src) in enumerate(getattr(genotype, t)):
            cell[int(starts[k // 2]) + int(src)] = DARTS_PRIMITIVES.index(op)
        path[t] = cell
    return path
