"""Latency-aware search on mobilenetv3: ``latency_ms`` predicted from the latency table as an
evolution constraint, as REINFORCE's reward target, and in a real Tuner with the train
trainable (``latency: true``) and a latency objective."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from ray import tune

from raynas import trainables
from raynas.hardware import LatencyTable, block_key
from raynas.searchers import quantities
from raynas.searchers.evolution import SpaceConstraint, make_evolution
from raynas.searchers.reinforce import make_reinforce
from search_spaces.mobilenetv3 import MobileNetV3Space

RES = 32
WIDTH = 0.35
# The smallest table that covers every row (as tests/raynas/test_hardware.py builds it).
FAST = {
    "threads": 1,
    "probes": 9,
    "warmup": 0,
    "repeats": 1,
    "rounds": 1,
    "calibration_subnets": 3,
    "calibration_repeats": 1,
}


def _space() -> MobileNetV3Space:
    return MobileNetV3Space(width_mult=WIDTH, resolution=RES)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("latency"))


@pytest.fixture(scope="module")
def table(cache_dir) -> LatencyTable:
    """The table, measured once here; the searchers must read it from this cache."""
    return LatencyTable.build(_space(), cache_dir=cache_dir, **FAST)


@pytest.fixture(scope="module")
def table_options(cache_dir, table) -> dict:
    return {"cache_dir": cache_dir, **FAST}


def _predicted(table: LatencyTable, space, config) -> float:
    """The table's prediction recomputed from its rows (not through ``predict``)."""
    blocks = space.blocks(space.decode(config))[1:]
    total = sum(table.fixed[part].median_ms for part in ("stem", "final_expand", "head"))
    total += sum(table.rows[block_key(b)].median_ms for b in blocks)
    return table.scale * total + table.offset_ms


def _random_configs(space, n, seed=0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.encode(space.sample(rng)) for _ in range(n)]


def _median_bound(table, space) -> float:
    return float(np.median([_predicted(table, space, c) for c in _random_configs(space, 101)]))


# --------------------------------------------------------------------------- constraint
def test_latency_constraint_rejects_exactly_the_configs_above_the_bound(table, table_options):
    space = _space()
    bound = _median_bound(table, space)
    constraint = SpaceConstraint(
        space, {"latency_ms": {"max": bound}, "latency_table": table_options}
    )
    configs = _random_configs(space, 200, seed=1)
    expected = [_predicted(table, space, c) <= bound for c in configs]
    assert 0 < sum(expected) < len(configs), "the bound must split the sample"
    assert [constraint(c) for c in configs] == expected
    values = [constraint.values(c)["latency_ms"] for c in configs[:20]]
    assert np.allclose(values, [_predicted(table, space, c) for c in configs[:20]])


def test_latency_constraint_reads_the_cached_table_and_pickles_it(table, table_options):
    space = _space()
    constraint = SpaceConstraint(
        space, {"latency_ms": {"max": 1e9}, "latency_table": table_options}
    )
    fn = constraint.quantities["latency_ms"]
    config = _random_configs(space, 1)[0]
    assert fn(config) == pytest.approx(_predicted(table, space, config))
    assert fn.table.from_cache and fn.table.path == table.path, "built once, then cached"
    copy = pickle.loads(pickle.dumps(constraint))
    assert copy.quantities["latency_ms"]._table is not None, "the table travels with it"
    assert copy.values(config) == constraint.values(config)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"latency_ms": {"max": 5}, "latency_table": {"thread": 1}},
            "unknown latency table option 'thread'; valid options: device, resolution",
        ),
        ({"latency_ms": {"max": 5}, "latency_table": {"device": "tpu"}}, "'tpu'"),
        ({"latency_ms": {"max": 5}, "latency_table": {"batch_size": 0}}, "batch_size must be"),
        ({"latency_ms": {"max": 5}, "latency_table": {"clock": "gpu"}}, "unknown clock 'gpu'"),
        ({"latency_ms": {"max": 5}, "latency_table": [1]}, "must be a mapping, got \\[1\\]"),
        ({"latency_ms": {"max": 5}, "dataset": "cifar10"}, "'dataset' applies to the nb201"),
        ({"params_m": {"max": 5}}, "unknown constraint quantity 'params_m' for space 'mobil"),
        ({"latency_ms": 5}, "constraint on 'latency_ms' must be a mapping with 'min'"),
    ],
)
def test_latency_constraint_rejects_bad_specs_naming_them(spec, message):
    with pytest.raises(ValueError, match=message):
        make_evolution(_space(), "val_acc", "max", 0, constraint=spec)


