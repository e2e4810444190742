"""LCE and TSE in real Tuners with the ``curves`` trainable, and through the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from ray import tune
from ray.tune.search import BasicVariantGenerator

import search_spaces
from raynas import cli, trainables
from schedulers.decisions import read_decisions
from schedulers.lce import LCEScheduler
from schedulers.tse import TSEScheduler

MAX_T = 8
N_ARCHS = 6


@pytest.fixture
def table(tmp_path):
    """One clearly good curve (listed first) and five hopeless ones, as a parquet file.

    Returns (path, points in trial order, good arch).
    """
    space = search_spaces.get("nb201")
    rng = np.random.default_rng(7)
    archs: list[str] = []
    while len(archs) < N_ARCHS:
        arch = space.to_str(space.sample(rng))
        if arch not in archs:
            archs.append(arch)
    rows = []
    for i, arch in enumerate(archs):
        top, loss0 = (80.0, 1.0) if i == 0 else (30.0 + i, 2.0 + 0.1 * i)
        tse = 0.0
        for e in range(1, MAX_T + 1):
            loss = loss0 * e**-0.5
            tse += loss
            rows.append(
                {
                    "arch": arch,
                    "seed": 0,
                    "epoch": e,
                    "train_loss": loss,
                    "val_acc": top - 0.6 * top / e,
                    "tse": tse,
                    "tse_ema": loss,
                    "cost_s": 0.01,
                }
            )
    path = tmp_path / "curves.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    points = [space.encode(space.from_str(a)) for a in archs]
    return path, points, archs[0]


def run(path, points, scheduler, storage, name):
    space = search_spaces.get("nb201")
    return tune.Tuner(
        trainables.make("curves", space, path=str(path)),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            # One trial at a time: the good curve completes before the others start.
            search_alg=BasicVariantGenerator(points_to_evaluate=points, max_concurrent=1),
            scheduler=scheduler,
            num_samples=len(points),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, verbose=0),
    ).fit()


def epochs_run(grid) -> dict[str, int]:
    return {r.metrics["arch"]: int(r.metrics["training_iteration"]) for r in grid}


def test_lce_in_tuner_stops_hopeless_curves_after_the_grace_period(ray_address, table, tmp_path):
    path, points, good = table
    scheduler = LCEScheduler(max_t=MAX_T, grace_period=3, bounds=[0, 100])
    grid = run(path, points, scheduler, tmp_path, "lce")
    ran = epochs_run(grid)
    assert not grid.errors and ran[good] == MAX_T
    assert sorted(t for a, t in ran.items() if a != good) == [3] * (N_ARCHS - 1)
    early = [r for r in read_decisions(tmp_path / "lce") if r.get("early")]
    assert len(early) == N_ARCHS - 1 and all(r["p_beat"] < 0.05 for r in early)


def test_lce_on_the_training_loss_with_calibration_in_tuner(ray_address, table, tmp_path):
    path, points, good = table
    scheduler = LCEScheduler(
        max_t=MAX_T,
        grace_period=3,
        bounds=[0, None],
        curve_metric="train_loss",
        curve_mode="min",
        calibrate=True,
        min_completed=1,
    )
    grid = run(path, points, scheduler, tmp_path, "lce_loss")  # TuneConfig: val_acc, max
    ran = epochs_run(grid)
    assert not grid.errors and ran[good] == MAX_T
    assert sorted(t for a, t in ran.items() if a != good) == [3] * (N_ARCHS - 1)
    assert grid.get_best_result().metrics["arch"] == good
    early = [r for r in read_decisions(tmp_path / "lce_loss") if r.get("early")]
    assert len(early) == N_ARCHS - 1
    assert all(
        r["reason"].startswith("P(train_loss@8 < ") and "calibrated by 1" in r["reason"]
        for r in early
    )


def test_tse_in_tuner_stops_slow_trainers_at_the_first_rung(ray_address, table, tmp_path):
    path, points, good = table
    scheduler = TSEScheduler(max_t=MAX_T, grace_period=1, reduction_factor=2)
    grid = run(path, points, scheduler, tmp_path, "tse")
    ran = epochs_run(grid)
    assert not grid.errors and ran[good] == MAX_T
    # Losses grow with the trial index: each newcomer ranks last at rung 1, except when
    # the rung keeps more than one (n >= 4 keeps 2: the third trial continues to rung 2).
    stopped = [a for a, t in ran.items() if t < MAX_T]
    assert len(stopped) >= N_ARCHS - 2
    early = [r for r in read_decisions(tmp_path / "tse") if r.get("early")]
    assert {r["trial_id"] for r in early} and all("rank" in r for r in early)


def test_cli_run_and_report_with_curves_and_lce(ray_address, table, tmp_path, capsys):
    path, points, _ = table
    experiment = {
        "name": "curves-lce",
        "space": "nb201",
        "searcher": {"name": "random", "options": {"points_to_evaluate": points}},
        "scheduler": {
            "name": "lce",
            "options": {"max_t": MAX_T, "grace_period": 3, "bounds": [0, 100]},
        },
        "trainable": {"name": "curves", "options": {"path": str(path)}},
        "metric": "val_acc",
        "mode": "max",
        "num_samples": len(points),
        "max_concurrent": 1,
        "resources": {"cpu": 0.5},
    }
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump(experiment, sort_keys=False))
    code = cli.main(["run", str(file), "--storage-path", str(tmp_path / "runs"), "-q"])
    capsys.readouterr()
    assert code == 0
    code = cli.main(["report", str(tmp_path / "runs" / "curves-lce")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{N_ARCHS - 1} stopped early, 1 reached max_t" in out, out
    assert "stopped early (trial, training_iteration, reason):" in out
    assert out.count("P(val_acc@8 > ") == N_ARCHS - 1
