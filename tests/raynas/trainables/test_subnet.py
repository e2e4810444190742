"""The ``subnet`` trainable (inherited weights from an OFA supernet), hardware targets through
Tune, per-target report and export, and ``train``'s ``init_from``."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import numpy as np
import pytest
import torch
import yaml
from helpers import RAYNAS, cli_env

import search_spaces
from raynas import config as configmod
from raynas import data as datamod
from raynas import preflight
from raynas.config import ConfigError
from raynas.hardware import targets
from raynas.trainables import subnet

WIDTH = 0.35
FAST = dict(probes=9, warmup=0, repeats=1, rounds=1, calibration_repeats=1, calibration_subnets=0)


def _save_supernet(path, epochs: int = 0, subset: int | None = None) -> None:
    """A supernet saved as the supernet trainable's checkpoint file (``supernet.pt``), trained
    ``epochs`` epochs on digits (its largest subnet only: cheap, and enough for the largest
    subnet to learn); 0 epochs: the initial weights."""
    from raynas.nn.ofa import LARGEST, OFASupernet

    torch.manual_seed(0)
    options = {"dataset": "digits", "subset": subset, "val_fraction": 0.1, "seed": 0}
    splits = datamod.load("digits", val_fraction=0.1, subset=subset, seed=0)
    net = OFASupernet(width_mult=WIDTH, num_classes=10, in_channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    gen = torch.Generator().manual_seed(0)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.set_active(LARGEST)
    net.train()
    for _ in range(epochs):
        for x, y in datamod.Loader(splits, "train", 32, train=True, generator=gen):
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
    state = {"model": net.state_dict(), "identity": net.identity(), "options": options}
    torch.save({**state, "dropout": 0.1, "epoch": epochs}, path)


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    _save_supernet(path, subset=400)
    return str(path)


@pytest.fixture(scope="module")
def trained_supernet(tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "supernet.pt"
    _save_supernet(path, epochs=3)
    return str(path)


@pytest.fixture(scope="module")
def table_cache(tmp_path_factory):
    """cpu-b1 and cpu-b64 tables at the digits' 8x8, width 0.35 (fast, rough)."""
    folder = tmp_path_factory.mktemp("latency")
    for name in ("cpu-b1", "cpu-b64"):
        targets.table(name, 8, WIDTH, cache_dir=folder, build=True, **FAST)
    return str(folder)


@pytest.fixture()
def space():
    return search_spaces.get("mobilenetv3", width_mult=WIDTH, resolution=8)


def _scorer(supernet_file, table_cache, bn_batches=2):
    loaded = subnet.cached_supernet(supernet_file, WIDTH)
    tables = subnet.load_tables(targets.parse_all(["cpu-b1", "cpu-b64"]), loaded, table_cache)
    return subnet.Scorer(loaded, tables, bn_batches=bn_batches)


def test_supernet_is_read_once_per_process_and_again_when_it_changes(supernet_file, tmp_path):
    first = subnet.cached_supernet(supernet_file)
    assert subnet.cached_supernet(supernet_file) is first
    copy = tmp_path / "supernet.pt"
    copy.write_bytes(open(supernet_file, "rb").read())
    other = subnet.cached_supernet(str(copy))
    assert other is not first
    os.utime(copy, (1, 1))  # a rewritten checkpoint (new mtime) is read again
    assert subnet.cached_supernet(str(copy)) is not other


def test_score_reports_every_declared_metric_and_target(supernet_file, table_cache, space):
    scorer = _scorer(supernet_file, table_cache)
    genotype = space.sample(np.random.default_rng(0))
    metrics = scorer.score(genotype, space.to_str(genotype))
    declared = subnet.metrics(space, {"targets": ["cpu-b1", "cpu-b64"]})
    assert set(metrics) == set(declared)
    assert metrics["latency_ms"] == metrics["latency_ms_cpu-b1"]
    assert metrics["latency_ms_cpu-b64"] > metrics["latency_ms_cpu-b1"]
    assert 0 <= metrics["val_acc"] <= 100 and metrics["params_m"] > 0


def test_bn_recalibration_replaces_the_supernet_statistics(supernet_file, table_cache, space):
    scorer = _scorer(supernet_file, table_cache)
    genotype = space.sample(np.random.default_rng(1))
    plain = scorer.subnet(genotype, recalibrate=False)
    recal = scorer.subnet(genotype, recalibrate=True)
    again = scorer.subnet(genotype, recalibrate=True)
    key = next(k for k in plain.state_dict() if k.endswith("running_mean"))
    assert not torch.equal(plain.state_dict()[key], recal.state_dict()[key])
    for name, value in recal.state_dict().items():  # the same batches for every trial
        assert torch.equal(value, again.state_dict()[name]), name
    x = torch.randn(4, 1, 8, 8)
    assert not recal.training and torch.equal(recal(x), again(x))


