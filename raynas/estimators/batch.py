"""The fixed batch of training images a zero-cost proxy scores architectures on."""

from __future__ import annotations

import dataclasses
import functools

import torch

from raynas import data as datamod


@functools.lru_cache(maxsize=4)
def load_batch(
    dataset: str, root: str | None, seed: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """One normalised batch of training images, fixed by ``seed``; cached per process.

    Returns:
        ``(inputs, targets, num_classes, in_channels)``.

    Raises:
        raynas.data.DatasetError: unknown dataset, missing data, or fewer training images
            than ``batch_size``.
    """
    splits = datamod.load(dataset, root=root, seed=seed)
    n = len(splits.train)
    if batch_size > n:
        raise datamod.DatasetError(
            f"batch_size {batch_size} exceeds the {n} training images of {dataset}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:batch_size]
    picked = datamod.Split(splits.train.x[order], splits.train.y[order])
    one = dataclasses.replace(splits, train=picked)
    inputs, targets = next(iter(datamod.Loader(one, "train", batch_size, train=False)))
    return inputs, targets, splits.num_classes, splits.in_channels
