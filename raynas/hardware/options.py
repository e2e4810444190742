"""The options of ``LatencyTable.build`` a config file may set, and their validation."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from raynas.hardware.measure import CLOCKS, check_device, positive_int
from raynas.hardware.table import check_width_mult

logger = logging.getLogger(__name__)


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
            value = positive_int(key, value, minimum=int(kind[5:]))
        elif kind == "width":
            value = check_width_mult(value)
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
