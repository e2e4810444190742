"""Rebuild the state ``raynas resume`` restores, from the experiment's crash record.

After a driver crash the experiment folder holds Tune's state files as the background copy
left them (maybe truncated, maybe of two different saves) and trial folders of trials Tune's
last save never saw. ``recover`` replaces Tune's files by a state built from
``<experiment>/.raynas-record/`` (written by ``raynas.recorder.CrashRecorder``):

1. the last whole state copy (one Tune save: trials, searcher, callbacks, ``tuner.pkl``);
2. plus the journal: every trial created after that save is put back (PENDING, or TERMINATED
   with its final result when it finished), every trial that finished after it is recorded
   TERMINATED with its final result, so it never runs again;
3. the search algorithm is brought up to date with the same events, through its own API:
   Tune's ``SearchGenerator`` counts the trials put back (so the experiment still ends at
   ``num_samples``), its ``ConcurrencyLimiter`` holds them, the searcher learns each
   completion (``on_trial_complete``) and adopts each trial it did not suggest
   (``adopt_trial`` where the searcher has it: raynas's own searchers); Tune's random search
   (``BasicVariantGenerator``, whose trial ids and configs are deterministic) is advanced
   past the trials put back, checking that it regenerates each one's id;
4. trial folders of trials the rebuilt state does not hold (created just before a kill,
   before any training) are moved to ``.raynas-record/orphans/``; Tune's replaced state files
   to ``.raynas-record/superseded/``. Nothing is deleted.

The record itself is only read, so a resume killed during ``recover`` recovers again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas import atomic
from raynas.config import ConfigError
from raynas.journal import RECORD_DIR, journal_path, read
from raynas.recorder import TUNER_FILE, StateCopy, read_state_copy
from raynas.snapshots import file_problem

log = logging.getLogger(__name__)

#: Tune's experiment-level state files (one set per session stamp).
TUNE_STATE_RE = re.compile(
    r"^(experiment_state|search_gen_state|searcher-state|basic-variant-state|callback-states)"
    r"-(?P<session>.+)\.(json|pkl)$"
)


@dataclass
class Recovery:
    """What ``recover`` did."""

    session: str  # Tune session stamp of the state copy it started from
    created: list[str] = field(default_factory=list)  # trials put back from the journal
    finished: list[str] = field(default_factory=list)  # trials recorded finished from it
    orphans: list[str] = field(default_factory=list)  # trial folders moved aside
    damaged: list[str] = field(default_factory=list)  # "file: why" of Tune's files replaced

    def message(self) -> str:
        text = (
            f"recovered the experiment state from its crash record (Tune save "
            f"{self.session}): {len(self.created)} trials created and {len(self.finished)} "
            "finished after that save put back from the journal"
        )
        if self.damaged:
            text += (
                f"; Tune's own copy was damaged ({'; '.join(self.damaged)}), kept in "
                f"{RECORD_DIR}/superseded"
            )
        if self.orphans:
            text += (
                f"; {len(self.orphans)} folders of trials that never started training moved to "
                f"{RECORD_DIR}/orphans"
            )
        return text


def _trial(entry: list[str]) -> dict[str, Any]:
    return json.loads(entry[0])


def _with_status(entry: list[str], status: str) -> list[str]:
    trial = json.loads(entry[0])
    trial["status"] = status
    return [json.dumps(trial, indent=2), entry[1]]


def _last_result(entry: list[str]) -> dict[str, Any]:
    return json.loads(entry[1]).get("last_result") or {}


class _GeneratorReplay:
    """Tune's SearchGenerator (over a ConcurrencyLimiter when the run limits concurrency),
    restored from a state copy, brought up to date event by event."""

    def __init__(self, folder: Path, searcher, max_concurrent: int | None) -> None:
        from ray.tune.search import ConcurrencyLimiter, SearchGenerator

        chain = ConcurrencyLimiter(searcher, max_concurrent) if max_concurrent else searcher
        self.limiter = chain if isinstance(chain, ConcurrencyLimiter) else None
        self.base = searcher
        self.generator = SearchGenerator(chain)
        self.generator.restore_from_dir(str(folder))

    def created(self, trial_id: str, trial: dict[str, Any]) -> None:
        state = self.generator.get_state()
        state["counter"] += 1  # the trial counts towards num_samples
        self.generator.set_state(state)
        if self.limiter is not None:
            self.limiter.live_trials.add(trial_id)
        adopt = getattr(self.base, "adopt_trial", None)
        if adopt is not None:
            adopt(trial_id, trial.get("evaluated_params") or trial["config"])

    def finished(self, trial_id: str, result: dict[str, Any]) -> None:
        from ray.tune.utils import flatten_dict

        self.generator.on_trial_complete(trial_id, result=flatten_dict(result))

    def save(self, folder: Path, session: str) -> None:
        self.generator.save_to_dir(str(folder), session_str=session)


class _VariantReplay:
    """Tune's BasicVariantGenerator restored from a state copy: it regenerates the trials
    created after that copy (same ids, in the same order), which are skipped."""

    def __init__(self, folder: Path, trainable_name: str, trainable) -> None:
        from ray import tune
        from ray.tune.search import BasicVariantGenerator

        # Regenerated trials are Tune Trials, which need their trainable registered.
        tune.register_trainable(trainable_name, trainable)
        self.generator = BasicVariantGenerator()
        self.generator.restore_from_dir(str(folder))

    def created(self, trial_id: str, trial: dict[str, Any]) -> None:
        limit, self.generator.max_concurrent = self.generator.max_concurrent, 0
        try:
            again = self.generator.next_trial()
        finally:
            self.generator.max_concurrent = limit
        if again is None or again.trial_id != trial_id:
            raise ConfigError(
                f"the journal's trial {trial_id} is not the next trial of the saved random "
                f"search ({None if again is None else again.trial_id}); the crash record does "
                "not match the saved state"
            )

    def finished(self, trial_id: str, result: dict[str, Any]) -> None:
        self.generator.on_trial_complete(trial_id, result=result)

    def save(self, folder: Path, session: str) -> None:
        self.generator.save_to_dir(str(folder), session)


class _NoReplay:
    def created(self, trial_id: str, trial: dict[str, Any]) -> None:
        pass

    def finished(self, trial_id: str, result: dict[str, Any]) -> None:
        pass


def _replay_for(copy: StateCopy, searcher, max_concurrent, trainable, trainable_name):
    names = {f.name for f in copy.files}
    if f"basic-variant-state-{copy.session}.json" in names:
        return _VariantReplay(copy.folder, trainable_name, trainable)
    if f"search_gen_state-{copy.session}.json" in names:
        return _GeneratorReplay(copy.folder, searcher, max_concurrent)
    return None


def recover(
    exp_dir: str | Path, searcher: Any, max_concurrent: int | None, trainable: Any
) -> Recovery | None:
    """Rebuild Tune's state in ``exp_dir`` from its crash record (see the module docstring).

    Args:
        exp_dir: the experiment folder.
        searcher: a fresh instance of the experiment's search algorithm (``experiment.build``).
        max_concurrent: the run's ``max_concurrent_trials`` (its ConcurrencyLimiter), if any.
        trainable: the experiment's trainable as given to the Tuner.

    Returns:
        what was done, or None when the folder has no crash record (an experiment run
        before raynas kept one, or a driver killed before Tune's first save).

    Raises:
        ConfigError: the record does not match its saved state.
    """
    exp_dir = Path(exp_dir)
    record = exp_dir / RECORD_DIR
    copy = read_state_copy(record)
    if copy is None:
        return None
    files = {f.name: f.read_bytes() for f in copy.files}
    state_name = f"experiment_state-{copy.session}.json"
    state = json.loads(files[state_name])
    trial_data: list[list[str]] = state["trial_data"]
    index = {_trial(e)["trial_id"]: i for i, e in enumerate(trial_data)}
    trainable_names = {_trial(e)["trainable_name"] for e in trial_data}
    events = read(journal_path(exp_dir))
    for ev in events:
        trainable_names.add(json.loads(ev["trial"][0])["trainable_name"])
    out = Recovery(copy.session)
    replays: list = []  # the search algorithm's replay, built at the first event it needs

    def replay():
        if not replays:
            name = sorted(trainable_names)[0]
            replays.append(_replay_for(copy, searcher, max_concurrent, trainable, name))
            if replays[0] is None:
                log.warning("unknown search algorithm state in %s: not brought up to date", copy)
        return replays[0] or _NoReplay()

    done: set[str] = set()
    for ev in events:
        tid, entry = ev["trial_id"], ev["trial"]
        if tid not in index:  # created after the save (a "finished" line implies it)
            index[tid] = len(trial_data)
            trial_data.append(entry)
            out.created.append(tid)
            replay().created(tid, _trial(entry))
        if ev["event"] == "errored" and tid not in done:
            i = index[tid]
            if _trial(trial_data[i])["status"] not in ("TERMINATED", "ERROR"):
                trial_data[i] = _with_status(entry, "ERROR")  # resume runs it again
            continue
        if ev["event"] != "finished" or tid in done:
            continue
        done.add(tid)
        i = index[tid]
        if _trial(trial_data[i])["status"] == "TERMINATED":
            continue  # the save has it already
        trial_data[i] = _with_status(entry, "TERMINATED")
        out.finished.append(tid)
        replay().finished(tid, _last_result(entry))
    files[state_name] = json.dumps(state).encode()
    if replays and replays[0] is not None:
        with tempfile.TemporaryDirectory(dir=record) as tmp:
            replays[0].save(Path(tmp), copy.session)
            for f in Path(tmp).iterdir():
                if TUNE_STATE_RE.match(f.name):
                    files[f.name] = f.read_bytes()
    out.damaged = _install(exp_dir, record, files)
    keep = {_trial(e)["relative_logdir"] for e in trial_data}
    out.orphans = _move_orphans(exp_dir, record, keep, trainable_names)
    return out


def _install(exp_dir: Path, record: Path, files: dict[str, bytes]) -> list[str]:
    """Put ``files`` in ``exp_dir`` as Tune's only state; the state files there before go to
    ``.raynas-record/superseded`` (Tune would pick a newer one, and its background copy
    rewrites every state file it finds at each save).

    Returns:
        "file: why" for each replaced file that was damaged.
    """
    superseded = record / "superseded"
    shutil.rmtree(superseded, ignore_errors=True)
    superseded.mkdir(parents=True)
    damaged = []
    for f in sorted(exp_dir.iterdir()):
        if f.is_file() and TUNE_STATE_RE.match(f.name):
            if why := file_problem(exp_dir, f.name):
                damaged.append(f"{f.name}: {why}")
            os.replace(f, superseded / f.name)
    for name, data in files.items():
        atomic.write_bytes(exp_dir / name, data)
    if TUNER_FILE not in files:
        log.warning("the crash record of %s holds no %s", exp_dir, TUNER_FILE)
    return damaged


def _move_orphans(exp_dir: Path, record: Path, keep: set[str], trainables: set[str]) -> list[str]:
    orphans = []
    for d in sorted(exp_dir.iterdir()):
        if not d.is_dir() or d.name in keep:
            continue
        if not any(d.name.startswith(f"{name}_") for name in trainables):
            continue  # not a trial folder (search/, ...)
        target = record / "orphans" / d.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(d, target)
        orphans.append(d.name)
    if orphans:
        log.info("moved %d folders of trials no saved state holds: %s", len(orphans), orphans)
    return orphans


def has_saved_state(exp_dir: str | Path) -> bool:
    """Whether ``exp_dir`` holds a saved experiment state (Tune's, or a crash record copy)."""
    exp_dir = Path(exp_dir)
    if any(exp_dir.glob("experiment_state-*.json")):
        return True
    return read_state_copy(exp_dir / RECORD_DIR) is not None


def start_over(exp_dir: str | Path) -> list[str]:
    """Before a new run in ``exp_dir`` (no saved state): move what a driver killed before
    Tune's first save left (its journal, the folders of the trials it journaled) to
    ``.raynas-record/aborted-<ns>/``, so they are not taken for trials of the new run.

    Returns:
        the names moved.
    """
    exp_dir = Path(exp_dir)
    record = exp_dir / RECORD_DIR
    journal = journal_path(exp_dir)
    if not journal.is_file():
        return []
    names = {json.loads(ev["trial"][0])["relative_logdir"] for ev in read(journal)}
    target = record / f"aborted-{time.time_ns()}"
    target.mkdir(parents=True)
    moved = [journal.name]
    os.replace(journal, target / journal.name)
    for name in sorted(names):
        if (exp_dir / name).is_dir():
            os.replace(exp_dir / name, target / name)
            moved.append(name)
    return moved
