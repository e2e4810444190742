"""The base of raynas's schedulers: per-result decisions, recorded and replayed.

``DecisionScheduler`` is the part that ``LCEScheduler`` and ``TSEScheduler`` share: option
validation, ``set_search_properties`` as Tune's ASHA does it, tolerance of unknown or errored
trials and of missing or NaN metrics, and the decision log. Every result gets one line in
``<experiment dir>/scheduler_decisions.jsonl`` (``raynas.decision_log``), which
``raynas.decision_report`` turns into the text that ``raynas report`` prints.

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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from raynas import atomic
from raynas.decision_log import (
    append_records,
    locate_log,
    parse_lines,
    read_fs,
    stored_results,
)
from raynas.registry import check_int as check_int

log = logging.getLogger(__name__)

STATE_VERSION = 1
CONTINUE = TrialScheduler.CONTINUE
STOP = TrialScheduler.STOP


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
        atomic.write_json(checkpoint_path, self.get_state())

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
            text = read_fs(fs, path)
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
