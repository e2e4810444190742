"""Proxy-seeded search (``proxy_seed``): scored pool, top-k first, saved state, real Tuner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import table_loop, table_tuner

import search_spaces
from raynas import searchers
from raynas.benchmarks import nb201
from raynas.searchers import seeding
from raynas.searchers.evolution import EvolutionSearcher, make_evolution
from raynas.searchers.reinforce import make_reinforce
from raynas.trainables import proxy

# Real images (scikit-learn's bundled digits), a tiny NB201 network: scoring takes ~0.1 s each.
SEED = {
    "proxy": "naswot",
    "pool": 12,
    "top_k": 4,
    "dataset": "digits",
    "batch_size": 16,
    "build": {"C": 4, "N": 1},
    "seed": 3,
    "threads": 1,
}


def _space():
    return search_spaces.get("nb201")


def _evolution(seed=0, **options) -> EvolutionSearcher:
    options.setdefault("population_size", 6)
    options.setdefault("proxy_seed", SEED)
    return make_evolution(_space(), "val_acc", "max", seed, **options)


def _independent_scores(space, configs, options=SEED) -> list[float]:
    """The proxy trainable's own scores of ``configs`` (same network seed, batch, build)."""
    return [
        proxy.evaluate(
            space,
            config,
            [options["proxy"]],
            options["dataset"],
            None,
            options["batch_size"],
            options["seed"],
            options["build"],
        )[f"score_{options['proxy']}"]
        for config in configs
    ]


def _loop(searcher, space, n, start=0) -> list[dict]:
    return table_loop(searcher, space, n, start)


# ------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (3, "proxy_seed must be a mapping of options, got 3"),
        ({"proxy": "nasowt"}, "unknown zero-cost proxy 'nasowt'; choose one of:"),
        ({"pool": 0}, "proxy_seed.pool must be an integer >= 1, got 0"),
        ({"pool": 5, "top_k": 6}, r"proxy_seed.top_k must be <= pool \(5\), got 6"),
        ({"top_k": 2.5}, "proxy_seed.top_k must be an integer >= 1, got 2.5"),
        ({"dataset": "mnist"}, "unknown proxy_seed.dataset 'mnist'; choose one of:"),
        ({"batch_size": 1}, "proxy_seed.batch_size must be an integer >= 2, got 1"),
        ({"build": [16, 5]}, r"proxy_seed.build must be a mapping of build options, got \[16"),
        ({"device": "tpu"}, "proxy_seed.device must be auto, cpu or cuda"),
        ({"threads": 0}, "proxy_seed.threads must be an integer >= 1, got 0"),
        ({"pol": 10}, "unknown proxy_seed option 'pol'; valid options: proxy, pool, top_k"),
    ],
)
@pytest.mark.parametrize("name", ["evolution", "reinforce", "local", "bananas"])
def test_proxy_seed_rejects_bad_options_naming_them(name, spec, message):
    with pytest.raises(ValueError, match=message):
        searchers.make(name, _space(), "val_acc", "max", 0, proxy_seed=spec)


def test_proxy_seed_needs_a_raynas_space():
    with pytest.raises(ValueError, match="proxy_seed needs a raynas search space"):
        EvolutionSearcher(None, "val_acc", "max", proxy_seed=SEED)


# --------------------------------------------------------------------------- the seeds
@pytest.mark.slow
def test_top_k_seeds_are_the_k_best_proxy_scores_of_the_pool():
    space = _space()
    searcher = _evolution()
    searcher.suggest("t0")
    pool = searcher.proxy_pool
    assert len(pool["configs"]) == SEED["pool"]
    assert len(set(pool["archs"])) == SEED["pool"], "the pool holds distinct architectures"
    scores = _independent_scores(space, pool["configs"])
    assert np.allclose(pool["scores"], scores, rtol=1e-6)
    best = sorted(range(len(scores)), key=lambda i: -scores[i])[: SEED["top_k"]]
    assert pool["top"] == best
    assert [s for _, s in searcher.proxy_seeds()] == sorted(scores, reverse=True)[:4]
    assert pool["cost_s"] > 0


