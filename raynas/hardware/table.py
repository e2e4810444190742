"""The per-device latency lookup table of ``mobilenetv3``: prediction, calibration, cache.

See ``raynas.hardware`` for how rows are measured and calibrated. One JSON file per (device
key, resolution, width_mult, batch_size, num_classes, clock) under the cache folder, written
atomically; ``LatencyTable.load`` raises ``LatencyCacheError`` on a missing, corrupt or
mismatched file, ``LatencyTable.build`` treats such a file as a cache miss.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas import atomic
from raynas.hardware import measure
from raynas.hardware.device import default_cache_dir, device_key, slug
from raynas.hardware.measure import CLOCKS, LatencyStats, check_device, clock_fn, positive_int
from raynas.hardware.segments import (
    CALIBRATION_SUBNETS,
    FIXED_PARTS,
    PROBE_SUBNETS,
    block_key,
    calibration_genotypes,
    distinct_block_specs,
    network_segments,
    probe_genotypes,
    resolve_space,
    segment_samples,
)
from search_spaces.mobilenetv3 import (
    MobileNetV3Genotype,
    MobileNetV3Space,
    genotype_to_str,
    str_to_genotype,
)

logger = logging.getLogger(__name__)

#: Version of the cache file layout; files of another version are rebuilt.
FORMAT_VERSION = 1

SCALE_BOUNDS = (0.5, 2.0)


class LatencyCacheError(ValueError):
    """A latency cache file that is missing, unreadable, corrupt or for another setting."""


def check_width_mult(width_mult: Any) -> float:
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
    return root / slug(device_name) / name


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
        subnets = positive_int("subnets", subnets)  # repeats/rounds: checked by the helper
        if threads is None:
            threads = (self.meta or {}).get("threads")
        space = MobileNetV3Space(width_mult=self.width_mult, resolution=self.resolution)
        genotypes = calibration_genotypes(space, subnets)
        samples = measure.interleaved_latency_samples(
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
        resolution = positive_int("resolution", resolution)
        width_mult = check_width_mult(width_mult)
        batch_size = positive_int("batch_size", batch_size)
        num_classes = positive_int("num_classes", num_classes)
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
        space = resolve_space(space)
        dev = check_device(device)
        resolution = positive_int(
            "resolution", space.resolution if resolution is None else resolution
        )
        width_mult = check_width_mult(space.width_mult if width_mult is None else width_mult)
        batch_size = positive_int("batch_size", batch_size)
        num_classes = positive_int("num_classes", num_classes)
        probes = positive_int("probes", probes, minimum=9)
        warmup = positive_int("warmup", warmup, minimum=0)
        repeats = positive_int("repeats", repeats)
        rounds = positive_int("rounds", rounds)
        calibration_subnets = positive_int("calibration_subnets", calibration_subnets, 0)
        calibration_repeats = positive_int("calibration_repeats", calibration_repeats)
        if threads is None and dev.type == "cpu":
            threads = torch.get_num_threads()
        elif threads is not None:
            threads = positive_int("threads", threads)
        name = device_name or device_key(dev, threads)
        clock_fn(clock, dev, threads)
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
            n_probe = measure.share(repeats, rounds, r)
            n_cal = measure.share(calibration_repeats, rounds, r)
            for segments in probe_segments if n_probe else ():
                times = segment_samples(
                    [m for _, m in segments], shape, dev, batch_size, w, n_probe, threads, clock
                )
                for (key, _), t in zip(segments, times, strict=True):
                    samples.setdefault(key, []).extend(t)
            for i, (_, model) in enumerate(subnets):
                if n_cal:
                    cal_samples[i] += measure.latency_samples(
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
        atomic.write_json(path, table.to_dict(), fsync=True, indent=1, sort_keys=True)
        table.path = path
        return table
