"""Tests of the DARTS cell space and its evaluation network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import search_spaces
from search_spaces.darts import (
    DARTS_V2,
    NODES,
    OPS,
    PUBLISHED,
    DartsSpace,
    Genotype,
    canonical,
)

SMALL = {"C": 8, "layers": 5}


@pytest.fixture(scope="module")
def space() -> DartsSpace:
    return DartsSpace()


def _random_config(space: DartsSpace, rng: np.random.Generator) -> dict:
    return {k: v[int(rng.integers(len(v)))] for k, v in space.choices().items()}


def test_registry_builds_darts_with_options():
    space = search_spaces.get("darts", C=16, layers=8)
    assert isinstance(space, DartsSpace)
    assert (space.C, space.layers) == (16, 8)
    with pytest.raises(ValueError, match="valid options"):
        search_spaces.get("darts", N=5)


def test_tune_space_is_flat_with_dotted_keys_and_all_pairs(space):
    choices = space.choices()
    assert len(choices) == 24
    for cell in ("normal", "reduce"):
        for n in range(4):
            pairs = choices[f"{cell}.n{n}.inputs"]
            assert len(pairs) == math.comb(n + 2, 2)
            assert all(int(a) < int(b) <= n + 1 for a, b in (p.split(",") for p in pairs))
            assert choices[f"{cell}.n{n}.op0"] == OPS == choices[f"{cell}.n{n}.op1"]


def test_size_counts_every_distinct_architecture(space):
    per_cell = math.prod(math.comb(n + 2, 2) * len(OPS) ** 2 for n in range(4))
    assert space.size() == per_cell**2 == 1_076_746_950_455_072_400


def test_encode_decode_round_trip_is_exact_on_random_configs(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = _random_config(space, rng)
        genotype = space.decode(config)
        assert space.encode(genotype) == config
        assert space.from_str(space.to_str(genotype)) == genotype


def test_tune_domain_samples_decode(space):
    for _ in range(20):
        config = {k: d.sample() for k, d in space.tune_space().items()}
        genotype = space.decode(config)
        # decoding keeps every sampled choice: encoding it back gives the sample itself
        assert space.encode(genotype) == config
        assert len(genotype.normal) == len(genotype.reduce) == 2 * NODES


@pytest.mark.parametrize("searcher", ["optuna", "hyperopt"])
def test_peer_searcher_suggestions_decode(space, searcher):
    if searcher == "optuna":
        pytest.importorskip("optuna")
        from ray.tune.search.optuna import OptunaSearch as cls
    else:
        pytest.importorskip("hyperopt")
        from ray.tune.search.hyperopt import HyperOptSearch as cls
    algo = cls()
    algo.set_search_properties("acc", "max", space.tune_space())
    for i in range(3):
        config = algo.suggest(f"trial_{i}")
        assert set(config) == set(space.tune_space())
        assert space.encode(space.decode(config)) == config


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotype_round_trips(space, name):
    genotype = PUBLISHED[name]
    canon = canonical(genotype)
    assert all(a[1] < b[1] for a, b in zip(canon.normal[::2], canon.normal[1::2], strict=True))
    assert space.decode(space.encode(genotype)) == canon
    assert space.to_str(genotype) == space.to_str(canon) == repr(canon)
    assert space.from_str(space.to_str(genotype)) == canon
    assert space.encode(canon) == space.encode(genotype)


def test_encode_accepts_pairs_in_either_order(space):
    # DARTS_V2's reduce node 1 is published as ('skip_connect', 2), ('max_pool_3x3', 1).
    config = space.encode(DARTS_V2)
    assert config["reduce.n1.inputs"] == "1,2"
    assert config["reduce.n1.op0"] == "max_pool_3x3"
    assert config["reduce.n1.op1"] == "skip_connect"


def test_from_str_reads_published_text_with_range_concat(space):
    text = repr(DARTS_V2).replace("[2, 3, 4, 5]", "range(2, 6)")
    assert space.from_str(text) == canonical(DARTS_V2)


@pytest.mark.parametrize("text", ["", "Genotype(normal=[])", "foo(1)", "Genotype(normal=x)"])
def test_from_str_rejects_garbage(space, text):
    with pytest.raises(ValueError):
        space.from_str(text)


def test_to_json_lists_pairs_and_concats(space):
    data = space.to_json(DARTS_V2)
    assert set(data) == {"normal", "normal_concat", "reduce", "reduce_concat"}
    assert data["normal"][0] == ["sep_conv_3x3", 0]
    assert data["reduce_concat"] == [2, 3, 4, 5]


def test_genotype_with_repeated_input_raises(space):
    normal = list(DARTS_V2.normal)
    normal[0:2] = [("sep_conv_3x3", 1), ("skip_connect", 1)]
    with pytest.raises(ValueError, match="twice"):
        space.encode(DARTS_V2._replace(normal=normal))


def test_genotype_with_other_concat_raises(space):
    with pytest.raises(ValueError, match="reduce_concat"):
        space.encode(DARTS_V2._replace(reduce_concat=[4, 5]))


def test_genotype_with_none_op_raises(space):
    normal = [("none", 0)] + list(DARTS_V2.normal[1:])
    with pytest.raises(ValueError, match="'none'"):
        space.to_str(Genotype(normal, [2, 3, 4, 5], DARTS_V2.reduce, [2, 3, 4, 5]))


def test_invalid_op_in_config_names_key(space):
    config = dict(space.encode(DARTS_V2), **{"normal.n2.op1": "conv_7x7"})
    with pytest.raises(ValueError, match=r"normal\.n2\.op1.*sep_conv_3x3"):
        space.decode(config)


def test_invalid_pair_in_config_names_key(space):
    config = dict(space.encode(DARTS_V2), **{"reduce.n1.inputs": "2,1"})
    with pytest.raises(ValueError, match=r"reduce\.n1\.inputs.*'0,1', '0,2', '1,2'"):
        space.decode(config)


def test_unknown_key_in_config_raises(space):
    config = dict(space.encode(DARTS_V2), **{"normal.n4.inputs": "0,1"})
    with pytest.raises(ValueError, match=r"normal\.n4\.inputs"):
        space.decode(config)


def test_missing_key_in_config_raises(space):
    config = space.encode(DARTS_V2)
    del config["reduce.n3.op0"]
    with pytest.raises(ValueError, match=r"reduce\.n3\.op0"):
        space.decode(config)


def test_sample_is_reproducible_from_rng(space):
    a = space.sample(np.random.default_rng(7))
    b = space.sample(np.random.default_rng(7))
    assert space.to_str(a) == space.to_str(b)


def test_mutate_changes_architecture(space):
    rng = np.random.default_rng(1)
    genotype = canonical(DARTS_V2)
    for _ in range(20):
        child = space.mutate(genotype, rng)
        assert space.to_str(child) != space.to_str(genotype)
        genotype = child


def test_neighbours_are_distinct_one_step_changes(space):
    genotype = canonical(DARTS_V2)
    neighbours = space.neighbours(genotype)
    strings = {space.to_str(g) for g in neighbours}
    # Per cell: (pairs - 1) input changes + 6 + 6 op changes for each of the 4 nodes.
    assert (
        len(neighbours) == len(strings) == 2 * sum(math.comb(n + 2, 2) - 1 + 12 for n in range(4))
    )
    assert space.to_str(genotype) not in strings
    config = space.encode(genotype)
    for g in neighbours:
        assert sum(v != config[k] for k, v in space.encode(g).items()) == 1


def test_darts_v2_has_3_3m_parameters_without_auxiliary_head():
    model = DartsSpace(auxiliary=True).build(DARTS_V2, num_classes=10, C=36, layers=20)
    params = model.num_parameters(include_auxiliary=False)
    head = sum(p.numel() for p in model.auxiliary_head.parameters())
    assert abs(params - 3.3e6) / 3.3e6 < 0.03, params
    assert model.num_parameters(include_auxiliary=True) == params + head
    assert sum(p.numel() for p in DartsSpace().build(DARTS_V2).parameters()) == params


def test_forward_gives_logits_in_eval_mode():
    model = DartsSpace(**SMALL).build(DARTS_V2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_auxiliary_head_adds_logits_in_train_mode_only():
    model = DartsSpace(**SMALL, auxiliary=True, drop_path_prob=0.2).build(DARTS_V2)
    model.train()
    logits, logits_aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == logits_aux.shape == (2, 10)
    (logits.sum() + 0.4 * logits_aux.sum()).backward()
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_build_options_override_space_defaults(space):
    model = space.build(DARTS_V2, num_classes=7, in_channels=1, C=4, layers=3)
    assert model.reduction_layers == (1, 2)
    assert model.eval()(torch.randn(2, 1, 16, 16)).shape == (2, 7)


@pytest.mark.parametrize(
    ("layers", "reductions", "size"), [(8, (2, 5), 8), (3, (), 32), (4, (0, 1), 8)]
)
def test_custom_reduction_layers(space, layers, reductions, size):
    model = space.build(DARTS_V2, C=4, layers=layers, reduction_layers=reductions, auxiliary=True)
    seen = []
    model.cells[-1].register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    model.train()
    logits, logits_aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == logits_aux.shape == (2, 10)
    assert seen == [size]


@pytest.mark.parametrize("reductions", [(5, 2), (2, 2), (8,), (-1,)])
def test_invalid_reduction_layers_raise(reductions):
    with pytest.raises(ValueError, match="reduction"):
        DartsSpace(layers=8, reduction_layers=reductions)


@pytest.mark.parametrize("option", [{"C": 0}, {"layers": 0}, {"drop_path_prob": 1.0}])
def test_invalid_space_options_raise(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        DartsSpace(**option)
