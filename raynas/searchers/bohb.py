"""TuneBOHB over raynas's flat search spaces (``raynas.searchers.peers.make_bohb`` builds it).

Tune converts the flat ``tune_space()`` (dotted keys such as ``edge.1<-0`` or
``normal.n0.op0``, categorical choices) into a ConfigSpace itself: the keys hold no ``/``, so
they stay flat. ConfigSpace hands categorical values back as numpy scalars
(``numpy.str_``); ``NativeTuneBOHB`` returns the space's own choice objects instead, so a
suggested config is the same Python values any other searcher suggests (YAML- and
JSON-safe, equal under ``space.decode``).
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.bohb import TuneBOHB
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
        config = super().suggest(trial_id)
        if not isinstance(config, dict) or not self._choices:
            return config
        return {key: self._native(key, value) for key, value in config.items()}

    def _native(self, key: str, value: Any) -> Any:
        for choice in (self._choices or {}).get(key, ()):
            if choice == value or str(choice) == str(value):
                return choice
        return value.item() if hasattr(value, "item") else value
