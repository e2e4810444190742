"""HyperBandForBOHB, the scheduler of the ``bohb`` searcher, made resumable.

Tune's ``Tuner.restore`` restores the searcher's state but not the scheduler's: a restored
HyperBandForBOHB would put the trials that were unfinished at the interruption (paused at a
rung, or running) into fresh brackets, where they wait for brackets that new trials never
fill, and the resumed run ends with them still paused. Tune saves no record of the brackets,
so this subclass does not guess them: a trial restored with results (``training_iteration``
already reported) runs on to ``max_t`` outside the brackets, first of the runnable trials,
while new trials fill fresh brackets as in an uninterrupted run. Its results still reach the
searcher; only the budgets (``hyperband_info``) BOHB's model learns from are left out, as in
Tune for any result outside a bracket.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB as TuneHyperBandForBOHB
from ray.tune.schedulers import TrialScheduler


class HyperBandForBOHB(TuneHyperBandForBOHB):
    """Tune's HyperBandForBOHB; trials a resume brings back finish outside the brackets."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._restored: set[str] = set()

    def _is_restored(self, trial: Trial) -> bool:
        return trial.trial_id in getattr(self, "_restored", ())

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        if (trial.last_result or {}).get(self._time_attr):
            self._restored.add(trial.trial_id)
            return
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        if self._is_restored(trial):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        if not self._is_restored(trial):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        if not self._is_restored(trial):
            super().on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        if not self._is_restored(trial):
            super().on_trial_error(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller, allow_recurse: bool = True) -> Trial | None:
        for trial in tune_controller.get_trials():
            if self._is_restored(trial) and trial.status == Trial.PENDING:
                return trial
        return super().choose_trial_to_run(tune_controller, allow_recurse)
