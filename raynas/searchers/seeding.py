"""Proxy-seeded search: start a searcher from the top-k of a zero-cost-scored random pool.

Before its first suggestion, a searcher with ``proxy_seed`` draws ``pool`` distinct random
architectures (with its own RNG, so the pool depends on the searcher's ``seed``; configs that
violate the searcher's constraint are skipped), builds each one untrained with
``space.build(genotype, num_classes, in_channels, **build)`` (weights from ``torch.manual_seed
(seed)``, as the ``proxy`` trainable does, so the scores equal its ``score_<proxy>``), scores
it with ``raynas.estimators.zero_cost.compute(proxy, ...)`` on one fixed batch of
``batch_size`` training images of ``dataset`` (``raynas.estimators.batch.load_batch``), and
suggests the ``top_k`` best (highest score first; ties keep pool order; non-finite scores,
i.e. degenerate networks, are never seeds) before anything else, after the user's own
``points_to_evaluate``. Scoring runs in the process that runs the searcher (the Tune driver),
on ``device``, inside ``torch.random.fork_rng`` so torch's global RNG is left as it was.

The scored pool (configs, architectures, scores, seconds spent) is part of the searcher's
saved state, so ``Tuner.restore`` never scores it again.

Option (a mapping, e.g. in an experiment file)::

    proxy_seed: {proxy: naswot, pool: 100, top_k: 10, dataset: cifar10, root: null,
                 batch_size: 64, build: {C: 16, N: 5}, seed: 0, device: cpu, threads: null}

``root: null`` reads ``$RAYNAS_DATA`` for CIFAR; ``threads`` sets torch's CPU threads while
scoring (restored after); ``device`` is ``cpu``, ``cuda[:N]`` or ``auto``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from raynas.registry import check_int, options_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxySeed:
    """Validated ``proxy_seed`` option (see the module docstring)."""

    proxy: str = "naswot"
    pool: int = 100
    top_k: int = 10
    dataset: str = "cifar10"
    root: str | None = None
    batch_size: int = 64
    build: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        from raynas import data as datamod
        from raynas.estimators import zero_cost

        zero_cost.check_name(self.proxy)
        check_int("proxy_seed.pool", self.pool, 1)
        check_int("proxy_seed.top_k", self.top_k, 1)
        if self.top_k > self.pool:
            raise ValueError(f"proxy_seed.top_k must be <= pool ({self.pool}), got {self.top_k}")
        if self.dataset not in datamod.NAMES:
            raise ValueError(
                f"unknown proxy_seed.dataset {self.dataset!r}; choose one of: "
                f"{', '.join(datamod.NAMES)}"
            )
        if self.root is not None and not isinstance(self.root, str):
            raise ValueError(f"proxy_seed.root must be a path or null, got {self.root!r}")
        check_int("proxy_seed.batch_size", self.batch_size, 2)
        if not isinstance(self.build, Mapping):
            raise ValueError(
                f"proxy_seed.build must be a mapping of build options, got {self.build!r}"
            )
        check_int("proxy_seed.seed", self.seed, 0)
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu") or self.device.startswith("cuda")
        ):
            raise ValueError(
                f"proxy_seed.device must be auto, cpu or cuda[:N], got {self.device!r}"
            )
        if self.threads is not None:
            check_int("proxy_seed.threads", self.threads, 1)
        object.__setattr__(self, "build", dict(self.build))

    @classmethod
    def parse(cls, spec: Any) -> ProxySeed | None:
        """``None`` -> None; a ``ProxySeed`` as it is; a mapping -> validated options.

        Raises:
            ValueError: not a mapping, an unknown key (valid keys listed), or a bad value.
        """
        return options_from(cls, spec, "proxy_seed")


@contextlib.contextmanager
def scoring(device: str, threads: int | None) -> Iterator[str]:
    """Score zero-cost proxies on ``device`` (``auto``: CUDA when there is one), with torch on
    ``threads`` intra-op threads if given, inside a forked RNG so the caller's random streams
    are untouched; yields the device name. The thread setting is restored afterwards."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    before = torch.get_num_threads()
    cuda = [torch.device(device)] if device.startswith("cuda") else []
    try:
        if threads:
            torch.set_num_threads(threads)
        with torch.random.fork_rng(devices=cuda):
            yield device
    finally:
        torch.set_num_threads(before)


