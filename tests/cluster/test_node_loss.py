"""Trials across the nodes of a Ray cluster, and a worker node lost mid-trial.

One ``LocalCluster`` for the module (``benchmarks/local_cluster.py``): a head with no CPUs
(it runs the GCS and the drivers) and two worker nodes of one CPU each, all on 127.0.0.1.
Experiments run through the real CLI (``raynas run FILE --address <cluster>``, a subprocess)
with raynas's default ``max_failures``; a node is lost by SIGKILL of its raylet and its worker
processes (a lost machine) or of its raylet alone, and a fresh worker node is added once the
hit trial has recovered. All nodes share one IP and hostname, so the node behind a result is
told by its ``pid``: every worker process is a child of its node's raylet
(``LocalCluster.node_of``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import load_benchmark

pytestmark = pytest.mark.slow

node_loss = load_benchmark("node_loss")

#: The first stored learning curves (the curves trainable replays only stored architectures).
CURVE_TRIALS = 6


@pytest.fixture(scope="module")
def module_cluster():
    local_cluster = load_benchmark("local_cluster")
    with local_cluster.LocalCluster(workers=2, cpus=1, head_cpus=0) as c:
        yield c


@pytest.fixture
def cluster(module_cluster):
    """The module's cluster with two live worker nodes (one lost in an earlier test that
    failed before replacing it is replaced here)."""
    module_cluster.ensure_workers(2)
    return module_cluster


def _run(cluster, tmp_path, name, config, **kill):
    out = node_loss.run_with_node_loss(cluster, config, tmp_path, name, **kill)
    assert out.exit_code == 0, out.log[-3000:]
    return out


def _trial_rows(trial_dir: Path) -> list[dict]:
    """A trial's result.json rows."""
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --------------------------------------------------------------------------- spread


def test_trials_spread_over_the_worker_nodes(cluster, tmp_path):
    config = node_loss.experiment("train", num_samples=4, max_concurrent=2)
    config["trainable"]["options"]["epochs"] = 2
    out = _run(cluster, tmp_path, "spread", config, kills=0)
    nodes = {n for trial in out.epochs for n in out.nodes(trial)}
    assert nodes == set(cluster.workers())  # both worker nodes ran trials, the head none
    assert all(len(set(out.nodes(trial))) == 1 for trial in out.epochs)  # no trial moved


# --------------------------------------------------------------------------- node loss


def _check_continued_elsewhere(out, epochs: int) -> None:
    """Every trial recorded epochs 1..epochs exactly once; the hit trial moved to another
    node and went on from its checkpoint, not from epoch 1."""
    (kill,) = out.kills
    assert kill.recovery_s is not None, (out.kills, out.epochs, out.log[-2000:])
    for trial, rows in out.epochs.items():
        assert [r[0] for r in rows] == list(range(1, epochs + 1)), trial
    assert _moved_at(out.epochs[kill.trial], kill.node) >= 2  # killed after 2 results


def _moved_at(rows: list[tuple], lost: str) -> int:
    """Index of the first result of a lost trial from another node: before it every result
    came from the lost node, from it on none; and that result came from a trainable restored
    from a checkpoint (fewer iterations since its restore than its epoch number)."""
    nodes = [r[1] for r in rows]
    assert None not in nodes, rows
    moved = nodes.index(next(n for n in nodes if n != lost))
    assert set(nodes[:moved]) == {lost} and lost not in nodes[moved:], rows
    epoch, _, since_restore = rows[moved]
    assert since_restore < epoch, rows
    return moved


def test_train_trial_continues_from_its_checkpoint_on_another_node(cluster, tmp_path):
    config = node_loss.experiment("train", num_samples=2)
    out = _run(cluster, tmp_path, "train", config, kills=1, kill_after=2)
    _check_continued_elsewhere(out, epochs=6)


def test_darts_trial_continues_after_its_raylet_is_killed(cluster, tmp_path):
    # The raylet alone: its worker runs on until the head declares the node dead, then the
    # trial is retried from its last checkpoint on the other node.
    config = node_loss.experiment("darts", num_samples=1)
    out = _run(cluster, tmp_path, "darts", config, kills=1, kill_after=2, raylet_only=True)
    _check_continued_elsewhere(out, epochs=6)
    (trial,) = node_loss.trial_dirs(out.exp_dir)
    assert all(r["arch"] and json.loads(r["genotype"]) for r in _trial_rows(trial))


def test_a_trial_lost_for_good_is_reported_errored_not_interrupted(cluster, tmp_path, capsys):
    # max_failures 0: the lost trial fails for good. Tune 2.60 saves such a trial (its actor
    # already gone) as still RUNNING; raynas's journal records the error, so the run ends
    # with exit 3 naming it, and the report afterwards says errored, not running.
    from raynas import cli

    config = node_loss.experiment("train", num_samples=2, max_failures=0)
    out = node_loss.run_with_node_loss(cluster, config, tmp_path, "lost", kills=1, kill_after=2)
    assert out.exit_code == cli.EXIT_TRIALS_ERRORED, out.log[-3000:]
    assert "errored trials (1;" in out.log and "1 of 2 trials errored" in out.log
    assert cli.main(["report", str(out.exp_dir)]) == 0
    report = capsys.readouterr().out
    assert "trials: 2 of num_samples=2   error: 1   terminated: 1" in report


# --------------------------------------------------------------------------- same decisions