@pytest.mark.slow
def test_inherited_weights_beat_random_init_on_digits(trained_supernet, table_cache, space):
    from raynas.nn.ofa import LARGEST

    scorer = _scorer(trained_supernet, table_cache)
    largest = space.from_str(space.to_str(space.decode(space.encode(_genotype(LARGEST)))))
    inherited = scorer.score(largest, space.to_str(largest))["val_acc"]
    fresh = space.build(largest, num_classes=10, in_channels=1).eval()
    _, random_acc = subnet.evaluate(fresh, scorer.loaded.splits)
    assert inherited > random_acc + 20, (inherited, random_acc)


def _genotype(stages):
    from search_spaces.mobilenetv3 import MobileNetV3Genotype

    return MobileNetV3Genotype(tuple(len(s) for s in stages), stages)


def _config(tmp_path, supernet, cache, **trainable) -> configmod.ExperimentConfig:
    return configmod.ExperimentConfig.model_validate(
        {
            "name": "ofa-search",
            "space": {"name": "mobilenetv3", "options": {"width_mult": WIDTH, "resolution": 8}},
            "searcher": {
                "name": "evolution",
                "options": {
                    "population_size": 4,
                    "objectives": {
                        "val_acc": "max",
                        "latency_ms_cpu-b1": "min",
                        "latency_ms_cpu-b64": "min",
                    },
                },
            },
            "trainable": {
                "name": "subnet",
                "options": {
                    "supernet": supernet,
                    "targets": ["cpu-b1", "cpu-b64"],
                    "table_cache": cache,
                    **trainable,
                },
            },
            "metric": "val_acc",
            "mode": "max",
            "num_samples": 8,
            "max_concurrent": 2,
            "resources": {"cpu": 1, "gpu": 0},
            "storage_path": str(tmp_path),
        }
    )


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing", "no such file or folder"),
        ("width", "width"),
        ("target", "has no latency table on this machine"),
        ("bad-target", "unknown hardware target 'tpu-b1'"),
    ],
)
def test_bad_supernet_or_target_is_refused_before_ray(
    supernet_file, table_cache, tmp_path, case, needle
):
    supernet, cache, extra = supernet_file, table_cache, {}
    if case == "missing":
        supernet = str(tmp_path / "nowhere" / "supernet.pt")
    elif case == "target":
        cache = str(tmp_path / "empty-cache")
    elif case == "bad-target":
        extra = {"targets": ["tpu-b1"]}
    cfg = _config(tmp_path, supernet, cache, **extra)
    if case == "width":
        cfg = cfg.model_copy(
            update={"space": cfg.space.model_copy(update={"options": {"width_mult": 0.5}})}
        )
    with pytest.raises(ConfigError, match=needle) as err:
        preflight.build(cfg)
    assert "\n" not in str(err.value)


