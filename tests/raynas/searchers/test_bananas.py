"""BananasSearcher and its MLP ensemble: predictor-guided search on the NB201 table and others."""

from __future__ import annotations

import math
import pickle

import cloudpickle
import numpy as np
import pytest
import torch
from helpers import table_loop, table_tuner
from ray import tune

import search_spaces
from raynas.benchmarks import nb201
from raynas.searchers.bananas import BananasSearcher, make_bananas
from raynas.searchers.ensemble import MLPEnsemble
from raynas.trainables import proxy


def _nb201():
    return search_spaces.get("nb201")


def _arch(space, config) -> str:
    return space.to_str(space.decode(config))


def _val(space, config) -> float:
    return nb201.table().lookup(_arch(space, config), "cifar10").val_acc


def _searcher(space=None, seed=0, **options) -> BananasSearcher:
    options.setdefault("n_init", 6)
    options.setdefault("retrain_every", 4)
    options.setdefault("epochs", 60)
    return make_bananas(space or _nb201(), "val_acc", "max", seed, **options)


# ------------------------------------------------------------------------------ ensemble
def test_ensemble_learns_a_linear_function_with_spread_between_members():
    rng = np.random.default_rng(0)
    x = rng.random((200, 8)).astype(np.float32)
    w = rng.normal(size=8)
    y = 50 + 10 * x @ w
    model = MLPEnsemble(members=4, epochs=300)
    model.fit(x[:150], y[:150], torch.Generator().manual_seed(0))
    pred = model.predict(x[150:])
    assert pred.shape == (4, 50)
    rmse = math.sqrt(np.mean((pred.mean(axis=0) - y[150:]) ** 2))
    assert rmse < 0.25 * y.std()
    assert pred.std(axis=0).mean() > 0  # members disagree somewhat


def test_ensemble_is_reproducible_from_its_generator():
    rng = np.random.default_rng(1)
    x, y = rng.random((30, 5)), rng.random(30)
    a, b = MLPEnsemble(epochs=20), MLPEnsemble(epochs=20)
    a.fit(x, y, torch.Generator().manual_seed(3))
    b.fit(x, y, torch.Generator().manual_seed(3))
    assert np.array_equal(a.predict(x), b.predict(x))


def test_ensemble_warm_refit_continues_from_the_last_weights():
    rng = np.random.default_rng(2)
    x = rng.random((120, 6)).astype(np.float32)
    y = 20 + 5 * x @ rng.normal(size=6)
    cold = MLPEnsemble(members=3, epochs=150)
    cold.fit(x[:60], y[:60], torch.Generator().manual_seed(0))
    before = [w.clone() for w in cold.weights]
    warm = MLPEnsemble(members=3, epochs=150)
    warm.set_state(cold.get_state())
    # 10 steps from the fitted weights on twice the data: far better than 10 steps from scratch
    warm.fit(x[:100], y[:100], torch.Generator().manual_seed(1), warm=10)
    scratch = MLPEnsemble(members=3, epochs=10)
    scratch.fit(x[:100], y[:100], torch.Generator().manual_seed(1))

    def rmse(model):
        return math.sqrt(np.mean((model.predict(x[100:]).mean(axis=0) - y[100:]) ** 2))

    assert rmse(warm) < 0.5 * rmse(scratch)
    assert all(torch.equal(a, b) for a, b in zip(before, cold.weights, strict=True))
    moved = [not torch.equal(a, b) for a, b in zip(before, warm.weights, strict=True)]
    assert all(moved)
    assert warm.predict(x).std(axis=0).mean() > 0  # members still disagree
    # inputs of another width cannot continue: a fresh fit of ``epochs`` steps
    warm.fit(x[:100, :4], y[:100], torch.Generator().manual_seed(1), warm=10)
    assert warm.weights[0].shape == (3, 4, 32)
    with pytest.raises(ValueError, match="warm must be an integer >= 1, got 0"):
        warm.fit(x, y, torch.Generator(), warm=0)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_ensemble_adam_update_is_torch_optim_adam_bit_for_bit(weight_decay):
    from raynas.searchers.ensemble import _Adam

    gen = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 4, 5, generator=gen).requires_grad_() for _ in range(2)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    adam = _Adam(ours, 0.01, weight_decay)
    opt = torch.optim.Adam(theirs, lr=0.01, weight_decay=weight_decay)
    x = torch.randn(3, 7, 4, generator=gen)
    for _ in range(30):
        for params, step in ((ours, adam.step), (theirs, opt.step)):
            for p in params:
                p.grad = None
            (torch.bmm(torch.bmm(x, params[0]), params[1].transpose(1, 2)) ** 2).mean().backward()
            step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_ensemble_rejects_bad_options():
    with pytest.raises(ValueError, match="members must be an integer >= 1, got 0"):
        MLPEnsemble(members=0)
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        MLPEnsemble(lr=0)


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("encoding", "graph", "unknown encoding 'graph'; choose one of: auto, onehot"),
        ("acquisition", "ei", "unknown acquisition 'ei'; choose one of: its, ucb"),
        ("ensemble_size", 0, "ensemble_size must be an integer >= 1, got 0"),
        ("num_candidates", 0, "num_candidates must be an integer >= 1, got 0"),
        ("num_parents", 0, "num_parents must be an integer >= 1, got 0"),
        ("random_candidates", -1, "random_candidates must be an integer >= 0, got -1"),
        ("retrain_every", 0, "retrain_every must be an integer >= 1, got 0"),
        ("refit_epochs", 0, "refit_epochs must be an integer >= 1, got 0"),
        ("hidden_size", 0, "hidden_size must be an integer >= 1, got 0"),
        ("num_layers", 0, "num_layers must be an integer >= 1, got 0"),
        ("patience", 0, "patience must be an integer >= 1, got 0"),
        ("incumbent_every", 0, "incumbent_every must be an integer >= 1, got 0"),
        ("incumbent_radius", 3, "incumbent_radius must be 1 or 2, got 3"),
        ("ucb_beta", -1, "ucb_beta must be a number >= 0, got -1"),
        ("targets", "ordinal", "unknown targets 'ordinal'; choose one of: value, rank"),
        ("zero_cost", {"proxies": ["nasowt"]}, "unknown zero-cost proxy 'nasowt'"),
        ("zero_cost", {"proxy": "naswot"}, "unknown zero_cost option 'proxy'; valid options"),
        ("zero_cost", {"batch_size": 1}, "zero_cost.batch_size must be an integer >= 2"),
    ],
)
def test_bananas_rejects_bad_options_naming_the_value(option, value, message):
    with pytest.raises(ValueError, match=message):
        _searcher(**{option: value})


