"""LCEScheduler: validation, decisions on constructed curves, restore, and a real Tuner."""

from __future__ import annotations

import json
import math
import os
import tempfile

import pytest
from ray import tune

from raynas.snapshots import StateBackup, check_or_repair, newest_state
from schedulers.decisions import DECISIONS_FILE, read_decisions, summarise_decisions
from schedulers.lce import LCEScheduler

MAX_T = 15
# name -> (asymptote, amplitude, exponent) of val_acc(t) = c - a * t**-alpha
CURVES = {
    "ref": (0.9, 0.5, 0.6),  # reaches 0.80 at t=15: the first complete trial, the reference
    "hopeless": (0.5, 0.3, 0.5),
    "better": (0.97, 0.5, 0.6),
    "close": (0.88, 0.5, 0.6),
    "plateau": (0.6, 0.4, 0.8),
}


def val_acc(curve: str, t: float) -> float:
    c, a, alpha = CURVES[curve]
    return c - a * t**-alpha


def results(curve: str):
    return [{"training_iteration": t, "val_acc": val_acc(curve, t)} for t in range(1, MAX_T + 1)]


def make_lce(**options):
    options = {"max_t": MAX_T, "grace_period": 4, **options}
    sched = LCEScheduler(**options)
    sched.set_search_properties("val_acc", "max")
    return sched


def interleaved(names):
    """``ref`` runs first; the others then report round-robin."""
    schedule = [("ref", r) for r in results("ref")]
    rows = [results(n) for n in names]
    for t in range(MAX_T):
        schedule += [(n, row[t]) for n, row in zip(names, rows, strict=True)]
    return schedule


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "maximum"}, "mode must be 'min' or 'max', got 'maximum'"),
        ({"max_t": 0}, "max_t must be a number > 0, got 0"),
        ({"grace_period": 0}, "grace_period must be a number > 0, got 0"),
        ({"grace_period": 20, "max_t": 10}, r"grace_period must be <= max_t \(10\), got 20"),
        ({"time_attr": ""}, "time_attr must be a non-empty string"),
        ({"delta": 1.5}, r"delta must be in \(0, 1\), got 1.5"),
        ({"check_every": 0}, "check_every must be an integer >= 1, got 0"),
        ({"method": "nuts"}, "unknown method 'nuts'; choose one of: fast, mcmc"),
        ({"reference": "best"}, "unknown reference 'best'; choose one of: final, any"),
        ({"families": ["pow3", "pow9"]}, "unknown curve family 'pow9'"),
        ({"bounds": [1, 0]}, r"bounds must have low < high, got \[1, 0\]"),
        ({"n_bootstrap": 2}, "n_bootstrap must be an integer >= 8, got 2"),
        ({"weights": "aic"}, "unknown weights 'aic'; choose one of: bic, completed"),
        ({"min_completed": 0}, "min_completed must be an integer >= 1, got 0"),
        ({"curve_metric": "train_loss"}, r"curve_metric 'train_loss' needs curve_mode"),
        ({"curve_mode": "min"}, "curve_mode is for curve_metric; without it, set mode"),
        ({"curve_metric": "loss", "curve_mode": "down"}, "curve_mode must be 'min' or 'max'"),
        ({"curve_metric": ""}, "curve_metric must be a result key or None"),
        ({"calibrate": "yes"}, "calibrate must be true or false, got 'yes'"),
    ],
)
def test_invalid_option_is_named(options, message):
    with pytest.raises(ValueError, match=message):
        LCEScheduler(**options)


def test_metric_and_mode_come_from_tune_config_like_asha():
    sched = LCEScheduler()
    assert sched.set_search_properties("val_acc", "max")
    assert sched.metric == "val_acc" and sched.mode == "max"
    assert not LCEScheduler(metric="a", mode="max").set_search_properties("b", "max")


def test_missing_metric_or_mode_is_a_clear_error(make_trial):
    with pytest.raises(ValueError, match="LCEScheduler needs a metric and a mode"):
        LCEScheduler().on_trial_add(None, make_trial("t0"))


