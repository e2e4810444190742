"""Per-result decisions and their record: the base of raynas's schedulers and the JSONL log.

``DecisionScheduler`` is the part that ``LCEScheduler`` and ``TSEScheduler`` share: option
validation, ``set_search_properties`` as Tune's ASHA does it, tolerance of unknown or errored
trials and of missing or NaN metrics, and the decision log. Every result gets one line in
``<experiment dir>/scheduler_decisions.jsonl``: the trial, ``t`` (the ``time_attr`` value),
what the scheduler saw (``obs``), the decision, its reason and the numbers behind it, and how
long the decision took. ``summarise_decisions(path)`` turns that file into the text that
``raynas report`` prints.

Surviving ``Tuner.restore`` (Tune saves no scheduler state): a decision is a function of the
results seen so far, and the scheduler's whole state is the results it has seen plus the
decisions it made. After a restore, Tune hands every trial of the experiment to
``on_trial_add`` again; the scheduler then reads the decision log once and takes back the
results and decisions of each trial that Tune re-adds (lines of trials that are not re-added,
e.g. of an earlier experiment in the same folder, are ignored), and fills in anything the log
lacks from the trial's own ``result.json``. A result that arrives again for a ``t`` already
decided (a trial resumed from an older checkpoint, Tune's final duplicate result) gets the
decision recorded for it, so a restored run takes the same decisions as an uninterrupted one
given the same results in the same order. ``get_state``/``set_state`` hold the same data for
callers that save schedulers themselves; ``save``/``restore`` write it atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

log = logging.getLogger(__name__)

DECISIONS_FILE = "scheduler_decisions.jsonl"
STATE_VERSION = 1
CONTINUE = TrialScheduler.CONTINUE
STOP = TrialScheduler.STOP


# --- validation ------------------------------------------------------------------------------


def check_common(
    metric: str | None, mode: str | None, time_attr: str, max_t: float, grace_period: float
) -> None:
    """ValueError naming the first invalid option shared by raynas's schedulers."""
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise ValueError(f"metric must be a non-empty string or None, got {metric!r}")
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(time_attr, str) or not time_attr:
        raise ValueError(f"time_attr must be a non-empty string, got {time_attr!r}")
    if not _is_number(max_t) or not max_t > 0:
        raise ValueError(f"max_t must be a number > 0, got {max_t!r}")
    if not _is_number(grace_period) or not grace_period > 0:
        raise ValueError(f"grace_period must be a number > 0, got {grace_period!r}")
    if grace_period > max_t:
        raise ValueError(f"grace_period must be <= max_t ({max_t!r}), got {grace_period!r}")


def check_int(name: str, value: Any, low: int) -> None:
    """ValueError unless ``value`` is an integer (not a bool) >= ``low``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any) -> float | None:
    """``value`` as a float (NaN and inf kept), or None when it is missing or not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _t_out(t: float) -> int | float:
    return int(t) if float(t).is_integer() else t


# --- the log file ----------------------------------------------------------------------------


