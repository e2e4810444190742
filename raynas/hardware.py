"""Hardware cost: measured latency of a model, and per-device latency lookup tables.

``measure_latency`` times a model's forward pass (eval mode, ``torch.inference_mode``,
warm-up then timed repeats with ``time.perf_counter``; CUDA is synchronised before the clock
stops). ``LatencyTable`` predicts the latency of any ``mobilenetv3`` subnet without building it:
it holds one measured row per distinct MBConv block shape the space can produce at a given
resolution and width multiplier, plus the fixed parts of the network, measured on the
machine the table is built on and cached on disk per device.

Per-layer sum vs end-to-end
---------------------------
A block timed alone, call after call, runs with its weights and buffers hot in cache and its
freed memory reused at once; inside a network it runs after other blocks, and blocks with
large activations (stage 1 at 112x112) cost much more there. Rows are therefore timed in
place: ``PROBE_SUBNETS`` deepest subnets (``probe_genotypes``; any 9 of them hold every
distinct block) are run segment by segment (``network_segments``: stem, each block,
final expand, head, which chained is exactly ``forward``), each segment timed on its own, and
a row is the median over all its occurrences.

The sum of per-segment medians is still not the median end-to-end latency (medians do not
add; on a shared CPU a long forward is preempted more often than a short segment; the
Python glue between segments; and the machine's speed drifts), so ``build`` fits a
calibration measured on the same machine and interleaved with the probes (``rounds`` passes
over probes and calibration subnets, so a change of load hits both):
``CALIBRATION_SUBNETS`` subnets (the smallest, the largest and random ones from
``CALIBRATION_SEED``) are timed end to end with ``latency_samples``, one call per sample as
``measure_latency`` does, and ``measured ~ scale * row_sum`` is fitted (``scale`` the median
ratio, clipped to ``SCALE_BOUNDS``; ``offset_ms`` is 0, kept for tables written before).
``predict`` returns the calibrated value, ``row_sum`` the plain sum of rows and fixed parts,
and ``predict(g) == scale * row_sum(g) + offset_ms``.

A table is only as good as the machine's speed during its build. When that speed drifts
while the rows keep their relative costs, ``recalibrate`` re-times the calibration subnets
close to use and ``calibrate``s with them. ``benchmarks/latency_table.py`` measures the
prediction error as built and recalibrated.

Searchers use the prediction as the mobilenetv3 quantity ``latency_ms``
(``raynas.searchers.quantities``): a bound in evolution's ``constraint``, or the predicted cost
of REINFORCE's ``reward_target``; their ``latency_table`` option holds ``build``'s options,
checked up front by ``check_build_options``.

Clocks
------
``clock="wall"`` (default) is the latency a caller sees. On a shared CPU it includes the time
the thread waits while other processes use the core, which changes with their load from one
minute to the next. ``clock="cpu"`` (``time.thread_time``, CPU with one thread only) leaves
those waits out and estimates the latency with a free core; contention for caches, memory
bandwidth and a hyper-threaded sibling still shows, so it is not always steadier.

Cache
-----
One JSON file per (device key, resolution, width_mult, batch_size, num_classes, clock) under
``cache_dir`` (default ``~/.cache/raynas/latency/``, or ``$RAYNAS_LATENCY_CACHE``), written
atomically (temp file + ``os.replace``). The device key names the hardware and the thread
count, e.g. ``cpu-amd-epyc-threads1`` or ``cuda-nvidia-h100-80gb-hbm3``. ``LatencyTable.load``
raises ``LatencyCacheError`` (a ``ValueError`` naming the file) on a missing, corrupt or
mismatched file; ``LatencyTable.build`` treats such a file as a cache miss: it logs a
warning, measures again and overwrites it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Version of the cache file layout; files of another version are rebuilt.
FORMAT_VERSION = 1
#: Environment variable that overrides the default cache folder.
CACHE_ENV = "RAYNAS_LATENCY_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/raynas/latency")
#: Names of the fixed (non-searchable) parts, in forward order.
FIXED_PARTS = ("stem", "final_expand", "head")
#: Deepest subnets whose blocks are timed in place to fill the rows (any 9 cover them all).
PROBE_SUBNETS = 18
#: Subnets timed end to end to calibrate the per-layer sum (smallest, largest, random).
CALIBRATION_SUBNETS = 8
#: Seed of the random calibration subnets (benchmarks should evaluate on other seeds).
CALIBRATION_SEED = 12345
SCALE_BOUNDS = (0.5, 2.0)
SUPPORTED_DEVICE_TYPES = ("cpu", "cuda")
#: ``wall``: time.perf_counter; ``cpu``: time.thread_time (CPU, one thread only).
CLOCKS = ("wall", "cpu")


# --------------------------------------------------------------------------- measurement
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


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
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


def _check_timing_args(
    device: Any, batch_size: Any, warmup: Any, repeats: Any, threads: Any, input_shape: Any
) -> tuple[torch.device, int, int, int, int | None, tuple[int, ...]]:
    dev = check_device(device)
    batch_size = _positive_int("batch_size", batch_size)
    warmup = _positive_int("warmup", warmup, minimum=0)
    repeats = _positive_int("repeats", repeats)
    if threads is not None:
        threads = _positive_int("threads", threads)
    shape = tuple(input_shape)
    if not shape or any(
        isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in shape
    ):
        raise ValueError(f"input_shape must be positive integers, got {input_shape!r}")
    return dev, batch_size, warmup, repeats, threads, tuple(int(s) for s in shape)


def _clock(clock: str, dev: torch.device, threads: int | None) -> Callable[[], float]:
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


def _sync(dev: torch.device) -> None:
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
    dev, batch_size, warmup, repeats, threads, shape = _check_timing_args(
        device, batch_size, warmup, repeats, threads, input_shape
    )
    now = _clock(clock, dev, threads)

    was_training = model.training
    model.to(dev).eval()
    samples: list[float] = []
    try:
        with torch_threads(threads), torch.inference_mode():
            x = torch.randn((batch_size, *shape), device=dev)
            for _ in range(warmup):
                model(x)
            _sync(dev)
            for _ in range(repeats):
                start = now()
                model(x)
                _sync(dev)
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
    for r in range(_positive_int("rounds", rounds)):
        n = _share(_positive_int("repeats", repeats), rounds, r)
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


# ------------------------------------------------------------------------------ device key
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


def device_key(device: str | torch.device = "cpu", threads: int | None = None) -> str:
    """Name of the hardware a table is valid for (used in the cache file path).

    CPU: ``cpu-<cpu model>-threads<T>`` (T = ``threads`` or torch's current thread count);
    CUDA: ``cuda-<device name>``.
    """
    dev = check_device(device)
    if dev.type == "cuda":
        return f"cuda-{_slug(torch.cuda.get_device_name(dev))}"
    t = torch.get_num_threads() if threads is None else _positive_int("threads", threads)
    return f"cpu-{_slug(_cpu_model())}-threads{t}"


def default_cache_dir() -> Path:
    """``$RAYNAS_LATENCY_CACHE`` when set, else ``~/.cache/raynas/latency``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()


# --------------------------------------------------------------------------- table rows
def block_key(spec: Any) -> str:
    """Row key of an MBConv block (a ``BlockSpec`` or its dict): every shape field.

    ``stage`` and ``index`` are left out: two blocks of equal shape share a row.
    """
    # ``vars``, not ``asdict``: asdict deep-copies and was 90% of a table prediction's time.
    s = spec if isinstance(spec, dict) else vars(spec)
    return (
        f"k{s['kernel']}-e{s['expand']}-in{s['in_channels']}-mid{s['mid_channels']}"
        f"-out{s['out_channels']}-s{s['stride']}-r{s['in_resolution']}-{s['activation']}"
        f"-se{int(s['se'])}-res{int(s['residual'])}"
    )


def distinct_block_specs(resolution: int, width_mult: float) -> list[Any]:
    """Every distinct searchable MBConv block shape of ``mobilenetv3``, one per row key.

    Within a stage the first block has the stage's stride and the previous stage's width as
    input, and blocks 2..4 share one shape (stride 1, equal widths); so the distinct shapes
    are stage (5) x position kind (2) x kernel (3) x expand (3) = 90 (fewer if shapes
    coincide). The fixed first block (stage 0) belongs to the ``stem`` part.
    """
    from raynas.nn.mobilenetv3 import block_specs
    from search_spaces.mobilenetv3 import EXPANDS, KERNELS, MAX_DEPTH, NUM_STAGES

    found: dict[str, Any] = {}
    for kernel in KERNELS:
        for expand in EXPANDS:
            stages = [((kernel, expand),) * MAX_DEPTH] * NUM_STAGES
            for spec in block_specs(stages, width_mult=width_mult, resolution=resolution):
                if spec.stage > 0 and spec.index <= 2:
                    found.setdefault(block_key(spec), spec)
    return list(found.values())


def network_segments(net: nn.Module, resolution: int) -> list[tuple[str, nn.Module]]:
    """A ``MobileNetV3Network`` cut into its table parts: (row key or fixed part, module).

    Applying the modules in order is exactly ``net.forward``: ``stem`` (stem conv + fixed
    first block), one MBConv block per searchable block, ``final_expand``, ``head`` (pooling
    + feature mix + flatten + classifier). Row keys use the input ``resolution`` (a block's
    own ``spec`` assumes 224).
    """
    res = (resolution - 1) // 2 + 1  # after the stride-2 stem
    parts: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(net.first_conv, net.blocks[0]))]
    res = (res - 1) // net.blocks[0].spec.stride + 1
    for block in net.blocks[1:]:
        parts.append((block_key(dataclasses.replace(block.spec, in_resolution=res)), block))
        res = (res - 1) // block.spec.stride + 1
    head = nn.Sequential(net.pool, net.feature_mix, nn.Flatten(1), net.classifier)
    return [*parts, ("final_expand", net.final_expand), ("head", head)]


