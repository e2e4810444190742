"""Options of a one-shot search (``DartsOptions``) and the settings one trial runs with.

``method`` picks the search (``METHODS``); the options of ``METHOD_OPTIONS`` belong to one
or two methods each, default to ``None`` and are filled with ``METHOD_DEFAULTS`` of the chosen
method; one given to another method is an error, as are DARTS' own settings (``order: 2``,
``pc_k > 1``, ``edge_norm``) with another method.

``SearchSettings.resolve`` applies a trial's ``darts.*`` Tune keys (``CONFIG_KEYS``) over the
options; ``sweep_space`` turns the ``sweep`` option into those keys as Tune grid searches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raynas import data as datamod
from raynas.registry import check_int, sweep_grid

#: One-shot methods: DARTS (with order / pc_k: DARTS-V1/V2, PC-DARTS), RSPS, GDAS, SETN, ENAS.
METHODS = ("darts", "rsps", "gdas", "setn", "enas")
#: Defaults of each method's own options (the papers' / NB201's settings).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "darts": {},
    "rsps": {"candidates": 100, "eval_batches": 1},
    "gdas": {"tau_max": 10.0, "tau_min": 0.1},
    "setn": {"candidates": 100, "eval_batches": 1},
    "enas": {
        "controller_lr": 1e-3,
        "controller_hidden": 32,
        "controller_temperature": 5.0,
        "controller_tanh": 2.5,
        "entropy_weight": 1e-4,
        "baseline_decay": 0.99,
    },
}
#: Method option -> the methods that take it.
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {}
for _method, _defaults in METHOD_DEFAULTS.items():
    for _key in _defaults:
        METHOD_OPTIONS[_key] = (*METHOD_OPTIONS.get(_key, ()), _method)

#: Prefix of the Tune config keys a darts trial reads.
CONFIG_PREFIX = "darts."
#: Settings that a trial's config may override (``darts.<name>``), and which ``sweep`` takes.
CONFIG_KEYS = ("seed", "order", "pc_k", "edge_norm")


@dataclass(frozen=True)
class DartsOptions:
    """Options of the ``darts`` trainable (validated in ``__post_init__``)."""

    dataset: str = "digits"
    root: str | None = None
    val_fraction: float | int = 0.5
    subset: float | int | None = None
    image_size: int | None = None
    epochs: int = 50
    batch_size: int = 64
    build: dict = field(default_factory=dict)
    lr: float = 0.025
    min_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_warmup_epochs: int = 0
    order: int = 1
    fd_r: float = 0.01
    pc_k: int = 1
    edge_norm: bool | None = None
    seed: int = 0
    sweep: dict | None = None
    nb201_table: str | None = None
    device: str = "auto"
    threads: int | None = None
    tensorboard: bool = True
    method: str = "darts"
    candidates: int | None = None
    eval_batches: int | None = None
    tau_max: float | None = None
    tau_min: float | None = None
    controller_lr: float | None = None
    controller_hidden: int | None = None
    controller_temperature: float | None = None
    controller_tanh: float | None = None
    entropy_weight: float | None = None
    baseline_decay: float | None = None

    def __post_init__(self) -> None:
        self._check_method()
        for key in ("epochs", "batch_size"):
            check_int(key, getattr(self, key), 1)
        check_training(
            self,
            positive=("lr", "arch_lr", "fd_r"),
            non_negative=("min_lr", "weight_decay", "arch_weight_decay"),
        )
        betas = tuple(self.arch_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"arch_betas must be two numbers in [0, 1), got {self.arch_betas!r}")
        object.__setattr__(self, "arch_betas", (float(betas[0]), float(betas[1])))
        if self.arch_warmup_epochs < 0:
            raise ValueError(f"arch_warmup_epochs must be >= 0, got {self.arch_warmup_epochs!r}")
        check_setting("order", self.order)
        check_setting("pc_k", self.pc_k)
        check_setting("seed", self.seed)
        if self.edge_norm is not None:
            check_setting("edge_norm", self.edge_norm)
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1 or null, got {self.image_size!r}")
        if self.nb201_table is not None:
            from raynas.benchmarks.nb201 import check_dataset

            check_dataset(self.nb201_table)
        if self.sweep is not None:
            sweep_space(self.sweep)

    def _check_method(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}"
            )
        for key, methods in METHOD_OPTIONS.items():
            if getattr(self, key) is not None and self.method not in methods:
                raise ValueError(
                    f"option {key} is for method {' and '.join(methods)}, not {self.method}"
                )
        for key, value in METHOD_DEFAULTS[self.method].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        for key in ("candidates", "eval_batches", "controller_hidden"):
            if getattr(self, key) is not None:
                check_int(key, getattr(self, key), 1)
        for key in ("tau_max", "tau_min", "controller_lr", "controller_temperature"):
            value = getattr(self, key)
            if value is not None and not (_is_number(value) and value > 0):
                raise ValueError(f"{key} must be a number > 0, got {value!r}")
        if self.tau_max is not None and self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) must be <= tau_max ({self.tau_max})")
        if self.controller_tanh is not None and not (
            _is_number(self.controller_tanh) and self.controller_tanh > 0
        ):
            raise ValueError(f"controller_tanh must be a number > 0, got {self.controller_tanh!r}")
        if self.entropy_weight is not None and not (
            _is_number(self.entropy_weight) and self.entropy_weight >= 0
        ):
            raise ValueError(f"entropy_weight must be a number >= 0, got {self.entropy_weight!r}")
        if self.baseline_decay is not None and not (
            _is_number(self.baseline_decay) and 0 <= self.baseline_decay < 1
        ):
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay!r}")
        if self.method != "darts":
            check_method_settings(
                self.method, {"order": self.order, "pc_k": self.pc_k, "edge_norm": self.edge_norm}
            )
            for key in (self.sweep or {}) if isinstance(self.sweep, Mapping) else ():
                if key in DARTS_SETTINGS:
                    raise ValueError(
                        f"sweep.{key} is a setting of method darts, not {self.method}"
                    )


#: Per-trial settings only the darts method takes (other values than these are an error).
DARTS_SETTINGS = {"order": 1, "pc_k": 1, "edge_norm": False}


def check_method_settings(method: str, values: Mapping[str, Any]) -> None:
    """ValueError unless ``values`` (order, pc_k, edge_norm) suit ``method``.

    Second order, partial channels and edge normalisation are DARTS / PC-DARTS settings: the
    single-path methods take none of them.
    """
    if method == "darts":
        return
    for key, plain in DARTS_SETTINGS.items():
        value = values.get(key)
        if value is not None and value != plain:
            raise ValueError(
                f"{key}={value!r} is a setting of method darts, not {method} (leave it at {plain})"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def check_training(
    options: Any, positive: Sequence[str] = (), non_negative: Sequence[str] = ()
) -> None:
    """Checks the one-shot and the supernet trainables' options share: the numbers named in
    ``positive`` (> 0) and ``non_negative`` (>= 0), SGD's ``momentum`` and ``grad_clip``, the
    ``dataset`` name and the ``device``.

    Raises:
        ValueError: naming the first bad option and its value.
    """
    for key in positive:
        if not getattr(options, key) > 0:
            raise ValueError(f"{key} must be > 0, got {getattr(options, key)!r}")
    for key in non_negative:
        if not getattr(options, key) >= 0:
            raise ValueError(f"{key} must be >= 0, got {getattr(options, key)!r}")
    if not 0 <= options.momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {options.momentum!r}")
    if options.grad_clip is not None and not options.grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0 or null, got {options.grad_clip!r}")
    if options.dataset not in datamod.NAMES:
        raise ValueError(
            f"unknown dataset {options.dataset!r}; choose one of: {', '.join(datamod.NAMES)}"
        )
    device = options.device
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


def check_setting(name: str, value: Any) -> Any:
    """Validate one per-trial setting (``seed``, ``order``, ``pc_k``, ``edge_norm``)."""
    if name == "edge_norm":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"edge_norm must be true or false, got {value!r}")
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if name == "order" and value not in (1, 2):
        raise ValueError(f"order must be 1 (first order) or 2 (second order), got {value}")
    if name == "pc_k" and value < 1:
        raise ValueError(f"pc_k must be >= 1 (1 = DARTS, no partial channels), got {value}")
    if name == "seed" and value < 0:
        raise ValueError(f"seed must be >= 0, got {value}")
    return value


def sweep_space(sweep: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    """Tune grid searches over ``darts.<key>`` for the settings in ``sweep``.

    Raises:
        ValueError: an unknown key, an empty list, or an invalid value.
    """
    return sweep_grid(sweep, CONFIG_PREFIX, CONFIG_KEYS, check_setting)


@dataclass(frozen=True)
class SearchSettings:
    """What distinguishes one search (trial) from another of the same experiment."""

    seed: int = 0
    order: int = 1
    pc_k: int = 1
    edge_norm: bool = False

    @classmethod
    def resolve(cls, options: DartsOptions, config: Mapping[str, Any] | None = None):
        """Options, overridden by the ``darts.*`` keys of a Tune config.

        Raises:
            ValueError: an unknown ``darts.*`` key or an invalid value.
        """
        config = config or {}
        values: dict[str, Any] = {
            "seed": options.seed,
            "order": options.order,
            "pc_k": options.pc_k,
            "edge_norm": options.edge_norm,
        }
        for key, value in config.items():
            if not str(key).startswith(CONFIG_PREFIX):
                continue  # the space's architecture keys: not used by a search
            name = str(key)[len(CONFIG_PREFIX) :]
            if name not in CONFIG_KEYS:
                raise ValueError(
                    f"unknown config key {key!r} for trainable 'darts'; valid keys: "
                    f"{', '.join(CONFIG_PREFIX + k for k in CONFIG_KEYS)}"
                )
            values[name] = check_setting(name, value)
        missing = [k for k in (options.sweep or {}) if CONFIG_PREFIX + k not in config]
        if missing:
            raise ValueError(
                f"option sweep lists {', '.join(missing)} but the trial config has no "
                f"{', '.join(CONFIG_PREFIX + k for k in missing)}: the experiment must add the "
                "trainable's param_space to the Tuner's param_space"
            )
        if values["edge_norm"] is None:
            values["edge_norm"] = values["pc_k"] > 1
        check_method_settings(options.method, values)
        return cls(**values)
