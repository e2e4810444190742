"""raynas's result loggers record each training iteration of a trial once (real Tuner)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import pytest

from raynas.loggers import result_loggers


def _retried_from_an_older_checkpoint(marker: str):
    """A function trainable that reports epochs 1..4, checkpointing every epoch but the 2nd,
    and fails right after reporting epoch 2 on its first attempt: Tune retries it from the
    epoch-1 checkpoint, so epoch 2 is reported twice (what a node lost between a result and
    its checkpoint leaves)."""

    def trainable(config: dict) -> None:
        from ray import tune

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                start = int(Path(folder, "epoch").read_text())
        for epoch in range(start + 1, 5):
            metrics = {"epoch": epoch, "loss": 1.0 / epoch}
            if epoch == 2:
                tune.report(metrics)
                if not os.path.exists(marker):
                    Path(marker).touch()
                    raise RuntimeError("lost after reporting epoch 2")
                continue
            with tempfile.TemporaryDirectory() as folder:
                Path(folder, "epoch").write_text(str(epoch))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    return trainable


def _run(tmp_path: Path, name: str, callbacks: list) -> Path:
    from ray import tune

    grid = tune.Tuner(
        _retried_from_an_older_checkpoint(str(tmp_path / f"{name}.failed")),
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path),
            callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=1),
            verbose=0,
        ),
    ).fit()
    assert grid.num_errors == 0
    (trial,) = [p for p in (tmp_path / name).iterdir() if p.is_dir() and "trainable" in p.name]
    return trial


def _iterations(trial: Path) -> tuple[list[int], list[int]]:
    lines = (trial / "result.json").read_text().splitlines()
    from_json = [json.loads(line)["training_iteration"] for line in lines if line.strip()]
    with open(trial / "progress.csv", newline="") as f:
        from_csv = [int(row["training_iteration"]) for row in csv.DictReader(f)]
    return from_json, from_csv


@pytest.mark.usefixtures("ray_address")
def test_tune_default_loggers_repeat_an_iteration_after_a_retry(tmp_path):
    # The behaviour the raynas loggers exist for (Tune 2.60): if this starts failing, Tune
    # stopped repeating the iteration and raynas.loggers may no longer be needed.
    trial = _run(tmp_path, "tune-default", [])
    assert _iterations(trial) == ([1, 2, 2, 3, 4], [1, 2, 2, 3, 4])


@pytest.mark.usefixtures("ray_address")
def test_raynas_loggers_record_each_iteration_once_after_a_retry(tmp_path):
    trial = _run(tmp_path, "raynas", result_loggers())
    assert _iterations(trial) == ([1, 2, 3, 4], [1, 2, 3, 4])
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    # epoch 3 comes from the retry (restored from the epoch-1 checkpoint: its 2nd iteration)
    assert [r["iterations_since_restore"] for r in rows] == [1, 2, 2, 3]


def test_logger_state_survives_a_pickle_round_trip():
    # Tune saves callback state with each experiment snapshot; `raynas resume` restores it.
    json_logger = result_loggers()[0]

    class _Trial:
        trial_id = "t1"

    assert json_logger._first_time(_Trial(), {"training_iteration": 3})
    restored = result_loggers()[0]
    restored.set_state(json_logger.get_state())
    assert not restored._first_time(_Trial(), {"training_iteration": 3})
    assert restored._first_time(_Trial(), {"training_iteration": 4})
