"""Interrupt ``raynas run`` (Ctrl-C, or kill -9 of the driver) and finish with ``resume``."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import EXAMPLES, RAYNAS, cli_env

from raynas import results

NUM = 10


def _done_trials(exp: Path) -> dict[str, int]:
    """trial folder -> number of results written."""
    out = {}
    for d in exp.glob("table_trainable_*"):
        f = d / "result.json"
        if f.is_file() and f.read_text().strip():
            out[d.name] = len(f.read_text().strip().splitlines())
    return out


def _start(exp_root: Path, name: str, searcher: str, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *RAYNAS,
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--address",
            address,
            "--storage-path",
            str(exp_root),
            "--name",
            name,
            "-q",
            "--set",
            f"num_samples={NUM}",
            "--set",
            f"searcher={searcher}",
            "--set",
            "trainable.options.delay_s=1.0",
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_results(exp: Path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.time() + 120
    while len(_done_trials(exp)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no results in time"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize(("how", "searcher"), [("kill9", "optuna"), ("sigint", "random")])
def test_resume_after_interruption_finishes_exactly_num_samples(
    ray_address, tmp_path, how, searcher
):
    exp = tmp_path / how
    proc = _start(tmp_path, how, searcher, ray_address)
    _wait_for_results(exp, proc, 3)
    if how == "kill9":
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    else:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (out, err)
        assert f"raynas resume {exp}" in err
    # Finished = recorded as TERMINATED in the experiment state at the interruption. (A trial
    # that had reported but whose completion Tune had not processed yet is unfinished and
    # runs again; the table trainable answers the same.)
    interrupted = results.load(exp)
    before = [
        f"table_trainable_{t}"
        for t in interrupted.trials.query("status == 'TERMINATED'")["trial_id"]
    ]
    assert 1 <= len(before) < NUM

    resumed = subprocess.run(
        [*RAYNAS, "resume", str(exp), "--address", ray_address],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "best architecture:" in resumed.stdout

    summary = results.load(exp)
    assert dict(summary.states) == {"TERMINATED": NUM}
    after = _done_trials(exp)
    assert len(after) == NUM
    # No finished trial ran again: each kept its single result.
    assert all(after[name] == 1 for name in before)
    report = subprocess.run(
        [*RAYNAS, "report", str(exp)], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert f"trials: {NUM} of num_samples={NUM}   terminated: {NUM}" in report.stdout


def test_resume_of_a_non_experiment_folder_is_a_user_error(tmp_path):
    out = subprocess.run(
        [*RAYNAS, "resume", str(tmp_path)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "not a raynas experiment folder" in out.stderr
    (tmp_path / "raynas.yaml").write_text(json.dumps({"space": "nb201"}))
    out = subprocess.run(
        [*RAYNAS, "resume", str(tmp_path)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "no Tune experiment state" in out.stderr