def segment_samples(
    segments: Sequence[nn.Module],
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
    clock: str = "wall",
) -> list[list[float]]:
    """Per-call latency (ms) of every segment of a chain, timed in place in the chain.

    Each of the ``repeats`` forward passes feeds the input through the segments in order and
    times every segment on its own (CUDA synchronised after each), so a segment is timed
    with the caches and memory state that the preceding segments leave, as in the network.

    Returns:
        For each segment, its ``repeats`` latencies.
    """
    dev, batch_size, warmup, repeats, threads, shape = _check_timing_args(
        device, batch_size, warmup, repeats, threads, input_shape
    )
    now = _clock(clock, dev, threads)
    modes = [m.training for m in segments]
    for m in segments:
        m.to(dev).eval()
    times: list[list[float]] = [[] for _ in segments]
    try:
        with torch_threads(threads), torch.inference_mode():
            x = torch.randn((batch_size, *shape), device=dev)
            for _ in range(warmup):
                h = x
                for m in segments:
                    h = m(h)
            _sync(dev)
            for _ in range(repeats):
                h = x
                for i, m in enumerate(segments):
                    start = now()
                    h = m(h)
                    _sync(dev)
                    times[i].append((now() - start) * 1e3)
    finally:
        for m, mode in zip(segments, modes, strict=True):
            m.train(mode)
    return times


