"""``CrashRecorder``: the Tune callback that keeps an experiment resumable after a kill -9.

Tune 2.60 saves its experiment state (trial states, searcher state) into the driver's local
staging folder every ``TUNE_GLOBAL_CHECKPOINT_S`` seconds and copies that folder into the
experiment folder in a background thread, file by file, in place. A driver killed during that
copy leaves truncated files, or a new experiment state beside an older searcher state; one
killed between two saves forgets the trials created and finished since the last save. The
recorder closes both gaps, in ``<experiment>/.raynas-record/``:

- **state copies**: right after each save, in the same driver step, it copies the saved set
  (``experiment_state``, searcher and callback state of that save, ``tuner.pkl``) from the
  staging folder into a new ``state-<n>/`` folder and then points ``state.json`` at it (an
  atomic rename): the copy ``state.json`` names is always one whole, consistent save;
- **the journal** (``raynas.journal``): each trial the driver creates is journaled before it
  starts training, and each trial that finishes with its final result, synced to the disk
  before the driver goes on (before any other callback reports the completion).

The copies are not synced to the disk (a sync per file made them cost the driver of a
100-trial run 5 s, mostly waiting): a killed driver's writes are in the page cache all the
same; after a power loss a copy whose sizes do not match its ``state.json`` is not used.

``raynas resume`` rebuilds the state to restore from the two (``raynas.recovery``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.journal import RECORD_DIR, Journal, journal_path

log = logging.getLogger(__name__)

MANIFEST = "state.json"
TUNER_FILE = "tuner.pkl"
_STATE_PREFIX = "experiment_state-"


@dataclass(frozen=True)
class StateCopy:
    """One whole saved state in the record: its folder, files and Tune's session stamp."""

    folder: Path
    files: list[Path]
    session: str  # the ``<ts>`` of experiment_state-<ts>.json
    time: float


def write_state_copy(record: Path, files: list[Path]) -> Path:
    """Copy ``files`` (one save of Tune's state) into ``record`` as its current state copy.

    The files go to a fresh folder first; ``state.json`` then names it (atomic replace), and
    only after that are older copies removed, so a kill of the driver at any point leaves
    ``state.json`` naming a whole copy.

    Returns:
        the new copy's folder.
    """
    record.mkdir(parents=True, exist_ok=True)
    name = f"state-{time.time_ns()}"
    tmp = record / f"tmp-{name}"
    tmp.mkdir()
    sizes = {}
    for f in files:
        shutil.copyfile(f, tmp / f.name)
        sizes[f.name] = (tmp / f.name).stat().st_size
    folder = record / name
    os.replace(tmp, folder)
    session = next(n for n in sizes if n.startswith(_STATE_PREFIX))[len(_STATE_PREFIX) : -5]
    manifest = {"folder": name, "files": sizes, "session": session, "time": time.time()}
    tmp_manifest = record / f"{MANIFEST}.tmp"
    tmp_manifest.write_text(json.dumps(manifest))
    os.replace(tmp_manifest, record / MANIFEST)
    for old in record.iterdir():  # superseded copies, and copies a kill cut short
        if old.is_dir() and old.name != name and old.name.startswith(("state-", "tmp-state-")):
            shutil.rmtree(old, ignore_errors=True)
    return folder