def test_top_indices_skip_non_finite_scores_and_keep_pool_order_on_ties():
    scores = [1.0, -math.inf, 3.0, 1.0, math.nan, 2.0]
    assert seeding.top_indices(scores, 3) == [2, 5, 0]
    assert seeding.top_indices(scores, 10) == [2, 5, 0, 3]


def test_evolution_suggests_seeds_first_then_fills_population_randomly():
    space = _space()
    point = space.encode(space.from_str(nb201.table().optimum("cifar10")[0]))
    searcher = _evolution(points_to_evaluate=[point])
    configs = _loop(searcher, space, 8)
    seeds = [c for c, _ in searcher.proxy_seeds()]
    assert configs[0] == point, "the user's points_to_evaluate still come first"
    assert configs[1:5] == seeds
    # population_size 6: one more random config fills it, then children of the best
    archs = {searcher.arch_key(c) for c in configs}
    assert len(archs) == 8
    assert len(searcher.population) == 6


def test_seeds_skip_infeasible_architectures():
    space = _space()
    searcher = _evolution(constraint={"params_m": {"max": 0.5}}, population_size=4)
    configs = _loop(searcher, space, 6)
    assert all(searcher.constraint(c) for c in searcher.proxy_pool["configs"])
    assert all(searcher.constraint(c) for c in configs)


def test_reinforce_suggests_seeds_first_and_learns_from_them():
    space = _space()
    searcher = make_reinforce(space, "val_acc", "max", 0, batch_size=4, proxy_seed=SEED)
    before = {k: v.clone() for k, v in _controller_state(searcher).items()}
    configs = _loop(searcher, space, 4)
    assert configs == [c for c, _ in searcher.proxy_seeds()]
    assert searcher.updates == 1, "the four seeds' rewards made one policy update"
    after = _controller_state(searcher)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert searcher.baseline is not None


def _controller_state(searcher) -> dict:
    searcher._ensure_controller()
    return searcher.controller.state_dict()


# -------------------------------------------------------------------------------- state
@pytest.mark.parametrize("name", ["evolution", "reinforce", "local", "bananas"])
def test_save_restore_keeps_the_pool_and_does_not_score_again(name, tmp_path, monkeypatch):
    space = _space()

    def make():
        return searchers.make(name, space, "val_acc", "max", 5, proxy_seed=SEED)

    twin, searcher = make(), make()
    expected = _loop(twin, space, 7)
    _loop(searcher, space, 2)
    searcher.save(str(tmp_path / "searcher.pkl"))

    def _fail(*args, **kwargs):
        raise AssertionError("the pool was scored again after restore")

    monkeypatch.setattr(seeding, "score_pool", _fail)
    restored = make()
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.proxy_pool == searcher.proxy_pool
    assert _loop(restored, space, 5, start=2) == expected[2:]


# ------------------------------------------------------------------------------ a Tuner
def test_proxy_seeded_evolution_in_a_tuner_evaluates_the_seeds_first(ray_address, tmp_path):
    space = _space()
    searcher = _evolution(population_size=4)
    grid = table_tuner(space, searcher, tmp_path, "seeded", 8, 2).fit()
    assert not grid.errors
    evaluated = {r.metrics["arch"] for r in grid}
    seeds = {space.to_str(space.decode(c)) for c, _ in searcher.proxy_seeds()}
    assert len(evaluated) == 8 and len(seeds) == SEED["top_k"]
    assert seeds <= evaluated
    # Trial ids are random, so the order shows in the searcher: with 2 trials in flight the
    # first two completions are among the first suggestions, i.e. seeds.
    first = {space.to_str(space.decode(c)) for c, _ in searcher.history[:2]}
    assert first <= seeds
