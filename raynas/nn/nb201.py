"""The NAS-Bench-201 evaluation network (cell DAG, residual reductions, macro skeleton)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from raynas.nn.layout import NB201_EDGES as EDGES
from raynas.nn.ops import ReLUConvBN, make_op


class NB201Cell(nn.Module):
    """Node j = sum over i < j of op(j<-i)(node i); ``none`` edges are skipped, not computed."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        for (j, i), op in zip(EDGES, ops, strict=True):
            if op != "none":
                self.edges[f"{j}<-{i}"] = make_op(op, channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            terms = [
                self.edges[f"{j}<-{i}"](nodes[i]) for i in range(j) if f"{j}<-{i}" in self.edges
            ]
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's ResNet basic block with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """Stem -> N cells (C) -> reduce -> N cells (2C) -> reduce -> N cells (4C) -> head.

    Args:
        ops: the 6 edge ops of the cell.
        C: channels of the first stage.
        N: cells per stage; an int, or one count per stage (the macro space uses this).
        num_classes: classifier outputs.
        in_channels: image channels.
    """

    def __init__(
        self,
        ops: Sequence[str],
        C: int = 16,
        N: int | Sequence[int] = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        counts = [int(N)] * 3 if isinstance(N, int) else [int(n) for n in N]
        if any(n < 0 for n in counts) or C < 1:
            raise ValueError(f"nb201 network needs C >= 1 and N >= 0, got C={C}, N={N}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        channels = C
        for stage, count in enumerate(counts):
            if stage > 0:
                layers.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            layers.extend(NB201Cell(ops, channels) for _ in range(count))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))