def _curves_experiment(scheduler: dict) -> dict:
    from raynas.benchmarks import curves

    return {
        "space": {"name": "nb201", "options": {"C": 8, "N": 1}},
        "searcher": {
            "name": "random",
            "options": {"points_to_evaluate": curves.points_to_evaluate(seed=0, n=CURVE_TRIALS)},
        },
        "scheduler": scheduler,
        # ~0.1 s per replayed epoch: a trial lasts about a second
        "trainable": {"name": "curves", "options": {"time_scale": 0.1}},
        "metric": "val_acc",
        "mode": "max",
        "num_samples": CURVE_TRIALS,
        "max_concurrent": 1,
        "resources": {"cpu": 1},
        "seed": 0,
    }


#: scheduler -> (its setting, results of the hit trial before the kill): the kill comes
#: between two of the scheduler's decision points, so the hit trial is sure to be running (a
#: trial stopped there would hand its actor to the next trial, and Tune 2.60 errors a trial,
#: without retries, whose reused actor is lost while it is being reset for it)
SCHEDULERS = {
    "lce": (
        {
            "name": "lce",
            "options": {"max_t": 10, "grace_period": 3, "min_completed": 2, "delta": 0.07},
        },
        2,  # LCE decides from t = 3 on
    ),
    "tse": (
        {"name": "tse", "options": {"max_t": 10, "grace_period": 2, "reduction_factor": 2}},
        3,  # rungs at t = 2, 4, 8
    ),
}


def _decisions(exp_dir: Path) -> list[tuple]:
    """(arch, t, decision) of every decision record not marked ``repeat``, in file order."""
    arch = {}
    for trial in node_loss.trial_dirs(exp_dir):
        first = _trial_rows(trial)[0]
        arch[first["trial_id"]] = first["arch"]
    out = []
    for line in (exp_dir / "scheduler_decisions.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("repeat") or r.get("t") is None:
            continue
        out.append((arch[r["trial_id"]], r["t"], r["decision"]))
    return out


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_scheduler_decides_the_same_with_and_without_a_node_loss(cluster, tmp_path, scheduler):
    setting, kill_after = SCHEDULERS[scheduler]
    config = _curves_experiment(setting)
    calm = _run(cluster, tmp_path, f"{scheduler}-calm", config, kills=0)
    lost = _run(
        cluster,
        tmp_path,
        f"{scheduler}-lost",
        config,
        kills=1,
        kill_after=kill_after,
        first_trial=3,
    )
    (kill,) = lost.kills
    assert kill.recovery_s is not None
    assert _moved_at(lost.epochs[kill.trial], kill.node) >= kill_after  # went on elsewhere
    decisions = _decisions(calm.exp_dir)
    assert any(d[2] == "STOP" and d[1] < 10 for d in decisions)  # it did stop trials early
    assert _decisions(lost.exp_dir) == decisions
    for run in (calm, lost):
        assert len(run.epochs) == CURVE_TRIALS
        for trial, rows in run.epochs.items():  # each epoch once, none missing
            assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), trial


SEARCHERS = {
    "evolution": {"name": "evolution", "options": {"population_size": 3, "sample_size": 2}},
    "reinforce": {"name": "reinforce", "options": {"batch_size": 2}},
}


def _table_experiment(searcher: dict) -> dict:
    return {
        "space": "nb201",
        "searcher": searcher,
        "trainable": {"name": "table", "options": {"delay_s": 0.6}},
        "metric": "val_acc",
        "mode": "max",
        "num_samples": 7,
        "max_concurrent": 1,
        "resources": {"cpu": 1},
        "seed": 3,
    }


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_searcher_suggests_the_same_with_and_without_a_node_loss(cluster, tmp_path, searcher):
    config = _table_experiment(SEARCHERS[searcher])
    calm = _run(cluster, tmp_path, f"{searcher}-calm", config, kills=0)
    # killed as the 5th trial starts: its table lookup sleeps 0.6 s, so it is mid-trial
    lost = _run(
        cluster, tmp_path, f"{searcher}-lost", config, kills=1, kill_after=0, first_trial=4
    )
    (kill,) = lost.kills
    assert (lost.exp_dir / kill.trial / "error.txt").is_file()  # it failed and was retried
    suggested = [
        [_trial_rows(run.exp_dir / trial)[0]["arch"] for trial in run.started]
        for run in (calm, lost)
    ]
    assert len(suggested[0]) == 7 and len(set(suggested[0])) == 7
    assert suggested[1] == suggested[0]


# --------------------------------------------------------------------------- too small


def test_trial_asking_more_than_any_node_has_waits_with_one_warning(
    cluster, tmp_path, monkeypatch
):
    # 2 CPUs per trial: the cluster has 2 CPUs in all, but no node has more than 1.
    config = node_loss.experiment("train", num_samples=1, resources={"cpu": 2})
    monkeypatch.setenv("RAYNAS_RESOURCE_WATCH_S", "1")  # a check every second, not every 5 s
    log = tmp_path / "big.log"
    proc = node_loss.start_run(config, tmp_path, "big", cluster.address, log)
    try:
        deadline = time.monotonic() + 60
        while "for resources no node" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # more checks (every second): still one warning
        assert proc.poll() is None  # waiting, not failed
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    lines = [line for line in text.splitlines() if "for resources no node" in line]
    assert len(lines) == 1, text[-3000:]
    assert lines[0].startswith("1 trial waits (PENDING) for resources no node of the cluster")
    assert "each asks {cpu: 2}" in lines[0]
    assert "the largest of the 3 live nodes has {cpu: 1} (cluster total {cpu: 2})" in lines[0]
    assert proc.returncode == 130  # interrupted by the user, resumable
    assert "pending: 1" in text
    report = subprocess.run(
        [sys.executable, "-m", "raynas.cli", "report", str(tmp_path / "big")],
        capture_output=True,
        text=True,
        env=node_loss.cli_env(),
    )
    assert report.returncode == 0 and "pending: 1" in report.stdout
