"""``proxy`` trainable: score an untrained architecture with zero-cost proxies on one batch.

Per trial: decode the config, build the network (weights from ``seed``), score it with each
requested proxy of ``raynas.estimators.zero_cost`` on one fixed batch of training images, and
report once: ``score_<proxy>`` for each proxy, ``arch``, ``params_m``, ``flops_m`` (MACs of one
input), ``cost_s`` (wall seconds spent scoring), ``epoch`` = 1 and, for the nb201 space,
``table_val_acc``/``table_test_acc`` from the shipped NAS-Bench-201 table (for analysis only;
a training-free search should not select on them).

Degenerate architectures (e.g. an NB201 cell whose paths are all ``none``) can make a proxy
non-finite. ``nan`` is reported as ``-inf`` (worst under "higher is better", and usable by
every searcher), ``-inf``/``inf`` as they are, and the raw values are listed in the metric
``nonfinite`` (``"jacov=nan"``; empty when all scores are finite).

The batch (``batch_size`` images drawn without replacement from the training split with a
generator seeded by ``seed``, normalised, not augmented) is loaded once per process.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from raynas import data as datamod
from raynas.estimators import zero_cost
from raynas.estimators.batch import load_batch as load_batch
from raynas.registry import check_int
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)


def _check_options(
    space: SearchSpace,
    proxies: Sequence[str],
    dataset: str,
    batch_size: int,
    seed: int,
    build: dict,
    table_dataset: str | None,
    device: str,
    threads: int | None,
) -> tuple[str, ...]:
    if isinstance(proxies, str):
        proxies = (proxies,)
    proxies = tuple(proxies)
    if not proxies:
        raise ValueError("proxies must name at least one proxy, got an empty list")
    for name in proxies:
        zero_cost.check_name(name)
    if len(set(proxies)) != len(proxies):
        raise ValueError(f"proxies must not repeat a name, got {list(proxies)}")
    if dataset not in datamod.NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of: {', '.join(datamod.NAMES)}")
    check_int("batch_size", batch_size, 2)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not isinstance(build, dict):
        raise ValueError(f"build must be a mapping of build options, got {build!r}")
    if table_dataset is not None:
        if space.name != "nb201":
            raise ValueError(
                f"table_dataset needs the nb201 space, got {space.name!r}; set it to null"
            )
        from raynas.benchmarks import nb201

        nb201.check_dataset(table_dataset)
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be >= 1 or null, got {threads!r}")
    return proxies


def _finite_or_worst(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def make(
    space: SearchSpace,
    proxies: Sequence[str] = ("naswot",),
    dataset: str = "cifar10",
    root: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
    build: dict | None = None,
    table_dataset: str | None = "cifar10",
    device: str = "auto",
    threads: int | None = None,
) -> Callable[[dict], None]:
    """The ``proxy`` trainable for ``space``.

    Args:
        space: any search space.
        proxies: names from ``raynas.estimators.zero_cost.names()``.
        dataset: dataset of the scoring batch (``raynas.data`` names).
        root: data folder for CIFAR; ``None`` = ``$RAYNAS_DATA``.
        batch_size: images in the scoring batch (>= 2).
        seed: seeds the weights of the network and the choice of the batch.
        build: macro options for ``space.build`` (e.g. ``{"C": 16, "N": 5}``).
        table_dataset: for the nb201 space, also report ``table_val_acc``/``table_test_acc``
            on this NB201 dataset; ``None`` to skip. Defaults to ``"cifar10"`` and is
            ignored (not an error) for other spaces when left at the default.
        device: ``cpu``, ``cuda[:N]`` or ``auto``.
        threads: torch CPU threads inside the trial (``None`` = leave as Ray set it).

    Raises:
        ValueError: an option with a bad value, named in the message.
    """
    if table_dataset == "cifar10" and space.name != "nb201":
        table_dataset = None  # the default only applies where a table exists
    build = {} if build is None else build
    names = _check_options(
        space, proxies, dataset, batch_size, seed, build, table_dataset, device, threads
    )

    def proxy_trainable(config: dict) -> None:
        from ray import tune

        if threads:
            torch.set_num_threads(threads)
        metrics = evaluate(
            space, config, names, dataset, root, batch_size, seed, build, table_dataset, device
        )
        tune.report(metrics)

    return proxy_trainable


def evaluate(
    space: SearchSpace,
    config: dict,
    proxies: Sequence[str] = ("naswot",),
    dataset: str = "cifar10",
    root: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
    build: dict | None = None,
    table_dataset: str | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The metrics the ``proxy`` trainable reports for ``config`` (options as ``make``)."""
    genotype = space.decode(config)
    arch = space.to_str(genotype)
    inputs, targets, num_classes, in_channels = load_batch(dataset, root, seed, batch_size)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    model = space.build(
        genotype, num_classes=num_classes, in_channels=in_channels, **(build or {})
    ).to(device)
    inputs, targets = inputs.to(device), targets.to(device)
    metrics: dict[str, Any] = {"epoch": 1, "arch": arch}
    nonfinite = []
    start = time.perf_counter()
    for name in proxies:
        value = zero_cost.compute(name, model, inputs, targets)
        if not math.isfinite(value):
            nonfinite.append(f"{name}={value}")
        metrics[f"score_{name}"] = _finite_or_worst(value)
    metrics["cost_s"] = time.perf_counter() - start
    if nonfinite:
        logger.info("%s: non-finite proxy scores %s", arch, ", ".join(nonfinite))
    metrics["nonfinite"] = ",".join(nonfinite)
    metrics["params_m"] = zero_cost.compute("params", model, inputs, targets) / 1e6
    metrics["flops_m"] = zero_cost.compute("flops", model, inputs, targets) / 1e6
    if table_dataset is not None:
        from raynas.benchmarks import nb201

        entry = nb201.table().lookup(arch, table_dataset)
        metrics["table_val_acc"] = entry.val_acc
        metrics["table_test_acc"] = entry.test_acc
    return metrics
