"""Fixtures for scheduler tests: real (stub) Tune trials in a temporary experiment folder."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_trial(tmp_path):
    """``make_trial(trial_id, experiment="exp")``: a stub ``Trial`` stored under tmp_path."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    def make(trial_id: str, experiment: str = "exp") -> Trial:
        storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name=experiment)
        storage.trial_dir_name = f"trial_{trial_id}"
        return Trial("__fake", trial_id=trial_id, storage=storage, stub=True)

    return make


@pytest.fixture
def drive():
    """``drive(scheduler, trials, schedule, stopped)``: feed results, return the decisions.

    ``schedule`` is a list of ``(trial_id, result)`` in arrival order; results of trials in
    ``stopped`` (a set, updated in place, as Tune's trial states) are not delivered.
    """

    def run(scheduler, trials, schedule, stopped):
        decisions = {}
        for tid, result in schedule:
            if tid in stopped:
                continue
            decision = scheduler.on_trial_result(None, trials[tid], dict(result))
            decisions[(tid, result["training_iteration"])] = decision
            if decision == "STOP":
                stopped.add(tid)
                scheduler.on_trial_complete(None, trials[tid], dict(result))
        return decisions

    return run
