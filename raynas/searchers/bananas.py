"""BANANAS (White et al. 2021): predictor-guided search as an asynchronous Tune searcher.

``BananasSearcher`` fits an ensemble of small neural predictors to the results so far and
suggests the candidate architecture with the highest acquisition value:

1. **Start.** ``n_init`` uniform random architectures (``points_to_evaluate`` first).
2. **Predictor.** An ``MLPEnsemble`` (``raynas.searchers.ensemble``) of ``ensemble_size``
   MLPs reads architectures through an encoding (``raynas.searchers.encodings``: the path or
   adjacency encoding of a cell, the one-hot of the keys for other spaces), optionally with
   zero-cost proxy scores appended (``zero_cost``), and is trained on every successful result
   so far. It is refitted every ``retrain_every`` results: the first fit trains ``epochs``
   steps from a random initialisation, later ones continue from the last fit's weights for
   ``refit_epochs`` steps (``refit_epochs=None``: every fit from scratch, as in BANANAS);
   suggestions in between use the last fit. The targets are the results turned into "higher is
   better" (``targets: value``) or, by default, their normal scores (``targets: rank``: the
   standard normal quantile of each result's rank among the results so far, ties sharing
   their mean rank), so that a few very poor architectures (NB201 cells that learn nothing sit
   38-75 points below the best) do not dominate the squared error and the predictor orders
   the good ones; only the order of the predictions matters for the acquisition.
3. **Candidates.** The unseen neighbours (architectures one decision away, see
   ``raynas.searchers.moves``) of the ``num_parents`` best architectures of the current
   *region* (see 5): all of them when the neighbourhood can be enumerated, else a seeded
   random sample; at most ``num_candidates`` of them (a random subset when there are more),
   plus ``random_candidates`` uniform random unseen architectures.
4. **Acquisition.** ``its`` (independent Thompson sampling, BANANAS' choice): for every
   candidate one draw from a normal with the ensemble's mean and standard deviation; ``ucb``:
   mean + ``ucb_beta`` x standard deviation. The best candidate is suggested. Pending and
   evaluated architectures are never candidates, so with several trials in flight the next
   suggestion is the next best candidate (under ``its``, of a fresh draw).
5. **Regions** (restarts). A new region begins when the unseen neighbours of the region's
   parents are used up and none of the region's trials is in flight (a local optimum, where
   local search restarts), and, with ``patience`` set, when the region's best result has not
   improved for ``patience`` results. A new region starts with ``n_init`` uniform random
   architectures; candidates are then neighbours of the new region's best, as in step 3
   (results of trials suggested before the region began are training data only; the
   predictor keeps learning from every result). While the region's unseen neighbours are all
   in flight, the candidates are ``num_candidates`` random unseen architectures instead.
6. **Incumbent turns** (``incumbent_every``). Every ``incumbent_every``-th predictor-guided
   suggestion takes its candidates from the unseen neighbours of the best architecture found
   so far in any region (the incumbent), instead of the region's. A region that ends by
   ``patience`` can leave its best architecture with unseen, better neighbours; these turns
   keep climbing from the incumbent while later regions explore, so the incumbent ends a
   verified local optimum (all its neighbours evaluated) as local search's does. Once its
   neighbours are all evaluated or in flight, a turn takes the incumbent's unseen architectures
   two moves away (``incumbent_radius: 2``, when neighbourhoods can be enumerated), else it
   falls back to step 3.

**Defaults**: 5 uniform random architectures per region (``n_init``), 5 MLPs of 2 x 32
units, 100 Adam steps for the first fit and 20 for each refit (from the last weights), refitted
after every result (``retrain_every=1``, so each suggestion after a new result uses a predictor
that has seen it), ``its`` over the neighbours of the single best architecture of the region
(``num_parents=1``, no random candidates), a new region at a local optimum or after 10 results
without improvement (``patience``), rank targets (``targets: rank``), every third
predictor-guided suggestion an incumbent turn reaching up to two moves (``incumbent_every: 3``,
``incumbent_radius: 2``). How they were chosen: benchmarks/README.md, issue 29.

Failed trials (error, missing or non-finite metric) are never suggested again and are left
out of the training data. ``get_state``/``set_state`` hold everything (the predictor's weights,
the RNG and torch generator states, the regions, the pending trials and the proxy scores), so a
restored searcher continues with the same suggestions.

Zero-cost proxies (``zero_cost``, a mapping): ``{proxies: [naswot, ...], dataset: cifar10,
root: null, batch_size: 64, build: {}, seed: 0, device: cpu, threads: null}``. Every
architecture that is trained on or scored as a candidate is built untrained and scored once by
each proxy (``raynas.searchers.seeding.score_config``, as proxy seeding does; cached with the
state); the standardised scores (signed log for scale) are extra inputs of the predictor.
Scoring costs a forward pass or two per architecture and proxy (benchmarks/results/zero_cost.txt),
so with proxies a suggestion costs that much per new candidate.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats

from raynas.registry import check_int, options_from
from raynas.searchers import encodings, moves, seeding
from raynas.searchers.base import NASSearcher
from raynas.searchers.ensemble import MLPEnsemble

log = logging.getLogger(__name__)

ACQUISITIONS = ("its", "ucb")
TARGETS = ("value", "rank")
#: Moves from the incumbent that incumbent turns may reach (see ``incumbent_radius``).
INCUMBENT_RADII = (1, 2)
#: Largest neighbourhood (configs one decision away, before duplicates) that is enumerated.
MAX_NEIGHBOURS = 5_000
#: Most entries of the per-architecture caches (encodings, neighbourhoods).
_CACHE_MAX = 50_000


@dataclasses.dataclass(frozen=True)
class ZeroCost:
    """Validated ``zero_cost`` option (see the module docstring)."""

    proxies: tuple[str, ...] = ("naswot",)
    dataset: str = "cifar10"
    root: str | None = None
    batch_size: int = 64
    build: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        from raynas.estimators import zero_cost

        proxies = self.proxies
        if isinstance(proxies, str) or not isinstance(proxies, Sequence) or not proxies:
            raise ValueError(f"zero_cost.proxies must be a non-empty list, got {proxies!r}")
        for name in proxies:
            zero_cost.check_name(name)
        object.__setattr__(self, "proxies", tuple(proxies))
        for proxy in self.proxies:  # validates the shared options once per proxy name
            self.seed_options(proxy)

    @classmethod
    def parse(cls, spec: Any) -> ZeroCost | None:
        """None -> None; a mapping -> validated options (unknown keys named)."""
        return options_from(cls, spec, "zero_cost")

    def seed_options(self, proxy: str) -> seeding.ProxySeed:
        """The ``seeding.ProxySeed`` options that score with ``proxy``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del fields["proxies"]
        try:
            return seeding.ProxySeed(proxy=proxy, pool=1, top_k=1, **fields)
        except ValueError as err:
            raise ValueError(str(err).replace("proxy_seed.", "zero_cost.")) from None


