"""The REINFORCE searcher: state round trips, no repeats, forgiving callbacks, learning."""

from __future__ import annotations

import math
import pickle

import cloudpickle
import numpy as np
import pytest
import torch
from helpers import table_tuner
from ray import tune

import search_spaces
from raynas.benchmarks.nb201 import table
from raynas.searchers.reinforce import ReinforceSearcher, make_reinforce


def _nb201_searcher(seed: int = 0, **options) -> ReinforceSearcher:
    space = search_spaces.get("nb201")
    return make_reinforce(space, "val_acc", "max", seed, **options)


def _val(searcher: ReinforceSearcher, config: dict) -> float:
    space = searcher.space
    return table().lookup(space.to_str(space.decode(config)), "cifar10").val_acc


def _drive(searcher: ReinforceSearcher, start: int, n: int) -> list[dict]:
    """Sequential suggest/complete of trials ``start .. start + n - 1``; the configs."""
    configs = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": _val(searcher, config)})
        configs.append(config)
    return configs


def _interrupted_prefix(searcher: ReinforceSearcher) -> None:
    """Suggest twice, complete once (one trial left pending)."""
    searcher.suggest("t0")
    first = searcher.pending["t0"]
    searcher.suggest("t1")
    searcher.on_trial_complete("t0", {"val_acc": _val(searcher, first)})


def _finish_and_continue(searcher: ReinforceSearcher) -> list[dict]:
    searcher.on_trial_complete("t1", {"val_acc": _val(searcher, searcher.pending["t1"])})
    return _drive(searcher, 2, 12)


def test_reinforce_save_restore_continues_like_uninterrupted_twin(tmp_path):
    twin = _nb201_searcher(seed=3, batch_size=2)
    interrupted = _nb201_searcher(seed=3, batch_size=2)
    _interrupted_prefix(twin)
    _interrupted_prefix(interrupted)
    path = tmp_path / "searcher.pkl"
    interrupted.save(str(path))

    restored = _nb201_searcher(seed=99, batch_size=2)
    restored.restore(str(path))
    expected = _finish_and_continue(twin)
    assert twin.updates >= 6  # the comparison covers policy and Adam updates
    assert _finish_and_continue(restored) == expected


def test_reinforce_pickle_round_trip_keeps_policy_and_generator():
    searcher = _nb201_searcher(seed=4, batch_size=2)
    _drive(searcher, 0, 5)
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, pickle.loads)):
        copy = loads(dumps(searcher))
        assert _drive(copy, 5, 6) == _drive(loads(dumps(searcher)), 5, 6)
    twin = pickle.loads(pickle.dumps(searcher))
    assert _drive(twin, 5, 6) == _drive(searcher, 5, 6)


def test_reinforce_pickles_before_the_controller_is_built():
    searcher = ReinforceSearcher(metric="val_acc", mode="max", seed=1)
    copy = pickle.loads(cloudpickle.dumps(searcher))
    space = search_spaces.get("nb201").tune_space()
    for s in (searcher, copy):
        s.set_search_properties(None, None, space)
    assert [searcher.suggest(f"t{i}") for i in range(3)] == [
        copy.suggest(f"t{i}") for i in range(3)
    ]


def test_reinforce_same_seed_same_suggestions_other_seed_differs():
    assert _drive(_nb201_searcher(seed=7), 0, 8) == _drive(_nb201_searcher(seed=7), 0, 8)
    assert _drive(_nb201_searcher(seed=7), 0, 8) != _drive(_nb201_searcher(seed=8), 0, 8)


def test_reinforce_never_resuggests_evaluated_or_pending_arch():
    space = search_spaces.get("nb201", ops=("none", "skip_connect"))  # 64 architectures
    searcher = make_reinforce(space, "val_acc", "max", seed=0, batch_size=2, lr=0.5)
    keys = []
    for i in range(64):
        config = searcher.suggest(f"t{i}")
        keys.append(space.to_str(space.decode(config)))
        if i % 2:  # half of them stay pending
            searcher.on_trial_complete(f"t{i}", {"val_acc": float(i % 7)})
    assert len(set(keys)) == 64
    # Exhausted: a repeat is allowed rather than a failure.
    assert searcher.suggest("t64") is not None


