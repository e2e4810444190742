"""Last-known-good copies of Tune's experiment state, so a kill cannot lose an experiment.

Tune (2.60) writes ``experiment_state-<ts>.json`` and the searcher state into the experiment
folder without an atomic rename. A driver killed during that write (kill -9, OOM killer, a
node going away, the end of a session) leaves a truncated file; ``Tuner.restore`` then logs
"Failed to restore the run state", *starts the experiment from scratch* and writes a new,
newer state file over the record of every trial that ran. raynas guards both sides:

- ``StateBackup`` (a Tune callback added to every ``raynas run``) copies the newest state
  files to ``<experiment>/.raynas-state/`` whenever they changed and read back whole (at
  most every ``period_s``), each copy written to a temporary name and renamed into place.
- ``check_or_repair`` (called by ``raynas resume`` before Tune sees the folder) validates the
  newest state files; when one is corrupt it moves the bad set to
  ``.raynas-state/corrupt-<ts>/`` and puts the last good copy back, or, without a good copy,
  refuses with a ``ConfigError`` naming the file, leaving the folder untouched.

Trials that finished after the restored copy was taken are run again on resume (their
folders stay on disk); nothing that was recorded before it is lost.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import time
from pathlib import Path

from ray.tune import Callback

from raynas.config import ConfigError

log = logging.getLogger(__name__)

BACKUP_DIR = ".raynas-state"
_STATE_RE = re.compile(r"^experiment_state-(?P<ts>.+)\.json$")


def newest_state(folder: Path) -> tuple[str, list[Path]] | None:
    """(timestamp, files) of the newest experiment state in ``folder``, as Tune picks it.

    The files are the ``experiment_state`` JSON plus the searcher/callback state files Tune
    wrote with the same timestamp (``searcher-state-<ts>.pkl``, ``basic-variant-state-<ts>.json``,
    ``callback-states-<ts>.pkl``...).
    """
    states = sorted(p.name for p in folder.glob("experiment_state-*.json"))
    if not states:
        return None
    ts = _STATE_RE.match(states[-1]).group("ts")
    files = sorted(
        p
        for p in folder.iterdir()
        # a *.tmp is a copy cut short (a kill during _copy_atomic), never a state file
        if p.is_file() and f"-{ts}." in p.name and not p.name.endswith(".tmp")
    )
    return ts, files


def problem(file: Path) -> str | None:
    """Why ``file`` cannot be read back whole (None when it can)."""
    try:
        data = file.read_bytes()
    except OSError as e:
        return f"unreadable ({e})"
    if not data:
        return "empty"
    try:
        if data[:1] == b"\x80":  # a pickle (Tune names its basic-variant state pickle *.json)
            pickle.loads(data)
        elif file.suffix == ".json":
            json.loads(data)
    except Exception as e:  # any decoding error means a damaged file
        return f"cannot be decoded ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
    return None


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _copy_set(files: list[Path], dest: Path) -> None:
    """Copy one timestamp's state files into ``dest``, the ``experiment_state`` JSON last.

    ``newest_state`` finds a set by its ``experiment_state`` file, so a kill part-way leaves
    the set copied before it the newest one there, whole, rather than a new
    ``experiment_state`` beside an old searcher state.
    """
    for f in sorted(files, key=lambda f: bool(_STATE_RE.match(f.name))):
        _copy_atomic(f, dest / f.name)


class StateBackup(Callback):
    """Keep a good copy of the newest experiment state in ``<exp_dir>/.raynas-state``."""

    def __init__(self, exp_dir: str | Path, period_s: float = 10.0):
        self.exp_dir = Path(exp_dir)
        self.period_s = period_s
        self._last_check = 0.0
        self._saved: tuple | None = None

    def backup(self) -> bool:
        """Copy the newest state if it changed and reads back whole; True when copied."""
        found = newest_state(self.exp_dir) if self.exp_dir.is_dir() else None
        if found is None:
            return False
        ts, files = found
        try:
            key = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        except OSError:  # Tune replaced a file meanwhile: next time
            return False
        if key == self._saved or any(problem(f) for f in files):
            return False
        dest = self.exp_dir / BACKUP_DIR
        dest.mkdir(exist_ok=True)
        _copy_set(files, dest)
        for old in dest.iterdir():  # copies of older timestamps are superseded
            if old.is_file() and old.name not in {f.name for f in files}:
                old.unlink(missing_ok=True)
        self._saved = key
        return True

    def _maybe(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_check < self.period_s:
            return
        try:
            if self.backup():  # until the first copy, every step tries
                self._last_check = now
        except OSError as e:  # a full disk must not end the experiment
            log.warning("could not back up the experiment state in %s: %s", self.exp_dir, e)

    def on_step_end(self, iteration, trials, **info):
        self._maybe()

    def on_experiment_end(self, trials, **info):
        self._maybe(force=True)


def check_or_repair(exp_dir: str | Path) -> str | None:
    """Make the newest state of ``exp_dir`` restorable; a message when it was repaired.

    Raises:
        ConfigError: the newest state is damaged and there is no good copy to restore.
    """
    folder = Path(exp_dir)
    found = newest_state(folder)
    if found is None:
        return None
    ts, files = found
    bad = {f.name: why for f in files if (why := problem(f))}
    if not bad:
        return None
    names = "; ".join(f"{name}: {why}" for name, why in bad.items())
    backup = folder / BACKUP_DIR
    copy = newest_state(backup) if backup.is_dir() else None
    if copy is None or any(problem(f) for f in copy[1]):
        raise ConfigError(
            f"{folder}: Tune's experiment state is damaged ({names}) and there is no good "
            f"copy in {backup}; resuming would restart the experiment and overwrite the record "
            "of its trials, so raynas stops here. The trial folders are untouched."
        )
    quarantine = backup / f"corrupt-{ts}"
    quarantine.mkdir(parents=True, exist_ok=True)
    # Every state file newer than the copy goes too, or Tune would pick it again.
    for f in folder.iterdir():
        m = re.search(r"-(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)\.(json|pkl)$", f.name)
        if f.is_file() and m and m.group(1) >= copy[0] and not f.name.startswith("."):
            shutil.move(str(f), quarantine / f.name)
    _copy_set(copy[1], folder)
    return (
        f"the newest experiment state was damaged ({names}); moved it to {quarantine} and "
        f"restored the last good copy (experiment_state-{copy[0]}.json). Trials that finished "
        "after that copy will run again."
    )
