"""Device keys (hardware and thread count, e.g. ``cpu-amd-epyc-threads1``) and the cache folder."""

from __future__ import annotations

import logging
import os
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Environment variable that overrides the default cache folder.
CACHE_ENV = "RAYNAS_LATENCY_CACHE"

DEFAULT_CACHE_DIR = Path("~/.cache/raynas/latency")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


def device_key(device: str | torch.device = "cpu", threads: int | None = None) -> str:
    """Name of the hardware a table is valid for (used in the cache file path).

    CPU: ``cpu-<cpu model>-threads<T>`` (T = ``threads`` or torch's current thread count);
    CUDA: ``cuda-<device name>``.
    """
    import torch  # here, not above: the cache folder and targets' names need no torch

    from raynas.hardware.measure import check_device, positive_int

    dev = check_device(device)
    if dev.type == "cuda":
        return f"cuda-{slug(torch.cuda.get_device_name(dev))}"
    t = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    return f"cpu-{slug(_cpu_model())}-threads{t}"


def default_cache_dir() -> Path:
    """``$RAYNAS_LATENCY_CACHE`` when set, else ``~/.cache/raynas/latency``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()
