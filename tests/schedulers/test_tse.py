"""TSEScheduler: validation, rung logic on constructed trials, restore, and a real Tuner."""

from __future__ import annotations

import math

import pytest
from ray import tune

from raynas.estimators.tse import tse, tse_e, tse_ema
from schedulers.decisions import read_decisions, summarise_decisions
from schedulers.tse import TSEScheduler

# Per-trial training speed: train_loss(t) = speed / t (lower speed = trains faster = better).
SPEEDS = {"a": 1.0, "b": 2.0, "c": 0.5, "d": 3.0, "e": 0.8, "f": 1.5, "g": 0.9, "h": 2.5}


def loss(name: str, t: int) -> float:
    return SPEEDS[name] / t


def round_robin(names, max_t=9):
    return [
        (n, {"training_iteration": t, "train_loss": loss(n, t), "val_acc": 0.5})
        for t in range(1, max_t + 1)
        for n in names
    ]


def make_tse(**options):
    sched = TSEScheduler(**{"max_t": 9, "grace_period": 1, "reduction_factor": 3, **options})
    sched.set_search_properties("val_acc", "max")
    return sched


@pytest.mark.parametrize(
    "options, message",
    [
        ({"reduction_factor": 1}, "reduction_factor must be > 1, got 1"),
        ({"E": 0}, "E must be an integer >= 1, got 0"),
        ({"loss_attr": ""}, "loss_attr must be a result key"),
        ({"tse_metric": 3}, "tse_metric must be a result key or None, got 3"),
        ({"max_t": -1}, "max_t must be a number > 0, got -1"),
        ({"mode": "up"}, "mode must be 'min' or 'max', got 'up'"),
    ],
)
def test_invalid_option_is_named(options, message):
    with pytest.raises(ValueError, match=message):
        TSEScheduler(**options)


def test_rungs_are_grace_times_eta_powers_below_max_t():
    assert TSEScheduler(max_t=100, grace_period=1, reduction_factor=3).rungs == [1, 3, 9, 27, 81]
    assert TSEScheduler(max_t=16, grace_period=2, reduction_factor=2).rungs == [2, 4, 8]


def test_tse_estimators():
    assert tse([1.0, 0.5, 0.25]) == 1.75
    assert tse_e([1.0, 0.5, 0.25], 2) == 0.75
    # TSE-EMA = sum_t gamma**(T - t) * loss_t: the last epoch has weight 1, earlier ones less
    assert tse_ema([1.0, 0.0], 0.9) == pytest.approx(0.9)
    assert tse_ema([0.0, 1.0], 0.9) == pytest.approx(1.0)
    assert tse_ema([2.0, 1.0, 0.5], 0.5) == pytest.approx(0.5 * 0.5 * 2.0 + 0.5 * 1.0 + 0.5)
    assert tse_ema([1.0, math.inf], 0.9) == math.inf
    assert tse_e([1.0, math.nan], 1) == math.inf
    # a diverged run is the worst, never an error (math.fsum raises on these)
    assert tse([math.inf, -math.inf]) == math.inf
    assert tse_e([1e308, 1e308], 2) == math.inf


