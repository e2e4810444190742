"""Weight-sharing supernets for one-shot search (DARTS, PC-DARTS, RSPS, GDAS, SETN, ENAS).

A supernet holds every candidate op on every edge of a cell, with continuous architecture
parameters α (one row per edge, one column per op) shared by all cells of a type. An edge
computes the mixed op ``sum_o softmax(α_edge)_o · o(x)`` (``MixedOp``), or, on a single path,
only the op the path picks for it (``Supernet.forward(x, path)``).

* ``DartsSupernet`` (Liu et al., ICLR 2019, ``model_search.Network``): the ``darts`` space
  plus the ``none`` op (``PRIMITIVES``: 8 ops), 14 edges per cell (4 nodes with 2, 3, 4, 5
  inputs), α for normal cells (``alphas["normal"]``, 14 x 8) and reduction cells
  (``alphas["reduce"]``). Reduction cells at ``layers // 3`` and ``2 * layers // 3``. Ops and
  preprocessing use BatchNorm without affine parameters, pooling ops are followed by a BN, as
  in DARTS' search code.
* ``NB201Supernet`` (the DARTS baseline of NAS-Bench-201, Dong & Yang, ICLR 2020): the NB201
  macro skeleton (stem, 3 stages of ``N`` search cells, residual reductions) with one α
  matrix (6 edges x 5 ops) shared by all cells, stored as ``alphas["normal"]`` so both
  supernets expose their α under the same name.

PC-DARTS (Xu et al., ICLR 2020) is the ``k`` argument: with ``k > 1`` each mixed op sends only
the first ``1/k`` of its input channels through the candidate ops, passes the rest by (2x2
max-pooled on stride-2 edges), concatenates and shuffles channels in ``k`` groups; the op
activations, which dominate the memory, shrink by about ``k``. ``edge_norm`` adds one β per
edge; each node weighs its incoming edges by the softmax of their β (edge normalisation).

Derivation (``raynas.oneshot.derive``: ``genotype(supernet)``, ``derive_darts``,
``derive_nb201``):

* darts: per node keep the 2 incoming edges whose strongest non-``none`` op weight is the
  largest, each with that op (DARTS' ``genotype()``); with edge normalisation the op weights
  of an edge are first multiplied by the edge's normalised β (PC-DARTS' ``genotype()``).
* nb201: every edge keeps its argmax op over all 5 ops, ``none`` included, as in the NB201
  paper's DARTS baseline (``TinyNetworkDarts.genotype``); β does not change a per-edge argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas.nn.layout import (
    DARTS_NODES,
    DARTS_OPS,
    NB201_EDGES,
    NB201_OPS,
    default_reduction_layers,
)
from raynas.nn.nb201 import ResidualReduction
from raynas.nn.ops import FactorizedReduce, ReLUConvBN, make_op
from raynas.registry import check_int

#: Candidate ops of the DARTS supernet, in DARTS' ``PRIMITIVES`` order (``none`` first).
DARTS_PRIMITIVES: tuple[str, ...] = ("none", *DARTS_OPS)
#: Candidate ops of the NB201 supernet (the space's 5 ops).
NB201_PRIMITIVES: tuple[str, ...] = tuple(NB201_OPS)
#: Incoming edges of each DARTS node: node ``n`` reads states ``0 .. n + 1``.
DARTS_EDGES: tuple[tuple[int, int], ...] = tuple(
    (n + 2, src) for n in range(DARTS_NODES) for src in range(n + 2)
)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``x`` in ``groups`` groups (ShuffleNet, PC-DARTS)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class MixedOp(nn.Module):
    """All candidate ops of one edge; ``forward(x, weights)`` = sum_o weights[o] · o(x).

    ``none`` contributes exactly zero, so it is not computed (its weight still takes part in
    the softmax, hence in the gradients of the other α).

    Args:
        channels: channels of the edge's input and output.
        stride: 2 on the input edges of a reduction cell, else 1.
        primitives: op names (keys of ``raynas.nn.ops.OPS``), one per column of α.
        k: PC-DARTS partial-channel ratio; only ``channels // k`` channels go through the ops.
        pool_bn: follow pooling ops by a BatchNorm (DARTS' search network does).
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        primitives: Sequence[str],
        k: int = 1,
        pool_bn: bool = False,
    ) -> None:
        super().__init__()
        if k < 1 or channels % k:
            raise ValueError(f"channels ({channels}) must be divisible by k ({k})")
        self.k = k
        self.stride = stride
        c = channels // k
        self.ops = nn.ModuleList()
        self.active: list[int] = []
        for i, name in enumerate(primitives):
            op = make_op(name, c, c, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self.ops.append(op)
            if name != "none":
                self.active.append(i)
        self.bypass_pool = nn.MaxPool2d(2, 2) if k > 1 and stride == 2 else None

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor | None, index: int | None = None
    ) -> torch.Tensor:
        """The weighted sum of all ops, or with ``index`` the one op ``index`` only.

        With ``index`` (single path) only that op is computed, scaled by ``weights[index]``
        when ``weights`` is given (GDAS' straight-through one-hot), else unscaled.
        """
        if self.k == 1:
            return _edge(self.ops, self.active, x, weights, index)
        c = x.shape[1] // self.k
        head, rest = x[:, :c], x[:, c:]
        out = _edge(self.ops, self.active, head, weights, index)
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)


