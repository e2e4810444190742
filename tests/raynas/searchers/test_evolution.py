"""EvolutionSearcher: regularized evolution over raynas spaces and plain flat Tune spaces."""

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
from raynas.registry import check_options
from raynas.searchers.evolution import (
    EvolutionSearcher,
    make_evolution,
    nondominated_ranks,
)

DATASET = "cifar10"


def _nb201(**options):
    return search_spaces.get("nb201", **options)


def _val(space, config) -> float:
    return nb201.table().lookup(space.to_str(space.decode(config)), DATASET).val_acc


def _searcher(space=None, seed=0, **options) -> EvolutionSearcher:
    options.setdefault("population_size", 8)
    options.setdefault("sample_size", 4)
    return make_evolution(space or _nb201(), "val_acc", "max", seed, **options)


def _loop(searcher, space, n, start=0) -> list[dict]:
    return table_loop(searcher, space, n, start)


def _arch(space, config) -> str:
    return space.to_str(space.decode(config))


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("population_size", 1, "population_size must be an integer >= 2, got 1"),
        ("sample_size", 0, "sample_size must be an integer >= 1, got 0"),
        ("sample_size", 9, r"sample_size must be <= population_size \(8\), got 9"),
        ("p_mutation", 1.5, r"p_mutation must be in \[0, 1\], got 1.5"),
        ("p_crossover", -0.1, r"p_crossover must be in \[0, 1\], got -0.1"),
        ("replacement", "youngest", "replacement must be one of: oldest, worst, got 'youngest'"),
        ("constraint", 3, "constraint must be a callable or a mapping of bounds, got 3"),
    ],
)
def test_evolution_rejects_bad_options_naming_the_value(option, value, message):
    with pytest.raises(ValueError, match=message):
        _searcher(**{option: value})


def test_evolution_factory_passes_registry_option_check():
    options = {"population_size": 10, "sample_size": 5, "replacement": "worst"}
    check_options(
        "searcher",
        "evolution",
        make_evolution,
        options,
        reserved={"space", "metric", "mode", "seed", "max_concurrent"},
    )
    with pytest.raises(ValueError, match="unknown option 'pop_size' for searcher 'evolution'"):
        check_options("searcher", "evolution", make_evolution, {"pop_size": 3})


# ------------------------------------------------------------------------ evolution core
def test_evolution_suggests_random_configs_until_population_counting_pending():
    space = _nb201()
    searcher = _searcher(space, population_size=4, sample_size=2)
    children = []
    searcher._child = lambda exhausted, _orig=searcher._child: (
        children.append(1) or _orig(exhausted)
    )
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    assert not children  # initial population: random
    for i in (0, 1):
        searcher.on_trial_complete(f"t{i}", {"val_acc": _val(space, configs[i])})
    searcher.suggest("t4")  # 2 in the population + 2 pending = 4: no more random configs
    assert children == [1]


def test_evolution_suggests_while_nothing_has_completed():
    space = _nb201()
    searcher = _searcher(space, population_size=4, sample_size=2)
    configs = [searcher.suggest(f"t{i}") for i in range(10)]  # more in flight than P
    assert len({_arch(space, c) for c in configs}) == 10


def test_evolution_child_is_a_mutation_of_the_tournament_winner():
    space = _nb201()
    searcher = _searcher(space, population_size=4, sample_size=4, p_mutation=0.0)
    _loop(searcher, space, 4)
    best = max(searcher.population, key=lambda m: m[3])[1]
    child = searcher.suggest("child")
    assert sum(child[k] != best[k] for k in child) == 1  # S = P: the best is the parent


def test_evolution_p_mutation_0_makes_children_that_are_local_moves():
    # P = 30 random configs first, then exactly one key changed per child (p_mutation 0)
    space = _nb201()
    searcher = make_evolution(space, "val_acc", "max", seed=0, population_size=30, p_mutation=0.0)
    assert (searcher.population_size, searcher.sample_size) == (30, 30)
    assert searcher.p_mutation == 0.0
    _loop(searcher, space, 30)
    for i in range(20):
        best = max(searcher.population, key=lambda m: m[3])[1]
        child = searcher.suggest(f"child{i}")
        assert sum(child[k] != best[k] for k in child) == 1
        searcher.on_trial_complete(f"child{i}", {"val_acc": 0.0})