def test_rung_logic_keeps_best_fraction_by_tse(make_trial, drive):
    sched = make_tse()
    trials = {n: make_trial(n) for n in "abcdef"}
    for trial in trials.values():
        sched.on_trial_add(None, trial)
    stopped: set[str] = set()
    decisions = drive(sched, trials, round_robin("abcdef"), stopped)
    # Rung 1, in arrival order; cut-off = the 1/3 quantile (linear) of the earlier TSEs:
    # a first -> continue; b 2.0 vs {1.0}: cut-off 1.0 -> stop; c 0.5 vs {1, 2}: 1.33 ->
    # continue; d 3.0 vs {0.5, 1, 2}: 0.83 -> stop; e 0.8 vs {0.5, 1, 2, 3}: 1.0 -> continue;
    # f 1.5 vs {0.5, 0.8, 1, 2, 3}: 0.87 -> stop.
    assert {n: decisions[(n, 1)] for n in "abcdef"} == {
        "a": "CONTINUE",
        "b": "STOP",
        "c": "CONTINUE",
        "d": "STOP",
        "e": "CONTINUE",
        "f": "STOP",
    }
    # Rung 3 (losses / 3): a first -> continue; c 0.167 vs {0.333} -> continue;
    # e 0.267 vs {0.167, 0.333}: cut-off 0.222 -> stop. a and c stop at max_t.
    assert decisions[("a", 3)] == decisions[("c", 3)] == "CONTINUE"
    assert decisions[("e", 3)] == "STOP"
    assert decisions[("a", 9)] == decisions[("c", 9)] == "STOP"
    assert stopped == set("abcdef")
    records = {
        (r["trial_id"], r["t"]): r for r in read_decisions(trials["a"].storage.experiment_fs_path)
    }
    record = records[("e", 1)]
    assert (record["rank"], record["n"], record["cutoff"]) == (2, 5, 1.0)
    assert record["reason"] == (
        "rung 1: TSE 0.8 ranks 2 of 5; continue: at or below the cut-off 1, the 1/3 quantile "
        "of the 4 earlier finite TSEs"
    )
    assert records[("e", 3)]["cutoff"] == pytest.approx(0.5 / 3 + (1 - 0.5) / 3 / 3)


@pytest.mark.parametrize("eta", [2, 3, 4])
def test_same_decisions_as_tunes_asha_on_the_negated_tse(make_trial, drive, eta):
    # The rule is Tune's ASHA's: ASHA ranking -train_loss must decide exactly as TSE-E (E=1).
    from ray.tune.schedulers import ASHAScheduler

    names = "abcdefgh"
    asha = ASHAScheduler(
        time_attr="training_iteration",
        metric="neg_loss",
        mode="max",
        max_t=9,
        grace_period=1,
        reduction_factor=eta,
    )
    ours = make_tse(reduction_factor=eta)
    schedule = [(n, {**r, "neg_loss": -r["train_loss"]}) for n, r in round_robin(names, max_t=9)]
    decisions = []
    for sched, experiment in ((asha, "asha"), (ours, "tse")):
        trials = {n: make_trial(n, experiment) for n in names}
        for trial in trials.values():
            sched.on_trial_add(None, trial)
        decisions.append(drive(sched, trials, schedule, set()))
    theirs, mine = decisions
    assert mine == theirs
    assert "STOP" in {d for (_, t), d in mine.items() if t < 9}  # some trial stops early


def test_lower_tse_wins_whatever_the_mode(make_trial, drive):
    sched = TSEScheduler(max_t=9, grace_period=1)
    sched.set_search_properties("val_loss", "min")
    trials = {n: make_trial(n) for n in "ba"}
    decisions = drive(sched, trials, round_robin("ba", max_t=1), set())
    assert decisions == {("b", 1): "CONTINUE", ("a", 1): "CONTINUE"}  # a (1.0) beats b (2.0)


def test_tse_e_window_sums_the_last_e_losses(make_trial, drive):
    sched = make_tse(grace_period=3, E=3)
    trials = {n: make_trial(n) for n in "ab"}
    drive(sched, trials, round_robin("ab", max_t=3), set())
    record = next(
        r
        for r in read_decisions(trials["a"].storage.experiment_fs_path)
        if r["trial_id"] == "b" and r["t"] == 3
    )
    assert record["score"] == pytest.approx(2.0 * (1 + 1 / 2 + 1 / 3))


def test_reported_tse_metric_is_used_when_named(make_trial, drive):
    sched = make_tse(tse_metric="tse_ema")
    trials = {n: make_trial(n) for n in "ab"}
    schedule = [
        ("a", {"training_iteration": 1, "train_loss": 9.0, "tse_ema": 2.0}),
        ("b", {"training_iteration": 1, "train_loss": 0.1, "tse_ema": 3.0}),
    ]
    assert drive(sched, trials, schedule, set())[("b", 1)] == "STOP"