def _edge(ops: nn.ModuleList, active: list[int], x: torch.Tensor, weights, index):
    if index is None:
        return _weighted_sum(ops, active, x, weights)
    out = ops[index](x)
    return out if weights is None else weights[index] * out


def _weighted_sum(ops: nn.ModuleList, active: list[int], x: torch.Tensor, weights):
    total = None
    for i in active:
        term = weights[i] * ops[i](x)
        total = term if total is None else total + term
    if total is None:  # every op is ``none``
        raise ValueError("a mixed op needs at least one op other than 'none'")
    return total


def _node_softmax(beta: torch.Tensor, inputs_per_node: Sequence[int]) -> torch.Tensor:
    """Softmax of β over the incoming edges of each node, concatenated in edge order."""
    return torch.cat([F.softmax(part, dim=-1) for part in beta.split(list(inputs_per_node))])


def _forward_weights(
    model: Supernet,
    path: Mapping[str, Sequence[int]] | None,
    path_weights: Mapping[str, torch.Tensor] | None,
) -> Mapping[str, torch.Tensor]:
    """The op weights a forward pass uses: softmax(α) (mixed), ``path_weights`` or none."""
    if path is None:
        if path_weights is not None:
            raise ValueError("path_weights need a path (the op index of every edge)")
        return model.op_weights()
    for t in model.cell_types:
        if t not in path or len(path[t]) != len(model.edges):
            raise ValueError(
                f"a path needs one op index per edge ({len(model.edges)}) for each cell type "
                f"{', '.join(model.cell_types)}; got {dict(path)!r}"
            )
    return dict(path_weights or {})


def _entropy(weights: torch.Tensor) -> torch.Tensor:
    return -(weights * weights.clamp_min(1e-12).log()).sum(-1)


