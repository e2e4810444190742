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

import importlib
from typing import Any

#: Public name -> the submodule that defines it. Imported on first use (PEP 562), so that
#: ``raynas.hardware.targets`` (what ``raynas report`` needs: the latency metric names) does
#: not import torch with the measuring code.
_EXPORTS = {
    "CACHE_ENV": "device",
    "DEFAULT_CACHE_DIR": "device",
    "default_cache_dir": "device",
    "device_key": "device",
    "CLOCKS": "measure",
    "LatencyStats": "measure",
    "SUPPORTED_DEVICE_TYPES": "measure",
    "check_device": "measure",
    "interleaved_latency_samples": "measure",
    "latency_samples": "measure",
    "measure_latency": "measure",
    "torch_threads": "measure",
    "BUILD_OPTIONS": "options",
    "check_build_options": "options",
    "CALIBRATION_SEED": "segments",
    "CALIBRATION_SUBNETS": "segments",
    "FIXED_PARTS": "segments",
    "PROBE_SUBNETS": "segments",
    "block_key": "segments",
    "calibration_genotypes": "segments",
    "distinct_block_specs": "segments",
    "network_segments": "segments",
    "probe_genotypes": "segments",
    "segment_samples": "segments",
    "FORMAT_VERSION": "table",
    "LatencyCacheError": "table",
    "LatencyTable": "table",
    "SCALE_BOUNDS": "table",
    "cache_path": "table",
}

__all__ = sorted(_EXPORTS)


#: The submodules, also reachable as attributes (``hardware.measure``), as when this module
#: imported them all.
_SUBMODULES = frozenset({*_EXPORTS.values(), "targets"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
