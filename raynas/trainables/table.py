"""Tabular trainable: answers an NB201 architecture from the shipped NAS-Bench-201 table.

No training happens: one result per trial, in milliseconds, with the table's validation and
test accuracy on the chosen dataset, exact params/MACs of the NB201 network (C=16, N=5) and a
simulated 12-epoch training cost (see ``raynas.benchmarks.nb201.simulated_cost_s``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ray import tune

from raynas.benchmarks import nb201
from search_spaces.base import SearchSpace


def evaluate(space: SearchSpace, config: dict, dataset: str) -> dict:
    """The metrics the table trainable reports for ``config``."""
    genotype = space.decode(config)
    arch = space.to_str(genotype)
    entry = nb201.table().lookup(arch, dataset)
    info = nb201.DATASET_INFO[dataset]
    params, macs = nb201.params_and_macs(
        genotype.ops, classes=info["classes"], resolution=info["resolution"]
    )
    return {
        "epoch": 1,
        "epochs_trained": nb201.EPOCHS,
        "val_acc": entry.val_acc,
        "test_acc": entry.test_acc,
        "arch": arch,
        "arch_index": entry.index,
        "params_m": params / 1e6,
        "flops_m": macs / 1e6,
        "cost_s": nb201.simulated_cost_s(macs, dataset),
    }


def make(
    space: SearchSpace, dataset: str = "cifar10", delay_s: float = 0.0
) -> Callable[[dict], None]:
    """Table trainable for the ``nb201`` space.

    Args:
        space: must be the nb201 space (the table only knows NB201 cells).
        dataset: cifar10 | cifar100 | imagenet16-120.
        delay_s: wall-clock seconds each trial sleeps before answering, to emulate training
            time (demos of scheduling and interruption; 0 = answer at once).
    """
    if space.name != "nb201":
        raise ValueError(f"the table trainable needs the nb201 space, got {space.name!r}")
    nb201.check_dataset(dataset)
    if not 0 <= delay_s <= 3600:
        raise ValueError(f"delay_s must be in [0, 3600], got {delay_s}")

    def table_trainable(config: dict) -> None:
        metrics = evaluate(space, config, dataset)
        if delay_s:
            time.sleep(delay_s)
        tune.report(metrics)

    return table_trainable