def test_nan_loss_ranks_worst_and_missing_loss_defers(make_trial, drive):
    sched = make_tse()
    trials = {n: make_trial(n) for n in "abc"}
    schedule = [
        ("a", {"training_iteration": 1, "train_loss": math.nan}),
        ("b", {"training_iteration": 1, "train_loss": 5.0}),
        ("c", {"training_iteration": 1}),
        ("c", {"training_iteration": 2, "train_loss": 9.0}),
    ]
    decisions = drive(sched, trials, schedule, set())
    assert decisions[("a", 1)] == "CONTINUE"  # first at the rung
    assert decisions[("b", 1)] == "CONTINUE"  # 5.0 beats a diverged run
    assert decisions[("c", 1)] == "CONTINUE"  # no loss yet: decided at the next result
    assert decisions[("c", 2)] == "STOP"  # 9.0 at rung 1: cut-off 5.0 (the nan left out)


def test_unknown_and_errored_trials_are_tolerated(make_trial):
    sched = make_tse()
    ghost = make_trial("ghost")
    assert sched.on_trial_result(None, ghost, {"training_iteration": 1, "train_loss": 1.0}) == (
        "CONTINUE"
    )
    sched.on_trial_error(None, ghost)
    sched.on_trial_complete(None, make_trial("unseen"), {})
    assert sched.get_state()["status"]["ghost"] == "error"


@pytest.mark.parametrize("cut", [7, 13, 20])
def test_rebuilt_from_decision_log_decides_as_uninterrupted(make_trial, drive, cut):
    names = "abcdefgh"
    whole = make_tse()
    trials = {n: make_trial(n, "whole") for n in names}
    expected = drive(whole, trials, round_robin(names), set())

    first = make_tse()
    trials = {n: make_trial(n, f"cut{cut}") for n in names}
    for trial in trials.values():
        first.on_trial_add(None, trial)
    stopped: set[str] = set()
    got = drive(first, trials, round_robin(names)[:cut], stopped)
    second = make_tse()  # Tuner.restore: a fresh scheduler, every trial added again
    again = {n: make_trial(n, f"cut{cut}") for n in names}
    for trial in again.values():
        second.on_trial_add(None, trial)
    repeats = drive(second, again, round_robin(names)[cut - 3 : cut], set(stopped))
    assert all(got[k] == d for k, d in repeats.items())
    got.update(drive(second, again, round_robin(names)[cut:], stopped))
    assert got == expected


def test_final_result_on_a_rung_counts_there_live_as_after_a_restore(make_trial):
    # A class trainable that ends by itself at t=3 (a rung below max_t) gives its last result
    # only to on_trial_complete; Tune's ASHA records it at the rung, and a restore rebuilding
    # from the log did too, so the live run must (it did not: B then continued live and
    # stopped after a restore).
    a_results = [{"training_iteration": t, "train_loss": v} for t, v in ((1, 1.0), (2, 0.5))]
    a_final = {"training_iteration": 3, "train_loss": 0.3, "done": True}
    b_results = [
        {"training_iteration": t, "train_loss": v} for t, v in ((1, 0.9), (2, 0.7), (3, 0.6))
    ]

    def run(folder: str, restore: bool) -> list[str]:
        sched = make_tse()
        a, b = make_trial("a", folder), make_trial("b", folder)
        sched.on_trial_add(None, a)
        for result in a_results:
            sched.on_trial_result(None, a, dict(result))
        sched.on_trial_complete(None, a, dict(a_final))
        if restore:  # Tuner.restore: a fresh scheduler, every trial added again
            sched = make_tse()
            a, b = make_trial("a", folder), make_trial("b", folder)
            sched.on_trial_add(None, a)
        sched.on_trial_add(None, b)
        decisions = [sched.on_trial_result(None, b, dict(r)) for r in b_results]
        assert sched._recorded[3]["a"] == pytest.approx(0.3)  # rung 3 holds a's final TSE
        return decisions

    assert run("live", False) == run("restored", True) == ["CONTINUE", "CONTINUE", "STOP"]


