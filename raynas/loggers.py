"""Tune's result loggers (result.json, progress.csv, TensorBoard), each epoch recorded once.

Tune (2.60) takes a trial's result and its checkpoint in two steps: the result is logged, then
a separate ``save`` call to the trial's actor registers the checkpoint that came with it. A
trial lost between the two (its node dies, its worker is killed) is retried from the
checkpoint before, so it reports that epoch again, and Tune's own loggers append it a second
time (``training_iteration`` 1, 2, 2, 3, ... in result.json). The same happens to any trial
retried from a checkpoint older than its last result.

These subclasses log a result only when its ``training_iteration`` is beyond the last one
they logged for that trial, so every file holds each iteration once: the first report of it,
as raynas's schedulers keep the first result they saw for an iteration. The epoch is still
trained again (the work lost with the node). What they logged is part of Tune's callback state
(``get_state``), saved with each experiment snapshot, so a ``raynas resume`` continues the
files without repeating what the snapshot knew. Tune adds its default loggers only when none
of their type is given, so passing these replaces them (``TBXLogger`` subclasses Tune's
TensorBoardX logger). (``trial.last_result`` cannot serve: Tune resets it to the checkpoint's
result when it restores a trial.)
"""

from __future__ import annotations

from collections.abc import Sequence

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from raynas.tensorboard import TrialBoard


class _OncePerIteration:
    """Mixin: ``log_trial_result`` only for iterations beyond the last logged one."""

    def _first_time(self, trial, result: dict) -> bool:
        logged = self.__dict__.setdefault("_logged", {})
        new = result.get("training_iteration")
        last = logged.get(trial.trial_id)
        if new is None:
            return True
        if last is not None and new <= last:
            return False
        logged[trial.trial_id] = new
        return True

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if self._first_time(trial, result):
            super().log_trial_result(iteration, trial, result)

    def get_state(self) -> dict:
        return {"logged": dict(self.__dict__.get("_logged", {}))}

    def set_state(self, state: dict) -> None:
        self.__dict__.setdefault("_logged", {}).update(state.get("logged", {}))


class JsonLogger(_OncePerIteration, JsonLoggerCallback):
    """Tune's ``result.json`` logger, each iteration once (see the module docstring)."""


class CSVLogger(_OncePerIteration, CSVLoggerCallback):
    """Tune's ``progress.csv`` logger, each iteration once (see the module docstring)."""


class TBXLogger(_OncePerIteration, TrialBoard):
    """The per-trial TensorBoard logger (``raynas.tensorboard.TrialBoard``, which replaces
    Tune's), each iteration once (see the module docstring)."""

    def get_state(self) -> dict:
        return {**super().get_state(), "curves": sorted(self._curves)}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._curves.update(state.get("curves", []))


def result_loggers(metrics: Sequence[str] = ()) -> list:
    """One of each logger, for ``RunConfig(callbacks=...)``.

    Args:
        metrics: the experiment's metric(s), shown first in TensorBoard's HParams.
    """
    return [JsonLogger(), CSVLogger(), TBXLogger(metrics)]
