"""Last-known-good copies of Tune's experiment state, so a kill cannot lose an experiment.

Tune (2.60) writes ``experiment_state-<ts>.json`` and the searcher state into the experiment
folder without an atomic rename. A driver killed during that write (kill -9, OOM killer, a
node going away, the end of a session) leaves a truncated file; ``Tuner.restore`` then logs
"Failed to restore the run state", *starts the experiment from scratch* and writes a new,
newer state file over the record of every trial that ran. raynas guards both sides:

- ``StateBackup`` (a Tune callback added to every ``raynas run``) copies the newest state
  files to ``<experiment>/.raynas-state/`` whenever they changed and read back whole (at
  most every ``period_s``), each copy written whole (a temporary name renamed into place on a
  local filesystem, one object upload on an object store). It copies from Tune's driver
  staging folder, where Tune's own step writes the set in the same thread (so a copy is never
  taken mid-write and its files belong together), to the experiment folder, local or at a URI.
- ``check_or_repair`` (called by ``raynas resume`` before Tune sees the folder, local or at a
  URI) validates the
  newest state files; when one is corrupt it moves the bad set to
  ``.raynas-state/corrupt-<ts>/`` and puts the last good copy back, or, without a good copy,
  refuses with a ``ConfigError`` naming the file, leaving the folder untouched.

Trials that finished after the restored copy was taken are run again on resume (their
folders stay on disk); nothing that was recorded before it is lost.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import time
from pathlib import Path

from ray.tune import Callback

from raynas.errors import ConfigError
from raynas.storage import Location, locate

log = logging.getLogger(__name__)

BACKUP_DIR = ".raynas-state"
_STATE_RE = re.compile(r"^experiment_state-(?P<ts>.+)\.json$")


def _as_location(folder: Location | str | Path) -> Location:
    return folder if isinstance(folder, Location) else locate(folder)


def newest_state(folder: Location | str | Path) -> tuple[str, list[str]] | None:
    """(timestamp, file names) of the newest experiment state in ``folder``, as Tune picks it.

    The files are the ``experiment_state`` JSON plus the searcher/callback state files Tune
    wrote with the same timestamp (``searcher-state-<ts>.pkl``, ``basic-variant-state-<ts>.json``,
    ``callback-states-<ts>.pkl``...).
    """
    names = _as_location(folder).names()
    states = sorted(n for n in names if _STATE_RE.match(n))
    if not states:
        return None
    ts = _STATE_RE.match(states[-1]).group("ts")
    # a *.tmp is a copy cut short (a kill during a copy), never a state file
    files = [n for n in names if f"-{ts}." in n and not n.endswith(".tmp")]
    return ts, files


def problem(data: bytes, name: str) -> str | None:
    """Why the state file ``name`` holding ``data`` is not whole (None when it is)."""
    if not data:
        return "empty"
    try:
        if data[:1] == b"\x80":  # a pickle (Tune names its basic-variant state pickle *.json)
            pickle.loads(data)
        elif name.endswith(".json"):
            json.loads(data)
    except Exception as e:  # any decoding error means a damaged file
        return f"cannot be decoded ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
    return None


def file_problem(folder: Location | str | Path, name: str) -> str | None:
    """Why file ``name`` of ``folder`` cannot be read back whole (None when it can)."""
    try:
        data = _as_location(folder).read_bytes(name)
    except OSError as e:
        return f"unreadable ({e})"
    return problem(data, name)


def _copy_file(src: Location, name: str, dest: Location) -> None:
    dest.write_bytes(name, src.read_bytes(name))


def _copy_set(src: Location, names: list[str], dest: Location) -> None:
    """Copy one timestamp's state files from ``src`` to ``dest``, ``experiment_state`` last.

    ``newest_state`` finds a set by its ``experiment_state`` file, so a kill part-way leaves
    the set copied before it the newest one there, whole, rather than a new
    ``experiment_state`` beside an old searcher state.
    """
    for name in sorted(names, key=lambda n: bool(_STATE_RE.match(n))):
        _copy_file(src, name, dest)


class StateBackup(Callback):
    """Keep a good copy of the newest experiment state in ``<experiment>/.raynas-state``.

    Args:
        experiment: the experiment folder, a local path or a URI.
        period_s: at most one copy per this many seconds.
        source: the folder to copy from; default: Tune's driver staging folder of the running
            experiment (found from its trials), else the experiment folder itself.
    """

    def __init__(
        self, experiment: str | Path, period_s: float = 10.0, source: str | Path | None = None
    ):
        self.experiment = str(experiment)
        self.period_s = period_s
        self.source = None if source is None else str(source)
        self._last_check = 0.0
        self._saved: tuple | None = None
        self._dest: Location | None = None
        self._staging: str | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_dest"] = None  # a filesystem client: resolved again where it is used
        state["_staging"] = None  # this driver's staging folder; a resumed run has its own
        return state

    def _destination(self) -> Location:
        if self._dest is None:
            self._dest = locate(self.experiment).child(BACKUP_DIR)
        return self._dest

    def _source(self) -> Location | None:
        if self.source is not None or self._staging is not None:
            return locate(self.source or self._staging)
        here = locate(self.experiment)
        return here if here.is_local else None

    def backup(self) -> bool:
        """Copy the newest state if it changed and reads back whole; True when copied."""
        src = self._source()
        if src is None or not src.is_dir():
            return False
        found = newest_state(src)
        if found is None:
            return False
        ts, names = found
        try:
            infos = {i.base_name: i for i in src.list()}
            key = tuple((n, infos[n].mtime_ns, infos[n].size) for n in names)
            data = {n: src.read_bytes(n) for n in names}
        except (OSError, KeyError):  # Tune replaced a file meanwhile: next time
            return False
        if key == self._saved or any(problem(d, n) for n, d in data.items()):
            return False
        dest = self._destination()
        for name in sorted(names, key=lambda n: bool(_STATE_RE.match(n))):
            _write_copy(dest, name, data[name])
        for old in dest.names():  # copies of older timestamps are superseded
            if old not in data:
                dest.fs.delete_file(dest.file(old))
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
            log.warning("could not back up the experiment state of %s: %s", self.experiment, e)

    def _find_source(self, trials) -> None:
        if self.source is None and self._staging is None and trials:
            storage = getattr(trials[0], "storage", None)
            self._staging = getattr(storage, "experiment_driver_staging_path", None)

    def on_step_end(self, iteration, trials, **info):
        self._find_source(trials)
        self._maybe()

    def on_experiment_end(self, trials, **info):
        self._find_source(trials)
        self._maybe(force=True)


def _write_copy(dest: Location, name: str, data: bytes) -> None:
    """One file of a backup set, written whole (its own function: tests cut a set short)."""
    dest.write_bytes(name, data)


def check_or_repair(experiment: Location | str | Path) -> str | None:
    """Make the newest state of the experiment folder restorable; a message when repaired.

    Raises:
        ConfigError: the newest state is damaged and there is no good copy to restore.
    """
    folder = _as_location(experiment)
    found = newest_state(folder)
    if found is None:
        return None
    ts, names = found
    bad = {n: why for n in names if (why := file_problem(folder, n))}
    if not bad:
        return None
    text = "; ".join(f"{name}: {why}" for name, why in bad.items())
    backup = folder.child(BACKUP_DIR)
    copy = newest_state(backup)
    if copy is None or any(file_problem(backup, n) for n in copy[1]):
        raise ConfigError(
            f"{folder.shown}: Tune's experiment state is damaged ({text}) and there is no good "
            f"copy in {backup.shown}; resuming would restart the experiment and overwrite the "
            "record of its trials, so raynas stops here. The trial folders are untouched."
        )
    quarantine = f"{BACKUP_DIR}/corrupt-{ts}"
    # Every state file newer than the copy goes too, or Tune would pick it again.
    for name in folder.names():
        m = re.search(r"-(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)\.(json|pkl)$", name)
        if m and m.group(1) >= copy[0] and not name.startswith("."):
            folder.move(name, f"{quarantine}/{name}")
    _copy_set(backup, copy[1], folder)
    return (
        f"the newest experiment state was damaged ({text}); moved it to "
        f"{folder.child(quarantine).shown} and restored the last good copy "
        f"(experiment_state-{copy[0]}.json). Trials that finished after that copy will run again."
    )