def test_stops_hopeless_curve_and_keeps_better_one(make_trial, drive):
    sched = make_lce()
    trials = {n: make_trial(n) for n in ("ref", "hopeless", "better")}
    for trial in trials.values():
        sched.on_trial_add(None, trial)
    stopped = set()
    decisions = drive(sched, trials, interleaved(["hopeless", "better"]), stopped)
    assert decisions[("hopeless", 4)] == "STOP"  # the first check already
    assert all(decisions[("better", t)] == "CONTINUE" for t in range(1, MAX_T))
    assert decisions[("better", MAX_T)] == "STOP"  # reached max_t
    assert sched.reference_value() == pytest.approx(val_acc("better", MAX_T))
    log = read_decisions(trials["ref"].storage.experiment_fs_path)
    stop = next(r for r in log if r["trial_id"] == "hopeless" and r["decision"] == "STOP")
    assert stop["early"] and stop["t"] == 4 and stop["p_beat"] < 0.05
    assert stop["pred_mean"] < 0.6 and stop["best"] == pytest.approx(val_acc("ref", MAX_T))
    assert "P(val_acc@15 > 0.8" in stop["reason"]


def test_nothing_stops_before_a_trial_reaches_max_t(make_trial, drive):
    sched = make_lce()
    trials = {"hopeless": make_trial("hopeless")}
    sched.on_trial_add(None, trials["hopeless"])
    decisions = drive(sched, trials, [("hopeless", r) for r in results("hopeless")], set())
    assert set(decisions.values()) == {"CONTINUE", "STOP"}
    assert [t for (_, t), d in decisions.items() if d == "STOP"] == [MAX_T]


def test_reference_any_compares_with_best_value_seen(make_trial, drive):
    sched = make_lce(reference="any")
    trials = {n: make_trial(n) for n in ("better", "hopeless")}
    schedule = [("better", r) for r in results("better")[:8]]
    schedule += [("hopeless", r) for r in results("hopeless")]
    decisions = drive(sched, trials, schedule, set())
    assert decisions[("hopeless", 4)] == "STOP"


def test_mode_min_stops_a_high_loss_curve(make_trial, drive):
    sched = LCEScheduler(max_t=MAX_T, grace_period=4)
    sched.set_search_properties("val_loss", "min")
    trials = {n: make_trial(n) for n in ("ref", "hopeless", "better")}

    def losses(name):
        return [
            {"training_iteration": r["training_iteration"], "val_loss": 1.0 - r["val_acc"]}
            for r in results(name)
        ]

    schedule = [("ref", r) for r in losses("ref")]
    for bad, good in zip(losses("hopeless"), losses("better"), strict=True):
        schedule += [("hopeless", bad), ("better", good)]
    decisions = drive(sched, trials, schedule, set())
    assert decisions[("hopeless", 4)] == "STOP"
    assert decisions[("better", MAX_T - 1)] == "CONTINUE"


def test_check_every_skips_fits_between_checks(make_trial, drive):
    sched = make_lce(check_every=3)
    trials = {n: make_trial(n) for n in ("ref", "better")}
    drive(sched, trials, [("ref", r) for r in results("ref")], set())
    drive(sched, trials, [("better", r) for r in results("better")[:9]], set())
    log = [
        r
        for r in read_decisions(trials["ref"].storage.experiment_fs_path)
        if r["trial_id"] == "better"
    ]
    assert [r["t"] for r in log if "p_beat" in r] == [4, 7]


def test_tolerates_unknown_trial_missing_and_nan_metric(make_trial):
    sched = make_lce()
    trial = make_trial("x")  # never added: adopted on its first result
    assert sched.on_trial_result(None, trial, {"training_iteration": 5}) == "CONTINUE"
    assert sched.on_trial_result(None, trial, {"val_acc": 0.5}) == "CONTINUE"
    early_nan = {"training_iteration": 1, "val_acc": math.nan}  # in the grace period
    assert sched.on_trial_result(None, trial, early_nan) == "CONTINUE"
    nan = {"training_iteration": 6, "val_acc": math.nan}  # past it: diverged, stopped
    assert sched.on_trial_result(None, trial, nan) == "STOP"
    inf = make_trial("inf")
    assert (
        sched.on_trial_result(None, inf, {"training_iteration": 6, "val_acc": math.inf}) == "STOP"
    )
    sched.on_trial_error(None, make_trial("never-seen"))
    sched.on_trial_complete(None, make_trial("other"), {})
    sched.on_trial_remove(None, make_trial("third"))
    reasons = [
        r.get("reason", r.get("event")) for r in read_decisions(trial.storage.experiment_fs_path)
    ]
    assert any("'val_acc' missing" in r for r in reasons)
    assert any("no numeric 'training_iteration'" in r for r in reasons)
    assert any("'val_acc' is nan in this result: diverged" in r for r in reasons)
    assert "error" in reasons


