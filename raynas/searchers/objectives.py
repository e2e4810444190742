"""Several objectives for a searcher: checking them, scoring a result, NSGA-II order, the front.

A multi-objective searcher takes ``metric``/``mode`` as lists (Tune's convention, e.g.
``metric=["val_acc", "params_m"], mode=["max", "min"]``), or, from an experiment file, the
option ``objectives: {val_acc: max, params_m: min}`` whose first entry is the experiment's own
``metric``/``mode``. A result is scored as the tuple of its metrics, each "higher is better";
members are ordered by NSGA-II (lowest non-dominated rank, then largest crowding distance,
``raynas.pareto``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from raynas.pareto import crowding_distances, nondominated_ranks


def check_objectives(metric: Any, mode: Any) -> tuple[list[str], list[str]]:
    """``(metrics, modes)`` as lists; ValueError naming a bad metric or mode list."""
    metrics = [metric] if isinstance(metric, str) else list(metric or [])
    modes = [mode] if isinstance(mode, str) else list(mode or [])
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"metric must be a non-empty name or list of names, got {metric!r}")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metric names must be distinct, got {metrics!r}")
    if len(modes) != len(metrics) or any(m not in ("max", "min") for m in modes):
        raise ValueError(
            f"mode must list 'max' or 'min' for each of the {len(metrics)} metrics, got {mode!r}"
        )
    return metrics, modes


def from_mapping(
    objectives: Any, metric: str | None, mode: str | None
) -> tuple[list[str], list[str]]:
    """The ``objectives`` option ``{metric: mode}`` as ``(metrics, modes)`` lists.

    Args:
        objectives: at least two metrics mapped to "max"/"min", in order.
        metric: the experiment's metric (None: not set); must be the first objective.
        mode: the experiment's mode (None: not set); must be the first objective's.

    Raises:
        ValueError: fewer than two objectives, a bad mode, or a first objective that is not
            the experiment's metric and mode.
    """
    if not isinstance(objectives, Mapping) or len(objectives) < 2:
        raise ValueError(
            f"objectives must map at least two metrics to 'max'/'min', got {objectives!r}"
        )
    metrics, modes = check_objectives(list(objectives), list(objectives.values()))
    if metric not in (None, metrics[0]) or mode not in (None, modes[0]):
        raise ValueError(
            f"the first objective ({metrics[0]}: {modes[0]}) must be the experiment's "
            f"metric and mode, got {metric}: {mode}"
        )
    return metrics, modes


def score(
    result: Mapping[str, Any] | None, metrics: list[str], modes: list[str]
) -> tuple[float, ...] | None:
    """The metrics of ``result``, each "higher is better"; None if any is missing/not finite."""
    values = []
    for metric, mode in zip(metrics, modes, strict=True):
        if not result or metric not in result:
            return None
        try:
            value = float(result[metric])
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value):
            return None
        values.append(value if mode == "max" else -value)
    return tuple(values)


def nsga_order(points: list[tuple[float, ...]]) -> list[tuple[int, float]]:
    """Per point: (non-dominated rank, -crowding distance); smaller = better."""
    ranks = nondominated_ranks(points)
    crowd = crowding_distances(points, ranks)
    return [(r, -c) for r, c in zip(ranks, crowd, strict=True)]


def pareto_front(
    history: Iterable[tuple[dict, Any]],
    metrics: list[str],
    modes: list[str],
    arch_key: Callable[[Mapping[str, Any]], str],
) -> list[tuple[dict, dict[str, float]]]:
    """Non-dominated completed trials of ``history`` (``(config, score tuple or None)``).

    Returns ``(config, {metric: value})`` in the metrics' own units, sorted best first by the
    first metric; one entry per architecture (``arch_key``), the first one completed.
    """
    done, keys = [], set()
    for config, point in history:
        if point is None:
            continue
        key = arch_key(config)
        if key in keys:
            continue
        keys.add(key)
        done.append((config, point))
    ranks = nondominated_ranks([s for _, s in done])
    front = sorted((d for d, r in zip(done, ranks, strict=True) if r == 0), key=lambda d: d[1])
    front.reverse()
    return [
        (
            dict(config),
            {m: (v if mo != "min" else -v) for m, mo, v in zip(metrics, modes, s, strict=True)},
        )
        for config, s in front
    ]
