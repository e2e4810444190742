"""``raynas status`` on a running experiment, on one whose driver was killed, and after."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from helpers import EXAMPLES, RAYNAS, cli_env

from raynas import beacon, cli, status


def _status(path, capsys) -> str:
    assert cli.main(["status", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_status_of_a_running_then_killed_then_finished_experiment(ray_address, tmp_path, capsys):
    exp = tmp_path / "live"
    proc = subprocess.Popen(
        [*RAYNAS, "run", str(EXAMPLES / "nb201_random.yaml"), "--address", ray_address,
         "--storage-path", str(tmp_path), "--name", "live", "-q",
         "--set", "num_samples=30", "--set", "max_concurrent=2",
         "--set", "trainable.options.delay_s=1.0"],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "no finished trials in time"
            if (exp / "raynas.yaml").is_file() and list(exp.glob("experiment_state-*.json")):
                text = _status(exp, capsys)
                if "terminated" in text.splitlines()[2]:
                    break
            time.sleep(0.5)
        lines = text.splitlines()
        assert lines[0].startswith("experiment: live   running   (")
        finished = int(lines[2].split()[1])
        assert 1 <= finished < 30 and lines[2].split()[3] == "30"
        # the state snapshot (every 2 s) shows the trials in flight as running or pending
        assert "running" in lines[2] or "pending" in lines[2]
        assert any(line.startswith("best: val_acc ") for line in lines)
        assert any(line.startswith("  127.0.0.1 (") for line in lines)  # the node of the trials
        assert "ago" in next(line for line in lines if line.startswith("last result:"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    text = _status(exp, capsys)
    assert text.splitlines()[0].startswith("experiment: live   not running")
    assert f"killed?); continue with: raynas resume {exp}" in text
    assert beacon.driver_state(beacon.read(status.storage.locate(exp))) == "gone"


def test_status_of_a_finished_experiment(ray_address, tmp_path, capsys):
    code = cli.main(
        ["run", str(EXAMPLES / "nb201_random.yaml"), "--address", ray_address,
         "--storage-path", str(tmp_path), "--name", "done", "-q", "--set", "num_samples=4"]
    )  # fmt: skip
    assert code == 0
    capsys.readouterr()
    text = _status(tmp_path / "done", capsys)
    lines = text.splitlines()
    assert lines[0].startswith("experiment: done   finished   (")
    assert lines[2].startswith("trials: 4 of 4 finished   terminated 4")
    assert beacon.read(status.storage.locate(tmp_path / "done"))["state"] == "stopped"


def test_status_of_a_missing_folder_is_a_user_error(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path / "nope")]) == 2
    assert "experiment folder not found" in capsys.readouterr().err
