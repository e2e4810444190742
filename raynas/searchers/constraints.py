"""Constraints on proposed configs: a callable, or bounds on quantities the space computes.

A searcher's ``constraint`` option is either a callable ``config -> bool`` (picklable, e.g. a
module-level function, if the searcher is saved by a Tuner) or bounds on quantities the space
computes from a config without training (``raynas.searchers.quantities``):

- nb201: ``{"params_m": {"max": 1.5}, "flops_m": {"min": 50}}`` (``params_m``/``flops_m`` of
  the network with the space's C and N, as ``raynas.benchmarks.nb201.params_and_macs`` counts
  them; an optional ``"dataset"`` entry, default cifar10, sets its classes and input
  resolution as the table trainable does).
- mobilenetv3: ``{"latency_ms": {"max": 5}, "latency_table": {...}}``, the end-to-end latency
  predicted by the per-device ``raynas.hardware.LatencyTable`` without building the subnet.
  ``latency_table`` holds ``LatencyTable.build`` options: ``device`` (cpu), ``batch_size`` (1),
  ``threads`` (1), ``resolution``/``width_mult`` (the space's), ``num_classes`` (10),
  ``cache_dir`` (``$RAYNAS_LATENCY_CACHE`` or ``~/.cache/raynas/latency``), ``clock``,
  ``rebuild`` and the measuring effort (``probes``, ``repeats``, ``rounds``, ...). The table is
  measured on the first check, in the driver process, and cached on disk per device key (later
  runs on that machine read it); a pickled searcher carries its table, a searcher restored
  from its saved state (``raynas resume``) reads the cached file again. Match the trainable
  (``train`` with ``latency: true``: same device, threads, batch 1, dataset image size and
  classes) to compare prediction and measurement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raynas.searchers import quantities

#: A searcher's ``constraint`` option: a predicate on configs, or bounds (``SpaceConstraint``).
Constraint = Callable[[Mapping[str, Any]], bool] | Mapping[str, Any] | None


class SpaceConstraint:
    """Bounds on quantities computed from a config by the raynas space (picklable).

    Args:
        space: the raynas search space (its ``name`` selects the quantities, see
            ``raynas.searchers.quantities``).
        spec: ``{quantity: {"min": a, "max": b}}`` (either bound optional), plus the
            quantities' options: ``"dataset"`` (nb201: cifar10 | cifar100 | imagenet16-120,
            default cifar10), ``"latency_table"`` (mobilenetv3: ``LatencyTable.build``
            options for ``latency_ms``).
    """

    def __init__(self, space: Any, spec: Mapping[str, Any]) -> None:
        name = getattr(space, "name", None)
        if space is None or not quantities.names(name):
            raise ValueError(
                f"a constraint given as bounds needs a search space that computes quantities "
                f"({', '.join(quantities.spaces())}), got {name!r}; pass a callable instead"
            )
        spec, options = quantities.split_options(space, spec)
        self.dataset = str(options.get("dataset", "cifar10"))
        if not spec:
            raise ValueError("constraint needs at least one bounded quantity, got none")
        self.bounds: dict[str, tuple[float, float]] = {}
        self.quantities: dict[str, Callable[[Mapping[str, Any]], float]] = {}
        for quantity, bounds in spec.items():
            if quantity not in quantities.names(name):
                raise ValueError(
                    f"unknown constraint quantity {quantity!r} for space {name!r}; "
                    f"choose from: {', '.join(quantities.names(name))}"
                )
            if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"min", "max"}:
                raise ValueError(
                    f"constraint on {quantity!r} must be a mapping with 'min' and/or 'max', "
                    f"got {bounds!r}"
                )
            low = float(bounds.get("min", -math.inf))
            high = float(bounds.get("max", math.inf))
            if math.isnan(low) or math.isnan(high) or low > high:
                raise ValueError(f"constraint on {quantity!r} has min > max: {bounds!r}")
            self.bounds[quantity] = (low, high)
            self.quantities[quantity] = quantities.make(space, quantity, options)
        self.space = space

    def values(self, config: Mapping[str, Any]) -> dict[str, float]:
        """The constrained quantities of ``config``."""
        return {q: fn(config) for q, fn in self.quantities.items()}

    def __call__(self, config: Mapping[str, Any]) -> bool:
        for quantity, (low, high) in self.bounds.items():
            if not low <= self.quantities[quantity](config) <= high:
                return False
        return True

    def __repr__(self) -> str:
        return f"SpaceConstraint({self.bounds!r}, {list(self.quantities.values())!r})"


def make_constraint(
    space: Any, constraint: Constraint, points_to_evaluate: Sequence[Mapping[str, Any]] = ()
) -> Callable[[Mapping[str, Any]], bool] | None:
    """The predicate of a ``constraint`` option (None: unconstrained).

    Args:
        space: the raynas search space (bounds need one that computes quantities).
        constraint: None, a callable ``config -> bool``, or bounds (see ``SpaceConstraint``).
        points_to_evaluate: configs that must satisfy the constraint (checked here, which
            builds a latency table right away for a ``latency_ms`` bound).

    Raises:
        ValueError: a constraint of another type, bad bounds, or a point that violates it.
    """
    if constraint is None or callable(constraint):
        check = constraint
    elif isinstance(constraint, Mapping):
        check = SpaceConstraint(space, constraint)
    else:
        raise ValueError(
            f"constraint must be a callable or a mapping of bounds, got {constraint!r}"
        )
    if check is not None:
        for i, point in enumerate(points_to_evaluate):
            if not check(point):
                raise ValueError(f"points_to_evaluate[{i}] violates the constraint: {point}")
    return check
