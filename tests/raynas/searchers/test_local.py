"""LocalSearcher: local search with restarts over raynas spaces and plain flat Tune spaces."""

from __future__ import annotations

import math
import pickle

import cloudpickle
import numpy as np
import pytest
from helpers import table_loop, table_tuner
from ray import tune

import search_spaces
from raynas.benchmarks import nb201
from raynas.searchers.local import LocalSearcher, make_local


def _nb201():
    return search_spaces.get("nb201")


def _arch(space, config) -> str:
    return space.to_str(space.decode(config))


def _val(space, config) -> float:
    return nb201.table().lookup(_arch(space, config), "cifar10").val_acc


def _distance(space, a, b) -> int:
    """Decisions in which two nb201 configs differ."""
    return sum(a[k] != b[k] for k in space.tune_space())


def _searcher(space=None, seed=0, **options) -> LocalSearcher:
    return make_local(space or _nb201(), "val_acc", "max", seed, **options)


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("n_init", 0, "n_init must be an integer >= 1, got 0"),
        ("n_init", 2.5, "n_init must be an integer >= 1, got 2.5"),
        ("sample_neighbours", 0, "sample_neighbours must be an integer >= 1, got 0"),
    ],
)
def test_local_rejects_bad_options_naming_the_value(option, value, message):
    with pytest.raises(ValueError, match=message):
        _searcher(**{option: value})


def test_local_refuses_a_continuous_space_without_sampling():
    searcher = LocalSearcher(metric="loss", mode="min")
    with pytest.raises(ValueError, match="cannot enumerate the neighbours of continuous key 'lr'"):
        searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1e-1)})


def test_local_refuses_a_neighbourhood_too_large_to_enumerate():
    space = search_spaces.get("macro", channels=list(range(2, 12_002, 2)))
    with pytest.raises(ValueError, match="cannot enumerate the neighbours in space 'macro'"):
        _searcher(space)
    _searcher(space, sample_neighbours=20)  # with sampling it is fine


# ------------------------------------------------------------------------------ the climb
def test_local_climbs_from_the_best_of_n_init_random_architectures():
    space = _nb201()
    searcher = _searcher(space, n_init=5)
    first = table_loop(searcher, space, 5)
    best = max(first, key=lambda c: _val(space, c))
    nxt = searcher.suggest("next")
    assert searcher.current[0] == best
    assert _distance(space, nxt, best) == 1


def test_local_moves_to_the_first_improving_neighbour():
    space = _nb201()
    searcher = _searcher(space, n_init=1)
    start = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 50.0})
    worse = searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"val_acc": 40.0})
    assert searcher.current[0] == start
    better = searcher.suggest("t2")
    searcher.on_trial_complete("t2", {"val_acc": 60.0})
    assert searcher.current[0] == better and worse != better
    assert _distance(space, searcher.suggest("t3"), better) == 1


def test_local_restarts_at_a_local_optimum():
    space = _nb201()
    searcher = _searcher(space, n_init=1)
    start = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 90.0})
    neighbours = [searcher.suggest(f"n{i}") for i in range(24)]  # every nb201 neighbour
    assert all(_distance(space, n, start) == 1 for n in neighbours)
    assert len({_arch(space, n) for n in neighbours}) == 24
    for i in range(24):
        searcher.on_trial_complete(f"n{i}", {"val_acc": 10.0})
    restart = searcher.suggest("r0")
    assert searcher.start == 1 and searcher.current is None
    assert _arch(space, restart) not in {_arch(space, c) for c in [start, *neighbours]}


def test_local_suggests_while_the_neighbourhood_is_in_flight():
    # With the whole neighbourhood pending the searcher does not wait (nor restart).
    space = _nb201()
    searcher = _searcher(space, n_init=1)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 90.0})
    configs = [searcher.suggest(f"p{i}") for i in range(40)]
    assert all(c is not None for c in configs)
    assert len({_arch(space, c) for c in configs}) == 40
    assert searcher.start == 0  # the local optimum is not known yet


def test_local_ignores_results_of_an_earlier_start_for_the_climb():
    space = _nb201()
    searcher = _searcher(space, n_init=1)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 90.0})
    for i in range(24):
        searcher.suggest(f"n{i}")
    straggler = searcher.suggest("late")  # fallback while the neighbourhood is in flight
    for i in range(24):
        searcher.on_trial_complete(f"n{i}", {"val_acc": 10.0})
    fresh = searcher.suggest("r0")  # restart
    searcher.on_trial_complete("r0", {"val_acc": 20.0})
    searcher.on_trial_complete("late", {"val_acc": 95.0})
    assert searcher.current[0] == fresh
    assert searcher.history[-1] == (straggler, 95.0)


def test_local_never_resuggests_an_architecture():
    space = _nb201()
    configs = table_loop(_searcher(space, seed=3), space, 300)
    assert len({_arch(space, c) for c in configs}) == 300


def test_local_reaches_the_optimum_region_of_nb201():
    space = _nb201()
    configs = table_loop(_searcher(space, seed=0), space, 300)
    _, optimum = nb201.table().optimum("cifar10")
    assert optimum - max(_val(space, c) for c in configs) < 0.3


def test_local_exhausts_a_tiny_space_then_allows_duplicates():
    space = search_spaces.get("nb201", ops=["none", "skip_connect"])  # 64 cells
    configs = table_loop(_searcher(space), space, 70)
    assert len({_arch(space, c) for c in configs[:64]}) == 64


