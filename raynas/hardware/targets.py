"""Hardware targets: named latency tables of the ``mobilenetv3`` space (OFA's per-device search).

A target names a device and a workload: ``cpu-b1`` (CPU, batch 1, one thread), ``cpu-b64``
(CPU, batch 64, one thread), ``cuda-b64`` (the CUDA GPU of the machine, batch 64). The grammar
is ``cpu-b<batch>[-t<threads>]`` (threads default 1) and ``cuda-b<batch>``, so ``cpu-b8-t2`` is
a valid target too.

Each target's table is a ``LatencyTable`` measured on the device the target names, on the
machine that builds it, and cached there per device key (``raynas.hardware``). ``table``
reads the cached one and, when there is none, raises ``TargetTableError`` with one line that
says how to build it (``raynas latency-table <target> --resolution R --width-mult W``) or,
when tables of this target exist only at other resolutions or widths, which ones. A CUDA
target needs a CUDA GPU where its table is built and read.

How several targets map onto Tune: the ``subnet`` trainable reports ``latency_ms_<target>``
(the table's prediction) for every target it names, and a multi-objective searcher names them
as objectives, e.g. ``objectives: {val_acc: max, latency_ms_cpu-b1: min,
latency_ms_cpu-b64: min}``. ``raynas report`` prints one Pareto front per target (accuracy vs
that target's latency, over all trials) and ``--plot`` draws them side by side in one PNG.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.errors import ConfigError
from raynas.hardware.device import default_cache_dir, device_key, slug

if TYPE_CHECKING:
    from raynas.hardware.table import LatencyTable

#: Prefix of the metric that holds a target's latency: ``latency_ms_<target>``.
METRIC_PREFIX = "latency_ms_"

#: The targets this project names in its examples and benchmarks.
KNOWN = ("cpu-b1", "cpu-b64", "cuda-b64")

_NAME_RE = re.compile(r"(cpu)-b(\d+)(?:-t(\d+))?|(cuda)-b(\d+)")


class TargetTableError(ConfigError):
    """A target whose latency table is missing here (or built for another setting): a user
    error (CLI exit code 2)."""


@dataclass(frozen=True)
class Target:
    """A device and workload whose latency a table predicts.

    Attributes:
        name: the target's name (``cpu-b1``, ``cuda-b64``, ...).
        device: ``"cpu"`` or ``"cuda"``.
        batch_size: samples per forward pass.
        threads: torch CPU threads (None for CUDA).
    """

    name: str
    device: str
    batch_size: int
    threads: int | None

    @property
    def metric(self) -> str:
        """The metric that reports this target's latency (``latency_ms_<name>``)."""
        return METRIC_PREFIX + self.name

    def device_key(self) -> str:
        """The device key its table is cached under on this machine (needs the device)."""
        return device_key(self.device, self.threads)

    def build_command(self, resolution: int, width_mult: float, num_classes: int = 10) -> str:
        """The ``raynas`` command that builds this target's table for that setting."""
        cmd = f"raynas latency-table {self.name} --resolution {resolution} "
        cmd += f"--width-mult {width_mult:g}"
        return cmd + (f" --classes {num_classes}" if num_classes != 10 else "")


def parse(name: Any) -> Target:
    """The target called ``name``; ValueError naming it (and the grammar) otherwise."""
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"unknown hardware target {name!r}; use cpu-b<batch>[-t<threads>] or "
            f"cuda-b<batch>, e.g. {', '.join(KNOWN)}"
        )
    if match.group(1):
        batch, threads = int(match.group(2)), int(match.group(3) or 1)
        if batch < 1 or threads < 1:
            raise ValueError(f"hardware target {name!r} needs a batch and threads >= 1")
        return Target(name, "cpu", batch, threads)
    batch = int(match.group(5))
    if batch < 1:
        raise ValueError(f"hardware target {name!r} needs a batch >= 1")
    return Target(name, "cuda", batch, None)


def parse_all(names: Any) -> tuple[Target, ...]:
    """Targets from a name or a list of distinct names (at least one); ValueError otherwise."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable) or isinstance(names, Mapping):
        raise ValueError(f"targets must be a target name or a list of them, got {names!r}")
    found = [parse(n) for n in names]
    if not found:
        raise ValueError("targets must name at least one hardware target, got none")
    if len({t.name for t in found}) != len(found):
        raise ValueError(f"targets must be distinct, got {list(names)!r}")
    return tuple(found)


def _other_settings(target: Target, key: str, cache_dir: str | Path | None) -> list[str]:
    """Settings (``resolution R, width_mult W``) of this target's cached tables here."""
    root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    pattern = re.compile(rf"mobilenetv3-r(\d+)-w([0-9.e+-]+)-b{target.batch_size}-c\d+-wall\.json")
    found = []
    for file in sorted((root / slug(key)).glob("mobilenetv3-*.json")):
        m = pattern.fullmatch(file.name)
        if m:
            found.append(f"resolution {m.group(1)}, width_mult {m.group(2)}")
    return found


def table(
    target: Target | str,
    resolution: int,
    width_mult: float,
    num_classes: int = 10,
    cache_dir: str | Path | None = None,
    build: bool = False,
    **build_options: Any,
) -> LatencyTable:
    """The latency table of ``target`` for this setting.

    Args:
        target: a ``Target`` or its name.
        resolution: input image size the table must be built at (the experiment's).
        width_mult: channel multiplier of the subnets.
        num_classes: classifier outputs.
        cache_dir: cache folder; ``default_cache_dir()`` when None.
        build: measure (and cache) the table when it is not cached, instead of failing.
        **build_options: more ``LatencyTable.build`` options (``repeats``, ``rounds``, ...)
            when it is measured.

    Raises:
        TargetTableError: no table cached here and ``build`` is False: one line naming the
            target and setting and the command that builds it (or the settings its cached
            tables were built at); a CUDA target on a machine without CUDA.
        ValueError: a bad target name or setting.
    """
    # Imported here: the measuring code needs torch, the names of targets do not.
    from raynas.hardware.measure import check_device
    from raynas.hardware.table import LatencyCacheError, LatencyTable

    target = parse(target) if isinstance(target, str) else target
    try:
        check_device(target.device)
    except ValueError:
        raise TargetTableError(
            f"hardware target {target.name!r} needs a CUDA GPU and this machine has none; "
            "drop it from targets or run where one is"
        ) from None
    options = {
        "device": target.device,
        "resolution": resolution,
        "width_mult": width_mult,
        "batch_size": target.batch_size,
        "threads": target.threads,
        "cache_dir": cache_dir,
        "num_classes": num_classes,
    }
    if build:
        return LatencyTable.build("mobilenetv3", **options, **build_options)
    try:
        return LatencyTable.load(**options)
    except LatencyCacheError as e:
        if "no latency table at" not in str(e):
            raise TargetTableError(f"hardware target {target.name!r}: {e}") from None
    key = target.device_key()
    others = _other_settings(target, key, cache_dir)
    what = f"resolution {resolution}, width_mult {width_mult:g}"
    build_it = target.build_command(resolution, width_mult, num_classes)
    if others:
        raise TargetTableError(
            f"hardware target {target.name!r}: the latency tables on this machine ({key}) "
            f"were built at {'; '.join(others)}, not at the experiment's {what}; build one "
            f"with: {build_it}"
        )
    raise TargetTableError(
        f"hardware target {target.name!r} has no latency table on this machine ({key}) for "
        f"{what}, {num_classes} classes; build it with: {build_it} (or set the trainable "
        "option build_tables: true)"
    )
