"""The TensorBoard event-file writer raynas's own TensorBoard views use."""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Any

import numpy as np

#: Numbers the writers of one process, so that two files of one folder never share a name.
_SEQUENCE = itertools.count()


def tensorboardx_without_torch() -> None:
    """Import tensorboardX without torch.

    ``tensorboardX.writer`` (imported by the package itself) imports torch when it can (1.5 s
    idle, 5 s on a loaded 2-core machine) only to accept torch tensors, which neither Tune's
    per-trial logger nor :class:`EventWriter` passes; a Tune driver would otherwise import it
    only for them. torch stays importable: the block lasts for this one import.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` -> ImportError
    try:
        import tensorboardX  # noqa: F401
    except ImportError:  # not installed: Tune skips its logger
        pass
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


class EventWriter:
    """Writes scalars, texts and images to a new event file in ``logdir``, in the calling
    thread: ``flush()`` returns once every event added before it is on disk.

    The subset of ``SummaryWriter``'s methods raynas uses, with the same tags and values
    (texts under ``<tag>/text_summary``). Not tensorboardX's ``SummaryWriter``: it queues
    events for a background thread and its ``flush()`` does not wait for that queue, so a
    trial stopped right after reporting (a scheduler's STOP, ``max_t``) lost its last epoch's
    images. Not torch's: it needs ``import torch``, seconds in a Tune driver that has no other
    use for torch. The file name carries the process id and a per-process number, so it
    cannot collide with the file Tune's own logger writes into the same trial folder in the
    same second.

    Args:
        logdir: the folder of the event file; created if missing.
    """

    def __init__(self, logdir: str) -> None:
        tensorboardx_without_torch()
        from tensorboardX.event_file_writer import EventsWriter

        os.makedirs(logdir, exist_ok=True)
        self.log_dir = logdir
        suffix = f".{os.getpid()}.{next(_SEQUENCE)}"
        self._events = EventsWriter(os.path.join(logdir, "events"), suffix)

    def _add(self, summary, global_step: int | None) -> None:
        from tensorboardX.proto.event_pb2 import Event

        event = Event(summary=summary, wall_time=time.time())
        if global_step is not None:
            event.step = int(global_step)
        self._events.write_event(event)

    def add_scalar(self, tag: str, value: float, global_step: int | None = None) -> None:
        """One point of the chart ``tag``."""
        from tensorboardX import summary

        self._add(summary.scalar(tag, float(value)), global_step)

    def add_text(self, tag: str, text: str, global_step: int | None = None) -> None:
        """A (markdown) text, shown under ``<tag>/text_summary``."""
        from tensorboardX import summary

        self._add(summary.text(tag, text), global_step)

    def add_image(
        self, tag: str, image: Any, global_step: int | None = None, dataformats: str = "CHW"
    ) -> None:
        """An image: ``uint8`` values as they are, floats in [0, 1] (clipped) scaled to 255;
        ``dataformats`` names the axes (``CHW``, ``HWC``, ``HW``)."""
        from tensorboardX import summary

        pixels = np.asarray(image)
        if pixels.dtype != np.uint8:
            pixels = np.clip(pixels * 255.0, 0, 255).astype(np.uint8)
        self._add(summary.image(tag, pixels, dataformats=dataformats), global_step)

    def flush(self) -> None:
        """Write every event added so far to disk."""
        self._events.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._events.close()


def summary_writer(logdir: str) -> EventWriter:
    """An :class:`EventWriter` for ``logdir``."""
    return EventWriter(logdir)
