"""The NB201 table trainable reports the standard metrics from the shipped table."""

from __future__ import annotations

import pytest

import search_spaces
from raynas import trainables
from raynas.benchmarks import nb201
from raynas.trainables.table import evaluate


@pytest.mark.parametrize("dataset", nb201.DATASETS)
def test_evaluate_matches_table(dataset):
    space = search_spaces.get("nb201")
    arch, best_val = nb201.table().optimum(dataset)
    metrics = evaluate(space, space.encode(space.from_str(arch)), dataset)
    assert metrics["arch"] == arch and metrics["val_acc"] == best_val
    assert metrics["test_acc"] == nb201.table().lookup(arch, dataset).test_acc
    assert metrics["params_m"] > 0 and metrics["flops_m"] > 0 and metrics["cost_s"] > 0
    assert metrics["epoch"] == 1


def test_cost_grows_with_macs():
    space = search_spaces.get("nb201")
    small = space.from_str("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    large = space.from_str(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "nor_conv_3x3~2|"
    )
    a = evaluate(space, space.encode(small), "cifar10")
    b = evaluate(space, space.encode(large), "cifar10")
    assert a["cost_s"] < b["cost_s"] and a["params_m"] < b["params_m"]


def test_unknown_trainable_and_option():
    space = search_spaces.get("nb201")
    listed = ", ".join(trainables.names())
    assert {"table", "train", "darts", "oneshot"} <= set(trainables.names())
    with pytest.raises(ValueError, match=f"unknown trainable 'tabel'; choose one of: {listed}$"):
        trainables.make("tabel", space)
    with pytest.raises(ValueError, match="unknown option 'datset' for trainable 'table'"):
        trainables.make("table", space, datset="cifar10")
    with pytest.raises(ValueError, match="delay_s must be in"):
        trainables.make("table", space, delay_s=-1)