def test_evolution_removes_the_oldest_member():
    space = _nb201()
    searcher = _searcher(space, population_size=4, sample_size=2)
    configs = _loop(searcher, space, 4)
    assert [m[0] for m in searcher.population] == [0, 1, 2, 3]
    _loop(searcher, space, 1, start=4)
    assert [m[0] for m in searcher.population] == [1, 2, 3, 4]
    members = [_arch(space, m[1]) for m in searcher.population]
    assert _arch(space, configs[0]) not in members


def test_evolution_worst_replacement_removes_the_worst_member():
    searcher = _searcher(population_size=3, sample_size=2, replacement="worst")
    for i, value in enumerate([5.0, 1.0, 9.0, 7.0]):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": value})
    assert sorted(m[3] for m in searcher.population) == [5.0, 7.0, 9.0]


def test_evolution_never_resuggests_evaluated_arch():
    space = _nb201()
    searcher = make_evolution(space, "val_acc", "max", seed=1)
    configs = _loop(searcher, space, 300)
    assert len({_arch(space, c) for c in configs}) == 300


def test_evolution_never_resuggests_pending_arch():
    space = _nb201()
    searcher = _searcher(space, population_size=4, sample_size=2)
    _loop(searcher, space, 4)
    configs = [searcher.suggest(f"p{i}") for i in range(50)]  # all in flight
    assert len({_arch(space, c) for c in configs}) == 50


def test_evolution_exhausts_tiny_space_then_allows_duplicates():
    space = _nb201(ops=["none", "skip_connect"])
    assert space.size() == 64
    searcher = _searcher(space, population_size=4, sample_size=2)
    configs = _loop(searcher, space, 64)
    assert len({_arch(space, c) for c in configs}) == 64
    more = _loop(searcher, space, 20, start=64)
    assert all(_arch(space, c) in {_arch(space, x) for x in configs} for c in more)


def test_evolution_child_differs_in_architecture_not_only_inactive_keys():
    space = search_spaces.get("mobilenetv3")
    searcher = _searcher(space, population_size=4, sample_size=4, p_mutation=0.0)
    rng = np.random.default_rng(0)
    archs = []
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        archs.append(_arch(space, config))
        searcher.on_trial_complete(f"t{i}", {"val_acc": float(rng.random())})
    assert len(set(archs)) == 40


def test_evolution_finds_nb201_optimum_region():
    space = _nb201()
    searcher = make_evolution(space, "val_acc", "max", seed=0)
    configs = _loop(searcher, space, 300)
    best = max(_val(space, c) for c in configs)
    assert best > nb201.table().optimum(DATASET)[1] - 0.5


# --------------------------------------------------------------------- forgiving callbacks
def test_evolution_ignores_results_for_unknown_trials():
    searcher = _searcher()
    searcher.on_trial_complete("never-suggested", {"val_acc": 99.0})
    assert searcher.population == [] and searcher.history == []


@pytest.mark.parametrize("kind", ["evolution", "reinforce"])
def test_a_trial_run_again_after_an_error_is_learned_from(kind, tmp_path):
    # `raynas resume` re-runs an errored trial under its id (resume_errored); the searcher
    # ended it at the error and, restored, no longer holds it: the re-run's result carries its
    # config, so the architecture joins the population / the controller's batch.
    from raynas.searchers.reinforce import ReinforceSearcher

    cls = EvolutionSearcher if kind == "evolution" else ReinforceSearcher
    space = search_spaces.get("nb201")
    first = cls(space, metric="val_acc", mode="max", seed=0)
    config = first.suggest("t1")
    first.on_trial_complete("t1", error=True)
    first.save(str(tmp_path / "state.pkl"))
    searcher = cls(space, metric="val_acc", mode="max", seed=0)
    searcher.restore(str(tmp_path / "state.pkl"))
    searcher.on_trial_complete("t1", {"val_acc": 93.0, "config": {**config, "seed": 4}})
    assert searcher.history[-1] == (config, 93.0)
    if kind == "evolution":
        assert [m[1] for m in searcher.population] == [config]
    else:
        assert searcher.buffer[-1][1] == 93.0
    # without the config of the search space the result is still ignored
    searcher.on_trial_complete("t9", {"val_acc": 99.0, "config": {"seed": 1}})
    assert searcher.history[-1] == (config, 93.0)