def score_config(space: Any, config: Mapping[str, Any], options: ProxySeed, batch: tuple) -> float:
    """The proxy score of one config (``nan`` reported as ``-inf``, as the proxy trainable does).

    Args:
        space: the raynas search space.
        config: a config of ``space``.
        options: the proxy options.
        batch: ``raynas.estimators.batch.load_batch(...)`` for ``options``, moved to the device.
    """
    from raynas.estimators import zero_cost

    inputs, targets, num_classes, in_channels = batch
    genotype = space.decode(config)
    torch.manual_seed(options.seed)
    model = space.build(
        genotype, num_classes=num_classes, in_channels=in_channels, **options.build
    ).to(inputs.device)
    value = zero_cost.compute(options.proxy, model, inputs, targets)
    return -math.inf if math.isnan(value) else float(value)


def score_pool(
    space: Any,
    options: ProxySeed,
    sample: Callable[[], dict],
    key: Callable[[Mapping[str, Any]], str],
    accept: Callable[[Mapping[str, Any]], bool] | None = None,
    max_draws: int | None = None,
) -> dict[str, Any]:
    """Draw ``options.pool`` distinct acceptable architectures and score each.

    Args:
        space: the raynas search space (``decode``/``build``).
        options: the ``proxy_seed`` options.
        sample: draws one random config (the searcher's RNG).
        key: architecture identity of a config (distinct keys make the pool).
        accept: configs for which it is False are skipped (a constraint).
        max_draws: stop drawing after this many configs (default ``100 * pool``); the pool is
            smaller when the (feasible) space is.

    Returns:
        ``{"configs", "archs", "scores", "cost_s", "cpu_s", "top"}``: the pool in draw order,
        its scores, the wall and process CPU seconds spent scoring (data loading included;
        CPU time leaves out waits for a busy machine) and ``top``, the pool indices of the
        ``top_k`` seeds, best first (see ``top_indices``).
    """
    from raynas.estimators.batch import load_batch

    configs, archs, seen = [], [], set()
    for _ in range(max_draws or 100 * options.pool):
        if len(configs) >= options.pool:
            break
        config = sample()
        arch = key(config)
        if arch in seen or (accept is not None and not accept(config)):
            continue
        seen.add(arch)
        configs.append(config)
        archs.append(arch)
    if len(configs) < options.pool:
        log.warning(
            "proxy_seed: only %d distinct acceptable architectures found for a pool of %d",
            len(configs),
            options.pool,
        )
    start, start_cpu = time.perf_counter(), time.process_time()
    with scoring(options.device, options.threads) as device:
        inputs, targets, num_classes, in_channels = load_batch(
            options.dataset, options.root, options.seed, options.batch_size
        )
        batch = (inputs.to(device), targets.to(device), num_classes, in_channels)
        scores = [score_config(space, c, options, batch) for c in configs]
    cost_s = time.perf_counter() - start
    cpu_s = time.process_time() - start_cpu
    top = top_indices(scores, options.top_k)
    log.info(
        "proxy_seed: scored %d architectures with %s in %.1f s; seeds: %s",
        len(configs),
        options.proxy,
        cost_s,
        ", ".join(f"{scores[i]:.4g}" for i in top),
    )
    return {
        "configs": configs,
        "archs": archs,
        "scores": scores,
        "cost_s": cost_s,
        "cpu_s": cpu_s,
        "top": top,
    }


def top_indices(scores: list[float], k: int) -> list[int]:
    """Indices of the ``k`` highest finite scores, best first (ties: lower index first)."""
    finite = [i for i, s in enumerate(scores) if math.isfinite(s)]
    if len(finite) < k:
        log.warning("proxy_seed: only %d of %d pool scores are finite", len(finite), len(scores))
    return sorted(finite, key=lambda i: (-scores[i], i))[:k]
