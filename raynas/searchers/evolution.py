"""Regularized (aging) evolution, Real et al. 2019, as an asynchronous Tune searcher.

``EvolutionSearcher`` keeps a population of the last ``population_size`` completed trials
(configs with their scores and ages) and proposes children:

1. **Initial population.** While the population plus the trials in flight (pending ones
   count, so a concurrent run does not oversample) are fewer than ``population_size``, or
   nothing has completed yet, it proposes uniform random configs (``points_to_evaluate``
   first).
2. **Tournament selection.** ``sample_size`` members are drawn without replacement; the best
   wins. With several objectives "best" is NSGA-II's order: lowest non-dominated rank, then
   largest crowding distance, both computed over the whole population; members equal in that
   order (e.g. the two ends of the front, both at infinite crowding distance) are drawn at
   random, and the default tournament is NSGA-II's binary one (``sample_size`` 2): with the
   whole population in every tournament, the winner would always be the same end of the front
   and the search would only extend that end.
3. **Crossover** (probability ``p_crossover``): a second parent is picked by another
   tournament among the other members (crossing a parent with itself changes nothing); each
   key comes from either parent with probability 1/2. The child is then mutated with the
   per-key probability only (no change is forced: it usually differs from both parents).
4. **Mutation**: each mutable key changes with probability ``p_mutation`` (None: 1 / number
   of mutable keys), and at least one key always changes; with ``p_mutation=0`` exactly one
   key changes, so a child is a neighbour of its parent (a local move,
   ``raynas.searchers.moves``). Categorical keys are *resampled*
   among the other values; numeric keys are *perturbed*: a Gaussian step of sd
   ``moves.NUMERIC_STEP`` x the key's range, in log scale for loguniform keys, reflected at the
   bounds and quantised when the domain is; an integer moves by at least one step.
5. **Novelty.** With a raynas ``SearchSpace`` the child must be a different architecture
   (``arch_key``: inactive keys, e.g. a mobilenetv3 slot beyond the stage depth, do not
   count). A child already evaluated or pending is mutated again: a few more tries from the
   parent, then a walk away from it (the neighbourhood of a good parent is often used up), then
   random configs, then, for a small finite grid, an enumeration of what is left. So
   duplicates are only suggested once the space (or its feasible part) is exhausted.
6. **Replacement.** A completed trial joins the population; beyond ``population_size`` the
   oldest member leaves (``replacement="oldest"``, regularized evolution) or the worst one
   (``"worst"``, ties: the oldest). Errored trials and trials without a finite metric never
   join.

Constraints are checked on every proposed config before it is suggested (``constraint``):
a callable ``config -> bool`` or bounds on quantities the space computes from a config without
training, e.g. ``{"params_m": {"max": 1.5}}`` for nb201 or ``{"latency_ms": {"max": 5}}`` for
mobilenetv3 (``raynas.searchers.constraints``).

``points_to_evaluate`` must satisfy the constraint (checked at construction, which builds a
latency table right away).

Proxy seeding (``proxy_seed``, see ``raynas.searchers.seeding``): before the first suggestion
a pool of random feasible architectures is scored by a zero-cost proxy; the ``top_k`` best are
suggested first (after ``points_to_evaluate``) and, once evaluated, are members of the initial
population like the random ones (the population is still filled up to ``population_size``).

Several objectives (``raynas.searchers.objectives``): pass ``metric`` and ``mode`` as lists
(Tune's convention, e.g. ``metric=["val_acc", "params_m"], mode=["max", "min"]``), or, from an
experiment file where ``metric``/``mode`` are the experiment's own single metric, the searcher
option ``objectives: {val_acc: max, params_m: min}`` whose first entry must be the experiment's
``metric``/``mode`` (the one Tune's ``TuneConfig`` sorts results by). ``pareto_front()``
returns the non-dominated completed trials. Any reported metric can be an objective, e.g.
``{val_acc: max, latency_ms: min}`` with the train trainable's ``latency: true`` (measured
latency; combine with a ``latency_ms`` constraint to search only below a predicted bound).

Defaults: ``population_size`` 20, ``sample_size`` = ``population_size`` (the tournament
picks the best of the population; 2 with several objectives), ``p_mutation`` 1 / number of
mutable keys, no crossover, the oldest member out. ``benchmarks/nb201_searchers.py`` compares
them with the peers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.pareto import nondominated_ranks  # noqa: F401  (old import path)
from raynas.registry import check_int
from raynas.searchers import moves
from raynas.searchers import objectives as mo
from raynas.searchers.base import ENUMERATE_MAX, NASSearcher
from raynas.searchers.constraints import Constraint, SpaceConstraint, make_constraint

__all__ = ["REPLACEMENTS", "EvolutionSearcher", "SpaceConstraint", "make_evolution"]

log = logging.getLogger(__name__)

REPLACEMENTS = ("oldest", "worst")
#: Default tournament size with several objectives (NSGA-II's binary tournament).
MO_SAMPLE_SIZE = 2
#: Children tried from one parent before walking away from it / before random configs.
_TRIES_PER_STEP = 4
_WALK_TRIES = 32
#: Most entries of the arch-key cache.
_KEY_CACHE_MAX = ENUMERATE_MAX


# ------------------------------------------------------------------------------- searcher
class EvolutionSearcher(NASSearcher):
    """Regularized (aging) evolution with tournament selection (see the module docstring).

    Args:
        space: a raynas ``SearchSpace`` (or None: the Tuner's flat ``param_space`` is used and
            configs are compared as they are).
        metric: metric to maximise/minimise, or a list of metrics (multi-objective).
        mode: "max"/"min", or a list of them matching ``metric``.
        seed: seed of the searcher's ``numpy.random.Generator``.
        points_to_evaluate: configs suggested first; they count towards the initial
            population.
        population_size: members kept (P); also the number of random initial configs.
            How the defaults (P=20, S=P, p_mutation=1/keys) were picked: benchmarks/README.md
            (issue 3; issue 29b measured P=30 with p_mutation=0 and kept these).
        sample_size: tournament size (S), 1 <= S <= P; None = P (greedy: the best of the last P
            results is the parent, the tuned default) with one objective, 2 (NSGA-II's binary
            tournament) with several; S = 1 is random parent selection.
        p_crossover: probability that a child comes from uniform crossover of two tournament
            winners (then mutated with ``p_mutation`` per key, nothing forced).
        p_mutation: per-key mutation probability (at least one key always changes); 0 =
            exactly one key per child; None = 1 / number of mutable keys.
        replacement: "oldest" (regularized evolution) or "worst".
        constraint: None, a callable ``config -> bool``, or bounds on quantities of the space,
            e.g. ``{"params_m": {"max": 1.5}}`` or ``{"latency_ms": {"max": 5}}`` (see
            ``raynas.searchers.constraints``).
        objectives: several objectives from an experiment file, ``{metric: mode}`` in order,
            e.g. ``{val_acc: max, params_m: min}``; the first must be ``metric`` and ``mode``
            (when given). Equivalent to list-valued metric/mode.
        proxy_seed: None, or proxy-seeding options (``raynas.searchers.seeding``): the
            ``top_k`` best of a proxy-scored random pool of feasible architectures are
            suggested first (after ``points_to_evaluate``) and count towards the initial
            population.
    """

    def __init__(
        self,
        space: Any = None,
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        seed: int | None = None,
        points_to_evaluate: list[dict] | None = None,
        population_size: int = 20,
        sample_size: int | None = None,
        p_crossover: float = 0.0,
        p_mutation: float | None = None,
        replacement: str = "oldest",
        constraint: Constraint = None,
        objectives: Mapping[str, str] | None = None,
        proxy_seed: Mapping[str, Any] | None = None,
    ) -> None:
        if objectives is not None:
            metric, mode = mo.from_mapping(objectives, metric, mode)
        check_int("population_size", population_size, 2)
        #: True when the tournament size is the default (P, or 2 with several objectives,
        #: which Tune may only announce later through ``set_search_properties``)
        self.sample_size_default = sample_size is None
        if sample_size is None:
            sample_size = population_size
        check_int("sample_size", sample_size, 1)
        if sample_size > population_size:
            raise ValueError(
                f"sample_size must be <= population_size ({population_size}), got {sample_size}"
            )
        _check_probability("p_crossover", p_crossover)
        if p_mutation is not None:
            _check_probability("p_mutation", p_mutation)
        if replacement not in REPLACEMENTS:
            raise ValueError(
                f"replacement must be one of: {', '.join(REPLACEMENTS)}, got {replacement!r}"
            )
        multi = not isinstance(metric, str | None) or not isinstance(mode, str | None)
        if multi:
            metrics, modes = mo.check_objectives(metric, mode)
            if len(metrics) == 1:
                metric, mode, multi = metrics[0], modes[0], False
        super().__init__(
            space,
            metric=None if multi else metric,
            mode=None if multi else mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            proxy_seed=proxy_seed,
        )
        if multi:
            self._metric, self._mode = metrics, modes
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.p_crossover = float(p_crossover)
        self.p_mutation = None if p_mutation is None else float(p_mutation)
        self.replacement = replacement
        self.constraint = make_constraint(space, constraint, self.points_to_evaluate)
        # population members: [birth, config, arch_key, score]; birth orders them by age
        self.population: list[list] = []
        self.births = 0
        self._reset_derived()

    # ------------------------------------------------------------------ Tune interface
    @property
    def multi_objective(self) -> bool:
        return isinstance(self._metric, list)

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        if not isinstance(metric, str | None) or not isinstance(mode, str | None):
            if self._metric is None:
                try:
                    self._metric, self._mode = mo.check_objectives(metric, mode)
                except ValueError:
                    return False
            metric = mode = None
        elif self.multi_objective and metric is not None and metric != self._metric[0]:
            log.warning(
                "%s optimises %s; the Tuner's metric %r should be the first of them",
                type(self).__name__,
                self._metric,
                metric,
            )
        ok = super().set_search_properties(metric, mode, config, **spec)
        self._reset_derived()
        return ok

    def score(self, result: Mapping[str, Any] | None) -> Any:
        """Single objective: the metric as "higher is better" (None if missing / not finite).
        Several objectives: the tuple of them, each "higher is better" (None if any is
        missing / not finite)."""
        if not self.multi_objective:
            return super().score(result)
        return mo.score(result, self._metric, self._mode)

    def arch_key(self, config: Mapping[str, Any]) -> str:
        if self.space is None:
            return super().arch_key(config)
        try:
            cache_key = tuple(config[k] for k in self.domains)
            hash(cache_key)
        except (KeyError, TypeError):
            return super().arch_key(config)
        key = self._key_cache.get(cache_key)
        if key is None:
            if len(self._key_cache) >= _KEY_CACHE_MAX:
                self._key_cache.clear()
            key = self._key_cache[cache_key] = super().arch_key(config)
        return key

    def _exhausted(self) -> bool:
        if self._feasible_exhausted:
            return True
        if self._size is False:  # not computed yet
            self._size = self.space.size() if self.space is not None else self._grid_size()
        return self._size is not None and len(self.seen) >= self._size

    # ------------------------------------------------------------------ proposing
    def _propose(self) -> dict:
        self._compile()
        exhausted = self._exhausted()
        filling = len(self.population) + len(self.pending) < self.population_size
        if not self.population or filling:
            return self.random_unseen(exhausted)
        child = self._child(exhausted)
        return child if child is not None else self.random_unseen(exhausted)

    def _feasible(self, config: Mapping[str, Any]) -> bool:
        return self.constraint is None or bool(self.constraint(config))

    def _acceptable(self, config: dict, exhausted: bool) -> bool:
        if self.constraint is not None and not self.constraint(config):
            return False
        return exhausted or self.arch_key(config) not in self.seen

    def _child(self, exhausted: bool) -> dict | None:
        first = self._tournament()
        parent = self.population[first]
        if self.p_crossover and len(self.population) > 1 and self.rng.random() < self.p_crossover:
            mate = self.population[self._tournament(exclude=first)]
            child = self._mutate(self._crossover(parent[1], mate[1]), force=False)
            if self._acceptable(child, exhausted):
                return child
        start, start_key = parent[1], parent[2]
        for attempt in range(_WALK_TRIES):
            child = self._mutate(start, force=True)
            key = self.arch_key(child)
            feasible = self.constraint is None or self.constraint(child)
            if feasible and key != start_key and (exhausted or key not in self.seen):
                return child
            if feasible and attempt % _TRIES_PER_STEP == _TRIES_PER_STEP - 1:
                start, start_key = child, key  # neighbourhood used up: walk further away
        return None

    def _tournament(self, exclude: int | None = None) -> int:
        """Index in the population of the winner of a tournament of ``sample_size`` members
        (``exclude``: a member that may not take part, the first parent of a crossover)."""
        pool = [i for i in range(len(self.population)) if i != exclude]
        n = len(pool)
        size = self.sample_size
        if self.multi_objective and self.sample_size_default:
            size = MO_SAMPLE_SIZE
        size = min(size, n)
        if size < n:
            picks = [pool[i] for i in self.rng.choice(n, size=size, replace=False)]
        else:
            picks = pool
        if self.multi_objective:
            order = self._mo_order()
            best = min(order[i] for i in picks)
            winners = [i for i in picks if order[i] == best]
            if len(winners) == 1:
                return winners[0]
            return winners[int(self.rng.integers(len(winners)))]
        return max(picks, key=lambda i: self.population[i][3])

    def _mo_order(self) -> list[tuple[int, float]]:
        """Per population member: (non-dominated rank, -crowding distance); smaller = better."""
        if self._order_cache is None or self._order_cache[0] != self._pop_version:
            order = mo.nsga_order([m[3] for m in self.population])
            self._order_cache = (self._pop_version, order)
        return self._order_cache[1]

    def _crossover(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict:
        take_b = self.rng.random(len(self.domains)) < 0.5
        return {k: (b[k] if tb else a[k]) for k, tb in zip(self.domains, take_b, strict=True)}

    def _mutate(self, config: Mapping[str, Any], force: bool) -> dict:
        child = dict(config)
        specs = self._specs
        if not specs:
            return child
        p = self.p_mutation if self.p_mutation is not None else 1.0 / len(specs)
        mask = self.rng.random(len(specs)) < p
        if force and not mask.any():
            mask[int(self.rng.integers(len(specs)))] = True
        for spec, change in zip(specs, mask, strict=True):
            if change:
                child[spec[0]] = moves.new_value(spec, child[spec[0]], self.rng, self.sample_value)
        return child

    # ------------------------------------------------------------------ learning
    def _observe(self, config: dict, score: Any) -> None:
        if score is None:
            return  # failed trials never join the population
        self.population.append([self.births, config, self.arch_key(config), score])
        self.births += 1
        self._pop_version += 1
        if len(self.population) > self.population_size:
            self.population.pop(self._victim())
            self._pop_version += 1

    def _victim(self) -> int:
        """Index of the member to remove (the list is in age order: index 0 is the oldest)."""
        if self.replacement == "oldest":
            return 0
        if self.multi_objective:
            order = self._mo_order()
            return max(range(len(order)), key=lambda i: (order[i], -i))
        return min(range(len(self.population)), key=lambda i: (self.population[i][3], i))

    def pareto_front(self) -> list[tuple[dict, dict[str, float]]]:
        """Non-dominated completed trials: ``(config, {metric: value})`` in the metrics' own
        units, sorted best first by the first metric; one entry per architecture."""
        if self.multi_objective:
            return mo.pareto_front(self.history, self._metric, self._mode, self.arch_key)
        history = [(c, None if v is None else (v,)) for c, v in self.history]
        return mo.pareto_front(history, [self._metric], [self._mode], self.arch_key)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["evolution"] = {
            "population": [list(m) for m in self.population],
            "births": self.births,
            "options": {
                "population_size": self.population_size,
                "sample_size": self.sample_size,
                "sample_size_default": self.sample_size_default,
                "p_crossover": self.p_crossover,
                "p_mutation": self.p_mutation,
                "replacement": self.replacement,
            },
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        evo = state["evolution"]
        self.population = [list(m) for m in evo["population"]]
        self.births = evo["births"]
        for name, value in evo["options"].items():
            setattr(self, name, value)
        self._reset_derived()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_key_cache"] = {}  # derived; can be large
        return state

    # ------------------------------------------------------------------ internals
    def _reset_derived(self) -> None:
        self._key_cache: dict[tuple, str] = {}
        self._specs: list[tuple] | None = None
        self._size: Any = False
        self._feasible_exhausted = False
        self._order_cache: tuple[int, list] | None = None
        self._pop_version = 0

    def _compile(self) -> None:
        """Move recipes of the mutable keys (``moves.key_moves``)."""
        if self._specs is None:
            self._specs = moves.key_moves(self.domains)


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


#: Old name of the ``evolution`` registry entry (the class itself takes the same options).
make_evolution = EvolutionSearcher
