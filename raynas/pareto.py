"""Pareto ranking (NSGA-II): non-dominated fronts and crowding distances.

Shared by the multi-objective searchers and the report (``raynas report``'s Pareto front).
Every objective is "higher is better": negate "min" objectives first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b`` (both "higher is better")."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def nondominated_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """NSGA-II non-dominated sorting ("higher is better"): front index of every point (0 =
    Pareto front)."""
    n = len(points)
    dominated_by = [0] * n
    dominates: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(points[i], points[j]):
                dominates[i].append(j)
                dominated_by[j] += 1
            elif _dominates(points[j], points[i]):
                dominates[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if dominated_by[i] == 0]
    rank = 0
    while front:
        nxt = []
        for i in front:
            ranks[i] = rank
            for j in dominates[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(j)
        front, rank = nxt, rank + 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]], ranks: Sequence[int]) -> list[float]:
    """NSGA-II crowding distance of every point within its front (inf at the boundaries)."""
    dist = [0.0] * len(points)
    fronts: dict[int, list[int]] = {}
    for i, r in enumerate(ranks):
        fronts.setdefault(r, []).append(i)
    for members in fronts.values():
        if len(members) <= 2:
            for i in members:
                dist[i] = math.inf
            continue
        for m in range(len(points[members[0]])):
            order = sorted(members, key=lambda i: points[i][m])
            low, high = points[order[0]][m], points[order[-1]][m]
            dist[order[0]] = dist[order[-1]] = math.inf
            if high == low:
                continue
            for k in range(1, len(order) - 1):
                dist[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (
                    high - low
                )
    return dist


def front(rows: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The rows no other row dominates over ``objectives`` (``{column: "max" | "min"}``: at
    least as good on every objective, better on one), among those with every objective a
    finite number; best first by the first objective (then the next ones). Empty when a column
    is missing or no row has every objective."""
    import numpy as np
    import pandas as pd

    if not objectives or any(m not in rows for m in objectives):
        return rows.iloc[0:0]
    values = rows[list(objectives)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    keep = np.isfinite(values).all(axis=1)
    if not keep.any():
        return rows.iloc[0:0]
    signs = np.array([1.0 if mode == "max" else -1.0 for mode in objectives.values()])
    points = (values[keep] * signs).tolist()  # "higher is better" for every objective
    chosen = rows[keep][[rank == 0 for rank in nondominated_ranks(points)]]
    return chosen.sort_values(
        list(objectives), ascending=[mode == "min" for mode in objectives.values()], kind="stable"
    )