def test_bananas_path_encoding_needs_a_cell_space():
    with pytest.raises(ValueError, match="encoding 'path' needs a cell space"):
        _searcher(search_spaces.get("mobilenetv3"), encoding="path")


# ------------------------------------------------------------------------------ searching
def test_bananas_starts_randomly_then_suggests_neighbours_of_the_best():
    space = _nb201()
    searcher = _searcher(space, num_parents=2, random_candidates=0)
    table_loop(searcher, space, 6)
    assert not searcher.predictor.fitted
    for i in range(10):
        top = sorted((m for m in searcher.region_results), key=lambda m: -m[2])[:2]
        config = searcher.suggest(f"t{i}")
        distances = [sum(config[k] != m[0][k] for k in config) for m in top]
        assert min(distances) == 1
        searcher.on_trial_complete(f"t{i}", {"val_acc": _val(space, config)})
    assert searcher.predictor.fitted and searcher.fitted_on == 14


def test_bananas_defaults_refit_after_every_result_from_five_random_cells():
    # The defaults (issue 29c): 5 random cells, then every suggestion after a new result is
    # ranked by a predictor fitted on every result so far (on rank targets since 29d), and is a
    # neighbour of the best cell.
    space = _nb201()
    searcher = make_bananas(space, "val_acc", "max", 0)
    table_loop(searcher, space, 5)
    assert not searcher.predictor.fitted and searcher.region_left == 0
    for i in range(5, 12):
        best = max(searcher.region_results, key=lambda m: m[2])[0]
        config = searcher.suggest(f"t{i}")
        assert searcher.fitted_on == i  # fitted on the result that has just come in
        assert sum(config[k] != best[k] for k in config) == 1
        searcher.on_trial_complete(f"t{i}", {"val_acc": _val(space, config)})


def _monotone_loop(searcher, space, transform, n: int) -> list[str]:
    """Architectures suggested when the metric reported is ``transform(val_acc)``."""
    archs = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        archs.append(_arch(space, config))
        searcher.on_trial_complete(f"t{i}", {"val_acc": transform(_val(space, config))})
    return archs


@pytest.mark.parametrize("targets", ["rank", "value"])
def test_bananas_rank_targets_make_it_blind_to_a_monotone_change_of_the_metric(targets):
    # Rank targets (the default): the predictor sees only the order of the results, so the
    # same seed suggests the same architectures whether the metric is the accuracy or a
    # strictly increasing function of it that stretches the good end (exp); value targets
    # see the difference.
    space = _nb201()
    plain, stretched = (
        make_bananas(
            space, "val_acc", "max", 5, **({} if targets == "rank" else {"targets": targets})
        )
        for _ in range(2)
    )
    assert plain.targets == targets
    same = _monotone_loop(plain, space, float, 40)
    other = _monotone_loop(stretched, space, lambda v: math.exp(v / 5), 40)
    assert (same == other) == (targets == "rank")


