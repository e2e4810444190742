"""Candidate operations shared by the cell spaces (NAS-Bench-201 and DARTS).

Definitions follow the papers' reference networks: ReLU -> Conv -> BN blocks, separable and
dilated convolutions as in DARTS, ``none`` as an all-zero output with the right stride.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride, padding, dilation) -> BatchNorm."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise dilated conv -> pointwise conv -> BN (DARTS ``dil_conv_kxk``)."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, dilation, affine=True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_in,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked DilConv blocks with dilation 1 (DARTS ``sep_conv_kxk``)."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros with the output shape of a stride-``stride`` op."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if x.shape[1] != self.c_out:
            shape = (x.shape[0], self.c_out, x.shape[2], x.shape[3])
            return x.new_zeros(shape)
        return x.mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs (identity for reductions)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Pad so the offset branch keeps the same output size for odd inputs.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class AvgPool3x3(nn.Module):
    """3x3 average pooling, padding 1, ``count_include_pad=False`` (as NB201 and DARTS use).

    On CPU, PyTorch's NCHW ``avg_pool2d`` and its backward are several times slower than a
    depthwise convolution (measured: 3.1 ms vs 0.4 ms for a 64x8x16x16 batch, one thread), and
    pooling-heavy cells dominated training time. There it is computed as a depthwise 3x3 sum
    divided by the number of real (unpadded) pixels in each window, which is the same function;
    elsewhere ``avg_pool2d`` is used. No parameters or buffers, so checkpoints are unaffected.
    """

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.native = False  # True: always avg_pool2d (set while counting MACs)
        self._counts: dict[tuple, torch.Tensor] = {}

    def _window_counts(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.dtype, x.device)
        counts = self._counts.get(key)
        if counts is None:
            ones = x.new_ones(1, 1, x.shape[-2], x.shape[-1])
            counts = F.conv2d(ones, x.new_ones(1, 1, 3, 3), stride=self.stride, padding=1)
            self._counts[key] = counts
        return counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.native or x.device.type != "cpu":
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        kernel = x.new_ones(x.shape[1], 1, 3, 3)
        summed = F.conv2d(x, kernel, stride=self.stride, padding=1, groups=x.shape[1])
        return summed / self._window_counts(x)


class Pool(nn.Module):
    """3x3 avg/max pooling, followed by a 1x1 ReLUConvBN when channels change (NB201)."""

    def __init__(self, kind: str, c_in: int, c_out: int, stride: int, affine: bool = True):
        super().__init__()
        self.pre = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine=affine)
        if kind == "avg":
            self.pool = AvgPool3x3(stride)
        elif kind == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise ValueError(f"unknown pooling {kind!r}; choose one of: avg, max")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre is not None:
            x = self.pre(x)
        return self.pool(x)


def skip(c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    """Identity when shapes match, otherwise a FactorizedReduce / 1x1 projection."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if stride == 2:
        return FactorizedReduce(c_in, c_out, affine=affine)
    return ReLUConvBN(c_in, c_out, 1, 1, 0, affine=affine)


OpFactory = Callable[[int, int, int, bool], nn.Module]

#: Every candidate op by name: factory(c_in, c_out, stride, affine) -> module.
OPS: dict[str, OpFactory] = {
    "none": lambda ci, co, s, a: Zero(ci, co, s),
    "skip_connect": lambda ci, co, s, a: skip(ci, co, s, a),
    "nor_conv_1x1": lambda ci, co, s, a: ReLUConvBN(ci, co, 1, s, 0, affine=a),
    "nor_conv_3x3": lambda ci, co, s, a: ReLUConvBN(ci, co, 3, s, 1, affine=a),
    "avg_pool_3x3": lambda ci, co, s, a: Pool("avg", ci, co, s, a),
    "max_pool_3x3": lambda ci, co, s, a: Pool("max", ci, co, s, a),
    "sep_conv_3x3": lambda ci, co, s, a: SepConv(ci, co, 3, s, 1, a),
    "sep_conv_5x5": lambda ci, co, s, a: SepConv(ci, co, 5, s, 2, a),
    "dil_conv_3x3": lambda ci, co, s, a: DilConv(ci, co, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda ci, co, s, a: DilConv(ci, co, 5, s, 4, 2, a),
}


def make_op(name: str, c_in: int, c_out: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Build the op ``name``; ValueError listing valid names otherwise."""
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; choose one of: {', '.join(sorted(OPS))}")
    return OPS[name](c_in, c_out, stride, affine)