@pytest.mark.parametrize("name", ["darts", "mobilenetv3", "macro"])
def test_local_steps_are_one_decision_on_every_space(name):
    space = search_spaces.get(name)
    searcher = _searcher(space, n_init=2, seed=1)
    rng = np.random.default_rng(0)
    for i in range(2):
        searcher.suggest(f"i{i}")
        searcher.on_trial_complete(f"i{i}", {"val_acc": float(rng.random())})
    current = space.decode(searcher.current[0])
    neighbours = {space.to_str(g) for g in space.neighbours(current)}
    for i in range(5):
        config = searcher.suggest(f"t{i}")
        assert space.to_str(space.decode(config)) in neighbours


# --------------------------------------------------------------------- forgiving callbacks
def test_local_ignores_results_for_unknown_trials():
    searcher = _searcher()
    searcher.on_trial_complete("never-suggested", {"val_acc": 99.0})
    assert searcher.current is None and searcher.history == []


@pytest.mark.parametrize(
    ("result", "error"),
    [({"val_acc": float("nan")}, False), ({"val_acc": 90.0}, True), ({}, False), (None, False)],
)
def test_local_failed_trials_never_become_current(result, error):
    searcher = _searcher(n_init=1)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", result, error=error)
    assert searcher.current is None and searcher.history[0][1] is None
    assert searcher.suggest("t1") is not None


def test_local_learns_from_a_trial_run_again_after_an_error(tmp_path):
    space = _nb201()
    first = _searcher(space, n_init=1)
    config = first.suggest("t1")
    first.on_trial_complete("t1", error=True)
    first.save(str(tmp_path / "state.pkl"))
    searcher = _searcher(space, seed=7)
    searcher.restore(str(tmp_path / "state.pkl"))
    searcher.on_trial_complete("t1", {"val_acc": 93.0, "config": dict(config)})
    assert searcher.current[0] == config


# ------------------------------------------------------------------------------- state
def test_local_save_restore_round_trip_continues_identically(tmp_path):
    space = _nb201()
    twin, first = _searcher(space, seed=3), _searcher(space, seed=3)
    for s in (twin, first):
        table_loop(s, space, 17)
    pending = [(s.suggest("a"), s.suggest("b")) for s in (twin, first)]
    assert pending[0] == pending[1]
    first.save(str(tmp_path / "searcher.pkl"))
    restored = _searcher(space, seed=99, n_init=3)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.n_init == 10
    for s in (twin, restored):
        s.on_trial_complete("b", {"val_acc": _val(space, pending[0][1])})
        s.on_trial_complete("a", {"val_acc": _val(space, pending[0][0])})
    assert table_loop(twin, space, 60, 100) == table_loop(restored, space, 60, 100)
    assert restored.start == twin.start and restored.current == twin.current


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_local_pickle_round_trip(dumps):
    space = _nb201()
    searcher = _searcher(space, seed=4)
    table_loop(searcher, space, 15)
    copy = pickle.loads(dumps(searcher))
    assert table_loop(copy, space, 30, 15) == table_loop(searcher, space, 30, 15)


# ------------------------------------------------------------------------- flat Tune spaces
def test_local_samples_neighbours_of_a_continuous_flat_space():
    searcher = LocalSearcher(metric="loss", mode="min", seed=0, n_init=4, sample_neighbours=6)
    flat = {
        "lr": tune.loguniform(1e-5, 1e-1),
        "layers": tune.randint(1, 6),
        "act": tune.choice(["relu", "gelu"]),
    }
    assert searcher.set_search_properties(None, None, flat)
    configs = []
    for i in range(80):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        loss = (math.log10(config["lr"]) + 3) ** 2 + abs(config["layers"] - 3)
        searcher.on_trial_complete(f"t{i}", {"loss": loss})
    for c in configs:
        assert 1e-5 <= c["lr"] <= 1e-1 and c["layers"] in range(1, 6)
    best = min(configs, key=lambda c: (math.log10(c["lr"]) + 3) ** 2 + abs(c["layers"] - 3))
    assert abs(math.log10(best["lr"]) + 3) < 0.5 and best["layers"] == 3


def test_local_enumerates_a_finite_flat_space():
    searcher = LocalSearcher(metric="score", mode="max", seed=0, n_init=1)
    flat = {"a": tune.choice([0, 1, 2]), "b": tune.randint(0, 4)}
    assert searcher.set_search_properties(None, None, flat)
    configs = []
    for i in range(12):
        config = searcher.suggest(f"t{i}")
        configs.append((config["a"], config["b"]))
        searcher.on_trial_complete(f"t{i}", {"score": config["a"] + config["b"]})
    assert len(set(configs)) == 12  # the whole grid, no repeat
    # two moves reach the top from anywhere: five neighbours each at most
    assert (2, 3) in configs[:11]


# ------------------------------------------------------------------------------ in a Tuner
def test_local_runs_in_a_tuner_with_four_trials_in_flight(ray_address, tmp_path):
    space = _nb201()
    searcher = make_local(space, "val_acc", "max", seed=0, n_init=4)
    grid = table_tuner(space, searcher, tmp_path, "local", 16, 4).fit()
    assert not grid.errors
    archs = [r.metrics["arch"] for r in grid]
    assert len(archs) == 16 and len(set(archs)) == 16
    assert searcher.pending == {} and searcher.current is not None