def test_reinforce_ignores_unknown_trial_id():
    searcher = _nb201_searcher()
    searcher.suggest("t0")
    searcher.on_trial_complete("not-a-trial", {"val_acc": 90.0})
    assert searcher.buffer == [] and list(searcher.pending) == ["t0"]


def test_reinforce_failed_trials_get_worst_reward_seen():
    searcher = _nb201_searcher(batch_size=4)
    for i in range(4):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {"val_acc": math.nan})  # no finite reward yet
    searcher.on_trial_complete("t1", {"val_acc": 80.0})
    searcher.on_trial_complete("t2", {"val_acc": 60.0})
    assert [r for _, r in searcher.buffer] == [None, 80.0, 60.0]
    searcher.on_trial_complete("t3", None, error=True)
    assert searcher.updates == 1 and searcher.buffer == []
    assert searcher.worst == 60.0
    # The baseline starts at the batch mean, the failures counted at the worst reward (60).
    assert 60.0 < searcher.baseline < 66.0
    assert [score for _, score in searcher.history] == [None, 80.0, 60.0, None]


def test_reinforce_drops_failures_before_any_reward():
    searcher = _nb201_searcher(batch_size=2)
    for i in range(2):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {"other": 1.0})
    searcher.on_trial_complete("t1", {"val_acc": "oops"})
    assert searcher.updates == 0 and searcher.baseline is None and searcher.buffer == []


def test_reinforce_policy_learns_target_value():
    # Reward = number of keys equal to "c": the policy should come to prefer "c" everywhere.
    keys = [f"k{i}" for i in range(5)]
    searcher = ReinforceSearcher(metric="reward", mode="max", seed=0)
    searcher.set_search_properties(None, None, {k: tune.choice(list("abcd")) for k in keys})
    target = {k: "c" for k in keys}
    searcher.suggest("probe")  # builds the controller
    before = searcher.choice_probs(target)
    for i in range(200):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"reward": sum(config[k] == "c" for k in keys)})
    after = searcher.choice_probs(target)
    assert searcher.updates == 40
    for k in keys:
        assert before[k][2] < 0.35
        assert after[k][2] > 0.6, (k, after[k])


def test_reinforce_minimises_in_min_mode():
    keys = [f"k{i}" for i in range(6)]
    searcher = ReinforceSearcher(metric="loss", mode="min", seed=1, batch_size=4)
    searcher.set_search_properties(None, None, {k: tune.choice([0, 1, 2]) for k in keys})
    best = {k: 0 for k in keys}
    for i in range(80):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"loss": sum(config.values())})
    probs = searcher.choice_probs(best)
    assert min(p[0] for p in probs.values()) > 0.45  # from ~1/3
    assert all(p[0] > p[2] for p in probs.values())


def test_reinforce_numeric_domains_on_plain_tune_space():
    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "dropout": tune.uniform(0.0, 0.5),
        "width": tune.randint(8, 512),
        "depth": tune.randint(1, 5),
        "batch": tune.qrandint(16, 256, 16),
        "wd": tune.qloguniform(1e-6, 1e-2, 1e-6),
        "act": tune.choice(["relu", "gelu"]),
    }
    searcher = ReinforceSearcher(metric="score", mode="max", seed=2, batch_size=4)
    assert searcher.set_search_properties(None, None, space)
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        assert 1e-4 <= config["lr"] <= 1e-1 and isinstance(config["lr"], float)
        assert 0.0 <= config["dropout"] <= 0.5
        assert 8 <= config["width"] < 512 and isinstance(config["width"], int)
        assert config["depth"] in (1, 2, 3, 4)
        assert 16 <= config["batch"] <= 256 and config["batch"] % 16 == 0
        assert 1e-6 <= config["wd"] <= 1e-2
        assert config["act"] in ("relu", "gelu")
        assert searcher.actions_of(config) is not None
        searcher.on_trial_complete(f"t{i}", {"score": -abs(math.log10(config["lr"]) + 3)})
    assert searcher.updates == 10
    sizes = {d.key: d.size for d in searcher.decisions}
    assert sizes == {"lr": 10, "dropout": 10, "width": 10, "depth": 4, "batch": 10, "wd": 10,
                     "act": 2}  # fmt: skip


