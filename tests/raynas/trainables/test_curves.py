"""The ``curves`` trainable replays stored learning curves exactly, in real Tuners."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator

import search_spaces
from raynas import trainables
from raynas.benchmarks import curve_table as curves

EPOCHS = 6


def write_table(path, n_archs=4, epochs=EPOCHS, seed=0, cost_s=0.001):
    """Random (but curve-shaped) rows for ``n_archs`` NB201 cells, written to ``path``."""
    space = search_spaces.get("nb201")
    rng = np.random.default_rng(seed)
    archs: list[str] = []
    while len(archs) < n_archs:
        arch = space.to_str(space.sample(rng))
        if arch not in archs:
            archs.append(arch)
    rows = []
    for arch in archs:
        top = rng.uniform(30, 90)
        loss = 2.3 * np.exp(-rng.uniform(0.05, 0.5) * np.arange(1, epochs + 1))
        for e in range(1, epochs + 1):
            rows.append(
                {
                    "arch": arch,
                    "seed": 0,
                    "epoch": e,
                    "train_loss": float(loss[e - 1]),
                    "train_acc": float(rng.uniform(10, 90)),
                    "val_loss": float(rng.uniform(0.5, 2.3)),
                    "val_acc": float(top - 40 / e + rng.normal(0, 0.5)),
                    "tse": float(loss[:e].sum()),
                    "tse_ema": float(loss[e - 1]),
                    "params_m": 0.1,
                    "flops_m": 3.0,
                    "cost_s": cost_s,
                }
            )
    pd.DataFrame(rows).to_parquet(path, index=False)
    return archs


@pytest.fixture
def table_file(tmp_path):
    path = tmp_path / "curves.parquet"
    write_table(path)
    return path


def run(trainable, points, storage, name, scheduler=None, concurrent=2):
    space = search_spaces.get("nb201")
    return tune.Tuner(
        trainable,
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            search_alg=BasicVariantGenerator(points_to_evaluate=points, max_concurrent=concurrent),
            scheduler=scheduler,
            num_samples=len(points),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, verbose=0),
    ).fit()


def assert_curve_replayed(rows, stored):
    """``rows`` (a trial's results in order) are the stored curve, epoch by epoch."""
    assert [r["training_iteration"] for r in rows] == list(range(1, EPOCHS + 1))
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    for column in curves.METRICS:
        assert [r[column] for r in rows] == [row[column] for row in stored], column


def assert_replayed_exactly(grid, table):
    assert not grid.errors
    for result in grid:
        frame = result.metrics_dataframe.sort_values("training_iteration")
        assert_curve_replayed(frame.to_dict("records"), table.curve(result.metrics["arch"]))


def test_replays_the_exact_stored_values_in_a_tuner(ray_address, table_file, tmp_path):
    space = search_spaces.get("nb201")
    points = curves.points_to_evaluate(seed=1, path=table_file)
    grid = run(trainables.make("curves", space, path=str(table_file)), points, tmp_path, "replay")
    assert len(grid) == 4
    assert_replayed_exactly(grid, curves.table(table_file))


class PauseOnceAtEpoch2(FIFOScheduler):
    """FIFO that pauses every trial once, after its second result; keeps every result."""

    def __init__(self) -> None:
        super().__init__()
        self.paused: set[str] = set()
        self.seen: dict[str, list[dict]] = {}

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self.seen.setdefault(trial.trial_id, []).append(dict(result))
        if result["training_iteration"] == 2 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        # the last result of a trial that ends by itself comes only here
        self.seen.setdefault(trial.trial_id, []).append(dict(result))


def test_paused_trials_resume_at_the_next_epoch(ray_address, table_file, tmp_path):
    space = search_spaces.get("nb201")
    points = curves.points_to_evaluate(seed=0, path=table_file)[:2]
    scheduler = PauseOnceAtEpoch2()
    grid = run(
        trainables.make("curves", space, path=str(table_file)),
        points,
        tmp_path,
        "pause",
        scheduler,
    )
    assert len(grid) == 2 and len(scheduler.paused) == 2 and not grid.errors
    # What the trainable reported, as the scheduler received it. (Not progress.csv: on resume
    # Tune copies the trial's progress file back from storage, which can drop the row of
    # the result that paused it; seen once in CI, rows [1, 3, 4, 5, 6].)
    table = curves.table(table_file)
    for result in grid:
        seen = scheduler.seen[result.metrics["trial_id"]]
        assert_curve_replayed(seen, table.curve(result.metrics["arch"]))
        # restored from the epoch-2 checkpoint: counting restarts at 1
        assert [r["iterations_since_restore"] for r in seen] == [1, 2, 1, 2, 3, 4]


def test_checkpoint_restores_epoch_and_iteration(table_file):
    space = search_spaces.get("nb201")
    cls = trainables.make("curves", space, path=str(table_file))
    config = curves.points_to_evaluate(seed=0, path=table_file)[0]
    first = cls(config=config)
    results = [first.train() for _ in range(3)]
    saved = first.save()
    second = cls(config=config)
    second.restore(saved)
    after = second.train()
    assert [r["epoch"] for r in results] == [1, 2, 3]
    assert after["epoch"] == 4 and after["training_iteration"] == 4
    other = cls(config=curves.points_to_evaluate(seed=0, path=table_file)[1])
    with pytest.raises(ValueError, match="checkpoint is for architecture"):
        other.restore(saved)
    first.stop(), second.stop(), other.stop()


def test_unknown_architecture_is_named_with_the_number_stored(ray_address, table_file, tmp_path):
    space = search_spaces.get("nb201")
    stored = curves.table(table_file).archs
    unknown = next(
        space.encode(g)
        for g in (space.sample(np.random.default_rng(i)) for i in range(100))
        if space.to_str(g) not in stored
    )
    arch = space.to_str(space.decode(unknown))
    with pytest.raises(ValueError, match="holds 4 architectures"):
        curves.table(table_file).curve(arch)
    grid = run(trainables.make("curves", space, path=str(table_file)), [unknown], tmp_path, "bad")
    assert len(grid.errors) == 1
    text = str(grid.errors[0])
    assert "no stored learning curve for architecture" in text and arch in text
    assert "holds 4 architectures" in text


def test_time_scale_sleeps_the_stored_cost(ray_address, tmp_path):
    path = tmp_path / "slow.parquet"
    write_table(path, n_archs=1, epochs=3, cost_s=0.1)
    space = search_spaces.get("nb201")
    points = curves.points_to_evaluate(path=path)
    grid = run(
        trainables.make("curves", space, path=str(path), time_scale=2.0), points, tmp_path, "s"
    )
    times = grid[0].metrics_dataframe["time_this_iter_s"]
    assert (times >= 0.19).all()


def test_bad_options_are_named(table_file, tmp_path):
    nb201 = search_spaces.get("nb201")
    with pytest.raises(ValueError, match="needs the nb201 space, got 'darts'"):
        trainables.make("curves", search_spaces.get("darts"), path=str(table_file))
    with pytest.raises(ValueError, match="time_scale must be in"):
        trainables.make("curves", nb201, path=str(table_file), time_scale=-1)
    with pytest.raises(ValueError, match="seed 3 not stored .* stored seeds: 0"):
        trainables.make("curves", nb201, path=str(table_file), seed=3)
    with pytest.raises(FileNotFoundError, match="export.py"):
        trainables.make("curves", nb201, path=str(tmp_path / "missing.parquet"))
    with pytest.raises(ValueError, match="unknown option 'timescale' for trainable 'curves'"):
        trainables.make("curves", nb201, timescale=1)


def test_points_to_evaluate_are_the_stored_archs_in_a_seeded_order(table_file):
    space = search_spaces.get("nb201")
    stored = curves.table(table_file).archs
    a = [space.to_str(space.decode(p)) for p in curves.points_to_evaluate(3, path=table_file)]
    b = [space.to_str(space.decode(p)) for p in curves.points_to_evaluate(3, path=table_file)]
    orders = {tuple(curves.arch_order(s, path=table_file)) for s in range(10)}
    assert a == b and sorted(a) == stored
    assert len(orders) > 1
    assert curves.arch_order(3, n=2, path=table_file) == a[:2]
    with pytest.raises(ValueError, match=r"n must be in \[1, 4\]"):
        curves.points_to_evaluate(0, n=5, path=table_file)