@pytest.mark.parametrize("kind", ["evolution", "reinforce", "local", "bananas"])
def test_an_adopted_trial_is_pending_seen_and_learned_from(kind):
    # `raynas resume` hands the searcher the trials created after its saved state (from the
    # experiment's journal): it holds them as its own, so it neither suggests their
    # architecture again nor ignores their result.
    from raynas import searchers

    space = search_spaces.get("nb201")
    config = searchers.make(kind, space, "val_acc", "max", 1).suggest("elsewhere")
    searcher = searchers.make(kind, space, "val_acc", "max", 0)
    searcher.adopt_trial("late", {**config, "seed": 3})  # Tune's config has other keys too
    assert searcher.pending["late"] == config
    assert searcher.arch_key(config) in searcher.seen
    searcher.adopt_trial("late", {**config})  # twice: no change
    searcher.on_trial_complete("late", {"val_acc": 91.0})
    assert searcher.history == [(config, 91.0)] and "late" not in searcher.pending


@pytest.mark.parametrize(
    ("result", "error"),
    [({"val_acc": float("nan")}, False), ({"val_acc": 90.0}, True), ({}, False), (None, False)],
)
def test_evolution_failed_trials_never_join_the_population(result, error):
    searcher = _searcher()
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", result, error=error)
    assert searcher.population == []
    assert searcher.history[0][1] is None
    assert searcher.pending == {}
    searcher.suggest("t1")  # still works


# ------------------------------------------------------------------------------- state
def test_evolution_save_restore_round_trip_continues_identically(tmp_path):
    space = _nb201()
    twin, first = _searcher(space, seed=3), _searcher(space, seed=3)
    for s in (twin, first):
        _loop(s, space, 12, 0)
    pending = [(s.suggest("a"), s.suggest("b")) for s in (twin, first)]
    assert pending[0] == pending[1]
    for s in (twin, first):
        s.on_trial_complete("a", {"val_acc": _val(space, pending[0][0])})
    first.save(str(tmp_path / "searcher.pkl"))
    restored = _searcher(space, seed=99)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for s in (twin, restored):
        s.on_trial_complete("b", {"val_acc": _val(space, pending[0][1])})
    assert _loop(twin, space, 30, 100) == _loop(restored, space, 30, 100)
    assert restored.population == twin.population


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_evolution_pickle_round_trip(dumps):
    space = _nb201()
    searcher = _searcher(space, seed=4, constraint={"params_m": {"max": 1.2}})
    _loop(searcher, space, 10, 0)
    copy = pickle.loads(dumps(searcher))
    assert _loop(copy, space, 20, 10) == _loop(searcher, space, 20, 10)


# ------------------------------------------------------------------------------ constraints
def test_evolution_respects_a_params_constraint():
    space = _nb201()
    searcher = _searcher(space, constraint={"params_m": {"max": 0.6}, "dataset": DATASET})
    configs = _loop(searcher, space, 60)
    params = [nb201.params_and_macs(space.decode(c).ops)[0] / 1e6 for c in configs]
    assert max(params) <= 0.6
    assert len({_arch(space, c) for c in configs}) == 60


def test_evolution_respects_a_callable_constraint():
    space = _nb201()
    searcher = _searcher(space, constraint=_no_pooling)
    configs = _loop(searcher, space, 60)
    assert all(_no_pooling(c) for c in configs)


def _no_pooling(config) -> bool:
    return "avg_pool_3x3" not in config.values()


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ({"latency_ms": {"max": 3}}, "unknown constraint quantity 'latency_ms' for space 'nb201'"),
        ({"params_m": 1.5}, "constraint on 'params_m' must be a mapping with 'min' and/or 'max'"),
        ({"params_m": {"min": 2, "max": 1}}, "constraint on 'params_m' has min > max"),
        ({"dataset": "cifar10"}, "constraint needs at least one bounded quantity"),
        ({"params_m": {"max": 1}, "dataset": "mnist"}, "unknown nb201 dataset 'mnist'"),
    ],
)
def test_evolution_rejects_bad_constraints(constraint, message):
    with pytest.raises(ValueError, match=message):
        _searcher(constraint=constraint)


