"""TuneBOHB over raynas's flat search spaces (``raynas.searchers.peers.make_bohb`` builds it).

Tune converts the flat ``tune_space()`` (dotted keys such as ``edge.1<-0`` or
``normal.n0.op0``, categorical choices) into a ConfigSpace itself: the keys hold no ``/``, so
they stay flat. ConfigSpace hands categorical values back as numpy scalars
(``numpy.str_``); ``NativeTuneBOHB`` returns the space's own choice objects instead, so a
suggested config is the same Python values any other searcher suggests (YAML- and
JSON-safe, equal under ``space.decode``).

Tune's TuneBOHB learns only from results HyperBandForBOHB marks with a budget (a trial
reaching a rung in ``on_trial_result``); a trial's final result arrives through
``on_trial_complete``, which TuneBOHB ignores, so on a trainable that reports once (``table``,
``proxy``) its model never learned anything. ``NativeTuneBOHB`` also gives BOHB each
completed trial's final result, with its ``training_iteration`` as the budget, unless that
result already reached the model at that budget.

HpBandSter's config generator draws from numpy's global RNG (``np.random.rand`` and co.), so a
seeded TuneBOHB still suggested differently whenever anything else in the driver used that
RNG, and moved everyone else's draws. ``NativeTuneBOHB`` with a seed runs each suggestion on
its own numpy RNG state (seeded once, kept in the searcher's state, so a restored searcher
continues the same stream) and puts the global state back afterwards.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from ray.tune.search.bohb import TuneBOHB
from ray.tune.search.bohb.bohb_search import _BOHBJobWrapper
from ray.tune.search.sample import Categorical


class NativeTuneBOHB(TuneBOHB):
    """TuneBOHB whose suggestions carry the space's own categorical values."""

    _choices: dict[str, list[Any]] | None = None

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        self._choices = {
            key: list(domain.categories)
            for key, domain in config.items()
            if isinstance(domain, Categorical)
        }
        return super().set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        with self._own_numpy_rng():
            config = super().suggest(trial_id)
        if not isinstance(config, dict) or not self._choices:
            return config
        return {key: self._native(key, value) for key, value in config.items()}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        budget = (result.get("hyperband_info") or {}).get("budget")
        if budget is not None:
            self._fed = {**getattr(self, "_fed", {}), trial_id: budget}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        fed = getattr(self, "_fed", {})
        budget = (result or {}).get("training_iteration")
        value = (result or {}).get(self.metric)
        if (
            not error
            and trial_id in self.trial_to_params
            and isinstance(budget, int | float)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and fed.get(trial_id) != budget
        ):
            config = self.trial_to_params[trial_id]
            self.bohber.new_result(_BOHBJobWrapper(self._metric_op * value, budget, config))
        fed.pop(trial_id, None)
        super().on_trial_complete(trial_id, result, error)

    @contextlib.contextmanager
    def _own_numpy_rng(self) -> Iterator[None]:
        """numpy's global RNG set to this searcher's stream (seeded searchers only)."""
        if self._seed is None:
            yield
            return
        if getattr(self, "_numpy_state", None) is None:
            self._numpy_state = np.random.RandomState(self._seed).get_state()
        outside = np.random.get_state()
        np.random.set_state(self._numpy_state)
        try:
            yield
        finally:
            self._numpy_state = np.random.get_state()
            np.random.set_state(outside)

    def _native(self, key: str, value: Any) -> Any:
        for choice in (self._choices or {}).get(key, ()):
            if choice == value or str(choice) == str(value):
                return choice
        return value.item() if hasattr(value, "item") else value