def test_bananas_rank_targets_are_normal_scores_with_shared_ties():
    space = _nb201()
    searcher = make_bananas(space, "val_acc", "max", 0, n_init=4)
    for i, acc in enumerate([10.0, 70.0, 70.0, 90.0]):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": acc})
    searcher.suggest("fit")  # the first fit, on the four results
    # normal scores of ranks 0, 1.5, 1.5, 3 of 4: -1.150, 0, 0, 1.150 (mean 0, sd 0.813)
    assert searcher.predictor.y_mean == pytest.approx(0.0, abs=1e-12)
    assert searcher.predictor.y_std == pytest.approx(0.8134, abs=1e-3)


def test_bananas_never_resuggests_and_finds_a_good_nb201_cell():
    space = _nb201()
    _, optimum = nb201.table().optimum("cifar10")
    regrets = []
    for seed in range(4):
        configs = table_loop(_searcher(space, seed=seed), space, 100)
        assert len({_arch(space, c) for c in configs}) == 100
        regrets.append(optimum - max(_val(space, c) for c in configs))
    # random search of 100 cells leaves ~1.2 points of regret on average (a single run of
    # bananas can end a local optimum away, ~0.6)
    assert np.mean(regrets) < 0.6


def test_bananas_new_region_after_patience():
    space = _nb201()
    searcher = _searcher(space, n_init=2, patience=3)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_acc": 90.0})
    searcher.suggest("b")
    searcher.on_trial_complete("b", {"val_acc": 10.0})
    for i in range(2):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": 10.0})
    assert searcher.region == 1 and searcher.region_results == []
    config = searcher.suggest("c")  # the new region's first: a random architecture
    searcher.on_trial_complete("c", {"val_acc": 20.0})
    assert searcher.region_results[0][0] == config


def test_bananas_new_region_when_the_neighbourhood_is_used_up():
    # One parent: once its 24 nb201 neighbours have all completed worse, the region is a local
    # optimum and a new one starts, as local search restarts; while they are in flight, the
    # searcher suggests other architectures instead of waiting.
    space = _nb201()
    searcher = _searcher(space, n_init=1, num_parents=1, random_candidates=0, patience=None)
    start = searcher.suggest("s")
    searcher.on_trial_complete("s", {"val_acc": 90.0})
    neighbours = [searcher.suggest(f"n{i}") for i in range(24)]
    assert all(sum(c[k] != start[k] for k in c) == 1 for c in neighbours)
    elsewhere = searcher.suggest("x")  # every neighbour in flight: not a neighbour
    assert sum(elsewhere[k] != start[k] for k in start) > 1 and searcher.region == 0
    for i in range(24):
        searcher.on_trial_complete(f"n{i}", {"val_acc": 10.0})
    searcher.on_trial_complete("x", {"val_acc": 10.0})
    searcher.suggest("r")
    assert searcher.region == 1 and searcher.region_results == []


@pytest.mark.parametrize(("incumbent_every", "radius"), [(2, 1), (2, 2), (None, 1)])
def test_bananas_incumbent_turns_use_up_the_best_cells_neighbourhood(incumbent_every, radius):
    # Regions end after 2 results without improvement, so without incumbent turns the best
    # cell's region is left with most of its 24 neighbours unseen; every second predictor-
    # guided suggestion of ``incumbent_every=2`` is an unseen neighbour of the best cell found
    # so far, in any region, until none is left: the best cell ends a verified local optimum.
    # With ``incumbent_radius=2`` the later turns go on to cells two moves from it.
    space = _nb201()
    searcher = _searcher(
        space, n_init=1, patience=2, incumbent_every=incumbent_every, incumbent_radius=radius
    )
    best = searcher.suggest("best")
    searcher.on_trial_complete("best", {"val_acc": 90.0})
    moves = []
    for i in range(120):
        config = searcher.suggest(f"t{i}")
        moves.append(sum(config[k] != best[k] for k in best))
        searcher.on_trial_complete(f"t{i}", {"val_acc": 10.0 - 0.01 * i})
    assert searcher.region > 10
    late = moves[-60:]
    if incumbent_every is None:
        assert moves.count(1) < 12
    elif radius == 1:
        assert moves.count(1) == 24 and 1 not in moves[-40:] and late.count(2) < 5
    else:
        assert moves.count(1) == 24 and 1 not in moves[-40:] and late.count(2) >= 12


@pytest.mark.parametrize("acquisition", ["its", "ucb"])
def test_bananas_acquisitions_suggest_while_trials_are_pending(acquisition):
    space = _nb201()
    searcher = _searcher(space, acquisition=acquisition)
    table_loop(searcher, space, 8)
    pending = [searcher.suggest(f"p{i}") for i in range(6)]
    assert len({_arch(space, c) for c in pending}) == 6