class Supernet(nn.Module):
    """Common part of the supernets: α (and β) bookkeeping, derivation hooks.

    Subclasses set ``primitives``, ``edges`` (``(node, input)`` per α row), ``cell_types``
    and ``inputs_per_node``; ``raynas.oneshot.derive`` turns ``derivation_weights`` into a
    genotype of the space.

    ``forward(x)`` runs the mixed supernet (every op of every edge, weighted by softmax(α)).
    ``forward(x, path)`` runs one path: ``path[cell_type]`` holds one op index per edge (α
    row order) and only that op of each edge is computed (RSPS, SETN, ENAS, GDAS); with
    ``path_weights[cell_type]`` (edges x ops) the op's output is scaled by its entry, which
    carries GDAS' straight-through gradient to α. Edge normalisation β applies in both.
    """

    primitives: tuple[str, ...] = ()
    edges: tuple[tuple[int, int], ...] = ()
    cell_types: tuple[str, ...] = ()
    inputs_per_node: tuple[int, ...] = ()

    def _init_arch(self, edge_norm: bool, init_scale: float = 1e-3) -> None:
        shape = (len(self.edges), len(self.primitives))
        # DARTS initialises α to 1e-3 · N(0, 1): nearly uniform op weights.
        self.alphas = nn.ParameterDict(
            {t: nn.Parameter(init_scale * torch.randn(*shape)) for t in self.cell_types}
        )
        self.edge_norm = bool(edge_norm)
        if self.edge_norm:
            self.betas = nn.ParameterDict(
                {
                    t: nn.Parameter(init_scale * torch.randn(len(self.edges)))
                    for t in self.cell_types
                }
            )
        else:
            self.betas = None

    def arch_parameters(self) -> list[nn.Parameter]:
        """α (and β) of every cell type, in a fixed order."""
        params = [self.alphas[t] for t in self.cell_types]
        if self.betas is not None:
            params += [self.betas[t] for t in self.cell_types]
        return params

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights w (every parameter that is not α or β)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def op_weights(self) -> dict[str, torch.Tensor]:
        """softmax(α) per cell type: ``{type: (edges, ops)}``."""
        return {t: F.softmax(self.alphas[t], dim=-1) for t in self.cell_types}

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Node-wise softmax of β per cell type (``None`` without edge normalisation)."""
        if self.betas is None:
            return None
        return {t: _node_softmax(self.betas[t], self.inputs_per_node) for t in self.cell_types}

    @torch.no_grad()
    def alpha_entropy(self) -> dict[str, float]:
        """Mean entropy (nats) of softmax(α) over the edges of each cell type."""
        return {t: float(_entropy(w).mean()) for t, w in self.op_weights().items()}

    @torch.no_grad()
    def derivation_weights(self) -> dict[str, np.ndarray]:
        """Op weights used for derivation: softmax(α), times the edge weight with β."""
        ops = self.op_weights()
        edges = self.edge_weights()
        out = {}
        for t, w in ops.items():
            if edges is not None:
                w = w * edges[t][:, None]
            out[t] = w.detach().cpu().double().numpy()
        return out

    def edge_labels(self) -> list[str]:
        """One label per α row, e.g. ``"2<-0"`` (node <- input)."""
        return [f"{j}<-{i}" for j, i in self.edges]


# ------------------------------------------------------------------------------ DARTS space
class DartsSearchCell(nn.Module):
    """A DARTS search cell: ``steps`` nodes, each the (edge-weighted) sum of mixed ops over
    all earlier states; the output concatenates the nodes."""

    def __init__(
        self,
        steps: int,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        k: int = 1,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, channels, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=False)
        self.ops = nn.ModuleList()
        for n in range(steps):
            for src in range(n + 2):
                stride = 2 if reduction and src < 2 else 1
                self.ops.append(MixedOp(channels, stride, DARTS_PRIMITIVES, k, pool_bn=True))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | None,
        edge_weights: torch.Tensor | None = None,
        path: Sequence[int] | None = None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            total = None
            for j, h in enumerate(states):
                e = offset + j
                term = self.ops[e](
                    h, None if weights is None else weights[e], None if path is None else path[e]
                )
                if edge_weights is not None:
                    term = edge_weights[e] * term
                total = term if total is None else total + term
            offset += len(states)
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(Supernet):
    """DARTS' search network (``model_search.Network``) over the ``darts`` space.

    Args:
        C: channels of the first cells (16 in the paper's search, doubled at reductions).
        layers: number of cells (8 in the paper's search).
        num_classes: classifier outputs.
        in_channels: image channels.
        k: PC-DARTS partial-channel ratio (1 = DARTS); ``C`` must be divisible by ``k``.
        edge_norm: add PC-DARTS' edge normalisation β.
        stem_multiplier: stem channels = ``stem_multiplier * C``.
    """

    primitives = DARTS_PRIMITIVES
    edges = DARTS_EDGES
    cell_types = ("normal", "reduce")
    inputs_per_node = tuple(n + 2 for n in range(DARTS_NODES))

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        k: int = 1,
        edge_norm: bool = False,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        _check_size(C=C, layers=layers, k=k)
        if C % k:
            raise ValueError(f"C ({C}) must be divisible by pc_k ({k}) for partial channels")
        self.C, self.layers, self.k = C, layers, k
        self.reduction_layers = default_reduction_layers(layers)
        steps = DARTS_NODES
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c_curr *= 2
            cell = DartsSearchCell(
                steps, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, k
            )
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, steps * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self._init_arch(edge_norm)

    def forward(
        self,
        x: torch.Tensor,
        path: Mapping[str, Sequence[int]] | None = None,
        path_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits of the mixed supernet, or of the single path ``path`` (see ``Supernet``)."""
        weights = _forward_weights(self, path, path_weights)
        edges = self.edge_weights() or {}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            cell_path = None if path is None else path[kind]
            s0, s1 = s1, cell(s0, s1, weights.get(kind), edges.get(kind), cell_path)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))


# ------------------------------------------------------------------------------ NB201 space
class NB201SearchCell(nn.Module):
    """NB201 search cell: node j = sum over i < j of mixed op (j<-i) of node i."""

    def __init__(
        self, channels: int, k: int = 1, primitives: Sequence[str] = NB201_PRIMITIVES
    ) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            MixedOp(channels, 1, primitives, k) for _ in range(len(NB201_EDGES))
        )

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None,
        edge_weights: torch.Tensor | None = None,
        path: Sequence[int] | None = None,
    ) -> torch.Tensor:
        nodes = [x]
        e = 0
        for j in (1, 2, 3):
            total = None
            for i in range(j):
                term = self.ops[e](
                    nodes[i],
                    None if weights is None else weights[e],
                    None if path is None else path[e],
                )
                if edge_weights is not None:
                    term = edge_weights[e] * term
                total = term if total is None else total + term
                e += 1
            nodes.append(total)
        return nodes[3]


