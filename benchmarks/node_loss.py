"""Node loss: a worker node killed mid-trial, and what the experiment made of it.

Each run starts a ``LocalCluster`` (a head with no CPUs that runs the driver, and two worker
nodes of one CPU each, all on 127.0.0.1), runs ``raynas run`` against it as a user would
(``--address``, a subprocess, the default ``max_failures``), and once the running trial has
checkpointed ``--kill-after`` epochs kills the worker node it runs on (its raylet and its
worker processes, SIGKILL: a lost machine), then adds a fresh worker node, ``--kills`` times
per run. Afterwards it reads every trial's ``result.json`` and counts, per trial, epochs
recorded twice and epochs missing, and where each epoch ran (the node of the result's pid).

Prints one row per run and a total: trials finished / num_samples, nodes lost, epochs
repeated and lost (target 0 for both), the seconds from the kill to the lost trial's next
checkpoint, and the CLI's exit code.

    python benchmarks/node_loss.py                       # train and darts, 3 runs each
    python benchmarks/node_loss.py --trainables train --reps 1 --kills 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from local_cluster import LocalCluster, live_glob  # noqa: E402

#: Tiny real-training experiments (digits), ~0.3-0.6 s per epoch on one core.
EXPERIMENTS: dict[str, dict] = {
    "train": {
        "space": {"name": "nb201", "options": {"C": 8, "N": 1}},
        "searcher": "random",
        "trainable": {
            "name": "train",
            "options": {"dataset": "digits", "epochs": 6, "threads": 1},
        },
    },
    "darts": {
        "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "searcher": "random",
        "trainable": {
            "name": "darts",
            "options": {
                "dataset": "digits",
                "epochs": 6,
                "subset": 600,
                "val_fraction": 0.5,
                "build": {"C": 4, "N": 1},
                "threads": 1,
            },
        },
    },
}


def experiment(trainable: str, num_samples: int = 2, **overrides) -> dict:
    """The experiment mapping of ``trainable`` (one trial at a time: max_concurrent 1)."""
    return {
        **copy.deepcopy(EXPERIMENTS[trainable]),
        "metric": "val_acc",
        "mode": "max",
        "num_samples": num_samples,
        "max_concurrent": 1,
        "resources": {"cpu": 1},
        "seed": 0,
        **overrides,
    }


def cli_env() -> dict[str, str]:
    """Environment of the ``raynas`` subprocess: the repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_run(config: dict, storage: Path, name: str, address: str, log: Path):
    """``raynas run`` of ``config`` against ``address`` (a Popen; output into ``log``)."""
    storage.mkdir(parents=True, exist_ok=True)
    file = storage / f"{name}.yaml"
    file.write_text(yaml.safe_dump({"name": name, **config}, sort_keys=False))
    cmd = [sys.executable, "-m", "raynas.cli", "run", str(file), "--address", address]
    cmd += ["--storage-path", str(storage), "-q"]
    return subprocess.Popen(
        cmd, env=cli_env(), cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def trial_dirs(exp_dir: Path) -> list[Path]:
    """Trial folders of an experiment, in trial-id order."""
    if not exp_dir.is_dir():
        return []
    return sorted(p for p in exp_dir.iterdir() if p.is_dir() and "_" in p.name)


def driver_results(cluster: LocalCluster, name: str) -> dict[str, Path]:
    """Trial name -> the ``result.json`` the driver writes as results arrive (its staging
    folder in the cluster's session files; the storage copy lags by up to 2 s)."""
    pattern = f"session_*/artifacts/*/{name}/driver_artifacts/*/result.json"
    return {p.parent.name: p for p in live_glob(cluster.session_root, pattern)}


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _host(cluster: LocalCluster, results: Path) -> str | None:
    """The worker node running the trial whose driver-side ``results`` file this is: the node
    of the pid in its last result, else (no result yet) the one node running a trial."""
    last = _last_result(results)
    if last is not None:
        cluster.poll()
        return cluster.node_of(last.get("pid"))
    hosts = cluster.trial_hosts()
    return hosts[0] if len(hosts) == 1 else None


def _last_result(results: Path) -> dict | None:
    """The last whole line of a result.json being written, or None."""
    try:
        text = results.read_text()
    except OSError:
        return None
    lines = text[: text.rfind("\n") + 1].splitlines()
    return json.loads(lines[-1]) if lines else None


@dataclass
class Kill:
    """One node loss: the node, the trial running there, when (seconds into the run), and
    the seconds from the kill to that trial's first result from another node."""

    node: str
    trial: str
    at_s: float
    recovery_s: float | None = None


@dataclass
class Outcome:
    """What a run left behind (see ``run_with_node_loss``)."""

    exit_code: int
    wall_s: float
    exp_dir: Path
    kills: list[Kill]
    #: trial folder -> [(training_iteration, node, iterations_since_restore)] as recorded
    epochs: dict[str, list[tuple[int, str | None, int]]] = field(default_factory=dict)
    #: trial folders in the order the driver (last) started them: by the time it wrote their
    #: params.json (once per start); with one trial at a time, the searcher's order
    started: list[str] = field(default_factory=list)
    log: str = ""

    def repeated(self) -> int:
        """Epochs recorded more than once, over all trials."""
        return sum(len(e) - len({x[0] for x in e}) for e in self.epochs.values())

    def missing(self, epochs: int) -> int:
        """Epochs in 1..``epochs`` that a trial never recorded."""
        want = set(range(1, epochs + 1))
        return sum(len(want - {x[0] for x in e}) for e in self.epochs.values())

    def retrained(self) -> int:
        """Whole epochs trained again after a restore (recorded once, trained twice): a
        restored trial's first recorded result is its n-th since the restore when n - 1
        reports repeated what was recorded before."""
        out = 0
        for rows in self.epochs.values():
            for prev, row in zip(rows, rows[1:], strict=False):
                if row[2] <= prev[2]:  # iterations_since_restore fell: a restore
                    out += row[2] - 1
        return out

    def nodes(self, trial: str) -> list[str | None]:
        """The node of each recorded epoch of ``trial``."""
        return [x[1] for x in self.epochs[trial]]


def read_epochs(trial_dir: Path, cluster: LocalCluster) -> list[tuple[int, str | None, int]]:
    """(training_iteration, node, iterations_since_restore) of each line of result.json."""
    rows = []
    file = trial_dir / "result.json"
    if file.is_file():
        for line in file.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                node = cluster.node_of(r.get("pid"))
                rows.append((int(r["training_iteration"]), node, r["iterations_since_restore"]))
    return rows


def run_with_node_loss(
    cluster: LocalCluster,
    config: dict,
    storage: Path,
    name: str,
    kills: int = 1,
    kill_after: int = 2,
    trigger: str = "driver",
    raylet_only: bool = False,
    first_trial: int = 0,
    timeout_s: float = 300,
) -> Outcome:
    """Run ``config`` on ``cluster`` through the CLI and lose a node ``kills`` times.

    A kill hits the node of the running trial (one trial at a time: ``max_concurrent: 1``)
    once that trial has ``kill_after`` results: recorded by the driver (``trigger="driver"``:
    the kill lands right after Tune logged the result, often before it registered the
    checkpoint) or checkpointed to storage by the worker (``"checkpoint"``); with
    ``kill_after=0`` as soon as the driver started the trial. A trial seen past that count
    (it may have finished) is not hit, nor are the first ``first_trial`` trials started.
    Each kill hits another trial; once that trial recorded a result on another node (its
    recovery), or at the end of the run, fresh worker nodes are added until the cluster has
    as many as before the first kill.
    """
    if trigger not in ("driver", "checkpoint"):
        raise ValueError(f"trigger must be 'driver' or 'checkpoint', got {trigger!r}")
    log = storage / f"{name}.log"
    exp_dir = storage / name
    start = time.monotonic()
    proc = start_run(config, storage, name, cluster.address, log)
    done: list[Kill] = []
    workers = len(cluster.workers())
    started: list[str] = []
    results_at_kill = 0
    try:
        while proc.poll() is None:
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{name}: no end after {timeout_s} s; see {log}")
            results = driver_results(cluster, name)
            started += sorted(set(results) - set(started))
            last = done[-1] if done else None
            if last is not None and last.recovery_s is None:
                path = results[last.trial]
                if _lines(path) > results_at_kill:  # a new result: from another node?
                    pid = (_last_result(path) or {}).get("pid")
                    if cluster.node_of(pid) not in (None, last.node):
                        last.recovery_s = time.monotonic() - start - last.at_s
                        cluster.ensure_workers(workers)  # after the recovery it would delay
            if len(done) < kills and (last is None or last.recovery_s is not None):
                hit = {k.trial for k in done}
                for trial in started[first_trial:]:
                    if trial in hit:
                        continue
                    path = results[trial]
                    if trigger == "driver":
                        count = _lines(path)
                    else:
                        count = len(list((exp_dir / trial).glob("checkpoint_*")))
                    if count != kill_after:
                        continue  # not there yet, or past it (then the trial may be done)
                    host = _host(cluster, path)
                    if host is None:
                        break  # look again
                    cluster.kill(host, workers=not raylet_only)
                    done.append(Kill(host, trial, time.monotonic() - start))
                    results_at_kill = _lines(path)
                    break
            time.sleep(0.002 if trigger == "driver" else 0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.ensure_workers(workers)
    out = Outcome(proc.returncode, time.monotonic() - start, exp_dir, done, log=log.read_text())
    params = {t: p.parent / "params.json" for t, p in driver_results(cluster, name).items()}
    out.started = sorted(params, key=lambda t: params[t].stat().st_mtime_ns)
    cluster.poll()
    for trial in trial_dirs(exp_dir):
        out.epochs[trial.name] = read_epochs(trial, cluster)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trainables", nargs="+", default=["train", "darts"], choices=EXPERIMENTS)
    p.add_argument("--reps", type=int, default=3, help="runs per trainable")
    p.add_argument("--trials", type=int, default=3, help="num_samples of each run")
    p.add_argument("--kills", type=int, default=1, help="nodes lost per run")
    p.add_argument("--kill-after", type=int, default=2, help="results of a trial before a kill")
    p.add_argument("--trigger", choices=("driver", "checkpoint"), default="driver")
    p.add_argument("--raylet-only", action="store_true", help="kill the raylet alone")
    p.add_argument(
        "--fast-detection",
        action="store_true",
        help="health checks every 0.5 s (default: Ray's own timing)",
    )
    args = p.parse_args(argv)
    print(
        f"# node loss on {platform.node()} ({os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f} at start): head 0 CPU + 2 workers x 1 CPU on 127.0.0.1, "
        f"max_concurrent 1, default max_failures; kill "
        f"{'the raylet alone' if args.raylet_only else 'raylet + its workers'} once a trial "
        f"has {args.kill_after} results ({args.trigger} trigger), {args.kills} per run; "
        f"health checks {'fast (0.5 s x 3)' if args.fast_detection else 'Ray defaults'}",
        flush=True,
    )
    print(
        f"{'trainable':<10}{'run':>4}{'finished':>10}{'lost':>6}{'repeated':>10}"
        f"{'missing':>9}{'retrained':>11}{'recovery_s':>12}{'wall_s':>8}{'exit':>6}",
        flush=True,
    )
    totals: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="raynas-node-loss-") as tmp:
        for trainable in args.trainables:
            epochs = EXPERIMENTS[trainable]["trainable"]["options"]["epochs"]
            for rep in range(args.reps):
                with LocalCluster(workers=2, fast_detection=args.fast_detection) as cluster:
                    out = run_with_node_loss(
                        cluster,
                        experiment(trainable, num_samples=args.trials, seed=rep),
                        Path(tmp),
                        f"{trainable}-{rep}",
                        kills=args.kills,
                        kill_after=args.kill_after,
                        trigger=args.trigger,
                        raylet_only=args.raylet_only,
                    )
                finished = sum(1 for e in out.epochs.values() if epochs in {x[0] for x in e})
                rec = [k.recovery_s for k in out.kills if k.recovery_s is not None]
                row = (
                    finished,
                    args.trials,
                    len(out.kills),
                    out.repeated(),
                    out.missing(epochs),
                    out.retrained(),
                )
                t = totals.setdefault(trainable, [0] * len(row))
                totals[trainable] = [a + b for a, b in zip(t, row, strict=True)]
                print(
                    f"{trainable:<10}{rep:>4}{f'{finished}/{args.trials}':>10}{row[2]:>6}"
                    f"{row[3]:>10}{row[4]:>9}{row[5]:>11}"
                    f"{(max(rec) if rec else float('nan')):>12.1f}{out.wall_s:>8.1f}"
                    f"{out.exit_code:>6}",
                    flush=True,
                )
    print()
    for trainable, (fin, n, lost, rep, miss, again) in totals.items():
        per = max(lost, 1)
        print(
            f"{trainable}: {fin}/{n} trials finished; {lost} nodes lost; per lost node "
            f"{rep / per:.2f} epochs recorded twice and {miss / per:.2f} missing (target 0), "
            f"{again / per:.2f} trained again"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
