"""Optuna, HyperOpt and BOHB as raynas ships them: forgiving of unknown trials and bad
metrics."""

from __future__ import annotations

import math
import subprocess
import sys

import cloudpickle
import pytest

import search_spaces
from raynas.searchers.peers import make_bohb, make_hyperopt, make_optuna


@pytest.mark.parametrize(
    "make", [make_optuna, make_hyperopt, make_bohb], ids=["optuna", "hyperopt", "bohb"]
)
def test_unknown_trials_and_missing_metrics_do_not_end_the_run(make):
    # Tune's own classes raise here (KeyError for an id restart_errored made up, TypeError or
    # RuntimeError for a missing metric), and a searcher's exception ends the whole run.
    space = search_spaces.get("nb201")
    searcher = make(space, "val_acc", "max", 0)
    searcher.set_search_properties("val_acc", "max", space.tune_space())
    searcher.suggest("a")
    searcher.on_trial_result("never-suggested", {"val_acc": 1.0, "training_iteration": 1})
    searcher.on_trial_complete("never-suggested", {"val_acc": 1.0})
    searcher.on_trial_result("a", {"training_iteration": 1})  # no metric in this result
    searcher.on_trial_complete("a", {"val_acc": None})
    searcher.suggest("b")
    searcher.on_trial_complete("b", {"val_acc": math.nan})
    searcher.suggest("c")
    searcher.on_trial_complete("c", {"val_acc": 50.0})
    assert searcher.suggest("d") is not None
    # Tune saves searchers with cloudpickle; another process must load them back.
    loaded = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; print(type(pickle.load(sys.stdin.buffer)))"],
        input=cloudpickle.dumps(searcher),
        capture_output=True,
        check=True,
    )
    assert f"Forgiving{type(searcher).__mro__[2].__name__}" in loaded.stdout.decode()


def test_a_trial_stopped_while_paused_ends_quietly_a_nan_metric_warns(caplog):
    # Tune calls on_trial_complete(trial_id) with no result for a trial a scheduler stops
    # while it is paused (HyperBandForBOHB's brackets): nothing to warn about. A result
    # without a finite metric is.
    space = search_spaces.get("nb201")
    searcher = make_bohb(space, "val_acc", "max", 0)
    searcher.set_search_properties("val_acc", "max", space.tune_space())
    searcher.suggest("paused")
    searcher.suggest("nan")
    with caplog.at_level("WARNING", logger="raynas.searchers.peers"):
        searcher.on_trial_complete("paused")
        searcher.on_trial_complete("nan", {"val_acc": math.nan})
    assert "paused" not in caplog.text
    assert "trial nan ended without a finite 'val_acc'" in caplog.text
