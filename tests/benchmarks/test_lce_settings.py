"""The offline replay behind benchmarks/lce_settings.py: lock-step slots, ASHA's cut-off, and
LCE's stopping rule on constructed curves."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("lce_settings")


def test_replay_without_stopping_runs_every_epoch_and_picks_the_best_last_value(bench):
    values = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 6.0]])
    epochs, picked = bench.replay(values, [0, 1, 2], lambda *a: True, workers=2)
    assert epochs == 9
    assert picked == 1  # ties with trial 2 at 6.0: the first in trial order


def test_replay_asha_cuts_at_the_percentile_of_earlier_values(bench):
    # one epoch rung (grace 1, eta 3, max_t 3: rungs [1]); flat curves, one at a time
    firsts = [5.0, 1.0, 9.0, 3.0, 4.0]
    values = np.repeat(np.array(firsts)[:, None], 3, axis=1)
    epochs, picked = bench.replay(values, list(range(5)), bench.asha(1, 3, 3), workers=1)
    # 5: first at the rung, continues; 1 < pct([5]) = 5 stops; 9 > pct([5, 1]) continues;
    # 3 < pct([5, 1, 9]) = 6.33 stops; 4 < pct([5, 1, 9, 3]) = 5 stops
    assert epochs == 3 + 1 + 3 + 1 + 1
    assert picked == 2


def test_replay_lce_stops_a_hopeless_curve_once_a_good_one_finished(bench):
    t = np.arange(1, 21, dtype=float)
    good = 60 - 50 * t**-0.8
    bad = 20 - 15 * t**-0.8
    values = np.vstack([good, bad])
    cache: dict = {}
    decide = bench.lce(values, grace=4, delta=0.05, cache=cache)
    epochs, picked = bench.replay(values, [0, 1], decide, workers=1)
    assert picked == 0
    assert epochs == 20 + 4  # the bad curve stops at its first check, epoch 4
    assert len(cache) == 1
    # before any trial finished there is no reference, so nothing is stopped
    both = bench.replay(values, [1, 0], bench.lce(values, 4, 0.05, {}), workers=2)
    assert both[0] == 40


def test_replay_lce_with_learnt_weights_waits_for_min_completed(bench):
    t = np.arange(1, 21, dtype=float)
    good = 60 - 50 * t**-0.8
    values = np.vstack([good, good + 0.5, 20 - 15 * t**-0.8])
    learnt = bench.lce(values, 4, 0.05, {}, weights="completed", min_completed=2)
    # one at a time: after two finished curves the bad one stops at its first check
    assert bench.replay(values, [0, 1, 2], learnt, workers=1) == (40 + 4, 1)
    # with only one finished curve before it, the bad one runs to the end
    late = bench.lce(values, 4, 0.05, {}, weights="completed", min_completed=2)
    assert bench.replay(values, [0, 2, 1], late, workers=1)[0] == 60
    calibrated = bench.lce(values, 4, 0.05, {}, calibrate=True, min_completed=2)
    assert bench.replay(values, [0, 1, 2], calibrated, workers=1) == (40 + 4, 1)


def test_replay_lce_on_a_loss_curve_stops_the_high_loss_one(bench):
    t = np.arange(1, 21, dtype=float)
    low = 0.5 + 2.0 * t**-0.8
    high = 1.5 + 1.0 * t**-0.8
    values = np.vstack([low, high])
    decide = bench.lce(values, 4, 0.05, {}, mode="min", bounds=(0, None))
    assert bench.replay(values, [0, 1], decide, workers=1)[0] == 20 + 4
    # in mode max these falling curves get no fit, and LCE stops nothing
    as_max = bench.lce(values, 4, 0.05, {}, mode="max", bounds=(0, None))
    assert bench.replay(values, [0, 1], as_max, workers=1)[0] == 40


def test_cli_prints_one_asha_peer_per_grace(bench, tmp_path):
    out = tmp_path / "grid.txt"
    assert (
        bench.main(
            [
                "--seeds",
                "1",
                "--archs",
                "12",
                "--graces",
                "4",
                "--deltas",
                "0.05",
                "--asha-graces",
                "2,4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = [line.split()[0:2] for line in out.read_text().splitlines()]
    assert ["asha", "g2"] in rows and ["asha", "g4"] in rows and ["lce", "g4"] in rows
