"""Tune trial schedulers by name: ``make(name, **options)``.

``fifo`` (no early stopping), ``asha`` and ``median`` are Tune's own; raynas's schedulers
(learning-curve extrapolation, TSE) are added here, one module each. Metric and mode come from
the experiment (the Tuner passes them through ``set_search_properties``).
"""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, str] = {
    "fifo": "ray.tune.schedulers:FIFOScheduler",
    "asha": "ray.tune.schedulers:ASHAScheduler",
    "median": "ray.tune.schedulers:MedianStoppingRule",
    "lce": "schedulers.lce:LCEScheduler",
    "tse": "schedulers.tse:TSEScheduler",
}


def names() -> list[str]:
    """Registered scheduler names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, **options: Any):
    """Build the scheduler ``name``; ValueError on an unknown name or option.

    ``metric`` and ``mode`` are not options here: the experiment sets them once for the
    searcher and the scheduler together.
    """
    from raynas.registry import check_options, resolve

    cls = resolve("scheduler", name, _REGISTRY)
    check_options("scheduler", name, cls, options, reserved=("metric", "mode"))
    try:
        return cls(**options)
    except AssertionError as e:  # Tune's schedulers validate some options with assert
        raise ValueError(f"invalid options {options} for scheduler {name!r}: {e}") from None
