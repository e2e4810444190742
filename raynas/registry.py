"""Helpers shared by the name registries (spaces, searchers, schedulers, trainables)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np


def resolve(kind: str, name: str, registry: Mapping[str, str]) -> Any:
    """Import the ``"module:attr"`` registered under ``name``; ValueError listing valid names."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(registry))}")
    module, attr = registry[name].split(":")
    return getattr(importlib.import_module(module), attr)


def check_options(
    kind: str, name: str, fn: Callable, options: Mapping[str, Any], reserved: Collection[str] = ()
) -> None:
    """ValueError naming the first option that ``fn`` does not accept (or that is reserved)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # ``fn`` validates its own keyword options
    accepted = [p for p in params if p not in ("self", *reserved)]
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"unknown option {key!r} for {kind} {name!r}; "
                f"valid options: {', '.join(accepted) or '(none)'}"
            )


def check_int(name: str, value: Any, minimum: int) -> None:
    """ValueError naming ``name`` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def is_real(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_positive(name: str, value: Any) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite number > 0."""
    if not is_real(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def options_from(cls: type, spec: Any, what: str) -> Any:
    """The dataclass ``cls`` built from the mapping ``spec`` (the ``what`` option of an
    experiment file); None stays None and an instance of ``cls`` is returned as it is.

    Raises:
        ValueError: ``spec`` is not a mapping, or has a key ``cls`` lacks (valid keys listed).
    """
    if spec is None or isinstance(spec, cls):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"{what} must be a mapping of options, got {spec!r}")
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in spec:
        if key not in valid:
            raise ValueError(f"unknown {what} option {key!r}; valid options: {', '.join(valid)}")
    return cls(**spec)


def sweep_grid(
    sweep: Mapping[str, Sequence[Any]] | None,
    prefix: str,
    keys: Collection[str],
    check: Callable[[str, Any], Any],
) -> dict[str, Any]:
    """Tune grid searches over ``<prefix><key>`` for a trainable's ``sweep`` option (e.g.
    ``{seed: [0, 1]}``), each value validated by ``check(key, value)``.

    Raises:
        ValueError: not a mapping, a key not in ``keys``, an empty list, or a bad value.
    """
    from ray import tune

    if not sweep:
        return {}
    if not isinstance(sweep, Mapping):
        raise ValueError(f"sweep must be a mapping such as {{seed: [0, 1]}}, got {sweep!r}")
    space = {}
    for key, values in sweep.items():
        if key not in keys:
            raise ValueError(f"unknown sweep key {key!r}; valid keys: {', '.join(keys)}")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"sweep.{key} must be a non-empty list, got {values!r}")
        space[prefix + key] = tune.grid_search([check(key, v) for v in values])
    return space
