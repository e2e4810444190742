"""One checkpoint per epoch for the trainables that train (``train``, ``darts``, ``supernet``).

The state (a dict of tensors and plain values, e.g. ``Trainer.state_dict()``) is saved with
``torch.save`` as ``state.pt`` (the supernet's as ``supernet.pt``) in a Tune checkpoint and
read back on CPU.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import torch

CHECKPOINT_FILE = "state.pt"


def restore_state(filename: str = CHECKPOINT_FILE) -> dict[str, Any] | None:
    """The state of the trial's latest Tune checkpoint (read from ``filename`` in it); None
    when it starts afresh."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(os.path.join(folder, filename), map_location="cpu", weights_only=False)


def report_with_state(
    metrics: Mapping[str, Any], state: Mapping[str, Any], filename: str = CHECKPOINT_FILE
) -> None:
    """``tune.report(metrics)`` with ``state`` saved (as ``filename``) as the checkpoint of
    this result."""
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, filename))
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(folder))