def _interrupted(sched_factory, make_trial, drive, names, cut, experiment):
    """Run ``cut`` results, then a fresh scheduler that rebuilds from the decision log; the
    trials in flight re-report their last two results (as when resumed from a checkpoint)."""
    trials = {n: make_trial(n, experiment) for n in ["ref", *names]}
    schedule = interleaved(names)
    first = sched_factory()
    for trial in trials.values():
        first.on_trial_add(None, trial)
    stopped: set[str] = set()
    decisions = drive(first, trials, schedule[:cut], stopped)
    again = {n: make_trial(n, experiment) for n in trials}  # what Tune.restore re-adds
    second = sched_factory()
    for trial in again.values():
        second.on_trial_add(None, trial)
    replayed = [e for e in schedule[cut - 2 * len(names) : cut]]
    repeats = drive(second, again, replayed, set(stopped))
    for key, decision in repeats.items():
        assert decisions[key] == decision
    decisions.update(drive(second, again, schedule[cut:], stopped))
    return decisions


@pytest.mark.parametrize(
    "options",
    [{}, {"weights": "completed", "min_completed": 1}, {"calibrate": True, "min_completed": 1}],
    ids=["bic", "completed", "calibrated"],
)
@pytest.mark.parametrize("cut", [20, 27])
def test_rebuilt_from_decision_log_decides_as_uninterrupted(make_trial, drive, cut, options):
    names = ["hopeless", "close", "better", "plateau"]
    trials = {n: make_trial(n, f"whole-{len(options)}") for n in ["ref", *names]}
    whole = make_lce(**options)
    for trial in trials.values():
        whole.on_trial_add(None, trial)
    expected = drive(whole, trials, interleaved(names), set())
    got = _interrupted(
        lambda: make_lce(**options), make_trial, drive, names, cut, f"cut{cut}-{len(options)}"
    )
    assert got == expected
    assert any(d == "STOP" and t < MAX_T for (_, t), d in expected.items())


def test_rebuilt_from_result_json_when_log_is_lost(make_trial, drive, tmp_path):
    names = ["close"]
    trials = {n: make_trial(n, "lost") for n in ["ref", *names]}
    sched = make_lce()
    for trial in trials.values():
        sched.on_trial_add(None, trial)
    schedule = interleaved(names)
    cut = MAX_T + 3  # ref complete, close at t=3
    drive(sched, trials, schedule[:cut], set())
    for name in trials:  # what Tune's JSON logger wrote
        os.makedirs(trials[name].path, exist_ok=True)
        with open(os.path.join(trials[name].path, "result.json"), "w") as f:
            for n, r in schedule[:cut]:
                if n == name:
                    f.write(json.dumps(r) + "\n")
    os.remove(os.path.join(trials["ref"].storage.experiment_fs_path, DECISIONS_FILE))
    fresh = make_lce()
    for name in trials:
        trial = make_trial(name, "lost")
        trial.run_metadata.last_result = {"training_iteration": 1}
        fresh.on_trial_add(None, trial)
    assert fresh.reference_value() == pytest.approx(val_acc("ref", MAX_T))
    assert sorted(fresh.get_state()["history"]["close"]) == [
        [t, {"y": val_acc("close", t)}] for t in (1, 2, 3)
    ]


def test_state_round_trip_through_save_and_restore(make_trial, drive, tmp_path):
    names = ["hopeless", "close"]
    trials = {n: make_trial(n) for n in ["ref", *names]}
    sched = make_lce()
    for trial in trials.values():
        sched.on_trial_add(None, trial)
    schedule = interleaved(names)
    stopped: set[str] = set()
    drive(sched, trials, schedule[:22], stopped)
    sched.save(str(tmp_path / "lce.json"))
    copy = make_lce()
    copy.restore(str(tmp_path / "lce.json"))
    assert copy.get_state() == sched.get_state()
    assert drive(copy, trials, schedule[22:], set(stopped)) == drive(
        sched, trials, schedule[22:], set(stopped)
    )


