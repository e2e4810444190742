"""The DARTS evaluation network (Liu et al., ICLR 2019), as ``NetworkCIFAR`` in the paper's code.

Layout: a 3x3 conv stem with ``stem_multiplier * C`` channels + BN, then ``layers`` cells.
Cells at the indices in ``reduction_layers`` are reduction cells: they halve the resolution
and double the channels. Every cell reads the outputs of the two previous cells (both the stem
output for the first cell); the older input goes through a ``FactorizedReduce`` when the
previous cell was a reduction (so it is at twice the resolution), else through a 1x1
``ReLUConvBN``, and the newer input always through a 1x1 ``ReLUConvBN``. Each intermediate
node is the sum of its two ops; the cell output concatenates the ``concat`` nodes. Global
average pooling and a linear classifier close the network.

Training extras, as in DARTS:

* drop-path: ``drop_path_prob`` is a plain attribute (the trainer usually raises it linearly
  over the epochs); in training mode each non-identity op's output is zeroed per sample with
  that probability and rescaled by ``1 / (1 - p)``.
* auxiliary head: with ``auxiliary=True`` an ``AuxiliaryHeadCIFAR`` reads the output of the
  second reduction cell (the last one if there is only one; cell ``2 * layers // 3`` if there
  is none). In training mode ``forward`` then returns ``(logits, logits_aux)``; in eval mode,
  or with ``auxiliary=False``, it returns ``logits`` only. Its parameters live under the
  ``auxiliary_head`` prefix, which ``num_parameters`` leaves out by default (as the papers'
  parameter counts do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from raynas.nn.layout import check_reduction_layers, default_reduction_layers
from raynas.nn.ops import FactorizedReduce, ReLUConvBN, make_op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``drop_prob``; rescale the others."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """One DARTS cell from a list of ``(op, input)`` pairs (2 per node) and a concat list.

    Args:
        edges: ``(op, input)`` pairs, 2 per intermediate node; input 0/1 are the cell inputs
            and ``k >= 2`` is intermediate node ``k - 2``.
        concat: states concatenated into the cell output.
        c_prev_prev: channels of the older cell input.
        c_prev: channels of the newer cell input.
        channels: channels of each node (``C`` of the cell).
        reduction: a reduction cell (ops on the cell inputs have stride 2).
        reduction_prev: the previous cell was a reduction cell (older input at 2x resolution).
    """

    def __init__(
        self,
        edges: Sequence[tuple[str, int]],
        concat: Sequence[int],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        edges = [(str(op), int(src)) for op, src in edges]
        if not edges or len(edges) % 2:
            raise ValueError(f"a DARTS cell needs 2 (op, input) pairs per node, got {edges}")
        self.steps = len(edges) // 2
        self.concat = [int(i) for i in concat]
        for k, (_, src) in enumerate(edges):
            if not 0 <= src < k // 2 + 2:
                raise ValueError(f"input {src} of node {k // 2} is not an earlier state")
        if not self.concat or any(not 0 <= i < self.steps + 2 for i in self.concat):
            raise ValueError(f"concat {self.concat} must index states 0..{self.steps + 1}")
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, channels)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0)
        self.indices = [src for _, src in edges]
        self.ops = nn.ModuleList(
            make_op(op, channels, channels, 2 if reduction and src < 2 else 1) for op, src in edges
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.steps):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS' auxiliary classifier for 8x8 feature maps (32x32 images after two reductions).

    Other feature sizes work too: maps smaller than 5x5 skip the 5x5/3 average pooling, and
    the pooled map is adaptively averaged to 2x2 (a no-op for the 8x8 case).

    Args:
        channels: input channels.
        num_classes: classifier outputs.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not in place: ``x`` is also the input of the next cell.
        x = F.relu(x)
        if x.shape[-2] >= 5 and x.shape[-1] >= 5:
            x = self.pool(x)
        x = self.features(F.adaptive_avg_pool2d(x, 2))
        return self.classifier(torch.flatten(x, 1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network of a genotype.

    Args:
        genotype: any object with ``normal``, ``normal_concat``, ``reduce`` and
            ``reduce_concat`` attributes in the DARTS format (e.g. the ``Genotype`` of
            ``search_spaces.darts``).
        C: channels of the first cells (doubled at each reduction).
        layers: number of cells.
        num_classes: classifier outputs.
        in_channels: image channels.
        auxiliary: add the auxiliary head (used in training mode only).
        drop_path_prob: initial drop-path probability (the attribute can be changed later).
        reduction_layers: sorted, distinct cell indices of the reduction cells; ``None`` for
            DARTS' ``(layers // 3, 2 * layers // 3)``; ``()`` for none at all.
        stem_multiplier: stem channels = ``stem_multiplier * C``.

    ``forward(x)`` returns ``(logits, logits_aux)`` in training mode when ``auxiliary`` is
    set, and ``logits`` otherwise.
    """

    def __init__(
        self,
        genotype: Any,
        C: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        reduction_layers: Sequence[int] | None = None,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        if C < 1 or layers < 1 or stem_multiplier < 1:
            raise ValueError(
                f"darts network needs C, layers, stem_multiplier >= 1, got C={C}, "
                f"layers={layers}, stem_multiplier={stem_multiplier}"
            )
        if reduction_layers is None:
            reduction_layers = default_reduction_layers(layers)
        self.reduction_layers = check_reduction_layers(layers, reduction_layers)
        self.layers = layers
        self.drop_path_prob = float(drop_path_prob)
        self.auxiliary = bool(auxiliary)
        reductions = self.reduction_layers
        if len(reductions) >= 2:
            self.auxiliary_layer = reductions[1]
        elif reductions:
            self.auxiliary_layer = reductions[-1]
        else:
            self.auxiliary_layer = 2 * layers // 3

        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            edges, concat = (
                (genotype.reduce, genotype.reduce_concat)
                if reduction
                else (genotype.normal, genotype.normal_concat)
            )
            cell = DartsCell(edges, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.auxiliary_layer:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_layer and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        if logits_aux is not None:
            return logits, logits_aux
        return logits

    def num_parameters(self, include_auxiliary: bool = False) -> int:
        """Number of parameters, without the auxiliary head unless ``include_auxiliary``."""
        return sum(
            p.numel()
            for name, p in self.named_parameters()
            if include_auxiliary or not name.startswith("auxiliary_head.")
        )