def append_records(path: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Append JSON lines to ``path`` (opened and closed per call: nothing to pickle)."""
    text = "".join(json.dumps(r, default=_json_default) + "\n" for r in records)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def parse_lines(text: str, source: str = "") -> list[dict[str, Any]]:
    """JSON objects of a JSONL text; malformed lines (a torn last line) are skipped."""
    out = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(item, dict):
            out.append(item)
    if bad:
        log.warning("skipped %d malformed line(s) of %s", bad, source or "a JSONL file")
    return out


def _read_fs(fs, path: str) -> str | None:
    """Text of ``path`` on the pyarrow filesystem ``fs``; None when it does not exist."""
    try:
        import pyarrow.fs as pafs

        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with fs.open_input_stream(path) as f:
            return f.readall().decode("utf-8", errors="replace")
    except Exception as e:  # unreachable storage: schedule on without the history
        log.warning("cannot read %s: %s", path, e)
        return None


def locate_log(trial) -> tuple[str | None, tuple[Any, str] | None]:
    """Where the decision log of ``trial``'s experiment lives.

    Returns:
        ``(append_path, (filesystem, read_path))``. With local storage both are
        ``<experiment dir>/scheduler_decisions.jsonl``. With remote storage (``s3://``...)
        lines are appended to Tune's driver staging folder, which Tune uploads to the
        experiment folder together with its own state, and an earlier log is read from the
        experiment folder. ``(None, None)`` for trials without storage (tests).
    """
    storage = getattr(trial, "storage", None)
    if storage is None:
        return None, None
    try:
        fs = storage.storage_filesystem
        remote = (fs, f"{storage.experiment_fs_path}/{DECISIONS_FILE}")
    except Exception:
        return None, None
    if fs.type_name == "local":
        return remote[1], remote
    try:
        return os.path.join(trial.local_experiment_path, DECISIONS_FILE), remote
    except Exception:
        return None, remote


def stored_results(trial) -> list[dict[str, Any]]:
    """The results a trial reported before (its ``result.json``); [] when there are none."""
    storage = getattr(trial, "storage", None)
    if storage is None:
        return []
    text = None
    try:
        text = _read_fs(storage.storage_filesystem, f"{trial.path}/result.json")
    except Exception:  # trial folder not named yet
        pass
    if text is None:
        try:
            local = os.path.join(trial.local_path, "result.json")
            if os.path.isfile(local):
                text = Path(local).read_text(encoding="utf-8", errors="replace")
        except Exception:
            pass
    return parse_lines(text, f"result.json of trial {trial.trial_id}") if text else []


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- the base scheduler ----------------------------------------------------------------------


class DecisionScheduler(FIFOScheduler):
    """Decides CONTINUE/STOP per result from the results seen, and records each decision.

    Subclasses implement ``_observe`` (what of a result they keep), ``_decide`` and
    ``_note`` (derived state from one kept result; also used to rebuild after a restore).
    """

    kind: ClassVar[str] = "decision"
    needs_metric: ClassVar[bool] = True

    def __init__(
        self,
        *,
        metric: str | None,
        mode: str | None,
        time_attr: str,
        max_t: float,
        grace_period: float,
        log_path: str | None,
    ) -> None:
        check_common(metric, mode, time_attr, max_t, grace_period)
        if log_path is not None and (not isinstance(log_path, str | os.PathLike) or not log_path):
            raise ValueError(f"log_path must be a file path or None, got {log_path!r}")
        super().__init__()
        self._metric = metric
        self._mode = mode
        self._time_attr = time_attr
        self._max_t = float(max_t)
        self._grace_period = float(grace_period)
        self._log_path: str | None = None if log_path is None else os.fspath(log_path)
        self._log_fixed = log_path is not None
        self._log_loaded = False
        self._replay: dict[str, list[dict[str, Any]]] = {}
        self._history: dict[str, dict[float, dict[str, Any]]] = {}
        self._decided: dict[str, dict[float, str]] = {}
        self._status: dict[str, str] = {}
        self._decision_ms: list[float] = []
        self._warned: set[str] = set()

    # -- Tune API -----------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        """Take metric and mode from the TuneConfig, unless given to the constructor (ASHA)."""
        if self._metric and metric:
            return False
        if self._mode and mode:
            return False
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    @property
    def mode(self) -> str | None:
        return self._mode

    def on_trial_add(self, tune_controller, trial) -> None:
        if self.needs_metric and (not self._metric or not self._mode):
            raise ValueError(
                f"{type(self).__name__} needs a metric and a mode, got metric={self._metric!r} "
                f"mode={self._mode!r}; pass them to the scheduler or to tune.TuneConfig()"
            )
        tid = trial.trial_id
        if not self._log_loaded:
            self._load_log(trial)
        self._adopt(tid)
        self._take_back(trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        start = time.perf_counter()
        try:
            return self._on_result(trial, result, start)
        except Exception as e:  # a scheduler bug must not end the whole experiment
            log.exception("%s failed on a result of trial %s", type(self).__name__, trial)
            self._write(
                {
                    "trial_id": getattr(trial, "trial_id", None),
                    "decision": CONTINUE,
                    "reason": f"scheduler error ({type(e).__name__}: {e}); continuing",
                }
            )
            return CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        # A class Trainable's last result (the one with done=True) reaches the scheduler only
        # here, not through on_trial_result (Tune's ASHA and median rule record it here too).
        try:
            self._final_result(trial, result)
        except Exception:  # a scheduler bug must not end the whole experiment
            log.exception("%s failed on the final result of trial %s", type(self).__name__, trial)
        self._event(trial, "complete", ("running",))

    def on_trial_error(self, tune_controller, trial) -> None:
        self._event(trial, "error", None)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._event(trial, "removed", ("running",))

    def debug_string(self) -> str:
        stopped = sum(1 for s in self._status.values() if s == "stopped")
        ms = sorted(self._decision_ms)
        med = f"{ms[len(ms) // 2]:.1f} ms" if ms else "n/a"
        return (
            f"Using {type(self).__name__}: {len(self._history)} trials, {stopped} stopped early, "
            f"median decision time {med}"
        )

    # -- state ----------------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {
            "metric": self._metric,
            "mode": self._mode,
            "time_attr": self._time_attr,
            "max_t": self._max_t,
            "grace_period": self._grace_period,
        }

    def get_state(self) -> dict[str, Any]:
        """All the scheduler knows, as plain JSON-able data."""
        return {
            "version": STATE_VERSION,
            "kind": self.kind,
            "options": self._options(),
            "log_path": self._log_path,
            "log_loaded": self._log_loaded,
            "history": {
                tid: [[_t_out(t), obs] for t, obs in sorted(h.items())]
                for tid, h in self._history.items()
            },
            "decided": {
                tid: [[_t_out(t), d] for t, d in sorted(h.items())]
                for tid, h in self._decided.items()
            },
            "status": dict(self._status),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Replace the scheduler's knowledge by ``state`` (from ``get_state``)."""
        if state.get("kind") != self.kind:
            raise ValueError(f"state of a {state.get('kind')!r} scheduler, expected {self.kind!r}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported scheduler state version {state.get('version')!r}")
        if state.get("options") != self._options():
            log.warning(
                "%s: restoring state saved with options %s into one with %s",
                type(self).__name__,
                state.get("options"),
                self._options(),
            )
        if not self._log_fixed:
            self._log_path = state.get("log_path")
        self._log_loaded = bool(state.get("log_loaded", self._log_path is not None))
        self._history = {
            tid: {float(t): dict(obs) for t, obs in rows} for tid, rows in state["history"].items()
        }
        self._decided = {
            tid: {float(t): str(d) for t, d in rows} for tid, rows in state["decided"].items()
        }
        self._status = dict(state.get("status", {}))
        self._replay = {}
        self._reset_derived()
        for tid in self._history:
            self._rebuild_trial(tid)

    def save(self, checkpoint_path: str) -> None:
        write_json_atomic(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, encoding="utf-8") as f:
            self.set_state(json.load(f))

    # -- subclass hooks -------------------------------------------------------------------------

    def _observe(self, result: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _decide(self, tid: str, t: float) -> tuple[str, str, dict[str, Any]]:
        """``(decision, reason, numbers)`` for the result of ``tid`` at ``t`` (t < max_t)."""
        raise NotImplementedError

    def _note(self, tid: str, t: float) -> None:
        """Update derived state with the kept result of ``tid`` at ``t`` (in t order)."""

    def _reset_derived(self) -> None:
        """Forget derived state (it is rebuilt from the history)."""

    # -- internals ------------------------------------------------------------------------------

    def _adopt(self, tid: str) -> None:
        self._history.setdefault(tid, {})
        self._decided.setdefault(tid, {})
        self._status.setdefault(tid, "running")

    def _on_result(self, trial, result: Mapping[str, Any], start: float) -> str:
        tid = trial.trial_id
        if tid not in self._history:
            log.info("%s: result of unknown trial %s; adopting it", type(self).__name__, tid)
            if not self._log_loaded:
                self._load_log(trial)
            self._adopt(tid)
            self._take_back(trial)
        t = number(result.get(self._time_attr))
        if t is None or not math.isfinite(t):
            self._warn_once(f"time:{tid}", "trial %s reported no numeric %r", tid, self._time_attr)
            self._write(
                {
                    "trial_id": tid,
                    "t": None,
                    "decision": CONTINUE,
                    "reason": f"no numeric {self._time_attr!r} in the result; not used",
                },
                start,
            )
            return CONTINUE
        obs = self._observe(result)
        previous = self._decided[tid].get(t)
        if previous is not None:  # seen before: Tune's final duplicate, or a replay
            # A trial retried from an older checkpoint may report another value at this t: the
            # first one stays in the history (its decision and the derived state used it, and
            # a restore rebuilds from it); the repeat is only logged.
            if not _same(self._history[tid].get(t), obs):
                self._write(
                    {
                        "trial_id": tid,
                        "t": _t_out(t),
                        "obs": obs,
                        "decision": previous,
                        "repeat": True,
                        "reason": "result seen before; same decision as then",
                    },
                    start,
                )
            return previous
        self._history[tid][t] = obs
        self._note(tid, t)
        if self._status.get(tid) in ("error", "removed"):  # retried after a failure
            self._status[tid] = "running"
        if t >= self._max_t:
            decision, reason, info = STOP, f"reached max_t ({self._time_attr}={_t_out(t)})", {}
        else:
            decision, reason, info = self._decide(tid, t)
        self._decided[tid][t] = decision
        if decision == STOP:
            self._status[tid] = "completed" if t >= self._max_t else "stopped"
        ms = (time.perf_counter() - start) * 1e3
        self._decision_ms.append(ms)
        self._write(
            {
                "trial_id": tid,
                "t": _t_out(t),
                "obs": obs,
                "decision": decision,
                "early": decision == STOP and t < self._max_t,
                "reason": reason,
                **info,
            },
            start,
        )
        return decision

    def _final_result(self, trial, result: Mapping[str, Any] | None) -> None:
        """Keep a trial's final result that ``on_trial_result`` did not see (no decision due)."""
        tid = getattr(trial, "trial_id", None)
        if tid is None or not result:
            return
        t = number(result.get(self._time_attr))
        if t is None or not math.isfinite(t):
            return
        if tid not in self._history:
            if not self._log_loaded:
                self._load_log(trial)
            self._adopt(tid)
            self._take_back(trial)
        if t in self._decided[tid]:  # already decided (function trainables' duplicate)
            return
        obs = self._observe(result)
        self._history[tid][t] = obs
        self._note(tid, t)
        self._decided[tid][t] = STOP
        self._status[tid] = "completed" if t >= self._max_t else self._status.get(tid, "running")
        self._write(
            {
                "trial_id": tid,
                "t": _t_out(t),
                "obs": obs,
                "decision": STOP,
                "early": False,
                "final": True,
                "reached_max_t": t >= self._max_t,
                "reason": f"final result of the trial ({self._time_attr}={_t_out(t)})",
            }
        )

    def _event(self, trial, event: str, only_from: tuple[str, ...] | None) -> None:
        tid = getattr(trial, "trial_id", None)
        if tid is None:
            return
        if tid not in self._history:
            log.info("%s: %s of unknown trial %s", type(self).__name__, event, tid)
            self._adopt(tid)
        if only_from is not None and self._status.get(tid) not in only_from:
            return
        if self._status.get(tid) == event:
            return
        self._status[tid] = event
        self._write({"trial_id": tid, "event": event})

    def _write(self, record: dict[str, Any], start: float | None = None) -> None:
        record = {"scheduler": self.kind, "time_attr": self._time_attr, **record}
        if start is not None:
            record["ms"] = round((time.perf_counter() - start) * 1e3, 3)
        record["time"] = round(time.time(), 3)
        if record.get("decision") == STOP or "event" in record:
            log.info(
                "%s: trial %s: %s",
                self.kind,
                record.get("trial_id"),
                record.get("reason", record.get("event")),
            )
        if self._log_path is None:
            return
        try:
            append_records(self._log_path, [record])
        except OSError as e:
            self._warn_once("write", "cannot append to %s: %s", self._log_path, e)

    def _warn_once(self, key: str, msg: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _load_log(self, trial) -> None:
        """Find the log from the first trial Tune adds; read an earlier one (a restore)."""
        self._log_loaded = True
        source = None
        if not self._log_fixed:
            self._log_path, source = locate_log(trial)
        elif self._log_path is not None:
            source = (None, self._log_path)
        if source is None:
            return
        fs, path = source
        if fs is None:
            text = Path(path).read_text(encoding="utf-8") if os.path.isfile(path) else None
        else:
            text = _read_fs(fs, path)
        if not text:
            return
        if self._log_path is not None and os.path.abspath(self._log_path) != path:
            if not os.path.exists(self._log_path):  # remote storage: keep the earlier lines
                os.makedirs(os.path.dirname(self._log_path), exist_ok=True)
                Path(self._log_path).write_text(text, encoding="utf-8")
        for record in parse_lines(text, path):
            if record.get("scheduler") == self.kind and record.get("trial_id"):
                self._replay.setdefault(str(record["trial_id"]), []).append(record)

    def _take_back(self, trial) -> None:
        """After a restore: this trial's results and decisions from the log and result.json."""
        tid = trial.trial_id
        records = self._replay.pop(tid, [])
        history, decided = self._history[tid], self._decided[tid]
        for r in records:
            if "event" in r:
                self._status[tid] = str(r["event"])
                continue
            t = number(r.get("t"))
            if t is None or not isinstance(r.get("obs"), dict) or r.get("repeat"):
                continue
            history[t] = dict(r["obs"])
            if r.get("decision") in (CONTINUE, STOP):
                decided[t] = r["decision"]
                if r["decision"] == STOP:
                    self._status[tid] = "completed" if t >= self._max_t else "stopped"
        taken = len(history)
        if getattr(trial, "has_reported_at_least_once", False):
            for result in stored_results(trial):
                t = number(result.get(self._time_attr))
                if t is not None and math.isfinite(t) and t not in history:
                    history[t] = self._observe(result)
        if history:
            log.info(
                "%s: trial %s: took back %d results from the decision log, %d from result.json",
                self.kind,
                tid,
                taken,
                len(history) - taken,
            )
            self._rebuild_trial(tid)

    def _rebuild_trial(self, tid: str) -> None:
        for t in sorted(self._history[tid]):
            self._note(tid, t)


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (observations may hold NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# --- the report --------------------------------------------------------------------------------


def read_decisions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a decision log (``path`` is the file or the experiment folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / DECISIONS_FILE
    if not path.is_file():
        return []
    return parse_lines(path.read_text(encoding="utf-8", errors="replace"), str(path))


def summarise_decisions(path: str | os.PathLike, top: int = 20) -> str:
    """Plain-text summary of a decision log, for ``raynas report``.

    Args:
        path: the experiment folder or its ``scheduler_decisions.jsonl``.
        top: how many early-stopped trials to list with their reason.

    Returns:
        A few lines: decisions and trials per scheduler, the early-stopped trials with the
        reason of each stop, and the decision time (median and max); "" when the folder has
        no decision log (e.g. a FIFO or ASHA experiment).
    """
    records = read_decisions(path)
    if not records:
        return ""
    latest: dict[tuple, dict[str, Any]] = {}
    events: dict[tuple, str] = {}
    for r in records:
        key = (r.get("scheduler"), r.get("trial_id"))
        if "event" in r:
            events[key] = str(r["event"])
        elif r.get("t") is not None and not r.get("repeat"):
            latest[(*key, r["t"])] = r
    lines = []
    for kind in sorted({k[0] for k in latest} | {k[0] for k in events}, key=str):
        mine = [r for k, r in latest.items() if k[0] == kind]
        trials = {r["trial_id"] for r in mine} | {k[1] for k in events if k[0] == kind}
        early: dict[str, dict[str, Any]] = {}
        finished, ended = set(), set()
        for r in sorted(mine, key=lambda r: r["t"]):
            if r.get("decision") == STOP and r.get("early"):
                early.setdefault(r["trial_id"], r)
            elif r.get("decision") == STOP and r.get("reached_max_t", True):
                finished.add(r["trial_id"])
            elif r.get("decision") == STOP:  # a final result before max_t
                ended.add(r["trial_id"])
        ended -= finished | set(early)
        errored = sum(1 for k, e in events.items() if k[0] == kind and e == "error")
        time_attr = next((r.get("time_attr") for r in mine), "t")
        lines.append(
            f"scheduler decisions ({kind}): {len(mine)} results of {len(trials)} trials; "
            f"{len(early)} stopped early, {len(finished)} reached max_t, "
            + (f"{len(ended)} ended by themselves before max_t, " if ended else "")
            + f"{errored} errored"
        )
        ms = sorted(float(r["ms"]) for r in mine if isinstance(r.get("ms"), int | float))
        checks = sorted(
            float(r["ms"])
            for r in mine
            if isinstance(r.get("ms"), int | float) and ("p_beat" in r or "rank" in r)
        )
        if ms:
            text = f"decision time per result: median {ms[len(ms) // 2]:.2f} ms"
            if checks:
                text += (
                    f"; of the {len(checks)} that fitted or ranked: median "
                    f"{checks[len(checks) // 2]:.1f} ms, max {checks[-1]:.1f} ms"
                )
            lines.append(text)
        if early:
            lines.append(f"stopped early (trial, {time_attr}, reason):")
            rows = sorted(early.values(), key=lambda r: (r["t"], str(r["trial_id"])))
            width = max(len(str(r["trial_id"])) for r in rows[:top])
            for r in rows[:top]:
                lines.append(f"  {str(r['trial_id']).ljust(width)}  {r['t']!s:>5}  {r['reason']}")
            if len(rows) > top:
                lines.append(f"  ... and {len(rows) - top} more")
    return "\n".join(lines)
