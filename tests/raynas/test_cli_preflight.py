"""Bad input a user can give ``raynas run`` fails before Ray starts: exit 2, one line on
stderr, no traceback, no Ray session, nothing left that blocks the corrected rerun."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import CIFAR_ROOT, EXAMPLES, HAS_CIFAR, RAYNAS, cli_env

from raynas import cli

RANDOM = str(EXAMPLES / "nb201_random.yaml")
TRAIN = str(EXAMPLES / "cifar10_train.yaml")
DIGITS = str(EXAMPLES / "digits_train.yaml")


@pytest.fixture
def ray_tmp():
    """A short RAY_TMPDIR of the test's own (Ray's socket paths must stay < 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="rn-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def raynas(args: list[str], ray_tmp: Path, timeout: float = 120, **env: str):
    """``raynas ARGS`` in a subprocess whose Ray (if any) lives under ``ray_tmp``."""
    full = {**cli_env(), "RAY_TMPDIR": str(ray_tmp)}
    full.pop("RAYNAS_DATA", None)  # each case says where its data is
    full.update(env)
    proc = subprocess.run(
        [*RAYNAS, *args], env=full, capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, proc.stdout, proc.stderr


def ray_sessions(ray_tmp: Path) -> list[Path]:
    return sorted((ray_tmp / "ray").glob("session_2*"))


def _truncated_cifar(tmp_path: Path) -> Path:
    src = CIFAR_ROOT / "cifar-10-mini" / "cifar-10-batches-py"
    dst = tmp_path / "data" / "cifar-10-batches-py"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        shutil.copyfile(f, dst / f.name)
    with open(dst / "data_batch_1", "r+b") as f:
        f.truncate(100_000)
    return tmp_path / "data"


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def _taken(tmp_path: Path) -> Path:
    """The folder a run killed before any trial finished left: Tune's state, no result."""
    folder = tmp_path / "res" / "nb201-random"
    folder.mkdir(parents=True)
    (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    return tmp_path / "res"


# (id, arguments given the tmp_path, what the one line must say)
CASES = [
    (
        "unknown-metric",
        lambda t: [RANDOM, "--set", "metric=accuracy"],
        "metric 'accuracy' is not reported by trainable 'table'; it reports: epoch,",
    ),
    (
        "objective-not-reported",
        lambda t: [
            RANDOM,
            "--set",
            "searcher=evolution",
            "--set",
            "searcher.options.objectives={val_acc: max, latency: min}",
        ],
        "searcher objective 'latency' is not reported by trainable 'table'",
    ),
    (
        "data-root-missing",
        lambda t: [TRAIN, "--set", f"trainable.options.root={t / 'nowhere'}"],
        "nowhere (root) does not exist",
    ),
    (
        "data-root-not-given",
        lambda t: [TRAIN],
        "no data folder given; set $RAYNAS_DATA",
    ),
    (
        "proxy-seeding-data-root-not-given",
        lambda t: [str(EXAMPLES / "nb201_proxy_seeded.yaml")],
        "searcher 'evolution' proxy_seed: cifar10: no data folder given;",
    ),
    (
        "data-root-is-a-file",
        lambda t: [TRAIN, "--set", f"trainable.options.root={_file(t)}"],
        "is not a folder",
    ),
    (
        "gpus-this-machine-lacks",
        lambda t: [RANDOM, "--set", "resources.gpu=4"],
        "resources.gpu=4 per trial, but this machine has 0 GPU(s)",
    ),
    (
        "cpus-this-machine-lacks",
        lambda t: [RANDOM, "--set", "resources.cpu=4096"],
        "resources.cpu=4096 per trial, but this machine has",
    ),
    (
        "storage-path-is-a-file",
        lambda t: [RANDOM, "--storage-path", str(_file(t))],
        "is a file, not a folder",
    ),
    (
        "storage-path-under-a-file",
        lambda t: [RANDOM, "--storage-path", str(_file(t) / "sub")],
        "is a file, not a folder",
    ),
    (
        "subset-schedule-decreasing",
        lambda t: [DIGITS, "--set", "trainable.options.subset_schedule=[0.5, 0.25]"],
        "trainable 'train': subset_schedule must not decrease, but 0.25 follows 0.5",
    ),
    (
        "subset-schedule-exceeds-the-data",
        lambda t: [DIGITS, "--set", "trainable.options.subset_schedule=[100, 5000]"],
        "trainable 'train': subset_schedule: 5000 exceeds the 1294 images of the training",
    ),
    (
        "bohb-with-a-scheduler-it-cannot-work-with",
        lambda t: [DIGITS, "--set", "searcher=bohb"],  # the file names asha
        "scheduler 'asha' cannot run searcher 'bohb': BOHB needs scheduler 'hyperband_for_bohb'",
    ),
    (
        "bohb-scheduler-without-bohb",
        lambda t: [RANDOM, "--set", "scheduler=hyperband_for_bohb"],
        "scheduler 'hyperband_for_bohb' (HyperBandForBOHB) works only with searcher 'bohb'",
    ),
    (
        "name-taken-by-a-run-that-never-finished-a-trial",
        lambda t: [RANDOM, "--storage-path", str(_taken(t))],
        "holds a run that stopped before any trial finished; continue it with `raynas resume",
    ),
]


@pytest.mark.parametrize(("args", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_before_ray_starts(args, says, tmp_path, ray_tmp):
    argv = ["run", *args(tmp_path)]
    if "--storage-path" not in argv:
        argv += ["--storage-path", str(tmp_path / "res")]
    code, out, err = raynas(argv, ray_tmp)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("raynas: error: "), err
    assert says in lines[0]
    assert "Traceback" not in err + out
    assert ray_sessions(ray_tmp) == []


@pytest.mark.skipif(not HAS_CIFAR, reason="needs the CIFAR-10 subset")
def test_truncated_cifar_batch_is_named_before_ray_starts(tmp_path, ray_tmp):
    root = _truncated_cifar(tmp_path)
    code, _, err = raynas(
        ["run", TRAIN, "--storage-path", str(tmp_path / "res")], ray_tmp, RAYNAS_DATA=str(root)
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"corrupt dataset file {root}/cifar-10-batches-py/data_batch_1" in err
    assert "truncated" in err and ray_sessions(ray_tmp) == []
    # Nothing left that blocks the rerun: with the data repaired it gets past the checks.
    assert not (tmp_path / "res" / "cifar10-train").exists()


def test_restart_moves_the_old_experiment_aside_and_runs_again(ray_address, tmp_path, capsys):
    args = ["run", RANDOM, "--storage-path", str(tmp_path), "--name", "again"]
    args += ["--set", "num_samples=2", "-q"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "already holds an experiment" in err and "--restart" in err
    assert "raynas resume" in err
    assert cli.main([*args, "--restart"]) == 0
    old = [p for p in tmp_path.iterdir() if p.name.startswith("again.old-")]
    assert len(old) == 1
    # Nothing deleted: the first run's trials are in the folder moved aside.
    assert len(list(old[0].glob("table_trainable_*/result.json"))) == 2
    assert len(list((tmp_path / "again").glob("table_trainable_*/result.json"))) == 2


def test_status_line_counts_trials_and_shows_the_best(ray_address, tmp_path, capsys):
    code = cli.main(["run", RANDOM, "--storage-path", str(tmp_path), "--set", "num_samples=6"])
    out = capsys.readouterr().out
    assert code == 0
    status = [line for line in out.splitlines() if " done, " in line]
    assert 1 <= len(status) <= 6  # at most one line per finished trial, in a log
    assert status[-1].startswith("6/6 done, 0 running, 0 pending, 0 errored | best val_acc ")
    assert "Trial status" not in out and "Tuner.restore" not in out


@pytest.mark.parametrize("name", ["SIGHUP", "SIGINT"])
def test_signal_stops_tune_once_and_a_second_one_stops_at_once(name):
    """The signal handling alone, with real signals and Tune's own stop handler (installed as
    Tune installs it when a run starts): the first signal asks Tune to stop and save and is
    remembered for the exit code; the second has the signal's own effect."""
    import signal

    from ray.tune.tune import _setup_signal_catching

    from raynas import stop

    signum = getattr(signal, name)
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        with stop.graceful():
            stopped = _setup_signal_catching()  # Tune's: stop-and-save on SIGUSR1
            os.kill(os.getpid(), signum)
            assert stopped.is_set() and stop.received() == signum
            if signum == signal.SIGINT:
                with pytest.raises(KeyboardInterrupt):
                    os.kill(os.getpid(), signum)
            else:
                assert signal.getsignal(signum) == signal.SIG_DFL
        assert cli.interrupted_code() == 128 + signum
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.slow
def test_sigterm_saves_state_then_resume_finishes_it(tmp_path, ray_tmp, ray_address):
    import signal
    import time

    args = ["run", RANDOM, "--storage-path", str(tmp_path), "--name", "term"]
    args += ["--set", "num_samples=6", "--set", "trainable.options.delay_s=1"]
    env = {**cli_env(), "RAY_TMPDIR": str(ray_tmp)}
    proc = subprocess.Popen(
        [*RAYNAS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    exp = tmp_path / "term"
    deadline = time.time() + 180
    while time.time() < deadline and not list(exp.glob("table_trainable_*/result.json")):
        time.sleep(0.5)
    assert list(exp.glob("table_trainable_*/result.json")), "no trial reported in 180 s"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM received" in err and f"raynas resume {exp}" in err
    assert "Traceback" not in err and "Tuner.restore" not in err + out
    assert ray_sessions(ray_tmp)  # this run did start Ray (the pre-flight checks see none)

    # The name is not trapped: the message says how to continue or start over.
    code, _, err = raynas(args, ray_tmp)
    assert code == 2 and "raynas resume" in err and "--restart" in err

    # The session's Ray (a Ray start less): the state SIGTERM saved is all the resume has.
    code, out, err = raynas(["resume", str(exp), "--address", ray_address], ray_tmp, timeout=240)
    assert code == 0, err
    assert "trials: 6 of num_samples=6   terminated: 6" in out
    assert "Traceback" not in err and "FileNotFoundError" not in err


def test_a_new_run_in_a_folder_without_state_starts_its_times_afresh(ray_address, tmp_path):
    import json
    import time

    from raynas import results
    from raynas.beacon import BEACON_FILE

    folder = tmp_path / "fresh"
    folder.mkdir()
    # What a driver killed before Tune's first save leaves: its beacon, no Tune state.
    old = {"state": "running", "host": "x", "pid": 1, "started": 1e9, "beat": 1e9 + 60}
    (folder / BEACON_FILE).write_text(json.dumps({**old, "first_started": 1e9, "before_s": 5e3}))
    start = time.time()
    args = ["run", RANDOM, "--storage-path", str(tmp_path), "--name", "fresh"]
    assert cli.main([*args, "--set", "num_samples=2", "-q"]) == 0
    summary = results.load(folder)
    assert 0 < summary.active_s <= time.time() - start
    assert 0 < summary.wall_s <= time.time() - start
