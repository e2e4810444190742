"""The ``proxy`` trainable: training-free scores per trial, option checks, a real Tuner."""

from __future__ import annotations

import math
import os

import helpers
import pytest
import torch
from ray import tune

import search_spaces
from raynas.benchmarks import nb201
from raynas.trainables import proxy

SMALL = {"C": 4, "N": 1}
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _cifar_root() -> str | None:
    """$RAYNAS_DATA, else the shared data folder next to the repository, if it holds CIFAR-10."""
    for root in (os.environ.get("RAYNAS_DATA"), helpers.REPO.parent / "shared" / "data"):
        if not root:
            continue
        folders = (".", "cifar-10-batches-py", "cifar-10-mini/cifar-10-batches-py")
        if any(os.path.isfile(os.path.join(root, f, "test_batch")) for f in folders):
            return str(root)
    return None


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _evaluate(arch: str, **options):
    space = search_spaces.get("nb201")
    options = {"dataset": "synthetic", "build": SMALL, "batch_size": 16, **options}
    return proxy.evaluate(space, space.encode(space.from_str(arch)), **options)


def test_reports_scores_costs_and_table_accuracy():
    metrics = _evaluate(ARCH, proxies=("naswot", "synflow"), table_dataset="cifar10")
    entry = nb201.table().lookup(ARCH, "cifar10")
    assert metrics["arch"] == ARCH and metrics["epoch"] == 1
    assert math.isfinite(metrics["score_naswot"]) and metrics["score_synflow"] > 0
    assert metrics["params_m"] > 0 and metrics["flops_m"] > 0 and metrics["cost_s"] > 0
    assert metrics["table_val_acc"] == entry.val_acc
    assert metrics["table_test_acc"] == entry.test_acc
    assert metrics["nonfinite"] == ""


def test_scores_are_deterministic_for_a_seed():
    names = ("naswot", "jacov", "snip")
    first, second = _evaluate(ARCH, proxies=names), _evaluate(ARCH, proxies=names)
    other = _evaluate(ARCH, proxies=names, seed=1)
    for name in names:
        assert first[f"score_{name}"] == second[f"score_{name}"]
        assert first[f"score_{name}"] != other[f"score_{name}"]


def test_nonfinite_scores_are_worst_and_named():
    metrics = _evaluate(DEAD, proxies=("naswot", "jacov", "params"))
    assert metrics["score_naswot"] == -math.inf and metrics["score_jacov"] == -math.inf
    assert metrics["nonfinite"] == "naswot=-inf,jacov=nan"
    assert metrics["score_params"] > 0


def test_batch_is_fixed_by_seed_and_cached():
    a = proxy.load_batch("synthetic", None, 0, 16)
    assert proxy.load_batch("synthetic", None, 0, 16) is a
    b = proxy.load_batch("synthetic", None, 1, 16)
    assert a[0].shape == (16, 3, 8, 8) and not torch.equal(a[0], b[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"proxies": ["nasbot"]}, "unknown zero-cost proxy 'nasbot'; choose one of: flops"),
        ({"proxies": []}, "proxies must name at least one proxy"),
        ({"proxies": ["snip", "snip"]}, "must not repeat"),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
        ({"batch_size": 1}, "batch_size must be an integer >= 2, got 1"),
        ({"table_dataset": "c10"}, "unknown nb201 dataset 'c10'"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"threads": 0}, "threads must be >= 1"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        proxy.make(search_spaces.get("nb201"), **options)


def test_table_dataset_needs_nb201():
    darts = search_spaces.get("darts")
    with pytest.raises(ValueError, match="table_dataset needs the nb201 space"):
        proxy.make(darts, table_dataset="cifar100")
    proxy.make(darts)  # the default is dropped for spaces without a table


@pytest.mark.slow
def test_proxy_trainable_in_tuner(ray_address, tmp_path):
    root = _cifar_root()
    if root is None:
        pytest.skip("CIFAR-10 not found ($RAYNAS_DATA or ../shared/data)")
    space = search_spaces.get("nb201")
    trainable = proxy.make(
        space,
        proxies=("naswot", "synflow"),
        root=root,
        batch_size=32,
        build={"C": 8, "N": 1},
        threads=1,
    )
    # Every edge but 3<-0 is "none", so the cell of the "none" trial is empty: naswot = -inf.
    param_space = {
        **dict.fromkeys(space.tune_space(), "none"),
        "edge.3<-0": tune.grid_search(["none", "nor_conv_3x3", "skip_connect"]),
    }
    grid = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric="score_naswot", mode="max", num_samples=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="proxy", verbose=0),
    ).fit()
    assert not grid.errors
    assert len(grid) == 3
    for result in grid:
        metrics = result.metrics
        assert metrics["training_iteration"] == metrics["epoch"] == 1
        assert nb201.table().lookup(metrics["arch"]).test_acc == metrics["table_test_acc"]
        assert "score_synflow" in metrics and metrics["cost_s"] > 0
    scores = {r.config["edge.3<-0"]: r.metrics["score_naswot"] for r in grid}
    assert scores["none"] == -math.inf < min(scores["nor_conv_3x3"], scores["skip_connect"])
    assert grid.get_best_result().metrics["score_naswot"] == max(scores.values())