def test_summary_names_stopped_trial_and_reason(make_trial, drive):
    sched = make_lce()
    trials = {n: make_trial(n) for n in ("ref", "hopeless")}
    drive(sched, trials, interleaved(["hopeless"]), set())
    text = summarise_decisions(trials["ref"].storage.experiment_fs_path)
    assert "scheduler decisions (lce): " in text and "1 stopped early" in text
    assert "hopeless      4  P(val_acc@15 > 0.8" in text


def test_a_retried_trial_repeating_a_t_with_another_value_keeps_the_first(make_trial):
    # A trial retried from an older checkpoint reports t=3 again, with another value. The
    # first value made the decision and the reference; the live scheduler and one rebuilt
    # from the decision log must both keep it (the live one once kept the reference of the
    # first and the history of the second, and a restore then used the second).
    sched = make_lce(reference="any", grace_period=3)
    trial = make_trial("a", "retried")
    sched.on_trial_add(None, trial)
    for t, y in ((1, 0.5), (2, 0.6), (3, 0.95)):
        sched.on_trial_result(None, trial, {"training_iteration": t, "val_acc": y})
    sched.on_trial_error(None, trial)
    assert sched.on_trial_result(None, trial, {"training_iteration": 3, "val_acc": 0.7}) == (
        "CONTINUE"
    )
    restored = make_lce(reference="any", grace_period=3)
    restored.on_trial_add(None, make_trial("a", "retried"))
    for scheduler in (sched, restored):
        assert scheduler.reference_value() == pytest.approx(0.95)
        assert dict(scheduler.get_state()["history"]["a"])[3] == {"y": 0.95}
    repeats = [r for r in read_decisions(trial.storage.experiment_fs_path) if r.get("repeat")]
    assert [r["obs"] for r in repeats] == [{"y": 0.7}]


def test_same_results_under_other_trial_ids_give_the_same_decisions(make_trial, drive):
    # Tune draws new trial ids in every run, so two runs of one seeded experiment (one of them
    # with a lost node) only decide alike if LCE's randomness does not depend on the ids.
    logs = []
    for run in ("run1", "run2"):
        sched = make_lce()
        names = ("ref", "hopeless", "close", "plateau")
        trials = {n: make_trial(f"{run}-{n}", run) for n in names}
        schedule = [(f"{run}-{n}", r) for n, r in interleaved(list(names[1:]))]
        drive(sched, {t.trial_id: t for t in trials.values()}, schedule, set())
        records = read_decisions(trials["ref"].storage.experiment_fs_path)
        logs.append(
            [(r["trial_id"].split("-")[1], r["t"], r.get("p_beat")) for r in records if "t" in r]
        )
    assert any(p is not None for _, _, p in logs[0])  # LCE fitted and decided
    assert logs[0] == logs[1]


def test_summary_tells_a_trial_that_ended_by_itself_from_one_at_max_t(make_trial, drive):
    sched = make_lce()
    trials = {n: make_trial(n, "ended") for n in ("ref", "short")}
    drive(sched, trials, [("ref", r) for r in results("ref")], set())
    for result in results("close")[:2]:
        sched.on_trial_result(None, trials["short"], result)
    # a class trainable ending by itself at t=3 < max_t: its last result comes only here
    sched.on_trial_complete(None, trials["short"], {**results("close")[2], "done": True})
    text = summarise_decisions(trials["ref"].storage.experiment_fs_path)
    assert "2 trials; 0 stopped early, 1 reached max_t, 1 ended by themselves before max_t" in text


def test_summary_of_missing_log_is_empty(tmp_path):
    assert summarise_decisions(tmp_path) == ""


# --- a real Tuner ------------------------------------------------------------------------------


def replay_curve(config):
    """Reports ``CURVES[config["curve"]]`` per epoch; one checkpoint, after epoch 3."""
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, "epoch.json")) as f:
                start = json.load(f) + 1
    for t in range(start, MAX_T + 1):
        metrics = {"val_acc": val_acc(config["curve"], t)}
        if t != 3:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "epoch.json"), "w") as f:
                json.dump(t, f)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


