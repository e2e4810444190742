"""What ``raynas run`` and ``resume`` print while an experiment runs.

``Progress`` is a Tune callback on the driver. It keeps one compact status line::

    12/20 done, 2 running, 6 pending, 0 errored | best val_acc 91.61 |nor_conv_3x3~0|+...
    | 8.3 trials/min | ETA 1m0s

On a terminal the line starts with a bar of the trials done out of ``num_samples``
(``[####----]``) and is redrawn in place (at most once a second). In a log (stdout not a
terminal) it is printed as a plain line when a trial finishes (at most one line per finished
trial: when the best changed, else at most every 10 s), and at least every ``heartbeat_s``
seconds while trials run, with the epoch each running trial reached (``epoch 3/50``), so a
long trial shows it is alive. A trial that errors gets one line naming it, its error and its
error file (the traceback is in that file).

``quiet_tune`` removes what Tune would print that raynas says in its own words (the
``Tuner.restore(...)`` hint, the stop-signal notice, the per-trial traceback): the CLI prints
``raynas resume ...`` and the error lines instead. With ``-v`` Tune's own tables and messages
are kept.
"""

from __future__ import annotations

import math
import numbers
import shutil
import sys
import time
from typing import Any

from ray.tune import Callback

from raynas.logfilter import drop_messages

#: Characters of an architecture string shown in the status line.
ARCH_WIDTH = 60


def format_value(value: Any) -> str:
    """A metric as shown to a person: 4 significant digits (83.92), integers as they are."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def format_duration(seconds: float) -> str:
    """``3h2m``, ``4m10s``, ``12s``, ``2.4s``."""
    if 0 <= seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _short(text: str, width: int = ARCH_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _better(value: float, than: float | None, mode: str) -> bool:
    return than is None or (value > than if mode == "max" else value < than)


def error_path(trial) -> str | None:
    """Where a trial's error file is in the experiment folder (Tune writes it in its staging
    folder first and copies it there)."""
    name = getattr(getattr(trial, "run_metadata", None), "error_filename", None)
    folder = getattr(trial, "path", None)
    if name and folder:
        return f"{folder}/{name}"
    return getattr(trial, "error_file", None)


def error_summary(trial) -> str:
    """The last line of a trial's error (``ValueError: ...``), from Tune's error file."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "see its error file"


