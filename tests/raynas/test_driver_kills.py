"""SIGKILL of the raynas driver: no finished trial lost, none run twice, exactly num_samples.

The loops run the real CLI against the session's Ray cluster and check the experiment from
its files (``benchmarks/driver_kills.py``, whose full version is the benchmark).
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import EXAMPLES, RAYNAS, cli_env, load_benchmark

from raynas import journal, recorder
from raynas.config import ConfigError

kills = load_benchmark("driver_kills")


def _session_dir() -> Path:
    import ray

    return Path(ray._private.worker._global_node.get_session_dir_path())


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["table", "curves"])
def test_kill_loop_ends_with_every_trial_once(ray_address, tmp_path, workload):
    # Kills during start-up, right after a state write (Tune's save or a journal line) and
    # twice at a moment of progress; then resumes until the CLI exits 0.
    w = kills.WORKLOADS[workload]
    w = w.scaled(16) if workload == "table" else w.scaled(4)
    plan = [("startup", 1.5), ("results", 3), ("state-write", 3.0), ("results", 2)]
    out = kills.kill_loop(
        w,
        tmp_path,
        kills=len(plan),
        seed=0,
        address=ray_address,
        ray_root=_session_dir(),
        plan=plan,
        attempt_timeout_s=240,
    )
    report = kills.table([out])
    assert not out.problems, report
    assert len(out.kills) == len(plan), report
    assert len(out.final) == w.num_samples and not out.lost and not out.orphan_folders, report
    assert out.evals_per_trial <= out.target, report


def _staging_finals(exp: Path, metric: str = "val_acc") -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for staging in kills.staging_dirs(_session_dir(), exp.name):
        for f in staging.glob("*/result.json"):
            for line in kills.result_lines(f):
                if metric in line:
                    out.setdefault(line["trial_id"], []).append(line[metric])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["evolution", "random"])
def test_trials_finished_after_the_last_save_are_kept_and_not_run_again(
    ray_address, tmp_path, searcher
):
    # Tune saves its state at its first step and then not for an hour here, so every trial
    # that finishes before the kill finishes after the last save Tune made: only the journal
    # knows it. Before the journal, resume ran those trials again (created before the save)
    # or dropped them and let the searcher suggest others (created after it).
    exp = tmp_path / f"late-{searcher}"  # staging folders are found by experiment name
    env = {**cli_env(), "TUNE_GLOBAL_CHECKPOINT_S": "3600"}
    args = ["--set", "num_samples=10", "--set", "trainable.options.delay_s=0.3"]
    args += ["--set", f"searcher={searcher}", "--address", ray_address, "-q"]
    proc = subprocess.Popen(
        [*RAYNAS, "run", str(EXAMPLES / "nb201_random.yaml"), "--storage-path", str(tmp_path)]
        + ["--name", exp.name, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while len(_staging_finals(exp)) < 5:
        assert proc.poll() is None and time.time() < deadline, "no 5 results in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _staging_finals(exp)
    tune_saw = kills.read_state(exp) or {}
    assert sum(t["status"] == "TERMINATED" for t in tune_saw.values()) == 0  # as intended

    resumed = subprocess.run(
        [*RAYNAS, "resume", str(exp), "--address", ray_address],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = kills.read_state(exp)
    assert len(final) == 10 and {t["status"] for t in final.values()} == {"TERMINATED"}
    after = _staging_finals(exp)
    for tid, values in before.items():
        assert final[tid]["result"]["val_acc"] == values[0]
    # A trial whose result the driver had logged but whose end it had not processed yet was
    # still running at the kill and runs again; at most max_concurrent=2 such trials.
    again = sorted(tid for tid in before if len(after[tid]) > 1)
    assert len(again) <= 2 and all(len(after[tid]) == 2 for tid in again), (again, after)
    assert sorted(after) == sorted(final)  # every trial evaluated, by a trial of the state
    folders = sorted(p.name for p in exp.iterdir() if p.name.startswith("table_trainable_"))
    assert folders == sorted(f"table_trainable_{tid}" for tid in final)


# ---------------------------------------------------------------- the record's own files
def _tune_files(folder: Path, session: str, tag: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        folder / f"experiment_state-{session}.json",
        folder / f"searcher-state-{session}.pkl",
        folder / "tuner.pkl",
    ]
    files[0].write_text(json.dumps({"trial_data": [], "tag": tag}))
    files[1].write_bytes(pickle.dumps({"tag": tag}))
    files[2].write_bytes(pickle.dumps({"tuner": tag}))
    return files


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4])
def test_a_state_copy_cut_short_leaves_the_previous_copy_current(tmp_path, monkeypatch, steps):
    # A kill after `steps` file operations of a new copy: state.json still names a whole
    # copy, the previous one, until the new one is complete.
    record = tmp_path / ".raynas-record"
    recorder.write_state_copy(record, _tune_files(tmp_path / "a", "s1", 1))
    new = _tune_files(tmp_path / "b", "s1", 2)  # the same session: the same file names
    done = []
    real_copy, real_replace = recorder.shutil.copyfile, recorder.os.replace

    def counted(real):
        def op(*args, **kwargs):
            if len(done) == steps:
                raise KeyboardInterrupt("killed")  # as a kill: nothing after it runs
            done.append(args)
            return real(*args, **kwargs)

        return op

    monkeypatch.setattr(recorder.shutil, "copyfile", counted(real_copy))
    monkeypatch.setattr(recorder.os, "replace", counted(real_replace))
    with pytest.raises(KeyboardInterrupt):
        recorder.write_state_copy(record, new)
    copy = recorder.read_state_copy(record)
    assert copy is not None and copy.session == "s1"
    assert json.loads(copy.files[0].read_text())["tag"] == 1
    assert {pickle.loads(f.read_bytes()).get("tag", 1) for f in copy.files[1:]} == {1}
    monkeypatch.undo()
    recorder.write_state_copy(record, new)  # the next save is copied whole
    copy = recorder.read_state_copy(record)
    assert json.loads(copy.files[0].read_text())["tag"] == 2
    assert len([p for p in record.iterdir() if p.is_dir()]) == 1  # older copies removed


def test_the_journal_skips_a_line_a_kill_cut_short(tmp_path):
    j = journal.Journal(tmp_path / "j.jsonl")
    j.append("created", "t1", ["{}", "{}"])
    j.append("finished", "t1", ["{}", "{}"])
    j.close()
    with open(tmp_path / "j.jsonl", "a") as f:
        f.write('{"event": "finished", "trial_id": "t2", "tr')  # the kill came mid-line
    assert [(e["event"], e["trial_id"]) for e in journal.read(tmp_path / "j.jsonl")] == [
        ("created", "t1"),
        ("finished", "t1"),
    ]
    with pytest.raises(ValueError, match="unknown journal event 'done'"):
        j.append("done", "t1", ["{}", "{}"])


def test_resume_before_the_first_save_says_how_to_start_again(tmp_path):
    from raynas import experiment

    exp = tmp_path / "early"
    exp.mkdir()
    (exp / "raynas.yaml").write_text((EXAMPLES / "nb201_random.yaml").read_text())
    with pytest.raises(ConfigError, match="raynas run .*raynas.yaml --storage-path"):
        experiment.resume(exp)


def test_the_driver_imports_no_torch_for_tunes_tensorboard_logger():
    # tensorboardX imports torch when it can; the driver needs neither for Tune's logger.
    # (run and resume call this before they build their Tuner.)
    code = """
import sys
from raynas import event_writer
event_writer.tensorboardx_without_torch()
from ray.tune.logger import TBXLoggerCallback
TBXLoggerCallback()
from tensorboardX import SummaryWriter
assert "torch" not in sys.modules, "torch imported"
import torch  # still importable afterwards
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