class _Interrupt(tune.Callback):
    """Fails the experiment (not the trial) once, at one result, like a killed driver.

    ``Tuner.restore`` keeps the callbacks of the first run; ``marker`` makes it fire once.
    """

    def __init__(self, curve: str, at: int, marker: str):
        self.curve, self.at, self.marker = curve, at, marker

    def on_trial_result(self, iteration, trials, trial, result, **info):
        hit = trial.config["curve"] == self.curve and result["training_iteration"] == self.at
        if hit and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("interrupted")


TUNER_CURVES = ["ref", "hopeless", "close", "better", "plateau"]


def _tuner(path, name, callbacks=()):
    return tune.Tuner(
        replay_curve,
        param_space={"curve": tune.grid_search(TUNER_CURVES)},
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=LCEScheduler(max_t=MAX_T, grace_period=6),
            max_concurrent_trials=1,  # one order of results: reproducible decisions
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=str(path), name=name, verbose=0, callbacks=list(callbacks)
        ),
    )


def _decisions(folder):
    """(grid index, t, decision) of every first decision, and the last t of each curve."""
    out = set()
    for r in read_decisions(folder):
        if r.get("decision") and not r.get("repeat"):
            out.add((r["trial_id"].rsplit("_", 1)[-1], r["t"], r["decision"]))
    return out


@pytest.fixture(scope="module")
def uninterrupted(ray_address, tmp_path_factory):
    path = tmp_path_factory.mktemp("lce_tuner")
    grid = _tuner(path, "whole").fit()
    return path / "whole", {r.config["curve"]: r.metrics["training_iteration"] for r in grid}


def test_lce_in_tuner_stops_hopeless_trials_and_logs_why(uninterrupted):
    folder, last_t = uninterrupted
    assert last_t["ref"] == MAX_T and last_t["better"] == MAX_T
    assert last_t["hopeless"] == 6 and last_t["plateau"] == 6  # the first check
    log = read_decisions(folder)
    assert {r["trial_id"] for r in log if r.get("early")} and all(
        r["p_beat"] < 0.05 for r in log if r.get("early")
    )
    assert "stopped early" in summarise_decisions(folder)


@pytest.mark.parametrize("damaged", [False, True], ids=["state-whole", "state-emptied"])
@pytest.mark.slow
def test_lce_tuner_restore_decides_as_uninterrupted(uninterrupted, tmp_path, monkeypatch, damaged):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")
    folder, last_t = uninterrupted
    # "close" is interrupted at t=4 < grace_period. After the restore it resumes from its
    # checkpoint at t=3, reports t=4 again, and its first fit (t=6) needs t=1..3 from before.
    # Restored as `raynas resume` does: Tune writes its state file in place while a background
    # sync copies it, so an interruption can leave it empty (seen once in CI: Tune then
    # restarted the experiment). StateBackup + check_or_repair guard that; "state-emptied"
    # empties the newest state on purpose, as observed.
    cut = tmp_path / "cut"
    callbacks = [_Interrupt("close", 4, str(tmp_path / "fired")), StateBackup(cut, period_s=0)]
    with pytest.raises(Exception, match="interrupted"):
        _tuner(tmp_path, "cut", callbacks).fit()
    if damaged:
        files = newest_state(cut)[1]
        (cut / next(f for f in files if f.startswith("experiment_state-"))).write_text("")
    assert (check_or_repair(cut) is not None) == damaged
    restored = tune.Tuner.restore(str(cut), trainable=replay_curve)
    grid = restored.fit()
    assert {r.config["curve"]: r.metrics["training_iteration"] for r in grid} == last_t
    assert _decisions(tmp_path / "cut") == _decisions(folder)
    close = [r for r in read_decisions(tmp_path / "cut") if r["trial_id"].endswith("00002")]
    fits = [r for r in close if "n_points" in r]
    assert fits and fits[0]["t"] == 6 and fits[0]["n_points"] == 6


