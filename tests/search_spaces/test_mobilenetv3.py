"""Tests of the OFA-MobileNetV3 search space and its network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import search_spaces
from search_spaces.mobilenetv3 import (
    CANONICAL_EXPAND,
    CANONICAL_KERNEL,
    MobileNetV3Genotype,
    MobileNetV3Space,
)


def uniform(depth: int, kernel: int, expand: int) -> MobileNetV3Genotype:
    return MobileNetV3Genotype((depth,) * 5, (((kernel, expand),) * depth,) * 5)


SMALLEST = uniform(2, 3, 3)
LARGEST = uniform(4, 7, 6)


@pytest.fixture
def space() -> MobileNetV3Space:
    return MobileNetV3Space()


def samples(space: MobileNetV3Space, n: int = 50, seed: int = 0) -> list[MobileNetV3Genotype]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_get_accepts_space_options():
    space = search_spaces.get("mobilenetv3", width_mult=1.0, resolution=224)
    assert isinstance(space, MobileNetV3Space)
    assert space.resolution == 224 and space.width_mult == 1.0 and space.dropout == 0.1


def test_tune_space_keys_are_flat_and_dotted(space):
    keys = list(space.tune_space())
    assert keys[:5] == [f"s{s}.depth" for s in range(1, 6)]
    assert len(keys) == 5 + 5 * 4 * 2
    assert "s1.b1.kernel" in keys and "s5.b4.expand" in keys
    assert space.choices()["s3.depth"] == (2, 3, 4)
    assert space.choices()["s3.b2.kernel"] == (3, 5, 7)
    assert space.choices()["s3.b2.expand"] == (3, 4, 6)


def test_round_trips_are_exact_on_sampled_genotypes(space):
    for genotype in samples(space):
        config = space.encode(genotype)
        assert space.decode(config) == genotype
        assert space.encode(space.decode(config)) == config
        assert space.from_str(space.to_str(genotype)) == genotype
        restored = json.loads(json.dumps(space.to_json(genotype)))
        assert MobileNetV3Genotype(**restored) == genotype


def test_every_random_config_decodes(space):
    rng = np.random.default_rng(1)
    domains = space.tune_space()
    for _ in range(50):
        config = {k: d.categories[rng.integers(len(d.categories))] for k, d in domains.items()}
        genotype = space.decode(config)
        assert [len(stage) for stage in genotype.blocks] == list(genotype.depths)


def test_to_str_lists_only_active_blocks(space):
    genotype = MobileNetV3Genotype(
        (2, 3, 4, 2, 3),
        (
            ((3, 4), (5, 6)),
            ((3, 3), (7, 4), (5, 3)),
            ((7, 6),) * 4,
            ((3, 3), (3, 6)),
            ((5, 4), (5, 4), (3, 3)),
        ),
    )
    text = "d2-3-4-2-3|k3e4,k5e6:k3e3,k7e4,k5e3:k7e6,k7e6,k7e6,k7e6:k3e3,k3e6:k5e4,k5e4,k3e3"
    assert space.to_str(genotype) == text
    assert space.from_str(text) == genotype


@pytest.mark.parametrize(
    "text",
    [
        "",
        "d2-2-2-2|k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3",
        "d2-2-2-2-2|k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3",  # too few blocks in s5
        "d2-2-2-2-2|k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k9e3",  # bad kernel
        "d5-2-2-2-2|k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3",  # bad depth
        "d2-2-2-2-2|k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3 ",
    ],
)
def test_from_str_rejects_malformed_strings(space, text):
    with pytest.raises(ValueError):
        space.from_str(text)


def test_decode_ignores_inactive_block_keys(space):
    config = space.encode(SMALLEST)
    assert config["s2.b3.kernel"] == CANONICAL_KERNEL
    assert config["s2.b4.expand"] == CANONICAL_EXPAND
    changed = dict(config, **{"s2.b3.kernel": 7, "s2.b4.expand": 6, "s5.b3.expand": 4})
    assert space.decode(changed) == SMALLEST
    assert space.encode(space.decode(changed)) == config


def test_size_counts_distinct_architectures(space):
    per_stage = 9**2 + 9**3 + 9**4
    assert space.size() == per_stage**5
    assert 2.1e19 < space.size() < 2.3e19


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [("s3.depth", 5, "2, 3, 4"), ("s1.b2.kernel", 4, "3, 5, 7"), ("s5.b4.expand", 2, "3, 4, 6")],
)
def test_invalid_config_names_key_and_allowed_values(space, key, value, allowed):
    config = dict(space.encode(SMALLEST), **{key: value})
    with pytest.raises(ValueError, match=rf"{key}.*allowed: {allowed}"):
        space.decode(config)


def test_missing_or_unknown_key_is_rejected(space):
    config = space.encode(SMALLEST)
    with pytest.raises(ValueError, match="s4.b1.kernel"):
        space.decode({k: v for k, v in config.items() if k != "s4.b1.kernel"})
    with pytest.raises(ValueError, match="s6.depth"):
        space.decode(dict(config, **{"s6.depth": 2}))


def test_genotype_rejects_depth_and_block_mismatch():
    with pytest.raises(ValueError, match="s1"):
        MobileNetV3Genotype((3, 2, 2, 2, 2), SMALLEST.blocks)
    with pytest.raises(ValueError, match="s2.b1.expand"):
        MobileNetV3Genotype(SMALLEST.depths, (SMALLEST.blocks[0], ((3, 5), (3, 3))) + ((),) * 3)


def test_invalid_space_options_raise():
    with pytest.raises(ValueError, match="width_mult"):
        MobileNetV3Space(width_mult=0)
    with pytest.raises(ValueError, match="resolution"):
        MobileNetV3Space(resolution=0)
    with pytest.raises(ValueError, match="dropout"):
        MobileNetV3Space(dropout=1.0)


def test_mutate_always_changes_the_architecture(space):
    rng = np.random.default_rng(2)
    # SMALLEST has 32 inactive block keys out of 45, so most raw mutations are no-ops.
    for genotype in [SMALLEST, LARGEST, *samples(space, 20, seed=3)]:
        for _ in range(10):
            child = space.mutate(genotype, rng)
            assert space.to_str(child) != space.to_str(genotype)


def test_neighbours_are_distinct_and_one_decision_away(space):
    for genotype in [SMALLEST, LARGEST, *samples(space, 5, seed=4)]:
        neighbours = space.neighbours(genotype)
        texts = [space.to_str(n) for n in neighbours]
        assert len(set(texts)) == len(texts)
        assert space.to_str(genotype) not in texts
        # 2 other depths per stage, 2 other kernels + 2 other expands per active block.
        assert len(neighbours) == 5 * 2 + 4 * sum(genotype.depths)


def test_smallest_subnet_forward(space):
    model = space.build(SMALLEST).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10)


def test_random_subnet_forward_at_half_width(space):
    genotype = samples(space, 1, seed=5)[0]
    model = space.build(genotype, num_classes=7, in_channels=1, width_mult=0.5).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 7)
    assert n_params(model) < n_params(space.build(genotype, num_classes=7, in_channels=1))


def test_largest_subnet_has_ofa_parameter_count(space):
    # OFA reports 7.7M parameters for its full MobileNetV3 network (1000 classes).
    params = n_params(space.build(LARGEST, num_classes=1000))
    assert abs(params - 7.7e6) / 7.7e6 < 0.05


def test_blocks_match_built_model(space):
    genotype = samples(space, 1, seed=6)[0]
    listed = space.blocks(genotype, resolution=64, width_mult=0.5)
    assert len(listed) == 1 + sum(genotype.depths)
    model = space.build(genotype, width_mult=0.5).eval()
    assert len(model.blocks) == len(listed)
    seen = []
    hooks = [
        block.register_forward_hook(
            lambda m, inp, out: seen.append((inp[0].shape[1], inp[0].shape[2], out.shape[1]))
        )
        for block in model.blocks
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert seen == [(b["in_channels"], b["in_resolution"], b["out_channels"]) for b in listed]


def test_blocks_lists_skeleton_settings(space):
    listed = space.blocks(LARGEST)
    first = listed[0]
    assert (first["stage"], first["kernel"], first["expand"], first["stride"]) == (0, 3, 1, 1)
    assert (first["in_channels"], first["out_channels"], first["in_resolution"]) == (16, 16, 112)
    assert first["residual"] and not first["se"] and first["activation"] == "relu"
    heads = [b for b in listed if b["index"] == 1 and b["stage"] > 0]
    assert [b["out_channels"] for b in heads] == [24, 40, 80, 112, 160]
    assert [b["stride"] for b in heads] == [2, 2, 2, 1, 2]
    assert [b["activation"] for b in heads] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert [b["se"] for b in heads] == [False, True, False, True, True]
    assert [b["in_resolution"] for b in heads] == [112, 56, 28, 14, 14]
    assert all((b["kernel"], b["expand"]) == (7, 6) for b in listed[1:])
    assert all(b["residual"] == (b["index"] > 1) for b in listed[1:])
