"""Peer searchers: Tune's own random search, OptunaSearch (TPE) and HyperOptSearch.

They take the space's flat ``tune_space()`` through the Tuner's ``param_space``, so the same
experiment file runs with any of them.
"""

from __future__ import annotations

import warnings
from typing import Any

from search_spaces.base import SearchSpace


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
        multivariate: use the multivariate TPE, which models the keys jointly (default: on; on
            the NB201 table it repeats far fewer architectures and reaches lower regret than
            the univariate TPE, see benchmarks/nb201_searchers.py).
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
    return OptunaSearch(
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
    return HyperOptSearch(
        metric=metric,
        mode=mode,
        points_to_evaluate=points_to_evaluate,
        n_initial_points=n_initial_points,
        random_state_seed=seed,
        gamma=gamma,
    )
