"""torch's device choice, global RNG state (for trainers that checkpoint and restore exactly),
and running small CPU models on one intra-op thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def rng_state() -> dict[str, Any]:
    """torch's global RNG states (CPU, and every CUDA device when present) for a checkpoint."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return {"torch_rng": torch.get_rng_state(), "cuda_rng": cuda}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the RNG states saved by ``rng_state`` (CUDA ones where CUDA is present)."""
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting.

    For small models (the REINFORCE controller, the BANANAS ensemble): their ops are tiny, and
    torch's OpenMP pool only adds synchronisation to them, which dominates a step on a busy
    machine.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
