"""Shared machinery of raynas's own Tune searchers (evolution, REINFORCE).

``NASSearcher`` does the bookkeeping every NAS searcher needs, so subclasses only propose
configs and learn from results:

- the flat Tune space (from the raynas ``SearchSpace`` or from ``set_search_properties``),
  categorical, randint/qrandint and uniform/loguniform domains;
- architecture identity: with a raynas space, two configs are the same architecture when
  ``space.to_str(space.decode(config))`` agree (inactive keys ignored); otherwise the config;
- never re-suggesting an architecture that is evaluated or pending while unseen ones remain;
- forgiving callbacks: unknown trial ids, errored trials, missing or NaN metrics are logged and
  recorded as failures, never raised;
- state as a small dict (``get_state``/``set_state``) saved atomically by ``save``/``restore``,
  including the numpy RNG state and pending trials;
- proxy seeding (``proxy_seed``, see ``raynas.searchers.seeding``): before the first
  suggestion, a random pool of architectures is scored by a zero-cost proxy and its top-k are
  suggested first (after ``points_to_evaluate``); the scored pool is saved with the state, so
  a restored searcher does not score it again.

Subclasses implement ``_propose() -> dict`` and ``_observe(config, score)`` where ``score`` is
the metric turned into "higher is better" (``None`` for a failed trial), and extend
``get_state``/``set_state`` with their own state; ``_feasible(config)`` (default: always)
keeps infeasible configs out of the proxy pool.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import pickle
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain, Float, Integer

from raynas.searchers import seeding

log = logging.getLogger(__name__)

#: How many proposals ``suggest`` tries before accepting a duplicate architecture.
MAX_RETRIES = 200
#: Random configs ``random_unseen`` tries for a new architecture; more are drawn while none is
#: feasible.
RANDOM_TRIES = 64
FEASIBLE_TRIES = 10_000
#: Largest grid (configs) that is enumerated to find the last unseen architectures.
ENUMERATE_MAX = 100_000


class NASSearcher(Searcher):
    """Base of raynas's searchers (see module docstring).

    Args:
        space: a raynas ``SearchSpace``; its ``tune_space()`` is the space searched, and its
            canonical strings tell architectures apart. Optional when the Tuner's
            ``param_space`` is set (then configs are compared as they are).
        metric: metric to optimise; also settable by the Tuner.
        mode: "max" or "min"; also settable by the Tuner.
        seed: seed of the searcher's ``numpy.random.Generator``.
        points_to_evaluate: configs suggested first, in order.
        proxy_seed: None, or the options of proxy seeding (a mapping or a
            ``seeding.ProxySeed``; needs ``space``): the ``top_k`` best of ``pool`` random
            architectures by a zero-cost proxy are suggested right after
            ``points_to_evaluate``.
    """

    def __init__(
        self,
        space: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: list[dict] | None = None,
        proxy_seed: Mapping[str, Any] | seeding.ProxySeed | None = None,
    ) -> None:
        if mode is not None and mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.proxy_seed = seeding.ProxySeed.parse(proxy_seed)
        if self.proxy_seed is not None and space is None:
            raise ValueError(
                "proxy_seed needs a raynas search space (space=...) to build the networks it "
                "scores"
            )
        # the scored pool (see ``seeding.score_pool``); None until the first suggestion
        self.proxy_pool: dict[str, Any] | None = None
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.domains: dict[str, Domain] | None = dict(space.tune_space()) if space else None
        self.rng = np.random.default_rng(seed)
        self.points_to_evaluate = [dict(p) for p in points_to_evaluate or []]
        self.pending: dict[str, dict] = {}
        self.seen: set[str] = set()  # architectures evaluated or pending
        self.history: list[tuple[dict, float | None]] = []  # completed (config, score)
        # set once a finite grid has no unseen feasible architecture left (``random_unseen``)
        self._feasible_exhausted = False

    # ------------------------------------------------------------------ Tune interface
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if metric is not None and self._metric is None:
            self._metric = metric
        if mode is not None and self._mode is None:
            if mode not in ("max", "min"):
                return False
            self._mode = mode
        if self.domains is None and config:
            flat = {k: v for k, v in config.items() if isinstance(v, Domain)}
            if len(flat) != len(config):
                nested = sorted(k for k, v in config.items() if not isinstance(v, Domain))
                raise ValueError(
                    f"{type(self).__name__} needs a flat dict of Tune domains; "
                    f"not a domain: {', '.join(nested)}"
                )
            self.domains = flat
        return True

    def suggest(self, trial_id: str) -> dict | None:
        if self.domains is None:
            raise RuntimeError(
                f"{type(self).__name__} has no search space: pass `space=` or a Tuner param_space"
            )
        if self.proxy_seed is not None and self.proxy_pool is None:
            self._seed_from_proxy()
        if self.points_to_evaluate:
            config = self.points_to_evaluate.pop(0)
        else:
            config = self._propose()
            for _ in range(MAX_RETRIES):
                if self.arch_key(config) not in self.seen or self._exhausted():
                    break
                config = self._propose()
        self.seen.add(self.arch_key(config))
        self.pending[trial_id] = config
        return dict(config)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        config = self.pending.pop(trial_id, None)
        if config is None:
            # A trial this searcher no longer holds: an errored trial run again by
            # `raynas resume` (resume_errored keeps its id; the error already ended it here) or
            # by restart_errored (a new id). Its result carries its config: learn from it.
            config = self._config_of(result)
            if config is None:
                log.warning(
                    "%s: result for unknown trial %s ignored", type(self).__name__, trial_id
                )
                return
            name = type(self).__name__
            log.info("%s: learning from trial %s, run again after an error", name, trial_id)
            self.seen.add(self.arch_key(config))
        score = None if error else self.score(result)
        if score is None:
            log.warning(
                "%s: trial %s ended without a finite %r (error=%s); counted as failed",
                type(self).__name__,
                trial_id,
                self._metric,
                error,
            )
        self.history.append((config, score))
        self._observe(config, score)

    def adopt_trial(self, trial_id: str, config: Mapping[str, Any]) -> None:
        """Hold ``trial_id`` with ``config`` as if this searcher had suggested it: pending,
        its architecture seen, so it is not suggested again and its result is learned from.

        ``raynas resume`` calls it for trials created after the searcher state it restores
        was saved (put back from the experiment's journal, see ``raynas.recovery``).
        """
        if trial_id in self.pending:
            return
        if self.domains and all(k in config for k in self.domains):
            config = {k: config[k] for k in self.domains}
        config = dict(config)
        self.pending[trial_id] = config
        self.seen.add(self.arch_key(config))

    def _config_of(self, result: Mapping[str, Any] | None) -> dict | None:
        """The search-space part of the config a result reports (None: not all of it)."""
        config = (result or {}).get("config")
        if not isinstance(config, Mapping) or not self.domains:
            return None
        if not all(k in config for k in self.domains):
            return None
        return {k: config[k] for k in self.domains}

    def _seed_from_proxy(self) -> None:
        """Score the proxy pool and queue its top-k after ``points_to_evaluate``."""
        pool = seeding.score_pool(
            self.space,
            self.proxy_seed,
            sample=self.random_config,
            key=self.arch_key,
            accept=self._feasible,
        )
        self.proxy_pool = pool
        queued = self.seen | {self.arch_key(p) for p in self.points_to_evaluate}
        for i in pool["top"]:
            if pool["archs"][i] not in queued:
                self.points_to_evaluate.append(dict(pool["configs"][i]))

    def proxy_seeds(self) -> list[tuple[dict, float]]:
        """The proxy seeds, best first: ``(config, score)``; empty before the pool is scored."""
        if not self.proxy_pool:
            return []
        pool = self.proxy_pool
        return [(dict(pool["configs"][i]), pool["scores"][i]) for i in pool["top"]]

    # ---------------------------------------------------------------- helpers for subclasses
    def score(self, result: Mapping[str, Any] | None) -> float | None:
        """The metric of ``result`` as "higher is better", or None if missing / not finite."""
        if not result or self._metric not in result:
            return None
        try:
            value = float(result[self._metric])
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value):
            return None
        return value if self._mode != "min" else -value

    def arch_key(self, config: Mapping[str, Any]) -> str:
        """Identity of the architecture of ``config``."""
        if self.space is not None:
            try:
                return self.space.to_str(self.space.decode(config))
            except ValueError:
                pass
        return json.dumps({k: config[k] for k in sorted(config)}, default=str)

    def _exhausted(self) -> bool:
        if self._feasible_exhausted:
            return True
        size = self.space.size() if self.space is not None else self._grid_size()
        return size is not None and len(self.seen) >= size

    def _grid_size(self) -> int | None:
        total = 1
        for domain in (self.domains or {}).values():
            if isinstance(domain, Categorical):
                total *= len(domain.categories)
            elif isinstance(domain, Integer):
                total *= int(domain.upper - domain.lower)
            else:
                return None  # continuous: never exhausted
        return total

    def sample_value(self, key: str) -> Any:
        """A uniform draw from domain ``key`` using the searcher's RNG."""
        return sample_domain(self.domains[key], self.rng)

    def random_config(self) -> dict:
        return {k: self.sample_value(k) for k in self.domains}

    def random_unseen(self, exhausted: bool) -> dict:
        """A uniform random feasible config of an architecture not seen yet (any feasible
        config once ``exhausted``).

        ``RANDOM_TRIES`` random configs are tried (more while none is feasible); then a finite
        grid of at most ``ENUMERATE_MAX`` configs is enumerated for what is left. When nothing
        unseen is feasible the space counts as exhausted from then on and a seen feasible
        config comes back.

        Raises:
            RuntimeError: ``FEASIBLE_TRIES`` random configs were all infeasible.
        """
        fallback = None
        for attempt in range(FEASIBLE_TRIES):
            config = self.random_config()
            if not self._feasible(config):
                continue
            if exhausted or self.arch_key(config) not in self.seen:
                return config
            fallback = config
            if attempt >= RANDOM_TRIES:
                break
        left, feasible = self.enumerate_unseen()
        if left:
            return left[int(self.rng.integers(len(left)))]
        if feasible is not None:
            # A finite grid with nothing unseen and feasible: duplicates from now on.
            self._feasible_exhausted = True
            fallback = fallback or feasible
        if fallback is None:
            raise RuntimeError(
                f"{type(self).__name__}: the constraint rejected {FEASIBLE_TRIES} random "
                f"configs; is it satisfiable?"
            )
        return fallback

    def enumerate_unseen(self) -> tuple[list[dict], dict | None]:
        """Every feasible config of an unseen architecture (one per architecture) and one
        feasible config (None if there is none); ``([], None)`` if the grid is larger than
        ``ENUMERATE_MAX`` or not finite."""
        values = []
        for key, domain in self.domains.items():
            if isinstance(domain, Categorical):
                values.append([(key, v) for v in domain.categories])
            elif isinstance(domain, Integer):
                first, last, step = integer_grid(domain)
                values.append([(key, v) for v in range(first, last + 1, step)])
            else:
                return [], None
        if math.prod(len(v) for v in values) > ENUMERATE_MAX:
            return [], None
        out, keys, feasible = [], set(), None
        for items in itertools.product(*values):
            config = dict(items)
            key = self.arch_key(config)
            if key in keys or not self._feasible(config):
                continue
            feasible = feasible or config
            if key not in self.seen:
                keys.add(key)
                out.append(config)
        return out, feasible

    # ------------------------------------------------------------------ to implement
    def _feasible(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` may be suggested (a constraint); proxy pools skip the others."""
        return True

    def _propose(self) -> dict:
        raise NotImplementedError

    def _observe(self, config: dict, score: float | None) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        return {
            "metric": self._metric,
            "mode": self._mode,
            "domains": self.domains,
            "rng": self.rng.bit_generator.state,
            "points_to_evaluate": self.points_to_evaluate,
            "pending": self.pending,
            "seen": sorted(self.seen),
            "history": self.history,
            "proxy_seed": None if self.proxy_seed is None else dataclasses.asdict(self.proxy_seed),
            "proxy_pool": self.proxy_pool,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._metric = state["metric"]
        self._mode = state["mode"]
        self.domains = state["domains"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self.points_to_evaluate = list(state["points_to_evaluate"])
        self.pending = dict(state["pending"])
        self.seen = set(state["seen"])
        self.history = list(state["history"])
        # ``.get``: states saved before proxy seeding existed have neither entry.
        options = state.get("proxy_seed")
        self.proxy_seed = None if options is None else seeding.ProxySeed(**options)
        self.proxy_pool = state.get("proxy_pool")

    def save(self, checkpoint_path: str) -> None:
        """Write ``get_state()`` atomically (temp file + ``os.replace``)."""
        folder = os.path.dirname(os.path.abspath(checkpoint_path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".searcher-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(self.get_state(), f)
            os.replace(tmp, checkpoint_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


def integer_grid(domain: Integer) -> tuple[int, int, int]:
    """``(first, last, step)``: the values Tune draws from an integer domain are ``first``,
    ``first + step``, ..., ``last``. ``randint`` excludes ``upper``; ``qrandint(lower, upper,
    q)`` draws the multiples of ``q`` in ``[lower, upper]``, ``upper`` excluded only when
    ``q == 1`` (Ray's ``Quantized.sample``). ValueError when there is no such value."""
    q = getattr(domain.sampler, "q", None)
    lower, upper = int(domain.lower), int(domain.upper)
    if not q or int(q) == 1:
        first, last, step = lower, upper - 1, 1
    else:
        step = int(q)
        first, last = -(-lower // step) * step, (upper // step) * step
    if last < first:
        raise ValueError(f"integer domain {domain!r} has no value to draw")
    return first, last, step


def is_log_domain(domain: Domain) -> bool:
    """Whether Tune draws ``domain`` log-uniformly (``loguniform``, ``lograndint`` and their
    quantised forms)."""
    return "LogUniform" in type(getattr(domain.sampler, "sampler", domain.sampler)).__name__


def sample_domain(domain: Domain, rng: np.random.Generator) -> Any:
    """Uniform draw from a Tune domain (log-uniform for loguniform, quantised when asked), from
    the same values Tune itself draws."""
    if isinstance(domain, Categorical):
        return domain.categories[int(rng.integers(len(domain.categories)))]
    if isinstance(domain, Integer):
        first, last, step = integer_grid(domain)
        if not is_log_domain(domain):
            return first + step * int(rng.integers((last - first) // step + 1))
        value = float(np.exp(rng.uniform(np.log(first), np.log(last + 1))))
        return int(min(max(math.floor(value / step) * step, first), last))
    if isinstance(domain, Float):
        q = getattr(domain.sampler, "q", None)  # Ray requires bounds divisible by q
        lower, upper = float(domain.lower), float(domain.upper)
        if is_log_domain(domain):
            value = float(np.exp(rng.uniform(np.log(lower), np.log(upper))))
        else:
            value = float(rng.uniform(lower, upper))
        return float(min(max(round(value / q) * q, lower), upper)) if q else value
    raise ValueError(f"unsupported Tune domain {domain!r}; use choice, randint or uniform")
