"""Interrupt ``raynas run`` (Ctrl-C, or kill -9 of the driver) and finish with ``resume``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import ray
from helpers import EXAMPLES, RAYNAS, cli_env

from raynas import cli, results

NUM = 10


def _done_trials(exp: Path) -> dict[str, int]:
    """trial folder -> number of results written."""
    out = {}
    for d in exp.glob("table_trainable_*"):
        f = d / "result.json"
        if f.is_file() and f.read_text().strip():
            out[d.name] = len(f.read_text().strip().splitlines())
    return out


# Options that make raynas's searchers learn within NUM trials, before and after the kill:
# evolution breeds children once 4 results are in, the controller updates every 2 rewards.
SEARCHER_SETS = {
    "evolution": ["searcher.options.population_size=4"],
    "reinforce": ["searcher.options.batch_size=2"],
}


def _start(exp_root: Path, name: str, searcher: str, address: str) -> subprocess.Popen:
    extra = [arg for s in SEARCHER_SETS.get(searcher, []) for arg in ("--set", s)]
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
            *extra,
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_config(exp: Path, proc: subprocess.Popen) -> str:
    deadline = time.time() + 120
    while not (exp / "raynas.yaml").is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no raynas.yaml in time"
        time.sleep(0.2)
    return (exp / "raynas.yaml").read_text()


def _wait_for_results(exp: Path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.time() + 120
    while len(_done_trials(exp)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no results in time"
        time.sleep(0.2)


def _state_files_complete(exp: Path) -> bool:
    """Every Tune/searcher state file in the experiment folder is whole (not mid-upload)."""
    files = [p for p in exp.iterdir() if p.is_file() and p.suffix in (".json", ".pkl")]
    if not any(p.name.startswith("experiment_state-") for p in files):
        return False
    for p in files:
        data = p.read_bytes()
        if data[:1] == b"\x80":  # a pickle (Tune names its search_gen_state pickle *.json)
            if not data.endswith(b"."):  # a whole pickle ends with the STOP opcode
                return False
            continue
        try:
            json.loads(data)
        except ValueError:  # empty or cut short
            return False
    return True


def _recorded_finished(exp: Path) -> int:
    """Trials the newest snapshot records as finished (snapshots come every 2 s)."""
    return len(results.load(exp).trials.query("status == 'TERMINATED'"))


def _resume(exp: Path, address: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [*RAYNAS, "resume", str(exp), "--address", address],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as e:  # seen once in a full suite run: say what it waited on
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        free = ray.available_resources() if ray.is_initialized() else "ray not initialised here"
        pytest.fail(
            f"raynas resume did not finish in 300 s; cluster resources free: {free}; "
            f"its stderr ends:\n{(stderr or '')[-4000:]}"
        )


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] in ("T", "t")


def _kill9_between_state_uploads(proc: subprocess.Popen, exp: Path) -> None:
    """SIGKILL the driver, but not while it is copying its state files into ``exp``.

    Tune 2.60 writes the experiment state into the staging folder and then copies it into the
    storage path with a plain (non-atomic) file copy (every 2 s under raynas). A kill -9 inside
    that copy leaves a truncated experiment_state-*.json, which ``raynas resume`` repairs from
    its own copy (tested separately below); so this test freezes the driver (SIGSTOP), checks
    that every state file is whole and records a finished trial, and only then kills it;
    otherwise it lets it run a moment and retries.
    """
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, "the driver ended before it could be killed"
        proc.send_signal(signal.SIGSTOP)
        while not _stopped(proc.pid):
            assert proc.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.001)
        if _state_files_complete(exp) and _recorded_finished(exp):
            proc.send_signal(signal.SIGKILL)
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the experiment state files were never complete with a finished trial")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "searcher"),
    [("kill9", "optuna"), ("sigint", "random"), ("kill9", "evolution"), ("kill9", "reinforce")],
)
def test_resume_after_interruption_finishes_exactly_num_samples(
    ray_address, tmp_path, capsys, how, searcher
):
    exp = tmp_path / how
    proc = _start(tmp_path, how, searcher, ray_address)
    if searcher in SEARCHER_SETS:
        # The restored run uses the searcher the experiment was started with.
        assert f"name: {searcher}" in _wait_for_config(exp, proc)
    _wait_for_results(exp, proc, 3)
    if how == "kill9":
        _kill9_between_state_uploads(proc, exp)
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

    resumed = _resume(exp, ray_address)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "best architecture:" in resumed.stdout

    summary = results.load(exp)
    assert dict(summary.states) == {"TERMINATED": NUM}
    after = _done_trials(exp)
    assert len(after) == NUM
    # No finished trial ran again: each kept its single result.
    assert all(after[name] == 1 for name in before)
    if searcher in SEARCHER_SETS:
        # raynas's searchers restored their state (seen architectures included): no repeats.
        archs = summary.trials["arch"].tolist()
        assert len(set(archs)) == NUM, archs
    assert cli.main(["report", str(exp)]) == 0  # in-process: one interpreter start less
    report = capsys.readouterr().out
    assert f"trials: {NUM} of num_samples={NUM}   terminated: {NUM}" in report


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


def _kill9_with_a_good_copy(exp: Path, ray_address: str, tmp_path: Path) -> None:
    """Start a run, wait for 3 results and raynas's state copy, kill -9 the driver."""
    proc = _start(tmp_path, exp.name, "random", ray_address)
    _wait_for_results(exp, proc, 3)
    deadline = time.time() + 60
    while not (exp / ".raynas-record" / "state.json").is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "raynas never copied the experiment state"
        time.sleep(0.2)
    _kill9_between_state_uploads(proc, exp)
    proc.wait(timeout=30)