class Progress(Callback):
    """Status line and per-trial lines (see the module doc).

    Args:
        metric: the experiment's metric.
        mode: ``max`` or ``min``.
        epochs: epochs a trial trains (shown as ``epoch 3/50``); None when unknown.
        heartbeat_s: in a log, the longest time without a line while trials run.
        line_s: in a log, the shortest time between two lines for finished trials (a new
            best or the last trial gets one at once).
        refresh_s: on a terminal, the shortest time between redraws.
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        epochs: int | None = None,
        heartbeat_s: float = 60.0,
        refresh_s: float = 1.0,
        line_s: float = 10.0,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.epochs = epochs
        self.heartbeat_s = heartbeat_s
        self.line_s = line_s
        self.refresh_s = refresh_s
        self._reset()

    def _reset(self, total: int | None = None) -> None:
        self.total = total
        self.start = time.monotonic()
        self.finished_here = 0  # trials finished in this run (the rate)
        self.best: tuple[float, str] | None = None
        self.best_printed: tuple[float, str] | None = None
        self.epoch: dict[str, int] = {}
        self.last_line = self.start
        self.last_text = ""
        self.drawn = False

    def __getstate__(self) -> dict:
        # Tune pickles callbacks with its state; a resume starts from a fresh count.
        state = dict(self.__dict__)
        state.update(best=None, best_printed=None, epoch={}, drawn=False, finished_here=0)
        return state

    # --- Tune's callback API -------------------------------------------------------------
    def setup(self, total_num_samples: int | None = None, **info: Any) -> None:
        total = total_num_samples if total_num_samples and total_num_samples > 0 else None
        self._reset(total)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info):
        step = result.get("epoch", result.get("training_iteration"))
        if isinstance(step, numbers.Real):
            self.epoch[trial.trial_id] = int(step)
        value = result.get(self.metric)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if math.isfinite(float(value)) and _better(
                float(value), self.best and self.best[0], self.mode
            ):
                self.best = (float(value), str(result.get("arch", "")))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info):
        self.finished_here += 1
        self.epoch.pop(trial.trial_id, None)
        if self.tty:
            return
        # In a log: a line when the best changed, the last trial finished, or every
        # `line_s` seconds, so fast trials do not flood it.
        new_best = self.best is not None and self.best != self.best_printed
        if new_best or time.monotonic() - self.last_line >= self.line_s:
            self.best_printed = self.best
            self._print(self.status(trials, finishing=trial))

    def on_trial_error(self, iteration: int, trials: list, trial, **info):
        self.finished_here += 1
        self.epoch.pop(trial.trial_id, None)
        where = error_path(trial) or "(no error file)"
        self._print(f"trial {trial.trial_id} errored: {error_summary(trial)} (details: {where})")

    def on_step_end(self, iteration: int, trials: list, **info):
        now = time.monotonic()
        if self.tty:
            if now - self.last_line >= self.refresh_s:
                self._draw(self.status(trials))
        elif now - self.last_line >= self.heartbeat_s and any(
            t.status == "RUNNING" for t in trials
        ):
            self._print(self.status(trials))

    def on_experiment_end(self, trials: list, **info):
        from raynas import stop

        if stop.received():  # Tune's states are half-way there; the CLI says what happened
            if self.drawn:
                sys.stdout.write("\n")
                self.drawn = False
            return
        if not self.tty:
            line = self.status(trials)
            if line != self.last_text:
                self._print(line)
        elif self.drawn:
            self._draw(self.status(trials))
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.drawn = False

    # --- output --------------------------------------------------------------------------
    @property
    def tty(self) -> bool:
        return sys.stdout.isatty()

    def status(self, trials: list, finishing=None) -> str:
        """The status line for ``trials`` (Tune's trial objects); ``finishing``: a trial
        counted as done although Tune has not marked it yet (in ``on_trial_complete``)."""
        counts = {"TERMINATED": 0, "RUNNING": 0, "ERROR": 0}
        for t in trials:
            status = "TERMINATED" if t is finishing else t.status
            counts[status] = counts.get(status, 0) + 1
        done, running, errored = counts["TERMINATED"], counts["RUNNING"], counts["ERROR"]
        total = self.total
        if total is not None:
            pending = max(total - done - running - errored, 0)
            parts = [
                f"{bar(done, total)} {done}/{total} done" if self.tty else f"{done}/{total} done"
            ]
        else:
            pending = len(trials) - done - running - errored
            parts = [f"{done} done"]
        parts[0] += f", {running} running, {pending} pending, {errored} errored"
        if self.best is not None:
            value, arch = self.best
            best = f"best {self.metric} {format_value(value)}"
            parts.append(f"{best} {_short(arch)}" if arch else best)
        minutes = (time.monotonic() - self.start) / 60
        if self.finished_here and minutes > 0:
            rate = self.finished_here / minutes
            parts.append(f"{rate:.3g} trials/min")
            if total is not None:
                left = max(total - done - errored, 0)
                parts.append(f"ETA {format_duration(left / rate * 60)}" if left else "ETA 0s")
        running_epochs = [
            self.epoch[t.trial_id]
            for t in trials
            if t.status == "RUNNING" and t.trial_id in self.epoch
        ]
        if running_epochs and (self.epochs or 0) != 1:
            of = f"/{self.epochs}" if self.epochs else ""
            shown = ", ".join(f"{e}{of}" for e in sorted(running_epochs, reverse=True)[:4])
            parts.append(f"epoch {shown}")
        return " | ".join(parts)

    def _print(self, line: str) -> None:
        if self.tty and self.drawn:
            sys.stdout.write("\r\033[K")
            self.drawn = False
        print(line, flush=True)
        self.last_line = time.monotonic()
        self.last_text = line

    def _draw(self, line: str) -> None:
        # One terminal row: a wrapped line could not be redrawn in place.
        width = shutil.get_terminal_size((100, 24)).columns - 1
        if len(line) > width:
            line = line[: max(width - 3, 0)] + "..."
        sys.stdout.write("\r\033[K" + line)
        sys.stdout.flush()
        self.drawn = True
        self.last_line = time.monotonic()


#: Tune's messages raynas says in its own words: logger name -> message prefixes.
TUNE_MESSAGES = {
    # `raynas resume <folder>` is printed instead (cli._finish)
    "ray.tune.tune": (
        "Stop signal received",
        "Experiment has been interrupted",
        "Training has been interrupted",
        "Wrote the latest version of all result files",  # the summary says where
        "Trials did not complete",  # the summary lists the errored trials
    ),
    "ray._private.worker": ("Started a local Ray instance",),
    # trials stopped before their first result, on interrupt and resume: not a problem
    "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics for",),
    # one line per errored trial (Progress.on_trial_error); the traceback is in error.txt
    "ray.tune.execution.tune_controller": (
        "Trial task failed for trial",
        "Restoring the run from the latest experiment state file",
    ),
}


def quiet_tune() -> None:
    """Install the filters of ``TUNE_MESSAGES`` (idempotent)."""
    for name, prefixes in TUNE_MESSAGES.items():
        drop_messages(name, *prefixes)


def bar(done: int, total: int, width: int = 20) -> str:
    """``[#####---------------]``: the share of ``total`` trials done, in ``width`` cells."""
    filled = max(0, min(width, width * done // total)) if total > 0 else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"
