"""REINFORCE searcher: the NASNet/ENAS-style LSTM controller (Zoph & Le 2017; Pham et al. 2018).

The policy is autoregressive over the keys of the flat Tune space, in the space's key order.
A learned start vector goes into a ``torch.nn.LSTMCell``; at step ``t`` a softmax head of key
``t`` reads the hidden state and picks one of that key's choices; the embedding of the chosen
value is the input of step ``t + 1``. Logits are shaped as in ENAS,
``tanh_constant * tanh(logits / temperature)``, which bounds how peaked the policy can get.

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

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.registry import check_int
from raynas.searchers import quantities
from raynas.searchers.base import NASSearcher, integer_grid, is_log_domain
from search_spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: Candidates sampled per controller pass when looking for an unseen architecture.
DEDUP_BATCH = 16
#: Controller passes per ``_propose`` (sampling temperature doubling each time) before falling
#: back to a uniform random config.
DEDUP_ROUNDS = 3
#: Most entries of the (actions -> architecture) cache that speeds up de-duplication.
KEY_CACHE_SIZE = 200_000
#: Cost metrics that ``reward_target`` may read from a trial result.
COST_METRICS = ("latency_ms", "params_m", "flops_m")
#: Gradient-norm clip of each policy update (guards against a burst of extreme advantages).
GRAD_CLIP = 5.0


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting.

    The controller's ops are tiny; torch's OpenMP pool only adds synchronisation to them,
    which dominates a step on a busy machine.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class _Decision:
    """How one Tune domain maps to a softmax over ``size`` choices."""

    key: str
    size: int
    categories: tuple | None = None  # categorical domain
    edges: tuple[float, ...] | None = None  # numeric: bin edges (in log space when ``log``)
    log: bool = False
    integer: bool = False
    lower: float = 0.0
    upper: float = 0.0
    q: float | None = None

    def index(self, value: Any) -> int | None:
        """The choice that ``value`` falls in; None when it is outside the domain."""
        if self.categories is not None:
            for i, c in enumerate(self.categories):
                if c is value or c == value:
                    return i
            return None
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v) or v < self.lower or v > self.upper:
            return None
        if self.log:
            if v <= 0:
                return None
            v = math.log(v)
        i = int(np.searchsorted(self.edges, v, side="right")) - 1
        return min(max(i, 0), self.size - 1)

    def value(self, index: int, rng: np.random.Generator) -> Any:
        """A value of choice ``index``: the category, or a uniform draw inside the bin."""
        if self.categories is not None:
            return self.categories[index]
        lo, hi = self.edges[index], self.edges[index + 1]
        x = float(rng.uniform(lo, hi))
        if self.log:
            x = math.exp(x)
        if self.integer:
            # Integer bins are [lo, hi) over integers (``edges`` hold integers, or their logs).
            x = math.floor(x)
        if self.q:
            x = self.lower + math.floor((x - self.lower) / self.q + 0.5) * self.q
        x = min(max(x, self.lower), self.upper)
        return int(x) if self.integer else float(x)


def _decision(key: str, domain: Any, num_bins: int) -> _Decision:
    from ray.tune.search.sample import Categorical, Float, Integer

    if isinstance(domain, Categorical):
        return _Decision(key, len(domain.categories), categories=tuple(domain.categories))
    if not isinstance(domain, Float | Integer):
        raise ValueError(
            f"unsupported Tune domain for {key!r}: {domain!r}; use choice, randint or uniform"
        )
    is_log = is_log_domain(domain)
    if is_log and domain.lower <= 0:
        raise ValueError(f"log domain {key!r} needs lower > 0, got {domain.lower}")
    if isinstance(domain, Integer):
        first, top, step = integer_grid(domain)  # the values Tune draws: first..top by step
        grid = list(range(first, top + 1, step))
        if len(grid) <= num_bins:  # small integer domain: one choice per value
            return _Decision(key, len(grid), categories=tuple(grid))
        space = np.geomspace if is_log else np.linspace
        edges = np.unique(np.round(space(first, top + 1, num_bins + 1)))
        edges = np.log(edges) if is_log else edges
        return _Decision(
            key, len(edges) - 1, edges=tuple(edges.tolist()), log=is_log, integer=True,
            lower=float(first), upper=float(top), q=step if step > 1 else None,
        )  # fmt: skip
    lower, upper = float(domain.lower), float(domain.upper)
    q = getattr(domain.sampler, "q", None)
    space = np.geomspace if is_log else np.linspace
    edges = space(lower, upper, num_bins + 1)
    edges = np.log(edges) if is_log else edges
    return _Decision(
        key, num_bins, edges=tuple(edges.tolist()), log=is_log, lower=lower, upper=upper, q=q
    )


# ---------------------------------------------------------------------------- controller
class Controller(nn.Module):
    """ENAS-style autoregressive policy: one LSTM cell, per-key embeddings and softmax heads.

    Args:
        sizes: number of choices of each decision, in order.
        hidden_size: LSTM units (also the embedding width).
        temperature: logits are divided by it before the tanh.
        tanh_constant: logits become ``tanh_constant * tanh(logits)``; None = no tanh.
        generator: seeds the initial weights (uniform in [-0.1, 0.1]).
    """

    def __init__(
        self,
        sizes: list[int],
        hidden_size: int,
        temperature: float,
        tanh_constant: float | None,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        # Built on the meta device, then initialised from ``generator``: the constructors'
        # own initialisation would draw from (and advance) torch's global RNG.
        meta = {"device": "meta"}
        self.start = nn.Parameter(torch.empty(1, hidden_size, **meta))
        self.cell = nn.LSTMCell(hidden_size, hidden_size, **meta)
        self.embeds = nn.ModuleList(nn.Embedding(n, hidden_size, **meta) for n in sizes)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n, **meta) for n in sizes)
        self.to_empty(device="cpu")
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1, generator=generator)
        self.hidden_size = hidden_size
        self.temperature = temperature
        self.tanh_constant = tanh_constant

    def _logits(self, t: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.heads[t](h) / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, heat: float = 1.0) -> torch.Tensor:
        """``n`` action sequences, shape (n, decisions); ``heat`` > 1 flattens the softmax."""
        h = torch.zeros(n, self.hidden_size)
        c = torch.zeros(n, self.hidden_size)
        x = self.start.expand(n, -1)
        actions = []
        for t in range(len(self.heads)):
            h, c = self.cell(x, (h, c))
            probs = torch.softmax(self._logits(t, h) / heat, dim=-1)
            a = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            actions.append(a)
            x = self.embeds[t](a)
        return torch.stack(actions, dim=1)

    def evaluate(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum over steps of ``log P(a_t | a_<t)`` and of the policy's entropy, per sequence."""
        n = actions.shape[0]
        h = torch.zeros(n, self.hidden_size)
        c = torch.zeros(n, self.hidden_size)
        x = self.start.expand(n, -1)
        logp = torch.zeros(n)
        entropy = torch.zeros(n)
        for t in range(len(self.heads)):
            h, c = self.cell(x, (h, c))
            log_probs = torch.log_softmax(self._logits(t, h), dim=-1)
            a = actions[:, t]
            logp = logp + log_probs.gather(1, a[:, None]).squeeze(1)
            entropy = entropy - (log_probs.exp() * log_probs).sum(-1)
            x = self.embeds[t](a)
        return logp, entropy

    @torch.no_grad()
    def probs(self, actions: torch.Tensor) -> list[torch.Tensor]:
        """The softmax of every step along ``actions`` (shape (n, decisions)), for inspection."""
        n = actions.shape[0]
        h = torch.zeros(n, self.hidden_size)
        c = torch.zeros(n, self.hidden_size)
        x = self.start.expand(n, -1)
        out = []
        for t in range(len(self.heads)):
            h, c = self.cell(x, (h, c))
            out.append(torch.softmax(self._logits(t, h), dim=-1))
            x = self.embeds[t](actions[:, t])
        return out


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
        _check_positive("lr", lr)
        _check_positive("temperature", temperature)
        if tanh_constant is not None:
            _check_positive("tanh_constant", tanh_constant)
        if reward_scale is not None:
            _check_positive("reward_scale", reward_scale)
        if not _is_real(entropy_weight) or not entropy_weight >= 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight!r}")
        if not _is_real(baseline_decay) or not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.reward_target, cost_options = _check_reward_target(reward_target)
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
        self.decisions: list[_Decision] | None = None
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
        self.decisions = [_decision(k, d, self.num_bins) for k, d in self.domains.items()]
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
        factor = (cost / self.reward_target["target"]) ** self.reward_target["w"]
        return score * factor if score >= 0 else score / factor

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
            "controller": _cpu(self.controller.state_dict()) if built else None,
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