def test_state_round_trip(make_trial, drive, tmp_path):
    sched = make_tse()
    trials = {n: make_trial(n) for n in "abcdef"}
    stopped: set[str] = set()
    drive(sched, trials, round_robin("abcdef")[:8], stopped)
    sched.save(str(tmp_path / "tse.json"))
    copy = make_tse()
    copy.restore(str(tmp_path / "tse.json"))
    assert copy.get_state() == sched.get_state()
    rest = round_robin("abcdef")[8:]
    assert drive(copy, trials, rest, set(stopped)) == drive(sched, trials, rest, set(stopped))
    with pytest.raises(ValueError, match="state of a 'tse' scheduler, expected 'lce'"):
        from schedulers.lce import LCEScheduler

        LCEScheduler().set_state(sched.get_state())


# --- a real Tuner ------------------------------------------------------------------------------


def replay_losses(config):
    for t in range(1, 10):
        train_loss = loss(config["name"], t)
        tune.report({"train_loss": train_loss, "val_acc": 1 - train_loss})


def test_tse_in_tuner_stops_slow_trainers_and_logs_ranks(ray_address, tmp_path):
    grid = tune.Tuner(
        replay_losses,
        param_space={"name": tune.grid_search(list("abcdef"))},
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=TSEScheduler(max_t=9, grace_period=1, reduction_factor=3),
            max_concurrent_trials=1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="tse", verbose=0),
    ).fit()
    last_t = {r.config["name"]: r.metrics["training_iteration"] for r in grid}
    # Sequential trials: a runs to the end first, then each meets the cut-offs at rungs 1 and 3
    # (see test_rung_logic_keeps_best_fraction_by_tse): e passes rung 1 but not rung 3.
    assert last_t == {"a": 9, "b": 1, "c": 9, "d": 1, "e": 3, "f": 1}
    log = read_decisions(tmp_path / "tse")
    assert all("rank" in r for r in log if r.get("early"))
    assert "4 stopped early, 2 reached max_t" in summarise_decisions(tmp_path / "tse")


def test_float_time_attr_result_past_several_rungs_counts_only_at_the_highest(make_trial):
    # With a float time_attr one result can pass several rungs (x: 0 -> 3.5 passes rungs 1
    # and 3). Its TSE, measured at 3.5, is ranked and recorded at rung 3 only: recorded at
    # rung 1 too (as before), it stopped a, the first trial to reach rung 1 with its own
    # score. (Tune's ASHA records x at rung 1 at x's next result, with a later score still;
    # raynas does not fill rungs passed over.)
    sched = make_tse(time_attr="time_total_s", max_t=30)
    trials = {n: make_trial(n) for n in "xabc"}
    for trial in trials.values():
        sched.on_trial_add(None, trial)
    schedule = [
        ("x", 3.5, 0.1),
        ("a", 1.0, 1.0),
        ("b", 1.0, 0.5),
        ("c", 1.0, 2.0),
        ("x", 7.0, 0.05),
        ("a", 2.0, 0.9),
    ]
    decisions = [
        sched.on_trial_result(None, trials[n], {"time_total_s": t, "train_loss": v})
        for n, t, v in schedule
    ]
    assert decisions == ["CONTINUE", "CONTINUE", "CONTINUE", "STOP", "CONTINUE", "CONTINUE"]
    assert sched._recorded[1] == {"a": 1.0, "b": 0.5, "c": 2.0}
    assert sched._recorded[3] == {"x": 0.1}
    folder = trials["x"].storage.experiment_fs_path
    records = [r for r in read_decisions(folder) if r["trial_id"] == "x"]
    assert [r.get("rung") for r in records] == [3, None]
    assert "between rungs (next rung at 9)" in records[1]["reason"]