def test_completed_weights_wait_for_min_completed_then_stop(make_trial, drive):
    sched = make_lce(weights="completed", min_completed=2)
    trials = {n: make_trial(n) for n in ("ref", "close", "hopeless")}
    stopped: set = set()
    drive(sched, trials, [("ref", r) for r in results("ref")], stopped)
    early = drive(sched, trials, [("hopeless", r) for r in results("hopeless")[:5]], stopped)
    assert set(early.values()) == {"CONTINUE"}  # one completed trial: nothing learnt yet
    drive(sched, trials, [("close", r) for r in results("close")], stopped)
    later = drive(sched, trials, [("hopeless", r) for r in results("hopeless")[5:]], stopped)
    assert later[("hopeless", 6)] == "STOP"
    log = [
        r
        for r in read_decisions(trials["ref"].storage.experiment_fs_path)
        if r["trial_id"] == "hopeless"
    ]
    assert "learning family weights: 1 of 2 completed trials" in log[4]["reason"]
    stop = log[-1]
    assert stop["decision"] == "STOP" and stop["p_beat"] < 0.05
    assert stop["reason"].endswith("; families weighted by 2 completed trials")
    assert stop["weights"] and sum(stop["weights"].values()) <= 1.0 + 1e-9


# Loss curves with a late fall the saturating families cannot foresee (as a cosine learning-rate
# schedule gives): loss(t) = c + t**-0.7 - 0.06 * max(0, t - 10), the same shape for every trial
LATE = {"ref_a": 1.0, "ref_b": 1.1, "better": 0.95, "hopeless": 1.6}


def late_fall(name: str):
    return [
        {
            "training_iteration": t,
            "train_loss": LATE[name] + t**-0.7 - 0.06 * max(0, t - 10),
            "val_acc": 0.5,  # flat: an LCE on val_acc would fit nothing and stop nothing
        }
        for t in range(1, MAX_T + 1)
    ]


def late_fall_run(make_trial, drive, experiment, **options):
    sched = make_lce(
        grace_period=6,
        bounds=[0, None],
        curve_metric="train_loss",
        curve_mode="min",
        min_completed=2,
        **options,
    )
    trials = {n: make_trial(n, experiment) for n in LATE}
    stopped: set = set()
    schedule = [("ref_a", r) for r in late_fall("ref_a")]
    schedule += [("hopeless", r) for r in late_fall("hopeless")[:6]]
    schedule += [("ref_b", r) for r in late_fall("ref_b")]
    decisions = drive(sched, trials, schedule, stopped)
    rest = zip(late_fall("better"), late_fall("hopeless")[6:] + [None] * 6, strict=True)
    for better, hopeless in rest:
        decisions |= drive(sched, trials, [("better", better)], stopped)
        if hopeless is not None:
            decisions |= drive(sched, trials, [("hopeless", hopeless)], stopped)
    log = read_decisions(trials["ref_a"].storage.experiment_fs_path)
    return sched, decisions, log


def test_curve_metric_extrapolates_another_key_than_the_objective(make_trial, drive):
    sched, decisions, log = late_fall_run(make_trial, drive, "uncal")
    assert sched.metric == "val_acc" and sched.mode == "max"  # Tune's objective, untouched
    assert sched.reference_value() == pytest.approx(late_fall("ref_a")[-1]["train_loss"])
    assert decisions[("hopeless", 6)] == "STOP"  # the first check: ref_a has completed
    stop = next(r for r in log if r["trial_id"] == "hopeless" and r.get("early"))
    assert stop["reason"].startswith("P(train_loss@15 < ")
    # uncorrected, the families miss the late fall and also stop the trial that would win
    assert any(d == "STOP" and t < MAX_T for (n, t), d in decisions.items() if n == "better")


def test_calibration_corrects_a_bias_every_curve_shares(make_trial, drive):
    sched, decisions, log = late_fall_run(make_trial, drive, "cal", calibrate=True)
    hopeless = [r for r in log if r["trial_id"] == "hopeless"]
    assert hopeless[5]["decision"] == "CONTINUE"  # t=6: one of min_completed=2 finished
    assert "calibrating P(beat): 1 of 2 completed trials" in hopeless[5]["reason"]
    assert decisions[("hopeless", 7)] == "STOP"
    assert all(decisions[("better", t)] == "CONTINUE" for t in range(1, MAX_T))
    assert decisions[("better", MAX_T)] == "STOP"
    assert sched.reference_value() == pytest.approx(late_fall("better")[-1]["train_loss"])
    first = next(r for r in log if r["trial_id"] == "better" and "p_beat" in r)
    assert first["p_beat_fit"] < 0.05 <= first["p_beat"]  # stopped without the correction
    assert first["residual_mean"] == pytest.approx(-0.3, abs=0.05)  # the missed fall
    assert "calibrated by 2 completed trials" in first["reason"]