def test_latency_table_option_is_for_mobilenetv3_only():
    import search_spaces

    with pytest.raises(ValueError, match="'latency_table' applies to the mobilenetv3 space"):
        quantities.split_options(search_spaces.get("nb201"), {"latency_table": {}})


def _fake_val(space, config) -> float:
    """A cheap "accuracy" that grows with depth, kernel and expand: it pulls the search
    towards slow subnets, so the constraint has work to do."""
    return float(sum(k + e for stage in space.decode(config).blocks for k, e in stage))


def _search(space, table, n, **options) -> list[float]:
    """Predicted latencies of ``n`` suggestions of a sequential evolution loop."""
    searcher = make_evolution(space, "val_acc", "max", seed=0, population_size=8, **options)
    latencies = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        latencies.append(_predicted(table, space, config))
        searcher.on_trial_complete(f"t{i}", {"val_acc": _fake_val(space, config)})
    return latencies


def test_evolution_with_a_latency_bound_never_suggests_an_infeasible_config(table, table_options):
    space = _space()
    bound = _median_bound(table, space)
    spec = {"latency_ms": {"max": bound}, "latency_table": table_options}
    assert max(_search(space, table, 60, constraint=spec)) <= bound
    # the same search without the bound goes above it (the bound binds)
    assert max(_search(space, table, 60)) > bound


# -------------------------------------------------------------------------------- reinforce
def test_reinforce_shapes_the_reward_with_the_predicted_latency(table, table_options):
    space = _space()
    target, w = 10.0, -0.5
    searcher = make_reinforce(
        space,
        "val_acc",
        "max",
        seed=0,
        batch_size=4,
        reward_target={
            "metric": "latency_ms",
            "target": target,
            "w": w,
            "predict": True,
            "latency_table": table_options,
        },
    )
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 50.0})  # no latency in the result
    ((_, reward),) = searcher.buffer
    expected = 50.0 * (_predicted(table, space, config) / target) ** w
    assert reward == pytest.approx(expected)


def test_reinforce_reward_target_predict_options_are_checked():
    with pytest.raises(ValueError, match="only applies with predict: true"):
        make_reinforce(
            _space(),
            "val_acc",
            "max",
            0,
            reward_target={"metric": "latency_ms", "target": 5, "latency_table": {}},
        )
    with pytest.raises(ValueError, match="unknown quantity 'params_m' for space 'mobilenetv3'"):
        make_reinforce(
            _space(),
            "val_acc",
            "max",
            0,
            reward_target={"metric": "params_m", "target": 5, "predict": True},
        )


# ------------------------------------------------------------------------------ a Tuner
@pytest.mark.slow
def test_latency_constrained_multi_objective_evolution_in_a_tuner(
    ray_address, tmp_path, table, table_options
):
    space = _space()
    bound = _median_bound(table, space)
    searcher = make_evolution(
        space,
        "val_acc",
        "max",
        seed=0,
        population_size=2,
        objectives={"val_acc": "max", "latency_ms": "min"},
        constraint={"latency_ms": {"max": bound}, "latency_table": table_options},
    )
    trainable = trainables.make(
        "train",
        space,
        dataset="digits",
        epochs=1,
        subset=64,
        val_fraction=64,
        batch_size=32,
        latency=True,
        threads=1,
    )
    grid = tune.Tuner(
        trainable,
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            search_alg=searcher,
            num_samples=4,
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="latency", verbose=0),
    ).fit()
    assert not grid.errors
    assert len(grid) == 4
    for result in grid:
        assert _predicted(table, space, result.config) <= bound
        assert math.isfinite(result.metrics["latency_ms"]) and result.metrics["latency_ms"] > 0
    front = searcher.pareto_front()
    assert front and all(set(o) == {"val_acc", "latency_ms"} for _, o in front)