def test_reinforce_loguniform_bins_are_log_spaced():
    searcher = ReinforceSearcher(metric="m", mode="max", seed=0, num_bins=4)
    searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1.0)})
    searcher.suggest("t0")
    (decision,) = searcher.decisions
    assert np.allclose(np.exp(decision.edges), [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert [decision.index(v) for v in (2e-4, 5e-3, 0.05, 0.5)] == [0, 1, 2, 3]


def test_reinforce_reward_target_shapes_reward_mnasnet_style():
    target = {"metric": "params_m", "target": 1.0, "w": -0.07}
    searcher = _nb201_searcher(batch_size=10, reward_target=target)
    searcher.suggest("t0")
    searcher.suggest("t1")
    searcher.on_trial_complete("t0", {"val_acc": 80.0, "params_m": 2.0})
    searcher.on_trial_complete("t1", {"val_acc": 80.0})  # no cost: left unshaped
    rewards = [r for _, r in searcher.buffer]
    assert rewards == pytest.approx([80.0 * 2.0**-0.07, 80.0])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("batch_size", 2.5, "batch_size must be an integer >= 1, got 2.5"),
        ("lr", 0.0, "lr must be a finite number > 0, got 0.0"),
        ("lr", float("nan"), "lr must be a finite number > 0, got nan"),
        ("entropy_weight", -1.0, "entropy_weight must be >= 0, got -1.0"),
        ("baseline_decay", 1.0, "baseline_decay must be in [0, 1), got 1.0"),
        ("hidden_size", 0, "hidden_size must be an integer >= 1, got 0"),
        ("temperature", -0.5, "temperature must be a finite number > 0, got -0.5"),
        ("tanh_constant", 0.0, "tanh_constant must be a finite number > 0, got 0.0"),
        ("reward_scale", -1.0, "reward_scale must be a finite number > 0, got -1.0"),
        ("num_bins", 1, "num_bins must be an integer >= 2, got 1"),
        ("reward_target", 3.0, "reward_target must be a dict with metric, target, w; got 3.0"),
        ({"metric": "acc", "target": 1.0}, None, "reward_target metric must be one of: "),
        ({"metric": "latency_ms", "target": 0}, None, "reward_target target must be a number"),
        ({"metric": "latency_ms", "target": 5.0, "w": 0.5}, None, "w must be in [-1, 0], got 0.5"),
        ({"metric": "latency_ms", "target": 5.0, "a": 1}, None, "unknown reward_target key 'a'"),
    ],
)
def test_reinforce_rejects_bad_option_naming_it(option, value, message):
    options = {option: value} if isinstance(option, str) else {"reward_target": option}
    with pytest.raises(ValueError) as err:
        _nb201_searcher(**options)
    assert message in str(err.value)


def test_reinforce_leaves_torch_global_state_alone(two_torch_threads):
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    _drive(_nb201_searcher(seed=5, batch_size=2), 0, 6)
    assert torch.equal(rng_state, torch.get_rng_state())
    assert threads == 2 and torch.get_num_threads() == threads


@pytest.mark.slow
def test_reinforce_runs_in_tuner_with_two_concurrent_trials(ray_address, tmp_path):
    space = search_spaces.get("nb201")
    searcher = make_reinforce(space, "val_acc", "max", seed=0, batch_size=2)
    grid = table_tuner(space, searcher, tmp_path, "reinforce", 6, 2).fit()
    assert not grid.errors
    archs = [r.metrics["arch"] for r in grid]
    assert len(archs) == 6 and len(set(archs)) == 6
    known = set(table().arch_strs)
    assert all(a in known for a in archs)


def test_reinforce_suggests_and_learns_from_points_to_evaluate():
    space = search_spaces.get("nb201")
    point = space.encode(space.from_str(table().optimum("cifar10")[0]))
    searcher = make_reinforce(space, "val_acc", "max", seed=0, points_to_evaluate=[point])
    assert searcher.suggest("t0") == point
    searcher.on_trial_complete("t0", {"val_acc": 84.9})
    assert searcher.buffer == [(searcher.actions_of(point), 84.9)]
    assert space.to_str(space.decode(searcher.suggest("t1"))) != table().optimum("cifar10")[0]
