"""Size and cost of a network: parameters and multiply-accumulates, as NAS papers count them."""

from __future__ import annotations

import torch
from torch import nn

from raynas.nn.ops import AvgPool3x3


def count_params(model: nn.Module) -> int:
    """Parameters without an auxiliary head (as NAS papers count them)."""
    return sum(p.numel() for n, p in model.named_parameters() if "auxiliary" not in n)


def count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward of a single input of ``shape`` (eval mode).

    Pooling is not counted (it has no multiplies), also where ``AvgPool3x3`` computes it with
    a depthwise convolution on CPU: those modules use ``avg_pool2d`` while counting.
    """
    from torch.utils.flop_counter import FlopCounterMode

    pools = [m for m in model.modules() if isinstance(m, AvgPool3x3)]
    was_training = model.training
    model.eval()
    for pool in pools:
        pool.native = True
    try:
        device = next((p.device for p in model.parameters()), None)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *shape, device=device))
    finally:
        model.train(was_training)
        for pool in pools:
            pool.native = False
    return counter.get_total_flops() // 2
