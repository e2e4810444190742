"""The SearchSpace contract, checked for every registered space (and the macro variants)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import search_spaces
from search_spaces.base import SearchSpace

# Small build options per space so forward passes stay fast on CPU.
SMALL = {
    "nb201": {"C": 4, "N": 1},
    "darts": {"C": 8, "layers": 3},
    "mobilenetv3": {"width_mult": 0.35},
    "macro": {},
}
INPUT = {"mobilenetv3": 64}
SPACES = [(name, {}) for name in search_spaces.names()] + [
    ("macro", {"micro": "darts", "channels": [8]})
]
IDS = [f"{n}-{o.get('micro', '')}".rstrip("-") for n, o in SPACES]


@pytest.fixture(params=SPACES, ids=IDS)
def space(request) -> SearchSpace:
    name, options = request.param
    return search_spaces.get(name, **options)


def test_registry_lists_every_space():
    assert search_spaces.names() == ["darts", "macro", "mobilenetv3", "nb201"]


def test_unknown_space_lists_valid_names():
    with pytest.raises(ValueError, match="unknown search space 'nb210'; choose one of: darts"):
        search_spaces.get("nb210")


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="unknown option 'channels' for search space 'nb201'"):
        search_spaces.get("nb201", channels=3)


def test_tune_space_is_flat_dict_of_domains(space):
    from ray.tune.search.sample import Domain

    tune_space = space.tune_space()
    assert tune_space and all(isinstance(v, Domain) for v in tune_space.values())
    assert all(isinstance(k, str) and "." in k for k in tune_space)


def test_round_trip_encode_decode_to_str(space):
    rng = np.random.default_rng(0)
    for _ in range(20):
        genotype = space.sample(rng)
        config = space.encode(genotype)
        assert space.encode(space.decode(config)) == config
        assert space.to_str(space.decode(config)) == space.to_str(genotype)
        assert space.to_str(space.from_str(space.to_str(genotype))) == space.to_str(genotype)
        json.dumps(space.to_json(genotype))


def test_tune_samples_decode(space):
    """Configs drawn by Tune's own sampler from tune_space() are valid; re-encoding gives the
    canonical config of the same architecture (inactive keys, if any, are normalised)."""
    for key_seed in range(5):
        rng = np.random.default_rng(key_seed)
        config = {k: d.sample(random_state=rng) for k, d in space.tune_space().items()}
        genotype = space.decode(config)
        canonical = space.encode(genotype)
        assert space.to_str(space.decode(canonical)) == space.to_str(genotype)
        assert space.encode(space.decode(canonical)) == canonical


def test_sampling_uses_only_the_given_rng(space):
    a = [space.to_str(space.sample(np.random.default_rng(7))) for _ in range(2)]
    assert a[0] == a[1]


def test_mutate_changes_architecture(space):
    rng = np.random.default_rng(1)
    genotype = space.sample(rng)
    for _ in range(10):
        child = space.mutate(genotype, rng)
        assert space.to_str(child) != space.to_str(genotype)


def test_neighbours_are_distinct_and_one_step(space):
    genotype = space.sample(np.random.default_rng(2))
    strs = [space.to_str(n) for n in space.neighbours(genotype)]
    assert strs and len(set(strs)) == len(strs)
    assert space.to_str(genotype) not in strs


def test_invalid_config_names_key_and_allowed(space):
    config = space.encode(space.sample(np.random.default_rng(3)))
    key = next(iter(config))
    with pytest.raises(ValueError, match=f"invalid value 'bogus' for '{key}'; allowed: "):
        space.decode(dict(config, **{key: "bogus"}))
    with pytest.raises(ValueError, match="unknown key 'nope'"):
        space.decode(dict(config, nope=1))
    config.pop(key)
    with pytest.raises(ValueError, match=f"missing key '{key}'"):
        space.decode(config)


def test_size_is_positive_and_matches_small_spaces(space):
    assert space.size() > 1
    if space.name == "nb201":
        assert space.size() == 15625


@pytest.mark.parametrize(("name", "options"), SPACES, ids=IDS)
def test_build_and_forward(name, options):
    space = search_spaces.get(name, **options)
    genotype = space.sample(np.random.default_rng(4))
    model = space.build(genotype, num_classes=7, **SMALL[name])
    model.eval()
    size = INPUT.get(name, 32)
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
