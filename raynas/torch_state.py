"""torch's device choice and global RNG state, for trainers that checkpoint and restore exactly."""

from __future__ import annotations

from collections.abc import Mapping
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
