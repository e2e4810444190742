"""Scheduler registry: names, errors, and each scheduler in a real Tuner."""

from __future__ import annotations

import pytest
from ray import tune

import schedulers
import search_spaces
from raynas import trainables


def test_names():
    names = ["asha", "bohb", "fifo", "hyperband_for_bohb", "lce", "median", "tse"]
    assert schedulers.names() == names


def test_unknown_scheduler_and_option_are_named():
    with pytest.raises(ValueError, match="unknown scheduler 'hyperband'; choose one of: asha"):
        schedulers.make("hyperband")
    with pytest.raises(ValueError, match="unknown option 'grace' for scheduler 'asha'"):
        schedulers.make("asha", grace=1)


# (BOHB's scheduler needs the bohb searcher: tests/raynas/searchers/test_bohb.py runs it)
@pytest.mark.parametrize("name", sorted(set(schedulers.names()) - set(schedulers.BOHB_SCHEDULERS)))
def test_scheduler_runs_in_tuner(ray_address, tmp_path, name):
    space = search_spaces.get("nb201")
    grid = tune.Tuner(
        trainables.make("table", space),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            num_samples=4,
            scheduler=schedulers.make(name),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    ).fit()
    assert len(grid) == 4 and not grid.errors
