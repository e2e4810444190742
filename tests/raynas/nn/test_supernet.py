"""Supernets: mixed ops, partial channels, edge normalisation, DARTS/NB201 derivation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import search_spaces
from raynas.nn.supernet import (
    DARTS_EDGES,
    DARTS_PRIMITIVES,
    NB201_PRIMITIVES,
    MixedOp,
    build_supernet,
    channel_shuffle,
)
from raynas.oneshot.derive import derive_darts, derive_nb201, genotype


def _one_hot_weights(index: int, n: int, scale: float = 100.0) -> torch.Tensor:
    alpha = torch.zeros(n)
    alpha[index] = scale
    return torch.softmax(alpha, dim=0)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", DARTS_PRIMITIVES)
def test_mixed_op_equals_the_single_op_for_one_hot_alpha(name, stride):
    torch.manual_seed(0)
    mixed = MixedOp(8, stride, DARTS_PRIMITIVES, pool_bn=True).train()
    x = torch.randn(4, 8, 8, 8)
    index = DARTS_PRIMITIVES.index(name)
    out = mixed(x, _one_hot_weights(index, len(DARTS_PRIMITIVES)))
    alone = mixed.ops[index](x)
    assert out.shape == (4, 8, 8 // stride, 8 // stride)
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)


def test_partial_channel_mixed_op_passes_the_other_channels_and_shuffles():
    torch.manual_seed(0)
    mixed = MixedOp(8, 1, NB201_PRIMITIVES, k=4)
    x = torch.randn(2, 8, 6, 6)
    # skip_connect on the first 8/4 channels is the identity: the output is x shuffled.
    out = mixed(x, _one_hot_weights(NB201_PRIMITIVES.index("skip_connect"), 5))
    torch.testing.assert_close(out, channel_shuffle(x, 4), atol=1e-5, rtol=0)
    assert sorted(channel_shuffle(torch.arange(8.0).view(1, 8, 1, 1), 4).flatten().tolist()) == [
        float(i) for i in range(8)
    ]
    reduce = MixedOp(8, 2, DARTS_PRIMITIVES, k=4, pool_bn=True)
    assert reduce(x, torch.full((8,), 1 / 8)).shape == (2, 8, 3, 3)
    assert sum(p.numel() for p in reduce.parameters()) < sum(
        p.numel() for p in MixedOp(8, 2, DARTS_PRIMITIVES, pool_bn=True).parameters()
    )


def test_alpha_shapes_and_parameter_split():
    darts = build_supernet("darts", C=4, layers=3)
    assert set(darts.alphas) == {"normal", "reduce"}
    assert darts.alphas["normal"].shape == (14, 8) == (len(DARTS_EDGES), len(DARTS_PRIMITIVES))
    assert darts.betas is None
    nb201 = build_supernet("nb201", C=4, N=1, k=2, edge_norm=True)
    assert nb201.alphas["normal"].shape == (6, 5) and nb201.betas["normal"].shape == (6,)
    arch = {id(p) for p in nb201.arch_parameters()}
    assert len(arch) == 2 and not arch & {id(p) for p in nb201.weight_parameters()}
    assert len(nb201.weight_parameters()) + 2 == len(list(nb201.parameters()))


@pytest.mark.parametrize(
    ("space", "build", "size"),
    [("darts", {"C": 4, "layers": 3}, 8), ("nb201", {"C": 4, "N": 1}, 8)],
)
@pytest.mark.parametrize("k", [1, 4])
def test_supernets_run_and_derive_a_genotype_of_the_space(space, build, size, k):
    torch.manual_seed(0)
    net = build_supernet(space, num_classes=3, k=k, edge_norm=k > 1, **build)
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in net.arch_parameters())
    spc = search_spaces.get(space)
    text = spc.to_str(genotype(net))
    assert spc.to_str(spc.from_str(text)) == text


def test_edge_weights_are_a_softmax_per_node():
    net = build_supernet("darts", C=4, layers=3, k=2, edge_norm=True)
    with torch.no_grad():
        net.betas["normal"].normal_()
    weights = net.edge_weights()["normal"].detach()
    sums = [float(part.sum()) for part in weights.split([2, 3, 4, 5])]
    assert sums == pytest.approx([1.0] * 4)


def _darts_weights(entries: dict[tuple[int, int], dict[str, float]]) -> np.ndarray:
    """14 x 8 weights: ``entries[(node, input)] = {op: weight}``, others 0.01."""
    w = np.full((len(DARTS_EDGES), len(DARTS_PRIMITIVES)), 0.01)
    for (node, src), ops in entries.items():
        row = DARTS_EDGES.index((node + 2, src))
        for op, value in ops.items():
            w[row, DARTS_PRIMITIVES.index(op)] = value
    return w


def test_darts_derivation_keeps_the_two_strongest_non_none_edges_per_node():
    normal = _darts_weights(
        {
            (0, 0): {"sep_conv_3x3": 0.5},
            (0, 1): {"none": 0.9, "skip_connect": 0.05},
            # node 1: input 0 is strongest only through ``none``: not kept.
            (1, 0): {"none": 0.95, "max_pool_3x3": 0.02},
            (1, 1): {"dil_conv_5x5": 0.3, "sep_conv_5x5": 0.2},
            (1, 2): {"avg_pool_3x3": 0.25},
            (2, 3): {"skip_connect": 0.4},
            (2, 1): {"sep_conv_3x3": 0.35},
            (3, 4): {"dil_conv_3x3": 0.6},
            (3, 0): {"max_pool_3x3": 0.5},
        }
    )
    reduce = _darts_weights({})
    genotype = derive_darts(normal, reduce)
    assert genotype.normal == [
        ("sep_conv_3x3", 0),
        ("skip_connect", 1),
        ("dil_conv_5x5", 1),
        ("avg_pool_3x3", 2),
        ("sep_conv_3x3", 1),
        ("skip_connect", 3),
        ("max_pool_3x3", 0),
        ("dil_conv_3x3", 4),
    ]
    # All-equal weights: ties go to the lower inputs and the first non-none op.
    assert genotype.reduce == [("max_pool_3x3", i) for i in (0, 1)] * 4
    assert "none" not in str(genotype)


def test_edge_normalisation_changes_which_edges_are_kept():
    torch.manual_seed(0)
    net = build_supernet("darts", C=4, layers=3, k=2, edge_norm=True)
    with torch.no_grad():
        net.alphas["normal"].zero_()
        net.alphas["normal"][:, DARTS_PRIMITIVES.index("sep_conv_3x3")] = 1.0
        net.betas["normal"].zero_()
        net.betas["normal"][DARTS_EDGES.index((5, 3))] = 5.0  # node 3 <- node 1 (state 3)
        net.betas["normal"][DARTS_EDGES.index((5, 4))] = 4.0
    normal = genotype(net).normal
    assert normal[6:] == [("sep_conv_3x3", 3), ("sep_conv_3x3", 4)]


def test_nb201_derivation_is_the_argmax_over_all_ops_including_none():
    alpha = np.zeros((6, 5))
    best = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"]
    for row, op in enumerate(best):
        alpha[row, NB201_PRIMITIVES.index(op)] = 1.0
    genotype = derive_nb201(alpha)
    assert genotype.ops == tuple(best)
    assert search_spaces.get("nb201").to_str(genotype) == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    )
    ops = ("skip_connect", "nor_conv_3x3")
    assert derive_nb201(np.eye(6, 2), ops).ops == (
        "skip_connect",
        "nor_conv_3x3",
        *["skip_connect"] * 4,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space_name": "mobilenetv3"}, "no supernet for search space 'mobilenetv3'"),
        ({"space_name": "darts", "N": 2}, "unknown supernet option 'N'"),
        ({"space_name": "nb201", "C": 6, "k": 4}, "must be divisible by pc_k"),
        ({"space_name": "darts", "layers": 0}, "layers must be an integer >= 1"),
    ],
)
def test_bad_supernet_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_supernet(**kwargs)
