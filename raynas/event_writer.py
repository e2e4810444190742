"""The TensorBoard event-file writer raynas's own TensorBoard views use."""

from __future__ import annotations


def summary_writer(logdir: str):
    """An event-file writer for ``logdir`` whose ``flush()`` returns only once every event
    added before it is on disk.

    torch's ``SummaryWriter`` rather than tensorboardX's: tensorboardX queues events for a
    background thread and its ``flush()`` does not wait for that queue, so a trial stopped right
    after reporting (a scheduler's STOP, ``max_t``) lost its last epoch's images. torch's file
    names also carry the process id, so they cannot collide with the file Tune's own
    tensorboardX logger writes into the same trial folder in the same second.
    """
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(logdir)