def read_state_copy(record: Path) -> StateCopy | None:
    """The current state copy of ``record``; None when there is none or it is not whole."""
    try:
        manifest = json.loads((record / MANIFEST).read_text())
        folder = record / manifest["folder"]
        sizes = manifest["files"]
        files = [folder / name for name in sizes]
        if any(f.stat().st_size != size for f, size in zip(files, sizes.values(), strict=True)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return StateCopy(folder, files, manifest["session"], manifest["time"])


class CrashRecorder(Callback):
    """Journal trial creations/completions and copy each Tune save (see the module docstring).

    Args:
        exp_dir: the experiment folder (local).

    Attributes:
        busy_s: driver seconds spent in this callback (journal writes and state copies).
        busy_cpu_s: CPU seconds of those (the rest is waiting for the disk).
        events: journal lines written. copies: state copies made.
    """

    def __init__(self, exp_dir: str | Path) -> None:
        self.exp_dir = Path(exp_dir)
        self.record = self.exp_dir / RECORD_DIR
        self.journal = Journal(journal_path(self.exp_dir))
        self._count: int | None = None  # trials journaled (or restored) so far, in list order
        self._saved = False  # Tune saved its state since the last copy
        self._staging: str | None = None
        self._failed = False
        self.busy_s = 0.0
        self.busy_cpu_s = 0.0
        self.events = 0
        self.copies = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_count=None, _saved=False, _staging=None, _failed=False)
        return state

    # ------------------------------------------------------------------ Tune hooks
    def get_state(self) -> dict | None:
        # Tune calls this inside each save, right after writing the experiment and searcher
        # state into the staging folder; the copy waits for the end of the step, when the
        # callback state of the same save is written too.
        self._saved = True
        return None

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._count is None:  # the trials restored by Tune are in the saved state already
            self._count = len(trials)
            if trials:
                self._guarded(self._forget_orphans, trials)

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._guarded(self._journal_new, trials)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._guarded(self._journal_finished, trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._guarded(self._journal_errored, trials, trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._guarded(self._journal_new, trials)
        if self._saved:
            self._guarded(self._copy_state, trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._saved:  # Tune's final save comes after the last step
            self._guarded(self._copy_state, trials)
        self.journal.close()
        log.info(
            "crash record: %d journal lines, %d state copies, %.2f s of driver time (%.2f s CPU)",
            self.events,
            self.copies,
            self.busy_s,
            self.busy_cpu_s,
        )

    # ------------------------------------------------------------------ work
    def _guarded(self, fn, *args) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            fn(*args)
        except OSError as e:  # a full disk must not end the experiment; say it once
            if not self._failed:
                log.warning("crash record in %s not written: %s", self.record, e)
                self._failed = True
        finally:
            self.busy_s += time.perf_counter() - t0
            self.busy_cpu_s += time.thread_time() - c0

    def _forget_orphans(self, trials: list) -> None:
        """Remove the empty staging folders of trials the restored state does not hold.

        A driver killed right after creating a trial leaves its (empty) folder in the
        staging folder; ``raynas resume`` moves the copy in the experiment folder aside, but
        a driver that resumes on the same Ray cluster shares that staging folder, and Tune's
        next copy would bring the folder back. Folders with files are left alone.
        """
        staging = Path(trials[0].storage.experiment_driver_staging_path)
        known = {t.storage.trial_dir_name for t in trials}
        for d in staging.iterdir():
            if d.is_dir() and d.name not in known and not any(d.iterdir()):
                d.rmdir()

    def _journal_new(self, trials: list) -> None:
        if self._count is None:
            self._count = 0
        for trial in trials[self._count :]:
            # not synced: a created trial lost with the machine has done nothing durable
            self.journal.append("created", trial.trial_id, trial.get_json_state(), sync=False)
            self.events += 1
            self._count += 1

    def _journal_finished(self, trials: list, trial) -> None:
        self._journal_new(trials)
        self.journal.append("finished", trial.trial_id, trial.get_json_state())
        self.events += 1

    def _journal_errored(self, trials: list, trial) -> None:
        self._journal_new(trials)
        self.journal.append("errored", trial.trial_id, trial.get_json_state())
        self.events += 1

    def _copy_state(self, trials: list) -> None:
        if self._staging is None:
            if not trials:
                return
            self._staging = trials[0].storage.experiment_driver_staging_path
        staging = Path(self._staging)
        states = sorted(staging.glob(f"{_STATE_PREFIX}*.json"))
        if not states:
            return
        session = states[-1].name[len(_STATE_PREFIX) : -len(".json")]
        files = [
            p
            for p in staging.iterdir()
            if p.is_file() and f"-{session}." in p.name and p.suffix in (".json", ".pkl")
        ]
        tuner = staging / TUNER_FILE
        if not tuner.is_file():
            tuner = self.exp_dir / TUNER_FILE
        if tuner.is_file():
            files.append(tuner)
        write_state_copy(self.record, files)
        self._saved = False
        self.copies += 1