class NB201Supernet(Supernet):
    """The NB201 macro network with search cells sharing one α (6 edges x 5 ops).

    Args:
        C: channels of the first stage (16 in NB201).
        N: search cells per stage (5 in NB201).
        num_classes: classifier outputs.
        in_channels: image channels.
        k: PC-DARTS partial-channel ratio (1 = DARTS); ``C`` must be divisible by ``k``.
        edge_norm: add PC-DARTS' edge normalisation β.
        primitives: candidate ops, a subset of the 5 NB201 ops in their order (the space's
            ``ops`` option, e.g. without ``none``).
    """

    edges = tuple(NB201_EDGES)
    cell_types = ("normal",)
    inputs_per_node = (1, 2, 3)

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        k: int = 1,
        edge_norm: bool = False,
        primitives: Sequence[str] = NB201_PRIMITIVES,
    ) -> None:
        super().__init__()
        _check_size(C=C, N=N, k=k)
        bad = [p for p in primitives if p not in NB201_PRIMITIVES]
        if bad or not [p for p in primitives if p != "none"]:
            raise ValueError(
                f"invalid nb201 supernet ops {list(primitives)}; choose a subset of "
                f"{', '.join(NB201_PRIMITIVES)} with at least one op other than 'none'"
            )
        self.primitives = tuple(primitives)
        if C % k:
            raise ValueError(f"C ({C}) must be divisible by pc_k ({k}) for partial channels")
        self.C, self.N, self.k = C, N, k
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(channels, 2 * channels))
                channels *= 2
            layers.extend(NB201SearchCell(channels, k, self.primitives) for _ in range(N))
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self._init_arch(edge_norm)

    def forward(
        self,
        x: torch.Tensor,
        path: Mapping[str, Sequence[int]] | None = None,
        path_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits of the mixed supernet, or of the single path ``path`` (see ``Supernet``)."""
        weights = _forward_weights(self, path, path_weights).get("normal")
        edges = self.edge_weights()
        edge_w = None if edges is None else edges["normal"]
        cell_path = None if path is None else path["normal"]
        x = self.stem(x)
        for cell in self.cells:
            if isinstance(cell, NB201SearchCell):
                x = cell(x, weights, edge_w, cell_path)
            else:
                x = cell(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


# ------------------------------------------------------------------------------ factory
#: Macro options of each space's supernet and their defaults (the papers' search settings).
SUPERNET_OPTIONS: dict[str, dict[str, int]] = {
    "darts": {"C": 16, "layers": 8},
    "nb201": {"C": 16, "N": 5},
}


def _check_size(**values: int) -> None:
    for key, value in values.items():
        check_int(key, value, 1)


def check_supernet_options(space_name: str, options: dict[str, Any]) -> dict[str, int]:
    """Validate the macro options of a space's supernet; returns them with defaults filled.

    Raises:
        ValueError: unsupported space, or an unknown or invalid option.
    """
    if space_name not in SUPERNET_OPTIONS:
        raise ValueError(
            f"no supernet for search space {space_name!r}; choose one of: "
            f"{', '.join(SUPERNET_OPTIONS)}"
        )
    valid = SUPERNET_OPTIONS[space_name]
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown supernet option {key!r} for space {space_name!r}; "
                f"valid options: {', '.join(valid)}"
            )
    merged = {**valid, **options}
    _check_size(**merged)
    return merged


def build_supernet(
    space_name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    k: int = 1,
    edge_norm: bool = False,
    primitives: Sequence[str] | None = None,
    **options: int,
) -> Supernet:
    """The supernet of ``space_name`` ("darts" or "nb201").

    Args:
        space_name: the search space's registry name.
        num_classes: classifier outputs.
        in_channels: image channels.
        k: PC-DARTS partial-channel ratio (1 = DARTS).
        edge_norm: PC-DARTS edge normalisation.
        primitives: nb201 only: candidate ops (default: all 5); the darts supernet always
            uses ``DARTS_PRIMITIVES``.
        **options: macro options (``C``, ``layers`` for darts; ``C``, ``N`` for nb201).
    """
    opts = check_supernet_options(space_name, options)
    common = {"num_classes": num_classes, "in_channels": in_channels, "k": k}
    if space_name == "darts":
        if primitives is not None and tuple(primitives) != DARTS_PRIMITIVES:
            raise ValueError(f"the darts supernet uses the ops {', '.join(DARTS_PRIMITIVES)}")
        return DartsSupernet(edge_norm=edge_norm, **common, **opts)
    return NB201Supernet(
        edge_norm=edge_norm, primitives=primitives or NB201_PRIMITIVES, **common, **opts
    )