@pytest.mark.parametrize("name", ["darts", "mobilenetv3", "macro"])
def test_bananas_runs_on_every_space(name):
    space = search_spaces.get(name)
    searcher = _searcher(space, n_init=3, num_candidates=20, random_candidates=5)
    rng = np.random.default_rng(0)
    keys = set()
    for i in range(8):
        config = searcher.suggest(f"t{i}")
        keys.add(_arch(space, config))
        searcher.on_trial_complete(f"t{i}", {"val_acc": float(rng.random())})
    assert len(keys) == 8 and searcher.predictor.fitted


def test_bananas_on_a_continuous_flat_space_samples_neighbours():
    searcher = BananasSearcher(
        metric="loss", mode="min", seed=0, n_init=5, retrain_every=5, epochs=50
    )
    flat = {"lr": tune.loguniform(1e-5, 1e-1), "act": tune.choice(["relu", "gelu"])}
    assert searcher.set_search_properties(None, None, flat)
    losses = []
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        losses.append((math.log10(config["lr"]) + 3) ** 2 + (config["act"] == "relu"))
        searcher.on_trial_complete(f"t{i}", {"loss": losses[-1]})
    assert min(losses) < 0.1


# --------------------------------------------------------------------- forgiving callbacks
@pytest.mark.parametrize(
    ("result", "error"),
    [({"val_acc": float("nan")}, False), ({"val_acc": 90.0}, True), ({}, False), (None, False)],
)
def test_bananas_leaves_failed_trials_out_of_training(result, error):
    space = _nb201()
    searcher = _searcher(space, n_init=3)
    searcher.suggest("bad")
    searcher.on_trial_complete("bad", result, error=error)
    table_loop(searcher, space, 3)  # two more random ones, then the first fit
    assert searcher.fitted_on == 2  # the failed trial is not training data
    searcher.on_trial_complete("never-suggested", {"val_acc": 99.0})
    assert len(searcher.history) == 4


# ------------------------------------------------------------------------------- state
def test_bananas_save_restore_round_trip_continues_identically(tmp_path):
    space = _nb201()
    twin, first = _searcher(space, seed=3), _searcher(space, seed=3)
    for s in (twin, first):
        table_loop(s, space, 9)
    pending = [(s.suggest("a"), s.suggest("b")) for s in (twin, first)]
    assert pending[0] == pending[1]
    first.save(str(tmp_path / "searcher.pkl"))
    restored = _searcher(space, seed=99)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for s in (twin, restored):
        s.on_trial_complete("a", {"val_acc": _val(space, pending[0][0])})
        s.on_trial_complete("b", {"val_acc": _val(space, pending[0][1])})
    assert table_loop(twin, space, 12, 100) == table_loop(restored, space, 12, 100)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_bananas_pickle_round_trip(dumps):
    space = _nb201()
    searcher = _searcher(space, seed=4)
    table_loop(searcher, space, 8)
    copy = pickle.loads(dumps(searcher))
    assert table_loop(copy, space, 8, 8) == table_loop(searcher, space, 8, 8)


# ------------------------------------------------------------------------------ zero cost
ZERO_COST = {
    "proxies": ["naswot", "synflow"],
    "dataset": "digits",
    "batch_size": 16,
    "build": {"C": 4, "N": 1},
    "seed": 3,
    "threads": 1,
}


def test_bananas_appends_zero_cost_scores_to_the_encoding():
    space = _nb201()
    searcher = _searcher(
        space, n_init=3, num_parents=1, num_candidates=4, random_candidates=0, zero_cost=ZERO_COST
    )
    configs = table_loop(searcher, space, 5)
    assert searcher.predictor.weights[0].shape[1] == 30 + 2  # adjacency + two proxies
    first = configs[0]
    own = searcher.proxy_scores[_arch(space, first)]
    want = proxy.evaluate(
        space, first, ["naswot", "synflow"], "digits", None, 16, 3, {"C": 4, "N": 1}
    )
    assert own == pytest.approx([want["score_naswot"], want["score_synflow"]], rel=1e-6)


# ------------------------------------------------------------------------------ in a Tuner
def test_bananas_runs_in_a_tuner_with_four_trials_in_flight(ray_address, tmp_path):
    space = _nb201()
    searcher = _searcher(space, n_init=4)
    grid = table_tuner(space, searcher, tmp_path, "bananas", 14, 4).fit()
    assert not grid.errors
    archs = [r.metrics["arch"] for r in grid]
    assert len(archs) == 14 and len(set(archs)) == 14
    assert searcher.pending == {} and searcher.predictor.fitted
