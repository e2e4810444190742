"""Tune trainables by name: ``make(name, space, **options)`` returns a function trainable.

Each entry is a ``make(space, **options)`` factory; options are validated before Ray starts.
``metrics(name, space, **options)`` lists the metrics a trainable reports with those options
(what an experiment's ``metric`` may name), and ``dataset(name, **options)`` the dataset and
data folder it reads, so both are checked before Ray starts.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from raynas.registry import check_options, resolve
from search_spaces.base import SearchSpace

_REGISTRY: dict[str, str] = {
    "table": "raynas.trainables.table:make",
    "train": "raynas.trainables.train:make",
    "proxy": "raynas.trainables.proxy:make",
    "darts": "raynas.trainables.darts:make",
    "oneshot": "raynas.trainables.oneshot:make",
    "curves": "raynas.trainables.curves:make",
    "supernet": "raynas.trainables.supernet:make",
    "subnet": "raynas.trainables.subnet:make",
}


#: Trainables that run a whole search inside each trial: a trial ignores its sampled cell and
#: reports the derived architecture as ``arch`` (``darts`` and its family name ``oneshot``;
#: ``supernet``: the largest subnet, whose accuracy is its ``val_acc``).
SEARCH_IN_TRIAL = frozenset({"darts", "oneshot", "supernet"})


def names() -> list[str]:
    """Registered trainable names, sorted."""
    return sorted(_REGISTRY)


def make(name: str, space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The trainable ``name`` for ``space``.

    Raises:
        ValueError: unknown trainable, unknown option, or an option with a bad value.
    """
    factory = resolve("trainable", name, _REGISTRY)
    check_options("trainable", name, factory, options, reserved=("space",))
    return factory(space, **options)


#: Keys Tune adds to every result; any trainable's ``metric`` may name one of them.
TUNE_METRICS = ("training_iteration", "time_total_s", "time_this_iter_s")

#: The dataclass holding the options of the factories that take ``**options``.
_OPTIONS: dict[str, str] = {
    "train": "raynas.trainables.train:TrainOptions",
    "darts": "raynas.oneshot.options:DartsOptions",
    "oneshot": "raynas.oneshot.options:DartsOptions",
    "supernet": "raynas.oneshot.shrinking:SupernetOptions",
}


def resolved_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with the defaults of trainable ``name``."""
    if name in _OPTIONS:
        fields = dataclasses.fields(resolve("trainable", name, _OPTIONS))
        defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    else:
        params = inspect.signature(resolve("trainable", name, _REGISTRY)).parameters
        defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
    return {**defaults, **options}


def _table(space: SearchSpace, o: dict) -> tuple[str, ...]:
    return tuple(
        "epoch epochs_trained val_acc test_acc arch arch_index params_m flops_m cost_s".split()
    )


def _train(space: SearchSpace, o: dict) -> tuple[str, ...]:
    found = tuple(
        "epoch train_loss train_acc val_loss val_acc tse tse_ema lr params_m flops_m arch "
        "cost_s".split()
    )
    found += ("test_loss", "test_acc") if o.get("eval_test") else ()
    found += ("train_images",) if o.get("subset_schedule") is not None else ()
    return found + (("latency_ms",) if o.get("latency") else ())


def _proxy(space: SearchSpace, o: dict) -> tuple[str, ...]:
    proxies = (o["proxies"],) if isinstance(o["proxies"], str) else tuple(o["proxies"])
    found = ("epoch", "arch", *(f"score_{p}" for p in proxies))
    found += ("cost_s", "nonfinite", "params_m", "flops_m")
    if o.get("table_dataset") and space.name == "nb201":
        found += ("table_val_acc", "table_test_acc")
    return found


def _darts(space: SearchSpace, o: dict) -> tuple[str, ...]:
    found = tuple(
        "epoch train_loss train_acc val_loss val_acc arch genotype alpha_entropy "
        "alpha_entropy_normal alpha_normal lr params_m peak_mem_mb cost_s seed order pc_k "
        "edge_norm".split()
    )
    cells = ("normal", "reduce") if space.name == "darts" else ("normal",)
    found += tuple(f"{key}_{c}" for c in cells[1:] for key in ("alpha_entropy", "alpha"))
    edge_norm = o.get("edge_norm")
    if edge_norm or (edge_norm is None and o.get("pc_k", 1) > 1):
        found += tuple(f"beta_{c}" for c in cells)
    if o.get("nb201_table"):
        found += ("table_val_acc", "table_test_acc")
    return found + METHOD_METRICS[o.get("method") or "darts"]


#: What each one-shot method reports besides DARTS' metrics (``raynas.oneshot.methods``).
_CANDIDATES = tuple(
    "candidates candidate_best_loss candidate_best_acc candidate_median_loss "
    "candidate_worst_loss candidate_distinct".split()
)
METHOD_METRICS: dict[str, tuple[str, ...]] = {
    "darts": (),
    "rsps": _CANDIDATES,
    "setn": _CANDIDATES,
    "gdas": ("tau",),
    "enas": ("controller_entropy", "controller_baseline", "controller_reward"),
}


def _supernet(space: SearchSpace, o: dict) -> tuple[str, ...]:
    return tuple(
        "epoch phase arch train_loss val_acc_largest val_acc_smallest val_acc_random val_acc lr "
        "params_m seed cost_s".split()
    )


def _curves(space: SearchSpace, o: dict) -> tuple[str, ...]:
    from raynas.benchmarks import curves

    return (*curves.table(o.get("path")).columns, "arch")


def _subnet(space: SearchSpace, o: dict) -> tuple[str, ...]:
    from raynas.trainables import subnet

    return subnet.metrics(space, o)


_METRICS: dict[str, Callable[[SearchSpace, dict], tuple[str, ...]]] = {
    "table": _table,
    "train": _train,
    "proxy": _proxy,
    "darts": _darts,
    "oneshot": _darts,
    "curves": _curves,
    "supernet": _supernet,
    "subnet": _subnet,
}


def metrics(name: str, space: SearchSpace, **options: Any) -> tuple[str, ...]:
    """The metrics trainable ``name`` reports with ``options`` (Tune's own keys last)."""
    own = _METRICS[name](space, resolved_options(name, options))
    return (*own, *TUNE_METRICS)


def dataset(name: str, **options: Any) -> tuple[str, str | None] | None:
    """``(dataset, root)`` that trainable ``name`` reads with ``options``; None if none."""
    o = resolved_options(name, options)
    if "dataset" not in o or name == "table":  # the table's "dataset" names a table column
        return None
    return o["dataset"], o.get("root")


def grid_size(name: str, **options: Any) -> int:
    """Trials each sample of the searcher becomes: the product of the lengths of the
    trainable's ``sweep`` lists (the darts trainable's grid of settings), else 1."""
    sweep = options.get("sweep") or {}
    size = 1
    for values in sweep.values() if isinstance(sweep, dict) else ():
        size *= max(len(values), 1) if isinstance(values, list | tuple) else 1
    return size
