"""Tune trial schedulers by name: ``make(name, **options)``.

``fifo`` (no early stopping), ``asha``, ``median`` and ``hyperband_for_bohb`` (alias ``bohb``:
HyperBandForBOHB, the scheduler the ``bohb`` searcher needs, made resumable in
``schedulers.bohb``) are Tune's own; raynas's schedulers (learning-curve extrapolation, TSE) are
added here, one module each. Metric and mode come from
the experiment (the Tuner passes them through ``set_search_properties``).
"""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, str] = {
    "fifo": "ray.tune.schedulers:FIFOScheduler",
    "asha": "ray.tune.schedulers:ASHAScheduler",
    "median": "ray.tune.schedulers:MedianStoppingRule",
    "hyperband_for_bohb": "schedulers.bohb:HyperBandForBOHB",
    "bohb": "schedulers.bohb:HyperBandForBOHB",
    "lce": "schedulers.lce:LCEScheduler",
    "tse": "schedulers.tse:TSEScheduler",
}


#: The schedulers the ``bohb`` searcher works with (HyperBandForBOHB reports each result's
#: budget to it and pauses trials through it), and the one it gets when none is named.
BOHB_SCHEDULERS = ("hyperband_for_bohb", "bohb")


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
