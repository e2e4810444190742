"""Shared candidate operations: the CPU average pool equals PyTorch's, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from raynas.nn.ops import AvgPool3x3


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 4, 7, 5), (1, 2, 1, 1)])
def test_avg_pool_matches_torch_exclude_pad(stride, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours = AvgPool3x3(stride)(x)
    ref = F.avg_pool2d(x, 3, stride, 1, count_include_pad=False)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref)
    grad_out = torch.randn_like(ref)
    (g_ours,) = torch.autograd.grad(ours, x, grad_out)
    (g_ref,) = torch.autograd.grad(ref, x, grad_out)
    torch.testing.assert_close(g_ours, g_ref)


def test_avg_pool_caches_counts_per_size():
    pool = AvgPool3x3(1)
    pool(torch.ones(1, 1, 4, 4))
    pool(torch.ones(1, 1, 6, 6))
    corner = pool(torch.arange(16.0).view(1, 1, 4, 4))[0, 0, 0, 0]
    assert corner.item() == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert len(pool._counts) == 2