def test_evolution_constraint_bounds_need_a_space_with_quantities():
    with pytest.raises(ValueError, match="needs a search space that computes quantities"):
        EvolutionSearcher(None, "val_acc", "max", constraint={"params_m": {"max": 1}})


def test_evolution_points_to_evaluate_must_satisfy_constraint():
    space = _nb201()
    heavy = space.encode(space.from_str(nb201.table().optimum(DATASET)[0]))
    with pytest.raises(ValueError, match=r"points_to_evaluate\[0\] violates the constraint"):
        _searcher(space, points_to_evaluate=[heavy], constraint={"params_m": {"max": 0.5}})


def test_evolution_unsatisfiable_constraint_raises_clearly():
    searcher = _searcher(constraint=_never)
    with pytest.raises(RuntimeError, match="is it satisfiable"):
        searcher.suggest("t0")


def _never(config) -> bool:
    return False


# ------------------------------------------------------------------------- multi-objective
def _mo_loop(searcher, space, n):
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        params, _ = nb201.params_and_macs(space.decode(config).ops)
        searcher.on_trial_complete(
            f"t{i}", {"val_acc": _val(space, config), "params_m": params / 1e6}
        )


def test_evolution_multi_objective_front_is_non_dominated():
    space = _nb201()
    searcher = make_evolution(
        space, ["val_acc", "params_m"], ["max", "min"], seed=0, population_size=10
    )
    searcher.set_search_properties("val_acc", "max", space.tune_space())
    _mo_loop(searcher, space, 80)
    front = searcher.pareto_front()
    done = [(c, s) for c, s in searcher.history if s is not None]
    assert front and len(done) == 80
    points = [(o["val_acc"], -o["params_m"]) for _, o in front]
    for acc, neg_params in points:  # nothing completed dominates a front member
        for _, (a, b) in done:
            assert not (a >= acc and b >= neg_params and (a > acc or b > neg_params))
    accs = [o["val_acc"] for _, o in front]
    assert accs == sorted(accs, reverse=True)
    assert max(accs) == max(s[0] for _, s in done)  # the single-metric best is on the front


def test_evolution_multi_objective_via_objectives_option():
    space = _nb201()
    searcher = make_evolution(
        space, "val_acc", "max", seed=0, objectives={"val_acc": "max", "params_m": "min"}
    )
    assert searcher.metric == ["val_acc", "params_m"] and searcher.mode == ["max", "min"]
    with pytest.raises(ValueError, match="must be the experiment's metric and mode"):
        make_evolution(space, "test_acc", "max", 0, objectives={"val_acc": "max", "x": "min"})
    with pytest.raises(ValueError, match="mode must list 'max' or 'min'"):
        make_evolution(space, None, None, 0, objectives={"val_acc": "max", "x": "up"})


def test_evolution_multi_objective_missing_metric_is_a_failure():
    searcher = make_evolution(_nb201(), ["val_acc", "params_m"], ["max", "min"], 0)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 80.0})
    assert searcher.population == [] and searcher.history[0][1] is None


def test_nondominated_ranks():
    points = [(1, 1), (2, 0), (0, 2), (0, 0), (1, 0)]
    assert nondominated_ranks(points) == [0, 0, 0, 2, 1]


def test_evolution_multi_objective_tournament_prefers_the_front():
    searcher = make_evolution(
        _nb201(), ["a", "b"], ["max", "max"], 0, population_size=4, sample_size=4
    )
    for i, (a, b) in enumerate([(0, 0), (1, 1), (0.5, 0.2), (0.1, 0.9)]):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"a": a, "b": b})
    assert searcher._tournament() == 1  # (1, 1) dominates all others


def _front_and_dominated(**options):
    """A 2-objective evolution whose population is 6 members on the front (a + b = 1, index
    0 = the end with the best b) and 6 dominated ones."""
    searcher = make_evolution(
        _nb201(), ["a", "b"], ["max", "max"], 0, population_size=12, **options
    )
    front = [(i / 5, 1 - i / 5) for i in range(6)]
    for i, (a, b) in enumerate(front + [(a - 0.3, b - 0.3) for a, b in front]):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"a": a, "b": b})
    return searcher