def _truncate_newest_state(exp: Path) -> Path:
    """What a kill during Tune's non-atomic copy leaves: the newest state cut in half."""
    state = max(exp.glob("experiment_state-*.json"))
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    return state


@pytest.mark.slow
def test_resume_restores_the_last_good_state_when_tunes_copy_was_cut_short(ray_address, tmp_path):
    exp = tmp_path / "cut"
    _kill9_with_a_good_copy(exp, ray_address, tmp_path)
    state = _truncate_newest_state(exp)

    resumed = _resume(exp, ray_address)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The state comes from raynas's crash record (its own copy of the last save + journal).
    assert "recovered the experiment state from its crash record" in resumed.stderr
    assert f"{state.name}: cannot be decoded" in resumed.stderr
    # Tune did not start over: every trial of the experiment is accounted for, once.
    assert "Restarting experiment" not in resumed.stderr
    summary = results.load(exp)
    assert dict(summary.states) == {"TERMINATED": NUM}
    assert len(_done_trials(exp)) == NUM
    # The damaged file is kept for inspection, not deleted.
    assert (exp / ".raynas-record" / "superseded" / state.name).is_file()


@pytest.mark.slow
def test_resume_refuses_a_damaged_state_without_a_good_copy(ray_address, tmp_path):
    exp = tmp_path / "nocopy"
    _kill9_with_a_good_copy(exp, ray_address, tmp_path)
    shutil.rmtree(exp / ".raynas-record")  # no crash record (nor a .raynas-state copy)
    state = _truncate_newest_state(exp)
    before = sorted(p.name for p in exp.iterdir())
    done = _done_trials(exp)

    resumed = _resume(exp, ray_address)
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    assert f"{state.name}: cannot be decoded" in resumed.stderr
    assert "no good copy" in resumed.stderr
    # Nothing was started or overwritten: no new Tune state, every result still there.
    assert sorted(p.name for p in exp.iterdir()) == before
    assert _done_trials(exp) == done


def test_a_copy_cut_short_in_the_backup_does_not_block_the_repair(tmp_path):
    # A kill during the backup's atomic copy leaves searcher-state-<ts>.pkl.tmp next to the
    # good copy; it is not a state file, so the good copy must still be restored.
    import pickle

    from raynas.snapshots import BACKUP_DIR, check_or_repair, newest_state

    ts = "2026-12-04_06-00-00"
    backup = tmp_path / BACKUP_DIR
    backup.mkdir()
    (backup / f"experiment_state-{ts}.json").write_text(json.dumps({"trial_data": []}))
    (backup / f"searcher-state-{ts}.pkl").write_bytes(pickle.dumps({"ok": 1}))
    (backup / f"searcher-state-{ts}.pkl.tmp").write_bytes(b"\x80\x04cut")
    assert newest_state(backup)[1] == [
        f"experiment_state-{ts}.json",
        f"searcher-state-{ts}.pkl",
    ]
    (tmp_path / f"experiment_state-{ts}.json").write_text("")  # Tune's copy, cut short
    message = check_or_repair(tmp_path)
    assert message and "restored the last good copy" in message
    assert json.loads((tmp_path / f"experiment_state-{ts}.json").read_text()) == {"trial_data": []}


@pytest.mark.parametrize("copies", [0, 1, 2])
def test_a_backup_cut_short_leaves_a_whole_set_the_newest(tmp_path, monkeypatch, copies):
    # A kill after `copies` of the new set's three files were copied: the backup's newest
    # state must be one whole set (the old one until the new experiment_state lands), never
    # a new experiment_state beside an older searcher state.
    import pickle

    from raynas import snapshots

    def write(ts: str, tag: int) -> None:
        (tmp_path / f"experiment_state-{ts}.json").write_text(json.dumps({"tag": tag}))
        (tmp_path / f"searcher-state-{ts}.pkl").write_bytes(pickle.dumps({"tag": tag}))
        (tmp_path / f"basic-variant-state-{ts}.json").write_text(json.dumps({"tag": tag}))

    old, new = "2026-12-04_06-00-00", "2026-12-04_06-00-10"
    write(old, 1)
    keeper = snapshots.StateBackup(tmp_path)
    assert keeper.backup()
    write(new, 2)
    real, done = snapshots._write_copy, []

    def killed_after(dest, name, data):
        if len(done) == copies:
            raise KeyboardInterrupt("killed")  # as a kill: nothing after it runs
        real(dest, name, data)
        done.append(name)

    monkeypatch.setattr(snapshots, "_write_copy", killed_after)
    with pytest.raises(KeyboardInterrupt):
        keeper.backup()
    backup = tmp_path / snapshots.BACKUP_DIR
    ts, files = snapshots.newest_state(backup)
    assert ts == old
    assert len(files) == 3 and all(snapshots.file_problem(backup, f) is None for f in files)
    tags = {json.loads((backup / f).read_text())["tag"] for f in files if f.endswith(".json")}
    assert tags == {1}
    monkeypatch.setattr(snapshots, "_write_copy", real)
    assert keeper.backup()  # the next period copies the new set whole
    ts, files = snapshots.newest_state(tmp_path / snapshots.BACKUP_DIR)
    assert ts == new and len(files) == 3