def probe_genotypes(n: int) -> list[Any]:
    """``n`` deepest subnets that together contain every distinct block row (``n >= 9``).

    Probe ``p`` gives the first block of stage ``s`` the (kernel, expand) pair number
    ``(p + s) % 9`` and its blocks 2..4 the pairs ``(3p + j + s) % 9``, j = 0..2; any 9
    consecutive probes cover all 9 pairs in both position kinds of every stage.
    """
    from search_spaces.mobilenetv3 import (
        EXPANDS,
        KERNELS,
        MAX_DEPTH,
        NUM_STAGES,
        MobileNetV3Genotype,
    )

    pairs = [(k, e) for k in KERNELS for e in EXPANDS]
    m = len(pairs)
    out = []
    for p in range(n):
        stages = tuple(
            (pairs[(p + s) % m], *(pairs[(3 * p + j + s) % m] for j in range(MAX_DEPTH - 1)))
            for s in range(NUM_STAGES)
        )
        out.append(MobileNetV3Genotype((MAX_DEPTH,) * NUM_STAGES, stages))
    return out


# ------------------------------------------------------------------------------- the table
class LatencyCacheError(ValueError):
    """A latency cache file that is missing, unreadable, corrupt or for another setting."""


def _resolve_space(space: Any) -> Any:
    from search_spaces.mobilenetv3 import MobileNetV3Space

    if isinstance(space, str):
        if space != MobileNetV3Space.name:
            raise ValueError(f"latency tables support the 'mobilenetv3' space only, got {space!r}")
        return MobileNetV3Space()
    if getattr(space, "name", None) != MobileNetV3Space.name:
        raise ValueError(
            f"latency tables support the 'mobilenetv3' space only, got "
            f"{getattr(space, 'name', space)!r}"
        )
    return space