class BananasSearcher(NASSearcher):
    """Predictor-guided search: BANANAS with optional regions (see the module docstring).

    Args:
        space: a raynas ``SearchSpace`` (or None: the Tuner's flat ``param_space`` is used,
            configs are compared as they are and encoded ``onehot``).
        metric: metric to maximise/minimise; also settable by the Tuner.
        mode: "max" or "min"; also settable by the Tuner.
        seed: seed of the searcher's randomness (numpy RNG, and the torch generator of the
            predictor, seeded from it).
        points_to_evaluate: configs suggested first; they count towards ``n_init``.
        n_init: random architectures before the predictor is used (>= 1).
        encoding: ``auto``, ``onehot``, ``adjacency`` or ``path`` (``encodings.NAMES``).
        ensemble_size: MLPs in the ensemble (>= 1).
        hidden_size: units per hidden layer of each MLP.
        num_layers: hidden layers of each MLP.
        epochs: full-batch Adam steps per fit.
        lr: Adam's learning rate.
        retrain_every: results between two fits of the predictor (>= 1).
        refit_epochs: Adam steps of a refit that continues from the last fit's weights
            (>= 1), or None to train every fit from scratch for ``epochs`` steps.
        acquisition: ``its`` or ``ucb``.
        ucb_beta: weight of the standard deviation in ``ucb`` (>= 0).
        num_parents: best architectures whose neighbours are candidates (>= 1).
        num_candidates: most neighbour candidates per suggestion, and the random pool a new
            region starts from (>= 1).
        random_candidates: uniform random candidates added per suggestion (>= 0).
        patience: results without improvement of the region's best before a new region
            begins (>= 1), or None (new regions only at used-up neighbourhoods).
        incumbent_every: every how many predictor-guided suggestions one is an unseen
            neighbour of the best architecture so far (>= 1), or None (never).
        incumbent_radius: 1, or 2 (once the incumbent's neighbours are used up, incumbent
            turns take its unseen architectures two moves away).
        targets: ``rank`` (train on the normal scores of the results' ranks) or ``value``
            (on the results themselves, standardised).
        zero_cost: None, or zero-cost proxy options (see the module docstring).
        proxy_seed: None, or proxy-seeding options (``raynas.searchers.seeding``).

    Raises:
        ValueError: a bad option (unknown encoding or acquisition, a count below its minimum).
    """

    def __init__(
        self,
        space: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: list[dict] | None = None,
        n_init: int = 5,
        encoding: str = "auto",
        ensemble_size: int = 5,
        hidden_size: int = 32,
        num_layers: int = 2,
        epochs: int = 100,
        lr: float = 0.01,
        retrain_every: int = 1,
        refit_epochs: int | None = 20,
        acquisition: str = "its",
        ucb_beta: float = 1.0,
        num_parents: int = 1,
        num_candidates: int = 100,
        random_candidates: int = 0,
        patience: int | None = 10,
        incumbent_every: int | None = 3,
        incumbent_radius: int = 2,
        targets: str = "rank",
        zero_cost: Mapping[str, Any] | None = None,
        proxy_seed: Mapping[str, Any] | None = None,
    ) -> None:
        check_int("n_init", n_init, 1)
        check_int("retrain_every", retrain_every, 1)
        if refit_epochs is not None:
            check_int("refit_epochs", refit_epochs, 1)
        check_int("num_parents", num_parents, 1)
        check_int("num_candidates", num_candidates, 1)
        check_int("random_candidates", random_candidates, 0)
        if patience is not None:
            check_int("patience", patience, 1)
        if incumbent_every is not None:
            check_int("incumbent_every", incumbent_every, 1)
        if incumbent_radius not in INCUMBENT_RADII or isinstance(incumbent_radius, bool):
            raise ValueError(f"incumbent_radius must be 1 or 2, got {incumbent_radius!r}")
        if targets not in TARGETS:
            raise ValueError(f"unknown targets {targets!r}; choose one of: {', '.join(TARGETS)}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"unknown acquisition {acquisition!r}; choose one of: {', '.join(ACQUISITIONS)}"
            )
        if isinstance(ucb_beta, bool) or not isinstance(ucb_beta, int | float) or ucb_beta < 0:
            raise ValueError(f"ucb_beta must be a number >= 0, got {ucb_beta!r}")
        encodings.resolve(encoding, space)  # unknown or unsupported: ValueError now
        try:
            self.predictor = MLPEnsemble(
                members=ensemble_size, hidden=hidden_size, layers=num_layers, epochs=epochs, lr=lr
            )
        except ValueError as err:
            raise ValueError(_rename(str(err))) from None
        self.zero_cost = ZeroCost.parse(zero_cost)
        if self.zero_cost is not None and space is None:
            raise ValueError("zero_cost needs a raynas search space (space=...) to build networks")
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            proxy_seed=proxy_seed,
        )
        self.n_init = int(n_init)
        self.encoding = encoding
        self.retrain_every = int(retrain_every)
        self.refit_epochs = None if refit_epochs is None else int(refit_epochs)
        self.acquisition = acquisition
        self.ucb_beta = float(ucb_beta)
        self.num_parents = int(num_parents)
        self.num_candidates = int(num_candidates)
        self.random_candidates = int(random_candidates)
        self.patience = None if patience is None else int(patience)
        self.incumbent_every = None if incumbent_every is None else int(incumbent_every)
        self.incumbent_radius = int(incumbent_radius)
        self.targets = targets
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self.fitted_on = 0  # successful results the predictor was last fitted on
        self.region = 0  # regions begun after the first
        self.region_results: list[list] = []  # [config, key, score] of this region
        self.since_best = 0  # results of this region since its best improved
        self.region_left = self.n_init  # random suggestions still to make in this region
        self.guided = 0  # predictor-guided suggestions made (the incumbent's turns count them)
        self.trial_region: dict[str, int] = {}  # pending trial id -> region suggested in
        self.proxy_scores: dict[str, list[float]] = {}  # arch key -> zero-cost scores
        self._reset_derived()

    def _reset_derived(self) -> None:
        self._encoder: encodings.Encoder | None = None
        self._rows: dict[str, np.ndarray] = {}  # arch key -> encoding
        self._neighbours: dict[str, list[tuple[dict, str]]] = {}  # arch key -> neighbours
        self._enumerable: bool | None = None
        self._moves: list | None = None
        self._batch: tuple | None = None  # zero-cost data batch
        self._completing_region: int | None = None

    # ------------------------------------------------------------------ Tune interface
    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if config is not None:
            self.trial_region[trial_id] = self.region
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._completing_region = self.trial_region.pop(trial_id, self.region)
        super().on_trial_complete(trial_id, result, error)

    # ------------------------------------------------------------------ proposing
    def _propose(self) -> dict:
        exhausted = self._exhausted()
        if self.region_left > 0 or not self.region_results:
            # a region starts with random architectures (the first region: ``n_init``)
            self.region_left = max(self.region_left - 1, 0)
            return self.random_unseen(exhausted)
        scored = [(c, s) for c, s in self.history if s is not None]
        if not scored:
            return self.random_unseen(exhausted)
        if not self.predictor.fitted or len(scored) - self.fitted_on >= self.retrain_every:
            self._fit(scored)
        self.guided += 1
        candidates = []
        if self.incumbent_every is not None and self.guided % self.incumbent_every == 0:
            candidates = self._incumbent_candidates(scored)
        if not candidates:
            candidates = self._candidates()
        if not candidates and self.region_results:
            if any(r == self.region for r in self.trial_region.values()):
                # the region's neighbourhoods are in flight: look elsewhere meanwhile
                candidates = self._random_candidates(self.num_candidates, set())
            else:
                self._new_region("its neighbourhoods are used up")
                return self._propose()
        if not candidates:
            return self.random_unseen(exhausted)
        keys = [k for _, k in candidates]
        preds = self.predictor.predict(self._encode([c for c, _ in candidates], keys))
        mean, std = preds.mean(axis=0), preds.std(axis=0)
        if self.acquisition == "its":
            value = mean + std * self.rng.standard_normal(len(mean))
        else:
            value = mean + self.ucb_beta * std
        return dict(candidates[int(np.argmax(value))][0])

    def _new_region(self, why: str) -> None:
        best = max((m[2] for m in self.region_results), default=None)
        log.info(
            "%s: region %d (best %s) ends after %d results: %s",
            type(self).__name__,
            self.region,
            best,
            len(self.history),
            why,
        )
        self.region += 1
        self.region_results = []
        self.since_best = 0
        self.region_left = self.n_init

    def _fit(self, scored: list[tuple[dict, float]]) -> None:
        configs = [c for c, _ in scored]
        keys = [self.arch_key(c) for c in configs]
        x = self._encode(configs, keys)
        y = np.array([s for _, s in scored], dtype=np.float64)
        if self.targets == "rank":
            y = _normal_scores(y)
        loss = self.predictor.fit(x, y, self.generator, warm=self.refit_epochs)
        self.fitted_on = len(scored)
        log.debug(
            "%s: predictor fitted on %d results, loss %.4f", type(self).__name__, len(y), loss
        )

    def _candidates(self) -> list[tuple[dict, str]]:
        """Unseen candidates ``(config, arch key)``: neighbours of the region's best and random
        ones (a random pool while the region has no result)."""
        out: list[tuple[dict, str]] = []
        taken: set[str] = set()

        def add(config: dict, key: str) -> None:
            if key not in self.seen and key not in taken:
                taken.add(key)
                out.append((config, key))

        if not self.region_results:
            return []
        ranked = sorted(self.region_results, key=lambda m: -m[2])
        parents, parent_keys = [], set()
        for member in ranked:
            if member[1] not in parent_keys:
                parent_keys.add(member[1])
                parents.append(member)
            if len(parents) == self.num_parents:
                break
        for config, key, _ in parents:
            for child, child_key in self._neighbours_of(config, key):
                add(child, child_key)
        if len(out) > self.num_candidates:
            out = self._at_most(out, self.num_candidates)
            taken = {k for _, k in out}
        if out:
            out.extend(self._random_candidates(self.random_candidates, taken))
        return out

    def _incumbent_candidates(self, scored: list[tuple[dict, float]]) -> list[tuple[dict, str]]:
        """Unseen neighbours of the best architecture found so far, in any region, or once they
        are used up or in flight its unseen architectures two moves away (``incumbent_radius``
        2); at most ``num_candidates``, none when nothing is left."""
        best = max(scored, key=lambda m: m[1])[0]
        best_key = self.arch_key(best)
        near = self._neighbours_of(best, best_key)
        out = [(c, k) for c, k in near if k not in self.seen]
        if not out and self.incumbent_radius == 2 and self._enumerable:
            ring = {k for _, k in near} | {best_key}
            taken: set[str] = set()
            for config, key in near:
                for c, k in self._neighbours_of(config, key):
                    if k not in ring and k not in taken and k not in self.seen:
                        taken.add(k)
                        out.append((c, k))
        return self._at_most(out, self.num_candidates)

    def _at_most(self, out: list[tuple[dict, str]], n: int) -> list[tuple[dict, str]]:
        """``out``, or a seeded random subset of ``n`` of it (in its order) when longer."""
        if len(out) <= n:
            return out
        keep = self.rng.choice(len(out), size=n, replace=False)
        return [out[i] for i in sorted(keep)]

    def _random_candidates(self, n: int, taken: set[str]) -> list[tuple[dict, str]]:
        """Up to ``n`` uniform random unseen candidates not in ``taken`` (which grows)."""
        out = []
        for _ in range(n):
            config = self.random_config()
            key = self.arch_key(config)
            if key not in self.seen and key not in taken:
                taken.add(key)
                out.append((config, key))
        return out

    def _neighbours_of(self, config: dict, key: str) -> list[tuple[dict, str]]:
        if self._enumerable is None:
            bound = moves.neighbourhood_bound(self.domains)
            self._enumerable = bound is not None and bound <= MAX_NEIGHBOURS
        if not self._enumerable:
            if self._moves is None:
                self._moves = moves.key_moves(self.domains)
            k = -(-self.num_candidates // self.num_parents)
            found = moves.sample_neighbours(
                config, self._moves, k, self.rng, self.arch_key, self.seen, self.sample_value
            )
            return [(c, self.arch_key(c)) for c in found]
        cached = self._neighbours.get(key)
        if cached is None:
            if len(self._neighbours) >= _CACHE_MAX:
                self._neighbours.clear()
            found = moves.neighbours(config, self.domains, self.space)
            cached = self._neighbours[key] = [(c, self.arch_key(c)) for c in found]
        return cached

    def _encode(self, configs: list[dict], keys: list[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = encodings.Encoder(self.encoding, self.domains, self.space)
        missing = [i for i, k in enumerate(keys) if k not in self._rows]
        if missing:
            if len(self._rows) + len(missing) > _CACHE_MAX:
                self._rows.clear()
                missing = list(range(len(keys)))
            rows = self._encoder([configs[i] for i in missing])
            for i, row in zip(missing, rows, strict=True):
                self._rows[keys[i]] = row
        x = np.stack([self._rows[k] for k in keys])
        if self.zero_cost is None:
            return x
        return np.concatenate([x, self._proxy_features(configs, keys)], axis=1)

    def _proxy_features(self, configs: list[dict], keys: list[str]) -> np.ndarray:
        """Signed-log proxy scores of ``configs``, standardised over the scored ones."""
        for config, key in zip(configs, keys, strict=True):
            if key not in self.proxy_scores:
                self.proxy_scores[key] = self._score(config)
        raw = np.array([self.proxy_scores[k] for k in keys], dtype=np.float64)
        ref = np.array(list(self.proxy_scores.values()), dtype=np.float64)
        out = np.zeros_like(raw)
        for j in range(raw.shape[1]):
            column, known = _signed_log(raw[:, j]), _signed_log(ref[:, j])
            finite = known[np.isfinite(known)]
            if not len(finite):
                continue
            low, mu, sd = finite.min(), finite.mean(), finite.std() or 1.0
            column = np.where(np.isfinite(column), column, low)  # degenerate: the worst
            out[:, j] = (column - mu) / sd
        return out.astype(np.float32)

    def _score(self, config: dict) -> list[float]:
        from raynas.estimators.batch import load_batch

        options = self.zero_cost
        with seeding.scoring(options.device, options.threads) as device:
            if self._batch is None:
                inputs, targets, classes, channels = load_batch(
                    options.dataset, options.root, options.seed, options.batch_size
                )
                self._batch = (inputs.to(device), targets.to(device), classes, channels)
            return [
                seeding.score_config(self.space, config, options.seed_options(p), self._batch)
                for p in options.proxies
            ]

    # ------------------------------------------------------------------ learning
    def _observe(self, config: dict, score: float | None) -> None:
        if self._completing_region != self.region:
            return  # suggested before the current region began: training data only
        best = max((m[2] for m in self.region_results), default=None)
        if score is not None:
            self.region_results.append([config, self.arch_key(config), score])
        if score is not None and (best is None or score > best):
            self.since_best = 0
        else:
            self.since_best += 1
        if self.patience is not None and self.since_best >= self.patience:
            self._new_region(f"no improvement in {self.since_best} results")

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["bananas"] = {
            "predictor": self.predictor.get_state() if self.predictor.fitted else None,
            "generator": self.generator.get_state(),
            "fitted_on": self.fitted_on,
            "region": self.region,
            "region_results": self.region_results,
            "since_best": self.since_best,
            "region_left": self.region_left,
            "guided": self.guided,
            "trial_region": self.trial_region,
            "proxy_scores": self.proxy_scores,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        own = state["bananas"]
        if own["predictor"] is not None:
            self.predictor.set_state(own["predictor"])
        self.generator = torch.Generator()
        self.generator.set_state(own["generator"])
        self.fitted_on = own["fitted_on"]
        self.region = own["region"]
        self.region_results = [list(m) for m in own["region_results"]]
        self.since_best = own["since_best"]
        self.region_left = own["region_left"]
        self.guided = own.get("guided", 0)
        self.trial_region = dict(own["trial_region"])
        self.proxy_scores = dict(own["proxy_scores"])
        self._reset_derived()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_rows"], state["_neighbours"], state["_batch"] = {}, {}, None  # derived
        return state


def _normal_scores(y: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of the ranks of ``y`` (ties share their mean rank)."""
    return stats.norm.ppf((stats.rankdata(y) - 0.5) / len(y))


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _rename(message: str) -> str:
    """The ensemble's option names as the searcher's."""
    for inner, outer in (("members", "ensemble_size"), ("hidden", "hidden_size")):
        if message.startswith(inner + " "):
            return outer + message[len(inner) :]
    if message.startswith("layers "):
        return "num_layers" + message[len("layers") :]
    return message


#: Old name of the ``bananas`` registry entry (the class takes the same options).
make_bananas = BananasSearcher