def make_reinforce(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
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
) -> ReinforceSearcher:
    """The ``reinforce`` searcher: an ENAS-style LSTM controller trained by REINFORCE.

    See ``ReinforceSearcher`` for the options; every option is validated (ValueError naming
    the value).
    """
    return ReinforceSearcher(
        space=space,
        metric=metric,
        mode=mode,
        seed=seed,
        points_to_evaluate=points_to_evaluate,
        batch_size=batch_size,
        lr=lr,
        entropy_weight=entropy_weight,
        baseline_decay=baseline_decay,
        hidden_size=hidden_size,
        temperature=temperature,
        tanh_constant=tanh_constant,
        reward_target=reward_target,
        reward_scale=reward_scale,
        num_bins=num_bins,
        proxy_seed=proxy_seed,
    )


# ---------------------------------------------------------------------------- validation
def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive(name: str, value: Any) -> None:
    if not _is_real(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_reward_target(
    target: Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(metric/target/w, quantity options when the cost is predicted, else None)."""
    if target is None:
        return None, None
    if not isinstance(target, Mapping):
        raise ValueError(f"reward_target must be a dict with metric, target, w; got {target!r}")
    valid = ("metric", "target", "w", "predict", *quantities.OPTION_KEYS)
    unknown = sorted(set(target) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown reward_target key {unknown[0]!r}; valid keys: {', '.join(valid)}"
        )
    predict = target.get("predict", False)
    if not isinstance(predict, bool):
        raise ValueError(f"reward_target predict must be true or false, got {predict!r}")
    options = {k: target[k] for k in quantities.OPTION_KEYS if k in target}
    if options and not predict:
        raise ValueError(f"reward_target {', '.join(options)} only applies with predict: true")
    metric = target.get("metric")
    if metric not in COST_METRICS:
        raise ValueError(
            f"reward_target metric must be one of: {', '.join(COST_METRICS)}; got {metric!r}"
        )
    value = target.get("target")
    if not _is_real(value) or not value > 0:
        raise ValueError(f"reward_target target must be a number > 0, got {value!r}")
    w = target.get("w", -0.07)
    if not _is_real(w) or not -1 <= w <= 0:
        raise ValueError(f"reward_target w must be in [-1, 0], got {w!r}")
    return {"metric": metric, "target": float(value), "w": float(w)}, (
        options if predict else None
    )


def _cpu(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state_dict.items()}