def _check_width_mult(width_mult: Any) -> float:
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float):
        raise ValueError(f"width_mult must be a number > 0, got {width_mult!r}")
    if not (math.isfinite(width_mult) and width_mult > 0):
        raise ValueError(f"width_mult must be a number > 0, got {width_mult!r}")
    return float(width_mult)


def cache_path(
    cache_dir: str | Path | None,
    device_name: str,
    resolution: int,
    width_mult: float,
    batch_size: int,
    num_classes: int = 10,
    clock: str = "wall",
) -> Path:
    """``<cache_dir>/<device>/mobilenetv3-r<res>-w<width>-b<batch>-c<classes>-<clock>.json``."""
    root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; choose one of: {', '.join(CLOCKS)}")
    name = f"mobilenetv3-r{resolution}-w{width_mult:g}-b{batch_size}-c{num_classes}-{clock}.json"
    return root / _slug(device_name) / name


def _atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fit_calibration(sums: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """``measured ~ scale * sum``: ``scale`` is the median of the ratios, offset 0.

    A proportional fit, not a line: what changes between the rows' build and later use is
    mostly the speed of the machine (a factor), and with a handful of noisy subnets a fitted
    offset swings widely (measured here: 8 calibration subnets gave scale 1.61 with offset
    -12.4 ms and a median error of 10.7% on 30 held-out subnets; on another run the line
    gave 6.7% and the median ratio 5.4%). The median keeps one disturbed calibration subnet
    from moving the fit.
    """
    if not sums:
        return 1.0, 0.0
    x = np.asarray(sums, dtype=float)
    y = np.asarray(measured, dtype=float)
    lo, hi = SCALE_BOUNDS
    scale = float(np.median(y / x))
    return min(max(scale, lo), hi), 0.0


@dataclass
class LatencyTable:
    """Per-device latency lookup table of the ``mobilenetv3`` space.

    Build with ``LatencyTable.build`` (measures, or reuses the cache) or read with
    ``LatencyTable.load``; then ``predict(genotype)`` gives milliseconds without building
    the network.

    Attributes:
        device: device key the rows were measured on (see ``device_key``).
        resolution: input image size.
        width_mult: channel multiplier.
        batch_size: samples per forward pass.
        num_classes: classifier outputs (only the ``head`` row depends on it).
        rows: block row key (``block_key``) -> latency of that block alone.
        fixed: ``stem`` (stem conv + fixed first block), ``final_expand`` and ``head``
            (pooling + feature mix + classifier) -> latency.
        clock: ``"wall"`` or ``"cpu"``, the clock of every timing (see ``measure_latency``).
        scale: calibration factor applied to the row sum.
        offset_ms: calibration offset added after scaling.
        calibration: the calibration subnets (``arch``, ``row_sum_ms``, ``measured_ms``).
        meta: how the table was made (torch version, threads, repeats, build time, ...).
        path: the cache file, when there is one.
        from_cache: True when read from disk rather than measured now.
    """

    device: str
    resolution: int
    width_mult: float
    batch_size: int
    num_classes: int
    rows: dict[str, LatencyStats]
    fixed: dict[str, LatencyStats]
    clock: str = "wall"
    scale: float = 1.0
    offset_ms: float = 0.0
    calibration: list[dict[str, Any]] | None = None
    meta: dict[str, Any] | None = None
    path: Path | None = None
    from_cache: bool = False

    # ---------------------------------------------------------------------------- predict
    def _genotype(self, genotype: Any) -> Any:
        from search_spaces.mobilenetv3 import MobileNetV3Genotype, str_to_genotype

        if isinstance(genotype, str):
            return str_to_genotype(genotype)
        if not isinstance(genotype, MobileNetV3Genotype):
            raise ValueError(f"expected a mobilenetv3 genotype or its string, got {genotype!r}")
        return genotype

    def breakdown(self, genotype: Any) -> list[tuple[str, float]]:
        """(row key or fixed part name, median ms) for every part of the subnet, in order."""
        from raynas.nn.mobilenetv3 import block_specs

        g = self._genotype(genotype)
        parts = [("stem", self.fixed["stem"].median_ms)]
        for spec in block_specs(g.blocks, self.width_mult, self.resolution)[1:]:
            key = block_key(spec)
            if key not in self.rows:
                raise ValueError(
                    f"latency table {self.path or self.device} has no row {key!r}; it was "
                    f"built for another resolution/width_mult, rebuild it"
                )
            parts.append((key, self.rows[key].median_ms))
        parts.append(("final_expand", self.fixed["final_expand"].median_ms))
        parts.append(("head", self.fixed["head"].median_ms))
        return parts

    def row_sum(self, genotype: Any) -> float:
        """Plain sum of the subnet's block rows and the fixed parts (ms, uncalibrated)."""
        return float(sum(ms for _, ms in self.breakdown(genotype)))

    def predict(self, genotype: Any) -> float:
        """Predicted end-to-end median latency (ms): ``scale * row_sum + offset_ms``.

        Args:
            genotype: a ``MobileNetV3Genotype`` or its canonical string.
        """
        return self.scale * self.row_sum(genotype) + self.offset_ms

    def calibrate(self, measurements: Sequence[tuple[Any, float]]) -> LatencyTable:
        """A copy whose ``scale``/``offset_ms`` are fitted to measured subnets.

        ``build`` calibrates with subnets timed while it measured; on a machine whose load has
        changed since, time a few subnets now (e.g. ``calibration_genotypes``) and calibrate
        again: the rows keep their relative costs, the fit follows the current level.

        Args:
            measurements: (genotype or its string, measured median ms) pairs.
        """
        from search_spaces.mobilenetv3 import genotype_to_str

        cal = [
            {
                "arch": genotype_to_str(self._genotype(g)),
                "row_sum_ms": self.row_sum(g),
                "measured_ms": float(ms),
            }
            for g, ms in measurements
        ]
        scale, offset = _fit_calibration(
            [c["row_sum_ms"] for c in cal], [c["measured_ms"] for c in cal]
        )
        return dataclasses.replace(self, scale=scale, offset_ms=offset, calibration=cal)

    def recalibrate(
        self,
        device: str = "cpu",
        threads: int | None = None,
        subnets: int = CALIBRATION_SUBNETS,
        repeats: int = 30,
        rounds: int = 5,
    ) -> LatencyTable:
        """A copy calibrated to the machine's speed now: times ``calibration_genotypes`` end
        to end (``repeats`` calls each, in ``rounds`` interleaved passes) and ``calibrate``s.

        Seconds on a CPU (8 subnets x 30 calls at ~30 ms); the rows are not measured again.

        Args:
            device: where to time (the device the table was built for).
            threads: torch threads; the build's (``meta["threads"]``) when None.
            subnets: calibration subnets (>= 1).
            repeats: timed calls per subnet.
            rounds: interleaved passes.
        """
        from search_spaces.mobilenetv3 import MobileNetV3Space

        subnets = _positive_int("subnets", subnets)  # repeats/rounds: checked by the helper
        if threads is None:
            threads = (self.meta or {}).get("threads")
        space = MobileNetV3Space(width_mult=self.width_mult, resolution=self.resolution)
        genotypes = calibration_genotypes(space, subnets)
        samples = interleaved_latency_samples(
            [
                space.build(g, num_classes=self.num_classes, width_mult=self.width_mult)
                for g in genotypes
            ],
            (3, self.resolution, self.resolution),
            device,
            self.batch_size,
            repeats,
            rounds,
            threads,
            self.clock,
        )
        return self.calibrate(
            [(g, float(np.median(t))) for g, t in zip(genotypes, samples, strict=True)]
        )

    # ---------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "space": "mobilenetv3",
            "device": self.device,
            "resolution": self.resolution,
            "width_mult": self.width_mult,
            "batch_size": self.batch_size,
            "num_classes": self.num_classes,
            "clock": self.clock,
            "scale": self.scale,
            "offset_ms": self.offset_ms,
            "fixed": {k: v.to_dict() for k, v in self.fixed.items()},
            "rows": {k: v.to_dict() for k, v in self.rows.items()},
            "calibration": self.calibration or [],
            "meta": self.meta or {},
        }

    @classmethod
    def read(cls, path: str | Path) -> LatencyTable:
        """Read a cache file; ``LatencyCacheError`` naming it when missing or corrupt."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LatencyCacheError(f"no latency table at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LatencyCacheError(f"corrupt latency table {path}: {e}") from None
        try:
            if data.get("format") != FORMAT_VERSION or data.get("space") != "mobilenetv3":
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
            table = cls(
                device=str(data["device"]),
                resolution=int(data["resolution"]),
                width_mult=float(data["width_mult"]),
                batch_size=int(data["batch_size"]),
                num_classes=int(data["num_classes"]),
                rows={k: LatencyStats.from_dict(v) for k, v in data["rows"].items()},
                fixed={k: LatencyStats.from_dict(data["fixed"][k]) for k in FIXED_PARTS},
                clock=str(data["clock"]),
                scale=float(data["scale"]),
                offset_ms=float(data["offset_ms"]),
                calibration=list(data.get("calibration", [])),
                meta=dict(data.get("meta", {})),
                path=path,
                from_cache=True,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise LatencyCacheError(f"corrupt latency table {path}: {e!r}") from None
        return table

    @classmethod
    def load(
        cls,
        device: str = "cpu",
        resolution: int = 224,
        width_mult: float = 1.0,
        batch_size: int = 1,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        num_classes: int = 10,
        device_name: str | None = None,
        clock: str = "wall",
    ) -> LatencyTable:
        """Read the cached table of this setting without measuring anything.

        Args: as ``build``.

        Raises:
            LatencyCacheError: no cache file, or a corrupt or mismatched one (names the file).
            ValueError: a bad argument.
        """
        resolution = _positive_int("resolution", resolution)
        width_mult = _check_width_mult(width_mult)
        batch_size = _positive_int("batch_size", batch_size)
        num_classes = _positive_int("num_classes", num_classes)
        name = device_name or device_key(device, threads)
        path = cache_path(cache_dir, name, resolution, width_mult, batch_size, num_classes, clock)
        table = cls.read(path)
        expected = (name, resolution, width_mult, batch_size, num_classes, clock)
        got = (
            table.device,
            table.resolution,
            table.width_mult,
            table.batch_size,
            table.num_classes,
            table.clock,
        )
        if got != expected:
            raise LatencyCacheError(
                f"latency table {path} is for (device, resolution, width_mult, batch_size, "
                f"num_classes, clock) = {got}, expected {expected}"
            )
        return table

    @classmethod
    def build(
        cls,
        space: Any = "mobilenetv3",
        device: str = "cpu",
        resolution: int | None = None,
        width_mult: float | None = None,
        batch_size: int = 1,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        *,
        num_classes: int = 10,
        probes: int = PROBE_SUBNETS,
        warmup: int = 3,
        repeats: int = 60,
        rounds: int = 20,
        calibration_subnets: int = CALIBRATION_SUBNETS,
        calibration_repeats: int = 60,
        clock: str = "wall",
        rebuild: bool = False,
        device_name: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> LatencyTable:
        """The table of this setting: from the cache when there, else measured and cached.

        Rows are timed in place inside ``probes`` deepest subnets (``probe_genotypes``) that
        together hold every distinct block; a row's latency is the median over all its
        occurrences and passes. Measuring runs ``rounds`` passes over the probes and the
        calibration subnets, each pass taking its share of the passes, so slow drifts of a
        shared machine's load hit rows and calibration alike.

        The defaults (20 rounds, 60 calls per probe and per calibration subnet; about 90 s at
        resolution 224 on one CPU thread) come from ``benchmarks/latency_table.py`` on this
        project's 2-core VM: three builds predicted 30 held-out subnets with median errors of
        5.9-8.6% (recalibrated at measurement time); with 10 rounds x 30 calls four builds
        gave 5.7-15.4%, the rows themselves being too noisy.

        Args:
            space: a ``MobileNetV3Space`` or ``"mobilenetv3"``.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``.
            resolution: input image size; the space's when None.
            width_mult: channel multiplier; the space's when None.
            batch_size: samples per forward pass.
            threads: torch threads while measuring (CPU); part of the device key. None uses
                (and records) torch's current thread count.
            cache_dir: cache folder; ``default_cache_dir()`` when None.
            num_classes: classifier outputs.
            probes: probe subnets (at least 9, so that every row is covered).
            warmup: untimed forward passes of a network before its first timing (at most 1
                in later rounds).
            repeats: timed forward passes per probe subnet, over all rounds.
            rounds: passes over the probe and calibration subnets.
            calibration_subnets: subnets timed end to end (one call per sample, as
                ``measure_latency`` does by default) to fit ``scale``/``offset_ms``; 0: no
                calibration, ``predict == row_sum``.
            calibration_repeats: timed calls per calibration subnet, over all rounds.
            clock: ``"wall"`` or ``"cpu"`` (see ``measure_latency``); part of the cache key.
            rebuild: measure again even when a valid cache file exists.
            device_name: override the device key (e.g. a cluster node type).
            progress: called with a short line after each round.

        Returns:
            The table; ``from_cache`` says whether it was read from disk.

        Raises:
            ValueError: unknown device, a space other than mobilenetv3, or a bad size.
        """
        space = _resolve_space(space)
        dev = check_device(device)
        resolution = _positive_int(
            "resolution", space.resolution if resolution is None else resolution
        )
        width_mult = _check_width_mult(space.width_mult if width_mult is None else width_mult)
        batch_size = _positive_int("batch_size", batch_size)
        num_classes = _positive_int("num_classes", num_classes)
        probes = _positive_int("probes", probes, minimum=9)
        warmup = _positive_int("warmup", warmup, minimum=0)
        repeats = _positive_int("repeats", repeats)
        rounds = _positive_int("rounds", rounds)
        calibration_subnets = _positive_int("calibration_subnets", calibration_subnets, 0)
        calibration_repeats = _positive_int("calibration_repeats", calibration_repeats)
        if threads is None and dev.type == "cpu":
            threads = torch.get_num_threads()
        elif threads is not None:
            threads = _positive_int("threads", threads)
        name = device_name or device_key(dev, threads)
        _clock(clock, dev, threads)
        path = cache_path(cache_dir, name, resolution, width_mult, batch_size, num_classes, clock)
        if not rebuild and path.exists():
            try:
                return cls.load(
                    dev,
                    resolution,
                    width_mult,
                    batch_size,
                    threads,
                    cache_dir,
                    num_classes,
                    name,
                    clock,
                )
            except LatencyCacheError as e:
                logger.warning("%s; measuring it again", e)

        say = progress or (lambda _line: None)
        start = time.perf_counter()
        shape = (3, resolution, resolution)

        def net(genotype: Any) -> nn.Module:
            return space.build(genotype, num_classes=num_classes, width_mult=width_mult)

        probe_segments = [network_segments(net(g), resolution) for g in probe_genotypes(probes)]
        subnets = [(g, net(g)) for g in calibration_genotypes(space, calibration_subnets)]
        samples: dict[str, list[float]] = {}
        cal_samples: list[list[float]] = [[] for _ in subnets]
        for r in range(rounds):
            w = warmup if r == 0 else min(warmup, 1)
            n_probe = _share(repeats, rounds, r)
            n_cal = _share(calibration_repeats, rounds, r)
            for segments in probe_segments if n_probe else ():
                times = segment_samples(
                    [m for _, m in segments], shape, dev, batch_size, w, n_probe, threads, clock
                )
                for (key, _), t in zip(segments, times, strict=True):
                    samples.setdefault(key, []).extend(t)
            for i, (_, model) in enumerate(subnets):
                if n_cal:
                    cal_samples[i] += latency_samples(
                        model, shape, dev, batch_size, w, n_cal, threads, clock=clock
                    )
            say(f"round {r + 1}/{rounds} done after {time.perf_counter() - start:.1f} s")

        missing = {block_key(b) for b in distinct_block_specs(resolution, width_mult)}
        missing -= set(samples)
        if missing:  # a bug in probe_genotypes, not a user error
            raise RuntimeError(f"probe subnets miss rows {sorted(missing)}")
        stats = {key: LatencyStats.from_samples(v) for key, v in samples.items()}
        table = cls(
            device=name,
            resolution=resolution,
            width_mult=width_mult,
            batch_size=batch_size,
            num_classes=num_classes,
            rows={k: v for k, v in stats.items() if k not in FIXED_PARTS},
            fixed={k: stats[k] for k in FIXED_PARTS},
            clock=clock,
        )
        table = table.calibrate(
            [(g, float(np.median(cal))) for (g, _), cal in zip(subnets, cal_samples, strict=True)]
        )
        table.meta = {
            "torch": torch.__version__,
            "threads": threads,
            "probes": probes,
            "warmup": warmup,
            "repeats": repeats,
            "rounds": rounds,
            "calibration_repeats": calibration_repeats,
            "build_s": round(time.perf_counter() - start, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "platform": platform.platform(),
        }
        _atomic_write_json(path, table.to_dict())
        table.path = path
        return table


def _share(total: int, rounds: int, r: int) -> int:
    """Samples of round ``r`` when ``total`` are split as evenly as possible over ``rounds``."""
    return total // rounds + (1 if r < total % rounds else 0)


def calibration_genotypes(space: Any, n: int) -> list[Any]:
    """``n`` subnets: the smallest, the largest, then random ones (``CALIBRATION_SEED``)."""
    from search_spaces.mobilenetv3 import (
        DEPTHS,
        EXPANDS,
        KERNELS,
        NUM_STAGES,
        MobileNetV3Genotype,
    )

    smallest = MobileNetV3Genotype(
        (min(DEPTHS),) * NUM_STAGES, (((min(KERNELS), min(EXPANDS)),) * min(DEPTHS),) * NUM_STAGES
    )
    largest = MobileNetV3Genotype(
        (max(DEPTHS),) * NUM_STAGES, (((max(KERNELS), max(EXPANDS)),) * max(DEPTHS),) * NUM_STAGES
    )
    out = [smallest, largest][:n]
    rng = np.random.default_rng(CALIBRATION_SEED)
    while len(out) < n:
        out.append(space.sample(rng))
    return out


#: Options of ``LatencyTable.build`` that a caller may set from a config file (searchers'
#: ``latency_table`` option), with their kind: "int>=N", "width", "device", "clock", "bool",
#: "path" (str or None), "name" (str or None).
BUILD_OPTIONS = {
    "device": "device",
    "resolution": "int>=1",
    "width_mult": "width",
    "batch_size": "int>=1",
    "threads": "int>=1",
    "cache_dir": "path",
    "num_classes": "int>=1",
    "probes": "int>=9",
    "warmup": "int>=0",
    "repeats": "int>=1",
    "rounds": "int>=1",
    "calibration_subnets": "int>=0",
    "calibration_repeats": "int>=1",
    "clock": "clock",
    "rebuild": "bool",
    "device_name": "name",
}


def check_build_options(options: Any) -> dict[str, Any]:
    """Validate keyword options for ``LatencyTable.build`` without measuring anything.

    Args:
        options: a mapping with keys from ``BUILD_OPTIONS`` (None values mean "default").

    Returns:
        A plain dict of the options (None values dropped).

    Raises:
        ValueError: not a mapping, an unknown key (the valid keys are listed) or a bad value
            (named).
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"latency table options must be a mapping, got {options!r}")
    out: dict[str, Any] = {}
    for key, value in options.items():
        kind = BUILD_OPTIONS.get(key)
        if kind is None:
            raise ValueError(
                f"unknown latency table option {key!r}; valid options: {', '.join(BUILD_OPTIONS)}"
            )
        if value is None:
            continue
        if kind.startswith("int>="):
            value = _positive_int(key, value, minimum=int(kind[5:]))
        elif kind == "width":
            value = _check_width_mult(value)
        elif kind == "device":
            check_device(value)
            value = str(value)
        elif kind == "clock" and value not in CLOCKS:
            raise ValueError(f"unknown clock {value!r}; choose one of: {', '.join(CLOCKS)}")
        elif kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        elif kind in ("path", "name") and not isinstance(value, str | os.PathLike):
            raise ValueError(f"{key} must be a string, got {value!r}")
        out[key] = value
    return out
