"""Peer searchers: Tune's own random search, OptunaSearch (TPE), HyperOptSearch and TuneBOHB.

They take the space's flat ``tune_space()`` through the Tuner's ``param_space``, so the same
experiment file runs with any of them. Optuna and HyperOpt come as forgiving subclasses (see
``_forgiving``): a result of a trial they never suggested is ignored and a trial that ends
without a finite metric counts as failed, as in raynas's own searchers; Tune's classes raise
there (KeyError, TypeError), which ends the whole run.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from typing import Any

from search_spaces.base import SearchSpace

log = logging.getLogger(__name__)


class _Forgiving:
    """Mixin over a Tune searcher ``_known(trial_id)`` says which trials it suggested."""

    def _known(self, trial_id: str) -> bool:
        raise NotImplementedError

    def _finite(self, result: dict | None) -> bool:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        for m in metrics:
            value = (result or {}).get(m)
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                return False
        return True

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._known(trial_id) and self._finite(result):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if not self._known(trial_id):
            log.warning("%s: result for unknown trial %s ignored", type(self).__name__, trial_id)
            return
        if not error and not self._finite(result):
            # No result at all: a trial a scheduler stopped while it was paused (HyperBand's
            # brackets); its results reached the searcher already. A result without a finite
            # metric is worth a warning.
            log.log(
                logging.DEBUG if result is None else logging.WARNING,
                "%s: trial %s ended without a finite %r; counted as failed",
                type(self).__name__,
                trial_id,
                self.metric,
            )
            result, error = None, True
        super().on_trial_complete(trial_id, result, error)


def _forgiving(base: type, known) -> type:
    """``base`` with ``_Forgiving``'s callbacks, made once and kept in this module's globals
    under its name, so that pickle finds it (Tune saves searchers in the experiment state)."""
    name = f"Forgiving{base.__name__}"
    if name not in globals():
        cls = type(name, (_Forgiving, base), {"_known": known, "__module__": __name__})
        cls.__qualname__ = name
        globals()[name] = cls
    return globals()[name]


def __getattr__(name: str) -> type:
    # A pickle made in another process names the class before make_* has built it here.
    if name == "ForgivingOptunaSearch":
        from ray.tune.search.optuna import OptunaSearch

        return _forgiving(OptunaSearch, _optuna_knows)
    if name == "ForgivingHyperOptSearch":
        from ray.tune.search.hyperopt import HyperOptSearch

        return _forgiving(HyperOptSearch, _hyperopt_knows)
    if name == "ForgivingNativeTuneBOHB":
        from raynas.searchers.bohb import NativeTuneBOHB

        return _forgiving(NativeTuneBOHB, _bohb_knows)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _optuna_knows(self, trial_id: str) -> bool:
    return trial_id in self._ot_trials and trial_id not in self._completed_trials


def _hyperopt_knows(self, trial_id: str) -> bool:
    return trial_id in self._live_trial_mapping


def _bohb_knows(self, trial_id: str) -> bool:
    return trial_id in self.trial_to_params


def make_random(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    points_to_evaluate: list[dict] | None = None,
    max_concurrent: int | None = None,
):
    """Tune's BasicVariantGenerator: uniform random sampling of the space."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(
        points_to_evaluate=points_to_evaluate,
        random_state=seed,
        max_concurrent=max_concurrent or 0,
    )


def make_optuna(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    points_to_evaluate: list[dict] | None = None,
    n_startup_trials: int = 10,
    multivariate: bool = True,
):
    """OptunaSearch with a seeded TPE sampler.

    Args:
        n_startup_trials: random trials before TPE takes over (Optuna's default 10).
        multivariate: use the multivariate TPE, which models the keys jointly (default: on;
            benchmarks/nb201_searchers.py compares it with the univariate TPE).
    """
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if n_startup_trials < 1:
        raise ValueError(f"n_startup_trials must be >= 1, got {n_startup_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # multivariate TPE is marked experimental by Optuna; the warning is noise for users.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate
    )
    return _forgiving(OptunaSearch, _optuna_knows)(
        metric=metric, mode=mode, points_to_evaluate=points_to_evaluate, sampler=sampler
    )


def make_hyperopt(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    points_to_evaluate: list[dict] | None = None,
    n_initial_points: int = 20,
    gamma: float = 0.25,
) -> Any:
    """HyperOptSearch (hyperopt's TPE).

    Args:
        n_initial_points: random trials before TPE takes over.
        gamma: TPE's quantile splitting good from bad trials.
    """
    from ray.tune.search.hyperopt import HyperOptSearch

    if n_initial_points < 1:
        raise ValueError(f"n_initial_points must be >= 1, got {n_initial_points}")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    return _forgiving(HyperOptSearch, _hyperopt_knows)(
        metric=metric,
        mode=mode,
        points_to_evaluate=points_to_evaluate,
        n_initial_points=n_initial_points,
        random_state_seed=seed,
        gamma=gamma,
    )


def make_bohb(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    points_to_evaluate: list[dict] | None = None,
    min_points_in_model: int | None = None,
    top_n_percent: int = 15,
    num_samples: int = 64,
    random_fraction: float = 1 / 3,
    bandwidth_factor: float = 3.0,
    min_bandwidth: float = 1e-3,
) -> Any:
    """TuneBOHB (BOHB, Falkner et al. 2018: a TPE-like KDE model per budget), to be run with
    the ``hyperband_for_bohb`` scheduler (an experiment naming ``searcher: bohb`` gets it
    unless it names a scheduler; see ``raynas.config``).

    The options are HpBandSter's BOHB config generator's.

    Args:
        min_points_in_model: results on a budget before its model is used (None: the number
            of hyperparameters + 1).
        top_n_percent: percentage of results per budget that make the "good" density.
        num_samples: candidates drawn from the good density per suggestion.
        random_fraction: share of suggestions drawn uniformly at random.
        bandwidth_factor: widening of the KDE bandwidth when sampling candidates.
        min_bandwidth: smallest KDE bandwidth (keeps categorical diversity).
    """
    import importlib.util

    missing = [m for m in ("hpbandster", "ConfigSpace") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"needs {' and '.join(missing)}, which are not installed: pip install 'raynas[bohb]' "
            "(hpbandster builds netifaces from source: a C compiler is needed)"
        )
    from raynas.searchers.bohb import NativeTuneBOHB

    if min_points_in_model is not None and min_points_in_model < 1:
        raise ValueError(f"min_points_in_model must be >= 1 or null, got {min_points_in_model}")
    if not 0 < top_n_percent < 100:
        raise ValueError(f"top_n_percent must be in (0, 100), got {top_n_percent}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not 0 <= random_fraction <= 1:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    if not bandwidth_factor > 0 or not min_bandwidth > 0:
        raise ValueError("bandwidth_factor and min_bandwidth must be > 0")
    # hpbandster (2018) calls ConfigSpace's deprecated accessors on every suggestion
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"hpbandster\.")
    bohb_config = {
        "min_points_in_model": min_points_in_model,
        "top_n_percent": top_n_percent,
        "num_samples": num_samples,
        "random_fraction": random_fraction,
        "bandwidth_factor": bandwidth_factor,
        "min_bandwidth": min_bandwidth,
    }
    return _forgiving(NativeTuneBOHB, _bohb_knows)(
        bohb_config=bohb_config,
        metric=metric,
        mode=mode,
        points_to_evaluate=points_to_evaluate,
        seed=seed,
    )
