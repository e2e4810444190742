"""Tune trial schedulers by name: ``make(name, **options)``.

``fifo`` (no early stopping), ``asha`` and ``median`` are Tune's own; raynas's schedulers
(learning-curve extrapolation, TSE) are added here, one module each. Metric and mode come from
the experiment (the Tuner passes them through ``set_search_properties``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

_REGISTRY: dict[str, str] = {
    "fifo": "ray.tune.schedulers:FIFOScheduler",
    "asha": "ray.tune.schedulers:ASHAScheduler",
    "median": "ray.tune.schedulers:MedianStoppingRule",
}


def names() -> list[str]:
    """Registered scheduler names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, **options: Any):
    """Build the scheduler ``name``; ValueError on an unknown name or option.

    ``metric`` and ``mode`` are not options here: the experiment sets them once for the
    searcher and the scheduler together.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown scheduler {name!r}; choose one of: {', '.join(names())}")
    module, attr = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p not in ("self", "metric", "mode")]
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"unknown option {key!r} for scheduler {name!r}; "
                f"valid options: {', '.join(accepted) or '(none)'}"
            )
    return cls(**options)