def test_evolution_multi_objective_default_tournament_spreads_over_the_front():
    # The default tournament (binary, ties drawn at random) makes every front member a parent;
    # a tournament over the whole population always picked the same end of the front (index
    # 0), so the search only extended that end.
    searcher = _front_and_dominated()
    wins = np.bincount([searcher._tournament() for _ in range(600)], minlength=12)
    assert (wins[:6] > 20).all(), wins
    assert wins[:6].sum() > 3 * wins[6:].sum(), wins
    restored = make_evolution(_nb201(), ["a", "b"], ["max", "max"], 1, population_size=12)
    restored.set_state(searcher.get_state())
    assert restored.sample_size_default
    # a whole-population tournament (asked for) picks an end, either one (ties at random)
    greedy = _front_and_dominated(sample_size=12)
    ends = {greedy._tournament() for _ in range(100)}
    assert ends == {0, 5}


# --------------------------------------------------------------------------- flat spaces
FLAT = {
    "lr": tune.loguniform(1e-5, 1e-1),
    "dropout": tune.uniform(0.0, 0.5),
    "layers": tune.randint(1, 6),
    "act": tune.choice(["relu", "gelu"]),
}


def test_evolution_works_on_a_plain_flat_tune_space():
    searcher = EvolutionSearcher(metric="loss", mode="min", seed=0, population_size=5)
    assert searcher.set_search_properties(None, None, dict(FLAT))
    rng = np.random.default_rng(0)
    configs = []
    for i in range(60):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        loss = (math.log10(config["lr"]) + 3) ** 2 + config["dropout"] + rng.normal(0, 0.01)
        searcher.on_trial_complete(f"t{i}", {"loss": loss})
    for c in configs:
        assert 1e-5 <= c["lr"] <= 1e-1 and 0 <= c["dropout"] <= 0.5
        assert isinstance(c["layers"], int) and 1 <= c["layers"] <= 5
        assert c["act"] in ("relu", "gelu")
    keys = {tuple(sorted(c.items())) for c in configs}
    assert len(keys) == 60
    best = min(searcher.population, key=lambda m: -m[3])[1]
    assert abs(math.log10(best["lr"]) + 3) < 1.0


def test_evolution_without_a_space_asks_for_one():
    with pytest.raises(RuntimeError, match="has no search space"):
        EvolutionSearcher(metric="loss", mode="min").suggest("t0")


# ------------------------------------------------------------------------------ in a Tuner
def test_evolution_runs_in_a_tuner_with_concurrency(ray_address, tmp_path):
    space = _nb201()
    searcher = make_evolution(space, "val_acc", "max", seed=0, population_size=4, sample_size=2)
    grid = table_tuner(space, searcher, tmp_path, "evo", 12, 2).fit()
    assert not grid.errors
    archs = [r.metrics["arch"] for r in grid]
    assert len(archs) == 12 and len(set(archs)) == 12
    assert len(searcher.population) == 4 and searcher.pending == {}


def test_evolution_multi_objective_runs_in_a_tuner(ray_address, tmp_path):
    space = _nb201()
    searcher = make_evolution(
        space,
        "val_acc",
        "max",
        seed=0,
        population_size=3,
        objectives={"val_acc": "max", "params_m": "min"},
    )
    grid = table_tuner(space, searcher, tmp_path, "evo-mo", 6, 2).fit()
    assert not grid.errors
    front = searcher.pareto_front()
    assert front and all(set(o) == {"val_acc", "params_m"} for _, o in front)


def _first_edge_none(config) -> bool:
    return config["edge.1<-0"] == "none"


def test_evolution_exhausts_feasible_part_then_allows_feasible_duplicates():
    space = _nb201(ops=["none", "skip_connect"])
    searcher = _searcher(space, population_size=4, sample_size=2, constraint=_first_edge_none)
    configs = _loop(searcher, space, 40)
    assert all(_first_edge_none(c) for c in configs)
    assert len({_arch(space, c) for c in configs[:32]}) == 32
