"""Each trainable's declared metrics (``trainables.metrics``) are what it really reports."""

from __future__ import annotations

import pytest

import search_spaces
from raynas import trainables

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
SMALL = {"C": 4, "N": 1}


def _config(space):
    return space.encode(space.from_str(ARCH))


def _table(space, options):
    from raynas.trainables.table import evaluate

    return evaluate(space, _config(space), options.get("dataset", "cifar10"))


def _train(space, options):
    from raynas.trainables.train import Trainer, TrainOptions

    opts = TrainOptions(
        **{
            "dataset": "digits",
            "epochs": 1,
            "build": SMALL,
            "subset": 128,
            "threads": 1,
            **options,
        }
    )
    return Trainer(space, _config(space), opts).step()


def _proxy(space, options):
    from raynas.trainables.proxy import evaluate

    return evaluate(space, _config(space), dataset="digits", batch_size=16, **options)


def _darts(space, options):
    from raynas.trainables.darts import DartsOptions, DartsSearch

    opts = DartsOptions(
        **{
            "dataset": "synthetic",
            "epochs": 1,
            "batch_size": 32,
            "build": SMALL,
            "subset": 64,
            "val_fraction": 64,
            "threads": 1,
            **options,
        }
    )
    return DartsSearch(space, opts).step()


def _curves(space, options):
    from raynas.benchmarks import curves

    cls = trainables.make("curves", space)
    trial = cls(config=curves.points_to_evaluate(seed=0)[0])
    try:
        return trial.train()
    finally:
        trial.stop()


def _supernet(space, options):
    from raynas.oneshot.shrinking import ProgressiveShrinking, SupernetOptions
    from raynas.torch_state import single_thread

    opts = SupernetOptions(
        **{
            "dataset": "digits",
            "subset": 64,
            "val_fraction": 32,
            "batch_size": 32,
            "phases": {"full": 1},
            "eval_subnets": 1,
            "bn_batches": 1,
            "threads": 1,
            **options,
        }
    )
    with single_thread():  # as the trainable's threads: 1 (the engine leaves threads alone)
        return ProgressiveShrinking(opts, width_mult=space.width_mult).step()


def _subnet(space, options):
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    from raynas.hardware import targets
    from raynas.nn.ofa import OFASupernet
    from raynas.trainables import subnet

    folder = Path(tempfile.mkdtemp(prefix="subnet-metrics-"))
    net = OFASupernet(width_mult=space.width_mult, num_classes=10, in_channels=1)
    data = {"dataset": "digits", "subset": 64, "val_fraction": 32}
    state = {"model": net.state_dict(), "identity": net.identity(), "options": data}
    torch.save({**state, "dropout": 0.1, "epoch": 0}, folder / "supernet.pt")
    loaded = subnet.cached_supernet(folder / "supernet.pt")
    fast = dict(probes=9, warmup=0, repeats=1, rounds=1, calibration_subnets=0)
    tables = {
        t.name: targets.table(t, 8, space.width_mult, cache_dir=folder, build=True, **fast)
        for t in targets.parse_all(options["targets"])
    }
    genotype = space.sample(np.random.default_rng(0))
    return subnet.Scorer(loaded, tables).score(genotype, space.to_str(genotype))


def _oneshot(space, options):
    from raynas.oneshot.methods import make_search
    from raynas.trainables.darts import DartsOptions

    opts = DartsOptions(
        dataset="synthetic", epochs=1, batch_size=32, build=SMALL, subset=64, val_fraction=64,
        threads=1, **options,
    )  # fmt: skip
    return make_search(space, opts).step()


RUN = {
    "table": _table,
    "train": _train,
    "proxy": _proxy,
    "darts": _darts,
    "oneshot": _oneshot,
    "curves": _curves,
    "supernet": _supernet,
    "subnet": _subnet,
}
#: The space a trainable's case runs on (nb201 unless named here).
SPACES = {"supernet": "mobilenetv3", "subnet": "mobilenetv3"}
CASES = [
    # one case each (a darts or train epoch takes ~10 s on a busy 2-core machine), with the
    # options that add metrics
    ("table", {}),
    ("train", {"eval_test": True}),
    ("proxy", {"proxies": ["naswot", "synflow"], "table_dataset": "cifar10"}),
    ("darts", {"pc_k": 2, "nb201_table": "cifar10"}),
    ("oneshot", {"method": "rsps", "candidates": 3, "nb201_table": "cifar10"}),
    ("oneshot", {"method": "gdas"}),
    ("oneshot", {"method": "setn", "candidates": 3}),
    ("oneshot", {"method": "enas"}),
    ("curves", {}),
    ("supernet", {"sandwich": True}),
    ("subnet", {"targets": ["cpu-b1", "cpu-b64"]}),
]


def test_every_registered_trainable_is_covered():
    assert sorted(RUN) == trainables.names()


@pytest.mark.parametrize(("name", "options"), CASES)
def test_declared_metrics_are_the_reported_ones(name, options):
    space = search_spaces.get(SPACES.get(name, "nb201"))
    reported = RUN[name](space, options)
    declared = trainables.metrics(name, space, **options)
    own = set(reported) - {"done", "should_checkpoint", *trainables.TUNE_METRICS}
    # Tune's keys (training_iteration...) come with a result reported through Tune.
    own -= {"timestamp", "iterations_since_restore", "time_since_restore", "pid", "hostname"}
    own -= {"node_ip", "config", "date", "trial_id", "experiment_id", "timesteps_total"}
    own -= {"episodes_total", "timesteps_since_restore", "checkpoint_dir_name"}
    assert own <= set(declared), f"reported but not declared: {sorted(own - set(declared))}"
    assert set(declared) - set(trainables.TUNE_METRICS) <= set(reported), (
        f"declared but not reported: {sorted(set(declared) - set(reported))}"
    )


def test_dataset_is_the_one_the_options_name():
    assert trainables.dataset("table", dataset="cifar100") is None
    assert trainables.dataset("train") == ("digits", None)
    assert trainables.dataset("proxy") == ("cifar10", None)
    assert trainables.dataset("darts", dataset="cifar10", root="/x") == ("cifar10", "/x")
