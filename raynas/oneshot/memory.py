"""Peak memory of a search epoch: CUDA's allocator peak, or the process's resident set on CPU.

On CPU: ``VmHWM`` of ``/proc/self/status``, reset at the start of the epoch by writing ``5``
to ``/proc/self/clear_refs`` (Linux >= 4.0); where that is impossible, the process lifetime
peak (``ru_maxrss``).
"""

from __future__ import annotations

import re
import resource

import torch


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            text = fh.read()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


class PeakMemory:
    """Peak memory (MB) since ``reset``: CUDA max allocated, or the process RSS peak on CPU.

    On CPU ``reset`` writes ``5`` to ``/proc/self/clear_refs``, which resets ``VmHWM`` (the
    RSS high-water mark) to the current RSS; without it (no procfs, no permission) the peak
    is the process lifetime's (``getrusage``'s ``ru_maxrss``) and ``resettable`` is False.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.resettable = device.type == "cuda"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        kb = _proc_status_kb("VmHWM") if self.resettable else None
        if kb is None:
            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
        return kb / 1024


def rss_mb() -> float | None:
    """Current resident set size of this process in MB (``None`` without procfs)."""
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb / 1024
