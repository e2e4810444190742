"""REINFORCE searcher: the NASNet/ENAS-style LSTM controller (Zoph & Le 2017; Pham et al. 2018).

The policy (``raynas.searchers.controller``) is an autoregressive LSTM controller over the keys
of the flat Tune space, in the space's key order, with ENAS's bounded logits
``tanh_constant * tanh(logits / temperature)``.

Training is REINFORCE on ``J = E[R]`` with the estimator
``(1/M) sum_k sum_t log P(a_t | a_<t) A_k`` plus an entropy bonus, Adam, batch size ``M``.

Decisions taken here (and why):

- **Reward.** ``R`` is the trial's metric as "higher is better" (the base's ``score``),
  optionally shaped MnasNet-style, ``R = acc * (cost / target) ** w`` with ``cost`` read from
  the trial result, or, with ``predict: true``, computed from the config by the space
  (``raynas.searchers.quantities``: the latency-table prediction of ``latency_ms`` for
  mobilenetv3, ``params_m``/``flops_m`` for nb201), so the shaping needs no measurement in the
  trial (``reward_target``; see ``ReinforceSearcher``).
- **Proxy seeds** (``proxy_seed``, see ``raynas.searchers.seeding``): the top-k of a
  zero-cost-scored random pool are suggested first and, once evaluated, are learned from as
  ordinary samples, exactly like ``points_to_evaluate``: their decisions and rewards enter the
  reward buffer, update the policy (their log-probabilities under the current policy, no
  importance weights, see "Asynchrony") and the baseline. They were not drawn from the policy,
  so this is off-policy; the alternative, letting them move only the baseline, would throw
  away the information the seeds were chosen for (which decisions go with good
  architectures) and start the baseline high. With the default batch of 5 the first two
  updates come from seeds alone; since advantages are taken against a baseline started from
  that batch, they rank the seeds against each other rather than push all of them up.
- **Advantage and its scale.** ``A_k = (R_k - b) / s``: ``b`` is an exponential moving average
  of the rewards (``baseline_decay``) and ``s`` the square root of an exponential moving average
  of ``(R - b) ** 2`` with the same decay (both started from the first batch). Standardising
  keeps the advantages O(1) whatever the metric's units (accuracy in % or in [0, 1], a loss
  in "min" mode, a shaped reward) and as the rewards concentrate late in the search, so one
  ``lr`` and ``entropy_weight`` fit rewards of any scale (accuracy ~85 or ~38 alike).
  ``reward_scale=<float>`` switches it off and uses ``A = (R - b) * reward_scale`` instead.
- **Failed trials** (error, missing or NaN metric) get the worst reward seen so far: an
  architecture that crashes or diverges should become less likely, but no worse than the worst
  real result. Before any finite reward has been seen they are dropped.
- **Asynchrony.** Architectures are sampled while others are pending; a completed trial's
  decisions (recomputed exactly from its config, see below) and reward are buffered, and the
  policy is updated once ``M`` are in. The log-probabilities are recomputed with the *current*
  policy at update time, with no importance weights: the samples may come from a slightly older
  policy (or not from the policy at all: ``points_to_evaluate``, the de-duplication fallbacks
  below), so the update is mildly off-policy, as in ENAS's and NNI's asynchronous controllers.
  With small ``lr`` and ``M`` the policy moves little between sampling and update, and
  importance ratios would add variance for little bias removed.
- **Numeric domains** (uniform / loguniform / randint) are discretised into ``num_bins`` bins
  (default 10): equal-width bins, log-spaced for log domains; an integer domain with at most
  ``num_bins`` values gets one choice per value. The controller picks a bin and the value is
  drawn uniformly (log-uniformly for log domains) inside it with the searcher's numpy RNG. A
  config's decision is the bin its value falls in, so any config (including
  ``points_to_evaluate``) can be learned from.
- **No repeats, cheaply.** The base retries ``_propose`` up to 200 times on an architecture
  already evaluated or pending. Here one ``_propose`` samples ``DEDUP_BATCH`` candidates in one
  batched pass of the controller and returns the first unseen one (exactly the policy
  conditioned on "unseen"); if all are seen it resamples with the sampling temperature doubled,
  up to ``DEDUP_ROUNDS`` passes, and then draws a uniform random config among the unseen
  decision sequences (a prefix count of the seen sequences tells which values still lead to an
  unseen one, so even the last unseen architecture is found in one draw; spaces with numeric
  domains, never exhausted, get a plain uniform draw). Retries by the base go straight to that
  draw. So a suggestion costs at most a few controller passes even when the policy has
  converged. Candidates' architecture keys are cached per decision sequence.
- **Determinism.** Weights are initialised (uniform in [-0.1, 0.1], as in ENAS) and actions
  sampled with a private ``torch.Generator`` seeded from the searcher's numpy RNG; torch's
  global RNG is never drawn from. The controller is small (one LSTM cell of ``hidden_size``
  units) and runs on the CPU. While it runs, torch's intra-op thread count is set to 1 and
  restored afterwards (see ``single_thread``): its ops are tiny, and the OpenMP pool only
  adds overhead to them.
- **State.** ``get_state`` adds the controller's and Adam's state dicts, the generator state,
  the baseline and scale, and the reward buffer to the base's state, so a save/restore round
  trip continues with identical suggestions. Pickling goes through the same dicts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.registry import check_int, check_positive, is_real
from raynas.searchers import quantities
from raynas.searchers.base import NASSearcher
from raynas.searchers.controller import Controller, Decision, cpu_state_dict, decision
from raynas.searchers.rewards import COST_METRICS, check_reward_target, shaped
from raynas.torch_state import single_thread
from search_spaces.base import SearchSpace

log = logging.getLogger(__name__)

__all__ = ["COST_METRICS", "ReinforceSearcher", "make_reinforce", "single_thread"]

#: Candidates sampled per controller pass when looking for an unseen architecture.
DEDUP_BATCH = 16
#: Controller passes per ``_propose`` (sampling temperature doubling each time) before falling
#: back to a uniform random config.
DEDUP_ROUNDS = 3
#: Most entries of the (actions -> architecture) cache that speeds up de-duplication.
KEY_CACHE_SIZE = 200_000
#: Gradient-norm clip of each policy update (guards against a burst of extreme advantages).
GRAD_CLIP = 5.0


# ---------------------------------------------------------------------------- searcher
class ReinforceSearcher(NASSearcher):
    """NAS with an LSTM controller trained by REINFORCE (see the module docstring).

    Args:
        space: raynas search space (optional when the Tuner's ``param_space`` is set).
        metric: metric to optimise; also settable by the Tuner.
        mode: "max" or "min".
        seed: seeds the numpy RNG and, through it, the controller's torch generator.
        points_to_evaluate: configs suggested first (and learned from).
        batch_size: rewards per policy update (``M``).
        lr: Adam learning rate.
        entropy_weight: weight of the entropy bonus (sum over decisions, mean over the batch).
        baseline_decay: decay of the moving-average baseline and reward scale, in [0, 1).
        hidden_size: LSTM units.
        temperature: softmax temperature of the policy (logits divided by it before the tanh).
        tanh_constant: ENAS logit bound ``C * tanh(logits)``; None disables it.
        reward_target: MnasNet-style shaping, ``{"metric": "latency_ms" | "params_m" |
            "flops_m", "target": T, "w": -0.07}``: ``R = score * (cost / T) ** w`` with
            ``cost`` read from the trial's result (a missing or non-positive cost leaves the
            reward unshaped, with a warning). A negative score (a "min" metric) is divided by
            the factor instead, so a costly architecture is still penalised. With
            ``"predict": true`` the cost is computed from the config by the space instead
            (``raynas.searchers.quantities``; options ``"latency_table"`` for mobilenetv3's
            predicted ``latency_ms``, ``"dataset"`` for nb201's ``params_m``/``flops_m``).
        proxy_seed: None, or proxy-seeding options (``raynas.searchers.seeding``); the seeds
            are suggested first and learned from as ordinary samples (module docstring).
        reward_scale: None standardises advantages by the running reward scale (default);
            a positive float multiplies raw advantages by it instead (e.g. 0.01 for %).
        num_bins: bins of each numeric (uniform / loguniform / large randint) domain.
    """

    def __init__(
        self,
        space: SearchSpace | None = None,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: list[dict] | None = None,
        batch_size: int = 5,
        lr: float = 0.015,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
        hidden_size: int = 32,
        temperature: float = 1.0,
        tanh_constant: float | None = 2.5,
        reward_target: Mapping[str, Any] | None = None,
        reward_scale: float | None = None,
        num_bins: int = 10,
        proxy_seed: Mapping[str, Any] | None = None,
    ) -> None:
        check_int("batch_size", batch_size, 1)
        check_int("hidden_size", hidden_size, 1)
        check_int("num_bins", num_bins, 2)
        check_positive("lr", lr)
        check_positive("temperature", temperature)
        if tanh_constant is not None:
            check_positive("tanh_constant", tanh_constant)
        if reward_scale is not None:
            check_positive("reward_scale", reward_scale)
        if not is_real(entropy_weight) or not entropy_weight >= 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight!r}")
        if not is_real(baseline_decay) or not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.reward_target, cost_options = check_reward_target(reward_target)
        super().__init__(space, metric, mode, seed, points_to_evaluate, proxy_seed)
        # Predicted cost (``reward_target.predict``): config -> cost, from the space.
        self._cost_fn = None
        if cost_options is not None:
            if space is None:
                raise ValueError("reward_target.predict needs a raynas search space (space=...)")
            quantities.split_options(space, cost_options)  # an option for another space
            self._cost_fn = quantities.make(space, self.reward_target["metric"], cost_options)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.hidden_size = int(hidden_size)
        self.temperature = float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        self.reward_scale = None if reward_scale is None else float(reward_scale)
        self.num_bins = int(num_bins)
        # Drawn now, so that the controller's weights and samples depend only on ``seed``.
        self._torch_seed = int(self.rng.integers(2**63 - 1))
        self._init_learner()

    def _init_learner(self) -> None:
        self.decisions: list[Decision] | None = None
        self.controller: Controller | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.generator: torch.Generator | None = None
        self.buffer: list[tuple[list[int], float | None]] = []  # completed, not yet learned
        self.baseline: float | None = None
        self.scale_sq: float | None = None  # EMA of (R - b) ** 2
        self.worst: float | None = None  # lowest finite reward seen (for failed trials)
        self.updates = 0
        self._result: Mapping[str, Any] | None = None
        self._round = 0
        self._warned_cost = False
        # actions -> arch_key, when actions determine the config (all decisions categorical)
        self._key_cache: dict[tuple[int, ...], str] = {}
        self._cache_keys = False
        # prefix of actions -> number of distinct seen action sequences below it (built on
        # first need from ``pending`` and ``history``; all-categorical spaces only)
        self._trie: dict[tuple[int, ...], int] | None = None

    # ------------------------------------------------------------------ controller
    def _ensure_controller(self) -> None:
        if self.controller is not None:
            return
        if self.domains is None:
            raise RuntimeError(
                f"{type(self).__name__} has no search space: pass `space=` or a Tuner param_space"
            )
        self.decisions = [decision(k, d, self.num_bins) for k, d in self.domains.items()]
        self._cache_keys = all(d.categories is not None for d in self.decisions)
        self.generator = torch.Generator().manual_seed(self._torch_seed)
        init = torch.Generator().manual_seed(self._torch_seed ^ 0x5EED)
        with single_thread():
            self.controller = Controller(
                [d.size for d in self.decisions],
                self.hidden_size,
                self.temperature,
                self.tanh_constant,
                init,
            )
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.lr)

    def _config(self, actions: list[int]) -> dict:
        return {d.key: d.value(a, self.rng) for d, a in zip(self.decisions, actions, strict=True)}

    def actions_of(self, config: Mapping[str, Any]) -> list[int] | None:
        """The controller's decisions that lead to ``config`` (None if outside the space)."""
        self._ensure_controller()
        out = []
        for d in self.decisions:
            i = d.index(config.get(d.key)) if d.key in config else None
            if i is None:
                return None
            out.append(i)
        return out

    # ------------------------------------------------------------------ Tune interface
    def suggest(self, trial_id: str) -> dict | None:
        self._round = 0  # counts the base's retries of ``_propose`` for this suggestion
        config = super().suggest(trial_id)
        if self._trie is not None and config is not None:
            self._trie_add(config)
        return config

    def adopt_trial(self, trial_id: str, config: Mapping[str, Any]) -> None:
        known = trial_id in self.pending
        super().adopt_trial(trial_id, config)
        if self._trie is not None and not known:
            self._trie_add(self.pending[trial_id])

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._result = result
        try:
            super().on_trial_complete(trial_id, result, error)
        finally:
            self._result = None

    # ------------------------------------------------------------------ NASSearcher hooks
    def _propose(self) -> dict:
        with single_thread():
            return self._propose_unseen()

    def _propose_unseen(self) -> dict:
        self._ensure_controller()
        self._round += 1
        if self._round > 1:
            # The base is retrying: our policy rounds all hit seen architectures already.
            return self._random_unseen()
        heat = 1.0
        for _ in range(DEDUP_ROUNDS):
            actions = self.controller.sample(DEDUP_BATCH, self.generator, heat).tolist()
            for a in actions:
                cached = self._key_cache.get(tuple(a))
                if cached is not None and cached in self.seen:
                    continue
                config = self._config(a)
                key = self.arch_key(config)
                if self._cache_keys and len(self._key_cache) < KEY_CACHE_SIZE:
                    self._key_cache[tuple(a)] = key
                if key not in self.seen:
                    return config
            heat *= 2.0
        if self._exhausted():
            return self._config(actions[0])
        return self._random_unseen()

    def _random_unseen(self) -> dict:
        """A random config whose decisions differ from every seen config's.

        Walks the decisions, choosing each uniformly among the values under which some
        sequence of decisions is still unseen, so it finds the last unseen architecture of a
        space in one draw. Numeric spaces (never exhausted) get a plain uniform draw.
        """
        if not self._cache_keys:
            return self.random_config()
        if self._trie is None:
            self._trie = {}
            for config in [*self.pending.values(), *(c for c, _ in self.history)]:
                self._trie_add(config)
        below = [
            math.prod(d.size for d in self.decisions[t:])
            for t in range(1, len(self.decisions) + 1)
        ]
        prefix: tuple[int, ...] = ()
        for t, d in enumerate(self.decisions):
            free = [c for c in range(d.size) if self._trie.get((*prefix, c), 0) < below[t]]
            if not free:  # every sequence seen
                return self.random_config()
            prefix = (*prefix, free[int(self.rng.integers(len(free)))])
        return self._config(list(prefix))

    def _trie_add(self, config: Mapping[str, Any]) -> None:
        actions = self.actions_of(config)
        if actions is None or tuple(actions) in self._trie:
            return
        for t in range(1, len(actions) + 1):
            self._trie[tuple(actions[:t])] = self._trie.get(tuple(actions[:t]), 0) + 1

    def _observe(self, config: dict, score: float | None) -> None:
        actions = self.actions_of(config)
        if actions is None:
            log.warning("%s: config outside the search space not learned from: %r", self, config)
            return
        reward = None if score is None else self._shape(score, config)
        if reward is not None:
            self.worst = reward if self.worst is None else min(self.worst, reward)
        self.buffer.append((actions, reward))
        if len(self.buffer) >= self.batch_size:
            with single_thread():
                self._update()

    def _shape(self, score: float, config: Mapping[str, Any]) -> float:
        if not self.reward_target:
            return score
        name = self.reward_target["metric"]
        if self._cost_fn is not None:
            cost = self._cost_fn(config)
        else:
            cost = (self._result or {}).get(name)
        try:
            cost = float(cost)
        except (TypeError, ValueError):
            cost = math.nan
        if not (math.isfinite(cost) and cost > 0):
            if not self._warned_cost:
                log.warning(
                    "%s: trial result has no positive %r (got %r); reward left unshaped",
                    type(self).__name__,
                    name,
                    (self._result or {}).get(name),
                )
                self._warned_cost = True
            return score
        return shaped(score, cost, self.reward_target)

    def _update(self) -> None:
        batch, self.buffer = self.buffer, []
        if self.worst is None:
            batch = [(a, r) for a, r in batch if r is not None]
        else:
            batch = [(a, self.worst if r is None else r) for a, r in batch]
        if not batch:
            return
        rewards = np.array([r for _, r in batch], dtype=float)
        if self.baseline is None:
            self.baseline = float(rewards.mean())
            self.scale_sq = float(rewards.var()) if len(rewards) > 1 else 0.0
        adv = rewards - self.baseline
        if self.reward_scale is None:
            scale_sq = self.scale_sq if self.scale_sq > 0 else float(np.mean(adv**2))
            adv = adv / math.sqrt(scale_sq) if scale_sq > 0 else adv * 0.0
        else:
            adv = adv * self.reward_scale
        # Moving averages, one step per reward (ENAS's baseline update).
        decay = self.baseline_decay
        for r in rewards:
            self.scale_sq = decay * self.scale_sq + (1 - decay) * (r - self.baseline) ** 2
            self.baseline = decay * self.baseline + (1 - decay) * float(r)

        actions = torch.tensor([a for a, _ in batch], dtype=torch.long)
        logp, entropy = self.controller.evaluate(actions)
        adv_t = torch.as_tensor(adv, dtype=torch.float32)
        loss = -(logp * adv_t).mean() - self.entropy_weight * entropy.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.controller.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.updates += 1

    # ------------------------------------------------------------------ inspection
    def choice_probs(self, config: Mapping[str, Any]) -> dict[str, list[float]]:
        """The policy's softmax of every key along the decisions of ``config``."""
        actions = self.actions_of(config)
        if actions is None:
            raise ValueError(f"config outside the search space: {config!r}")
        with single_thread():
            probs = self.controller.probs(torch.tensor([actions], dtype=torch.long))
        return {d.key: p[0].tolist() for d, p in zip(self.decisions, probs, strict=True)}

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        built = self.controller is not None
        state["reinforce"] = {
            "torch_seed": self._torch_seed,
            "controller": cpu_state_dict(self.controller.state_dict()) if built else None,
            "optimizer": self.optimizer.state_dict() if built else None,
            "generator": self.generator.get_state() if built else None,
            "buffer": [(list(a), r) for a, r in self.buffer],
            "baseline": self.baseline,
            "scale_sq": self.scale_sq,
            "worst": self.worst,
            "updates": self.updates,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        own = state["reinforce"]
        self._init_learner()
        self._torch_seed = own["torch_seed"]
        if own["controller"] is not None:
            self._ensure_controller()
            self.controller.load_state_dict(own["controller"])
            self.optimizer.load_state_dict(own["optimizer"])
            self.generator.set_state(own["generator"])
        self.buffer = [(list(a), r) for a, r in own["buffer"]]
        self.baseline = own["baseline"]
        self.scale_sq = own["scale_sq"]
        self.worst = own["worst"]
        self.updates = own["updates"]

    def __getstate__(self) -> dict[str, Any]:
        # Torch objects travel as their state dicts (inside ``get_state``).
        fresh = ReinforceSearcher.__new__(ReinforceSearcher)
        fresh._init_learner()
        learner = set(vars(fresh))  # attributes that ``_init_learner`` (re)creates
        out = {k: v for k, v in self.__dict__.items() if k not in learner}
        out["_learner_state"] = self.get_state()
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        learner_state = state.pop("_learner_state")
        self.__dict__.update(state)
        self._init_learner()
        self.set_state(learner_state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(updates={self.updates}, batch_size={self.batch_size})"


#: Old name of the ``reinforce`` registry entry (the class takes the same options).
make_reinforce = ReinforceSearcher
