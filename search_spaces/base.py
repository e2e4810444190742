"""The SearchSpace contract shared by every raynas search space.

A search space is data plus pure functions: a flat dict of Ray Tune domains whose keys are
human-readable dotted names, and functions between a Tune config, a genotype (the space's own
immutable description of one architecture), a canonical string and a ``torch.nn.Module``.

Randomness always comes from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search.sample import Categorical, Domain

Genotype = Any


def _fmt_allowed(values: tuple) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


class SearchSpace(ABC):
    """Base class of every raynas search space.

    Subclasses implement ``tune_space``, ``decode``, ``encode``, ``to_str``, ``from_str`` and
    ``build``. The neighbourhood functions (``size``, ``sample``, ``mutate``, ``neighbours``)
    have generic implementations over the categorical keys of ``tune_space``; spaces whose
    configs contain inactive keys (e.g. blocks beyond a stage's depth) override ``size`` and
    rely on ``decode`` + ``to_str`` to tell distinct architectures apart.
    """

    #: Registry name of the space.
    name: str = ""

    # ----------------------------------------------------------------- required by subclasses
    @abstractmethod
    def tune_space(self) -> dict[str, Domain]:
        """Flat dict of Ray Tune domains, keyed by dotted names."""

    @abstractmethod
    def decode(self, config: Mapping[str, Any]) -> Genotype:
        """Turn a Tune config into a genotype; raise ValueError on a bad key or value."""

    @abstractmethod
    def encode(self, genotype: Genotype) -> dict[str, Any]:
        """Turn a genotype into the Tune config that decodes to it."""

    @abstractmethod
    def to_str(self, genotype: Genotype) -> str:
        """Canonical string of a genotype (equal strings = same architecture)."""

    @abstractmethod
    def from_str(self, text: str) -> Genotype:
        """Inverse of ``to_str``."""

    @abstractmethod
    def build(
        self, genotype: Genotype, num_classes: int = 10, in_channels: int = 3, **options: Any
    ):
        """Build the ``torch.nn.Module`` of a genotype; ``options`` are macro settings."""

    # --------------------------------------------------------------------- generic helpers
    def choices(self) -> dict[str, tuple]:
        """Allowed values of every categorical key of ``tune_space``."""
        return {
            k: tuple(d.categories)
            for k, d in self.tune_space().items()
            if isinstance(d, Categorical)
        }

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raise ValueError naming the first missing, unknown or out-of-range key.

        Keys that Tune adds to a config but that are not part of this space are rejected too,
        so a config from another space cannot be decoded silently.
        """
        space = self.tune_space()
        unknown = sorted(set(config) - set(space))
        if unknown:
            raise ValueError(
                f"unknown key {unknown[0]!r} for search space {self.name!r}; "
                f"valid keys: {', '.join(space)}"
            )
        for key, domain in space.items():
            if key not in config:
                raise ValueError(f"missing key {key!r} for search space {self.name!r}")
            value = config[key]
            if isinstance(domain, Categorical):
                if value not in domain.categories:
                    raise ValueError(
                        f"invalid value {value!r} for {key!r}; allowed: "
                        f"{_fmt_allowed(tuple(domain.categories))}"
                    )
            else:
                lower = getattr(domain, "lower", None)
                upper = getattr(domain, "upper", None)
                if lower is not None and not (lower <= value <= upper):
                    raise ValueError(
                        f"invalid value {value!r} for {key!r}; allowed: [{lower}, {upper}]"
                    )

    def size(self) -> int:
        """Number of distinct architectures (product of categorical choices by default)."""
        return math.prod(len(v) for v in self.choices().values())

    def sample(self, rng: np.random.Generator) -> Genotype:
        """Draw a genotype uniformly over configs, using only ``rng``."""
        config = {k: vals[int(rng.integers(len(vals)))] for k, vals in self.choices().items()}
        return self.decode(config)

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """Change one decision so that the architecture differs (one step of ``neighbours``)."""
        config = self.encode(genotype)
        mutable = [k for k, vals in self.choices().items() if len(vals) > 1]
        original = self.to_str(genotype)
        for _ in range(1000):
            key = mutable[int(rng.integers(len(mutable)))]
            others = [v for v in self.choices()[key] if v != config[key]]
            candidate = dict(config, **{key: others[int(rng.integers(len(others)))]})
            child = self.decode(candidate)
            if self.to_str(child) != original:
                return child
        raise RuntimeError(f"could not mutate {original!r} in space {self.name!r}")

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """All distinct architectures one decision away, in a deterministic order."""
        config = self.encode(genotype)
        seen = {self.to_str(genotype)}
        out = []
        for key, vals in self.choices().items():
            for value in vals:
                if value == config[key]:
                    continue
                child = self.decode(dict(config, **{key: value}))
                text = self.to_str(child)
                if text not in seen:
                    seen.add(text)
                    out.append(child)
        return out

    def to_json(self, genotype: Genotype) -> Any:
        """JSON-serialisable form of a genotype (used by ``raynas export``)."""
        if dataclasses.is_dataclass(genotype):
            return dataclasses.asdict(genotype)
        if hasattr(genotype, "_asdict"):
            return {k: _jsonable(v) for k, v in genotype._asdict().items()}
        return self.encode(genotype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size()})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def choice(values) -> Categorical:
    """A categorical Tune domain (thin alias so spaces read uniformly)."""
    return tune.choice(list(values))
