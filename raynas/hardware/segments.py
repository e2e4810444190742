"""The MobileNetV3 network cut into the segments a latency table times (blocks, probes).

Every distinct MBConv block shape the ``mobilenetv3`` space can produce gets one row; the
``PROBE_SUBNETS`` deepest subnets (``probe_genotypes``) hold every one of them and are timed
segment by segment (``network_segments``: stem, each block, final expand, head, which chained
is exactly ``forward``); ``calibration_genotypes`` are the subnets timed end to end.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.hardware.measure import check_timing_args, clock_fn, sync, torch_threads
from search_spaces.mobilenetv3 import (
    DEPTHS,
    EXPANDS,
    KERNELS,
    MAX_DEPTH,
    NUM_STAGES,
    MobileNetV3Genotype,
    MobileNetV3Space,
)

logger = logging.getLogger(__name__)

#: Names of the fixed (non-searchable) parts, in forward order.
FIXED_PARTS = ("stem", "final_expand", "head")

#: Deepest subnets whose blocks are timed in place to fill the rows (any 9 cover them all).
PROBE_SUBNETS = 18

#: Subnets timed end to end to calibrate the per-layer sum (smallest, largest, random).
CALIBRATION_SUBNETS = 8

#: Seed of the random calibration subnets (benchmarks should evaluate on other seeds).
CALIBRATION_SEED = 12345


def block_key(spec: Any) -> str:
    """Row key of an MBConv block (a ``BlockSpec`` or its dict): every shape field.

    ``stage`` and ``index`` are left out: two blocks of equal shape share a row.
    """
    # ``vars``, not ``asdict``: asdict deep-copies and was 90% of a table prediction's time.
    s = spec if isinstance(spec, dict) else vars(spec)
    return (
        f"k{s['kernel']}-e{s['expand']}-in{s['in_channels']}-mid{s['mid_channels']}"
        f"-out{s['out_channels']}-s{s['stride']}-r{s['in_resolution']}-{s['activation']}"
        f"-se{int(s['se'])}-res{int(s['residual'])}"
    )


def distinct_block_specs(resolution: int, width_mult: float) -> list[Any]:
    """Every distinct searchable MBConv block shape of ``mobilenetv3``, one per row key.

    Within a stage the first block has the stage's stride and the previous stage's width as
    input, and blocks 2..4 share one shape (stride 1, equal widths); so the distinct shapes
    are stage (5) x position kind (2) x kernel (3) x expand (3) = 90 (fewer if shapes
    coincide). The fixed first block (stage 0) belongs to the ``stem`` part.
    """
    from raynas.nn.mobilenetv3 import block_specs

    found: dict[str, Any] = {}
    for kernel in KERNELS:
        for expand in EXPANDS:
            stages = [((kernel, expand),) * MAX_DEPTH] * NUM_STAGES
            for spec in block_specs(stages, width_mult=width_mult, resolution=resolution):
                if spec.stage > 0 and spec.index <= 2:
                    found.setdefault(block_key(spec), spec)
    return list(found.values())


def network_segments(net: nn.Module, resolution: int) -> list[tuple[str, nn.Module]]:
    """A ``MobileNetV3Network`` cut into its table parts: (row key or fixed part, module).

    Applying the modules in order is exactly ``net.forward``: ``stem`` (stem conv + fixed
    first block), one MBConv block per searchable block, ``final_expand``, ``head`` (pooling
    + feature mix + flatten + classifier). Row keys use the input ``resolution`` (a block's
    own ``spec`` assumes 224).
    """
    res = (resolution - 1) // 2 + 1  # after the stride-2 stem
    parts: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(net.first_conv, net.blocks[0]))]
    res = (res - 1) // net.blocks[0].spec.stride + 1
    for block in net.blocks[1:]:
        parts.append((block_key(dataclasses.replace(block.spec, in_resolution=res)), block))
        res = (res - 1) // block.spec.stride + 1
    head = nn.Sequential(net.pool, net.feature_mix, nn.Flatten(1), net.classifier)
    return [*parts, ("final_expand", net.final_expand), ("head", head)]


def segment_samples(
    segments: Sequence[nn.Module],
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
    clock: str = "wall",
) -> list[list[float]]:
    """Per-call latency (ms) of every segment of a chain, timed in place in the chain.

    Each of the ``repeats`` forward passes feeds the input through the segments in order and
    times every segment on its own (CUDA synchronised after each), so a segment is timed
    with the caches and memory state that the preceding segments leave, as in the network.

    Returns:
        For each segment, its ``repeats`` latencies.
    """
    dev, batch_size, warmup, repeats, threads, shape = check_timing_args(
        device, batch_size, warmup, repeats, threads, input_shape
    )
    now = clock_fn(clock, dev, threads)
    modes = [m.training for m in segments]
    for m in segments:
        m.to(dev).eval()
    times: list[list[float]] = [[] for _ in segments]
    try:
        with torch_threads(threads), torch.inference_mode():
            x = torch.randn((batch_size, *shape), device=dev)
            for _ in range(warmup):
                h = x
                for m in segments:
                    h = m(h)
            sync(dev)
            for _ in range(repeats):
                h = x
                for i, m in enumerate(segments):
                    start = now()
                    h = m(h)
                    sync(dev)
                    times[i].append((now() - start) * 1e3)
    finally:
        for m, mode in zip(segments, modes, strict=True):
            m.train(mode)
    return times


def probe_genotypes(n: int) -> list[Any]:
    """``n`` deepest subnets that together contain every distinct block row (``n >= 9``).

    Probe ``p`` gives the first block of stage ``s`` the (kernel, expand) pair number
    ``(p + s) % 9`` and its blocks 2..4 the pairs ``(3p + j + s) % 9``, j = 0..2; any 9
    consecutive probes cover all 9 pairs in both position kinds of every stage.
    """
    pairs = [(k, e) for k in KERNELS for e in EXPANDS]
    m = len(pairs)
    out = []
    for p in range(n):
        stages = tuple(
            (pairs[(p + s) % m], *(pairs[(3 * p + j + s) % m] for j in range(MAX_DEPTH - 1)))
            for s in range(NUM_STAGES)
        )
        out.append(MobileNetV3Genotype((MAX_DEPTH,) * NUM_STAGES, stages))
    return out


def resolve_space(space: Any) -> Any:
    if isinstance(space, str):
        if space != MobileNetV3Space.name:
            raise ValueError(f"latency tables support the 'mobilenetv3' space only, got {space!r}")
        return MobileNetV3Space()
    if getattr(space, "name", None) != MobileNetV3Space.name:
        raise ValueError(
            f"latency tables support the 'mobilenetv3' space only, got "
            f"{getattr(space, 'name', space)!r}"
        )
    return space


def calibration_genotypes(space: Any, n: int) -> list[Any]:
    """``n`` subnets: the smallest, the largest, then random ones (``CALIBRATION_SEED``)."""
    smallest = MobileNetV3Genotype(
        (min(DEPTHS),) * NUM_STAGES, (((min(KERNELS), min(EXPANDS)),) * min(DEPTHS),) * NUM_STAGES
    )
    largest = MobileNetV3Genotype(
        (max(DEPTHS),) * NUM_STAGES, (((max(KERNELS), max(EXPANDS)),) * max(DEPTHS),) * NUM_STAGES
    )
    out = [smallest, largest][:n]
    rng = np.random.default_rng(CALIBRATION_SEED)
    while len(out) < n:
        out.append(space.sample(rng))
    return out
