"""Numeric Tune domains: raynas's searchers draw and mutate only values Tune itself draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray import tune

from raynas.searchers.base import sample_domain
from raynas.searchers.evolution import EvolutionSearcher
from raynas.searchers.reinforce import ReinforceSearcher

INTEGERS = {
    "q5": tune.qrandint(3, 20, 5),  # multiples of 5 in [3, 20]: 5..20, upper included
    "q1": tune.qrandint(0, 10, 1),  # q == 1: upper excluded, as randint
    "q3": tune.qrandint(1, 10, 3),
    "plain": tune.randint(2, 5),
    "log": tune.lograndint(1, 8),
}


def tune_values(domain, n: int = 4000) -> set:
    """The values Ray's own sampler draws from ``domain``."""
    return set(domain.sample(size=n, random_state=np.random.default_rng(0)))


@pytest.mark.parametrize("name", sorted(INTEGERS))
def test_sample_domain_draws_the_integers_tune_draws(name):
    domain = INTEGERS[name]
    rng = np.random.default_rng(1)
    drawn = {sample_domain(domain, rng) for _ in range(2000)}
    assert drawn == tune_values(domain)
    assert all(type(v) is int for v in drawn)


def test_sample_domain_keeps_a_quantised_float_on_tune_grid():
    domain = tune.quniform(0.1, 1.0, 0.1)
    rng = np.random.default_rng(2)
    drawn = [sample_domain(domain, rng) for _ in range(2000)]
    assert min(drawn) >= 0.1 - 1e-12 and max(drawn) <= 1.0 + 1e-12
    assert all(math.isclose(v / 0.1, round(v / 0.1), abs_tol=1e-9) for v in drawn)
    assert {round(v, 6) for v in drawn} == {round(v, 6) for v in tune_values(domain)}


def run_searcher(searcher, n: int, score, check=None) -> dict[str, set]:
    """Suggest ``n`` configs of INTEGERS, report ``score(config)``; the values seen per key,
    each checked to be one Tune draws."""
    assert searcher.set_search_properties(None, None, dict(INTEGERS))
    seen = {k: set() for k in INTEGERS}
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        for k in INTEGERS:
            seen[k].add(config[k])
        if check is not None:
            check(config)
        searcher.on_trial_complete(f"t{i}", {"score": score(config)})
    for k, domain in INTEGERS.items():
        assert seen[k] <= tune_values(domain), k
    return seen


def test_evolution_mutates_only_to_values_tune_draws():
    searcher = EvolutionSearcher(metric="score", mode="max", seed=0, population_size=4)
    seen = run_searcher(searcher, 150, lambda c: float(sum(c.values())))
    assert seen["q5"] == {5, 10, 15, 20}  # mutation reaches both ends of the grid


def test_reinforce_suggests_only_values_tune_draws():
    searcher = ReinforceSearcher(metric="score", mode="max", seed=0, batch_size=4)

    def has_actions(config):
        assert searcher.actions_of(config) is not None

    run_searcher(searcher, 80, lambda c: float(c["q5"]), has_actions)
    assert {d.key: d.size for d in searcher.decisions}["q5"] == 4
