"""Local search with restarts (White et al. 2021, "Local search is state of the art for NAS
benchmarks") as an asynchronous Tune searcher.

``LocalSearcher`` climbs from architecture to better neighbouring architecture:

1. **Start.** ``n_init`` uniform random architectures (``points_to_evaluate`` first); the best
   of them that has completed is the *current* architecture.
2. **Climb** (first improvement). The current architecture's neighbours (every distinct
   architecture one decision away: ``space.neighbours`` for a raynas space, see
   ``raynas.searchers.moves``) are suggested in a random order. As soon as a completed trial
   scores above the current one, it becomes the current architecture and its neighbours are
   queued instead. Neighbours already evaluated or pending are never suggested again.
3. **Restart.** When every neighbour of the current architecture has completed without an
   improvement (a local optimum), the search starts again from ``n_init`` new random
   architectures (step 1); the best architecture found so far stays in the results.

**Asynchrony.** With several trials in flight, neighbours of the current architecture are
suggested while others run; a result that beats the current architecture moves the climb
whichever trial of the current start it came from (results of trials suggested before the
last restart are recorded, but do not move the climb). When the current architecture has no
unsuggested neighbour left but some of them are still running (the local optimum is not known
yet), the searcher does not wait: it suggests unseen neighbours of the next best
architectures evaluated since the last restart, and a random architecture if they have none.

**Large neighbourhoods.** With ``sample_neighbours=k`` each step queues a seeded random subset
of ``k`` neighbours (one random key changed each, see ``moves.sample_neighbours``) instead of
all of them; a step whose ``k`` neighbours bring no improvement counts as a local optimum. It is
needed when the neighbourhood cannot be enumerated: a continuous (``uniform``/``loguniform``)
key, or more than ``MAX_NEIGHBOURS`` configs one decision away.

Failed trials (error, missing or non-finite metric) count as evaluated and never become the
current architecture; a result of a trial the searcher does not hold is learned from when it
carries its config (see ``NASSearcher``). ``get_state``/``set_state`` hold the whole search
(current architecture, queue, start phase, RNG, pending trials), so a restored searcher
continues with the same suggestions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from raynas.registry import check_int
from raynas.searchers import moves
from raynas.searchers.base import NASSearcher

log = logging.getLogger(__name__)

#: Largest neighbourhood (configs one decision away, before duplicates) that is enumerated.
MAX_NEIGHBOURS = 5_000
#: Fewest evaluated architectures of this start whose neighbours a fallback looks through.
_FALLBACK_PARENTS = 8


class LocalSearcher(NASSearcher):
    """Local search with random restarts (see the module docstring).

    Args:
        space: a raynas ``SearchSpace`` (or None: the Tuner's flat ``param_space`` is used and
            configs are compared as they are).
        metric: metric to maximise/minimise; also settable by the Tuner.
        mode: "max" or "min"; also settable by the Tuner.
        seed: seed of the searcher's ``numpy.random.Generator``.
        points_to_evaluate: configs suggested first; they count towards the first start.
        n_init: random architectures of each start (>= 1); the climb begins at the best.
        sample_neighbours: None to queue every neighbour of the current architecture, or
            ``k`` >= 1 to queue a seeded random ``k`` of them per step (required when the
            neighbourhood cannot be enumerated).
        proxy_seed: None, or proxy-seeding options (``raynas.searchers.seeding``): the top-k
            of a zero-cost-scored random pool are suggested first and count towards the first
            start.

    Raises:
        ValueError: a bad option, or a space whose neighbourhood cannot be enumerated without
            ``sample_neighbours``.
    """

    def __init__(
        self,
        space: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: list[dict] | None = None,
        n_init: int = 10,
        sample_neighbours: int | None = None,
        proxy_seed: Mapping[str, Any] | None = None,
    ) -> None:
        check_int("n_init", n_init, 1)
        if sample_neighbours is not None:
            check_int("sample_neighbours", sample_neighbours, 1)
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            proxy_seed=proxy_seed,
        )
        self.n_init = int(n_init)
        self.sample_neighbours = None if sample_neighbours is None else int(sample_neighbours)
        if self.domains is not None:
            self._check_enumerable()
        # the climb: [config, arch key, score] of the current architecture, or None
        self.current: list | None = None
        self.queue: list[dict] = []  # unsuggested neighbours of the current architecture
        self.from_current: set[str] = set()  # trial ids of pending neighbours of the current
        self.init_left = self.n_init  # random configs still to suggest for this start
        self.start = 0  # restarts so far
        self.start_results: list[list] = []  # [config, key, score] completed since the start
        self.trial_start: dict[str, int] = {}  # pending trial id -> start it was suggested in
        self._moves: list | None = None
        self._last_from_current = False
        self._completing_start: int | None = None

    # ------------------------------------------------------------------ Tune interface
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        had_domains = self.domains is not None
        ok = super().set_search_properties(metric, mode, config, **spec)
        if ok and not had_domains and self.domains is not None:
            self._check_enumerable()
        return ok

    def _check_enumerable(self) -> None:
        if self.sample_neighbours is not None:
            return
        bound = moves.neighbourhood_bound(self.domains)
        if bound is None:
            continuous = next(m[0] for m in moves.key_moves(self.domains) if m[1] == "float")
            raise ValueError(
                f"local search cannot enumerate the neighbours of continuous key "
                f"{continuous!r}; set sample_neighbours to evaluate a random subset per step"
            )
        if bound > MAX_NEIGHBOURS:
            name = getattr(self.space, "name", None) or "the Tune space"
            raise ValueError(
                f"local search cannot enumerate the neighbours in space {name!r}: up to "
                f"{bound} configs one decision away (more than {MAX_NEIGHBOURS}); set "
                f"sample_neighbours to evaluate a random subset per step"
            )

    def suggest(self, trial_id: str) -> dict | None:
        self._last_from_current = False
        config = super().suggest(trial_id)
        if config is not None:
            self.trial_start[trial_id] = self.start
            if self._last_from_current:
                self.from_current.add(trial_id)
        return config

    # ------------------------------------------------------------------ proposing
    def _propose(self) -> dict:
        self._last_from_current = False
        exhausted = self._exhausted()
        if self.init_left > 0 or self.current is None:
            self.init_left = max(self.init_left - 1, 0)
            return self.random_unseen(exhausted)
        while self.queue:
            config = self.queue.pop()
            if exhausted or self.arch_key(config) not in self.seen:
                self._last_from_current = True
                return config
        if not self.from_current:
            self._restart()
            self.init_left -= 1
            return self.random_unseen(exhausted)
        # The current neighbourhood is in flight: explore around the next best instead.
        config = self._fallback_neighbour()
        return config if config is not None else self.random_unseen(exhausted)

    def _restart(self) -> None:
        log.info(
            "%s: local optimum %s (score %s) after %d results; restart %d",
            type(self).__name__,
            self.current[1],
            self.current[2],
            len(self.history),
            self.start + 1,
        )
        self.start += 1
        self.current = None
        self.queue = []
        self.init_left = self.n_init
        self.start_results = []

    def _fallback_neighbour(self) -> dict | None:
        """An unseen neighbour of the best architectures of this start after the current."""
        ranked = sorted(self.start_results, key=lambda m: -m[2])
        for member in ranked[:_FALLBACK_PARENTS]:
            if member[1] == self.current[1]:
                continue
            for config in self._neighbours(member[0]):
                if self.arch_key(config) not in self.seen:
                    return config
        return None

    def _neighbours(self, config: Mapping[str, Any]) -> list[dict]:
        """Neighbours of ``config`` in a random order (a random subset with
        ``sample_neighbours``)."""
        if self.sample_neighbours is not None:
            if self._moves is None:
                self._moves = moves.key_moves(self.domains)
            return moves.sample_neighbours(
                config,
                self._moves,
                self.sample_neighbours,
                self.rng,
                key=self.arch_key,
                exclude=self.seen,
                resample=self.sample_value,
            )
        found = moves.neighbours(config, self.domains, self.space)
        return [found[i] for i in self.rng.permutation(len(found))]

    # ------------------------------------------------------------------ learning
    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.from_current.discard(trial_id)
        self._completing_start = self.trial_start.pop(trial_id, self.start)
        super().on_trial_complete(trial_id, result, error)

    def _observe(self, config: dict, score: float | None) -> None:
        if score is None or self._completing_start != self.start:
            return  # failed, or suggested before the last restart: the climb ignores it
        member = [config, self.arch_key(config), score]
        self.start_results.append(member)
        if self.current is None or score > self.current[2]:
            self.current = member
            # ``pop`` takes from the end: reversed, the queue is suggested in shuffled order
            self.queue = list(reversed(self._neighbours(config)))
            self.from_current = set()

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["local"] = {
            "current": self.current,
            "queue": self.queue,
            "from_current": sorted(self.from_current),
            "trial_start": self.trial_start,
            "init_left": self.init_left,
            "start": self.start,
            "start_results": self.start_results,
            "options": {"n_init": self.n_init, "sample_neighbours": self.sample_neighbours},
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        local = state["local"]
        self.current = local["current"]
        self.queue = list(local["queue"])
        self.from_current = set(local["from_current"])
        self.trial_start = dict(local["trial_start"])
        self.init_left = local["init_left"]
        self.start = local["start"]
        self.start_results = [list(m) for m in local["start_results"]]
        for name, value in local["options"].items():
            setattr(self, name, value)
        self._moves = None


#: Old name of the ``local`` registry entry (the class takes the same options).
make_local = LocalSearcher