def test_truncated_checkpoint_is_exit_2_in_one_line(supernet_file, table_cache, tmp_path):
    broken = tmp_path / "supernet.pt"
    broken.write_bytes(open(supernet_file, "rb").read()[:1000])
    cfg = _config(tmp_path, str(broken), table_cache).model_dump(exclude_none=True)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run(
        [*RAYNAS, "run", str(path), "-q"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(broken) in proc.stderr


@pytest.mark.slow
def test_search_for_two_targets_report_and_export(
    ray_address, supernet_file, table_cache, tmp_path, space
):
    from raynas import experiment, results

    cfg = _config(tmp_path, supernet_file, table_cache)
    experiment.run(cfg, address=ray_address, verbose=0)
    folder = tmp_path / "ofa-search"
    summary = results.load(folder)
    done = summary.trials[summary.trials["status"] == "TERMINATED"]
    assert len(done) == 8
    fronts = summary.target_fronts()
    assert sorted(fronts) == ["cpu-b1", "cpu-b64"]
    for name, (objectives, front) in fronts.items():
        assert objectives == {"val_acc": "max", f"latency_ms_{name}": "min"}
        assert len(front) >= 1
    text = results.format_report(summary)
    assert "hardware target cpu-b1:" in text and "hardware target cpu-b64:" in text

    env = cli_env()
    plots = tmp_path / "plots"
    proc = subprocess.run(
        [*RAYNAS, "report", str(folder), "--plot", str(plots)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (plots / "target_fronts.png").stat().st_size > 0

    budget = float(done["latency_ms_cpu-b1"].median())
    out = tmp_path / "subnet.pt"
    proc = subprocess.run(
        [
            *RAYNAS,
            "export",
            str(folder),
            "--target",
            "cpu-b1",
            "--max-latency-ms",
            str(budget),
            "--weights",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    within = done[done["latency_ms_cpu-b1"] <= budget]
    # ties in val_acc go to the earlier trial, as `raynas export` ranks (a stable sort)
    chosen = within.sort_values("val_acc", ascending=False, kind="stable").iloc[0]
    model, info = subnet.load_exported(out)
    assert info["arch"] == chosen["arch"]
    # the same weights as the trial scored: same outputs as a fresh copy, same accuracy
    scorer = _scorer(supernet_file, table_cache)
    reference = scorer.subnet(space.from_str(info["arch"]))
    x = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(model(x), reference(x))
    _, acc = subnet.evaluate(model, scorer.loaded.splits)
    assert acc == pytest.approx(float(chosen["val_acc"]))

    proc = subprocess.run(
        [*RAYNAS, "export", str(folder), "--target", "cpu-b1", "--max-latency-ms", "0.0001"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2 and "no trial" in proc.stderr


def test_exported_file_loads_without_the_supernet(supernet_file, table_cache, space, tmp_path):
    # what `raynas export --weights` writes, read in a fresh interpreter that never imports
    # the supernet code
    cfg = _config(tmp_path, supernet_file, table_cache)
    genotype = space.sample(np.random.default_rng(5))
    out = tmp_path / "subnet.pt"
    subnet.export(cfg, {"arch": space.to_str(genotype), "metrics": {}}, out)
    code = (
        "import sys, torch\n"
        "from raynas.trainables.subnet import load_exported\n"
        f"model, info = load_exported({str(out)!r})\n"
        "assert not any(m.startswith('raynas.nn.ofa') for m in sys.modules), 'supernet read'\n"
        "print(info['arch'])\n"
    )
    proc = subprocess.run(
        [RAYNAS[0], "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == space.to_str(genotype)


def test_init_from_copies_the_inherited_weights(supernet_file, space):
    from raynas.trainables.train import Trainer, TrainOptions

    genotype = space.sample(np.random.default_rng(3))
    options = TrainOptions(dataset="digits", subset=400, epochs=1, threads=1)
    scratch = Trainer(space, space.encode(genotype), options)
    tuned = Trainer(
        space, space.encode(genotype), dataclasses.replace(options, init_from=supernet_file)
    )
    expected = subnet.cached_supernet(supernet_file).supernet.subnet(genotype.blocks)
    for name, value in expected.state_dict().items():
        assert torch.equal(tuned.model.state_dict()[name], value), name
    assert not all(
        torch.equal(scratch.model.state_dict()[k], v) for k, v in expected.state_dict().items()
    )


@pytest.mark.slow
def test_init_from_first_epoch_far_above_scratch(trained_supernet, space):
    from raynas.nn.ofa import LARGEST
    from raynas.trainables.train import Trainer, TrainOptions

    config = space.encode(_genotype(LARGEST))
    options = TrainOptions(dataset="digits", epochs=1, batch_size=32, threads=1)
    scratch = Trainer(space, config, options).step()
    tuned = Trainer(space, config, dataclasses.replace(options, init_from=trained_supernet))
    first = tuned.step()
    assert first["val_acc"] > scratch["val_acc"] + 20, (first["val_acc"], scratch["val_acc"])


def test_init_from_other_dataset_or_space_is_refused(supernet_file, space):
    from raynas.trainables import train

    with pytest.raises(ConfigError, match="trained on 'digits'"):
        train.make(space, dataset="synthetic", init_from=supernet_file)
    nb201 = search_spaces.get("nb201")
    with pytest.raises(ConfigError, match="mobilenetv3"):
        train.make(nb201, dataset="digits", init_from=supernet_file)


@pytest.mark.parametrize(
    "arch, needle",
    [
        ("d2-2-2-2-2|k9e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3", "s1.b1.kernel"),
        (
            "d5-2-2-2-2|k3e3,k3e3,k3e3,k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3:k3e3,k3e3",
            "s1.depth",
        ),
    ],
)
def test_finetune_of_a_genotype_outside_the_elastic_range_is_refused(
    supernet_file, tmp_path, arch, needle
):
    cfg = configmod.ExperimentConfig.model_validate(
        {
            "name": "ofa-finetune",
            "space": {"name": "mobilenetv3", "options": {"width_mult": WIDTH, "resolution": 8}},
            "searcher": {"name": "fixed", "options": {"archs": [arch]}},
            "trainable": {
                "name": "train",
                "options": {"init_from": supernet_file, "dataset": "digits", "epochs": 1},
            },
            "num_samples": 1,
            "storage_path": str(tmp_path),
        }
    )
    with pytest.raises(ConfigError, match=needle) as err:
        preflight.build(cfg)
    assert "\n" not in str(err.value)
