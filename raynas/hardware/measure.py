"""Latency measurement: time a model's forward pass (eval mode, warm-up, timed repeats).

``measure_latency`` returns ``LatencyStats`` over one call per sample; ``latency_samples`` and
``interleaved_latency_samples`` are its building blocks. ``clock="wall"`` (default) is the
latency a caller sees; ``clock="cpu"`` (``time.thread_time``, one thread only) leaves out the
time the thread waits while other processes use the core.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.registry import check_int

logger = logging.getLogger(__name__)

SUPPORTED_DEVICE_TYPES = ("cpu", "cuda")

#: ``wall``: time.perf_counter; ``cpu``: time.thread_time (CPU, one thread only).
CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timed repeats of one forward pass, in milliseconds.

    Attributes:
        median_ms: median latency (the number to report).
        mean_ms: mean latency.
        p10_ms: 10th percentile.
        p90_ms: 90th percentile.
        min_ms: fastest repeat.
        n: number of timed repeats.
    """

    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    n: int

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        """Summarise a non-empty list of per-call latencies (ms)."""
        if not samples_ms:
            raise ValueError("need at least one latency sample")
        arr = np.asarray(samples_ms, dtype=float)
        p10, p90 = np.percentile(arr, [10, 90])
        return cls(
            median_ms=float(np.median(arr)),
            mean_ms=float(arr.mean()),
            p10_ms=float(p10),
            p90_ms=float(p90),
            min_ms=float(arr.min()),
            n=int(arr.size),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        return cls(**{f: data[f] for f in cls.__dataclass_fields__})


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int; ValueError naming ``name`` unless it is an integer >= ``minimum``."""
    check_int(name, value, minimum)
    return int(value)


def check_device(device: str | torch.device) -> torch.device:
    """Parse a device string; ValueError naming it when unknown, unsupported or unavailable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"unknown device {device!r}; use one of: {', '.join(SUPPORTED_DEVICE_TYPES)} "
            f"(e.g. 'cuda:0')"
        ) from e
    if dev.type not in SUPPORTED_DEVICE_TYPES:
        raise ValueError(
            f"unsupported device {device!r}; use one of: {', '.join(SUPPORTED_DEVICE_TYPES)}"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)``; restore the old count after."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_timing_args(
    device: Any, batch_size: Any, warmup: Any, repeats: Any, threads: Any, input_shape: Any
) -> tuple[torch.device, int, int, int, int | None, tuple[int, ...]]:
    dev = check_device(device)
    batch_size = positive_int("batch_size", batch_size)
    warmup = positive_int("warmup", warmup, minimum=0)
    repeats = positive_int("repeats", repeats)
    if threads is not None:
        threads = positive_int("threads", threads)
    shape = tuple(input_shape)
    if not shape or any(
        isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in shape
    ):
        raise ValueError(f"input_shape must be positive integers, got {input_shape!r}")
    return dev, batch_size, warmup, repeats, threads, tuple(int(s) for s in shape)


def clock_fn(clock: str, dev: torch.device, threads: int | None) -> Callable[[], float]:
    if clock == "wall":
        return time.perf_counter
    if clock != "cpu":
        raise ValueError(f"unknown clock {clock!r}; choose one of: {', '.join(CLOCKS)}")
    # thread_time counts only the calling thread: exact for one intra-op thread on CPU.
    effective = torch.get_num_threads() if threads is None else threads
    if dev.type != "cpu" or effective != 1:
        raise ValueError(
            f"clock 'cpu' needs device 'cpu' and threads=1, got device {str(dev)!r} and "
            f"{effective} threads"
        )
    return time.thread_time


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def latency_samples(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    threads: int | None = None,
    clock: str = "wall",
) -> list[float]:
    """Per-call latencies (ms) of ``repeats`` timed samples; see ``measure_latency``."""
    dev, batch_size, warmup, repeats, threads, shape = check_timing_args(
        device, batch_size, warmup, repeats, threads, input_shape
    )
    now = clock_fn(clock, dev, threads)

    was_training = model.training
    model.to(dev).eval()
    samples: list[float] = []
    try:
        with torch_threads(threads), torch.inference_mode():
            x = torch.randn((batch_size, *shape), device=dev)
            for _ in range(warmup):
                model(x)
            sync(dev)
            for _ in range(repeats):
                start = now()
                model(x)
                sync(dev)
                samples.append((now() - start) * 1e3)
    finally:
        model.train(was_training)
    return samples


def interleaved_latency_samples(
    models: Sequence[nn.Module],
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    repeats: int = 30,
    rounds: int = 5,
    threads: int | None = None,
    clock: str = "wall",
    warmup: int = 3,
) -> list[list[float]]:
    """Per-call latencies (ms) of several models timed in ``rounds`` interleaved passes
    (``repeats`` calls per model in all; ``warmup`` untimed calls in the first pass, 1 after),
    so a drift of the machine's speed hits every model alike."""
    samples: list[list[float]] = [[] for _ in models]
    for r in range(positive_int("rounds", rounds)):
        n = share(positive_int("repeats", repeats), rounds, r)
        for i, model in enumerate(models if n else ()):
            samples[i] += latency_samples(
                model,
                input_shape,
                device,
                batch_size,
                warmup=warmup if r == 0 else min(warmup, 1),
                repeats=n,
                threads=threads,
                clock=clock,
            )
    return samples


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    threads: int | None = None,
    clock: str = "wall",
) -> LatencyStats:
    """Time ``model``'s forward pass on random input.

    The model is put in eval mode (its previous mode is restored afterwards) and moved to
    ``device`` in place, as ``Module.to`` does. After ``warmup`` untimed calls, each of the
    ``repeats`` calls is timed on its own with ``time.perf_counter`` inside
    ``torch.inference_mode``; on CUDA the device is synchronised before the clock stops.

    Args:
        model: the network.
        input_shape: shape of one input sample, without the batch dimension, e.g. (3, 224, 224).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``.
        batch_size: samples per forward pass.
        warmup: untimed calls first.
        repeats: timed calls.
        threads: torch intra-op threads during the measurement (restored after); None keeps
            the current setting.
        clock: ``"wall"`` (``time.perf_counter``, the latency) or ``"cpu"``
            (``time.thread_time``: CPU time of the calling thread, which leaves out the time
            the thread waits while other processes use the core; only with device ``cpu`` and
            ``threads=1``). On a busy shared machine ``"cpu"`` estimates the latency the
            machine would have with a free core.

    Returns:
        ``LatencyStats`` over the timed calls.

    Raises:
        ValueError: unknown or unavailable device, or a non-positive size or count.
    """
    return LatencyStats.from_samples(
        latency_samples(model, input_shape, device, batch_size, warmup, repeats, threads, clock)
    )


def share(total: int, rounds: int, r: int) -> int:
    """Samples of round ``r`` when ``total`` are split as evenly as possible over ``rounds``."""
    return total // rounds + (1 if r < total % rounds else 0)
