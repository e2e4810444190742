"""The REINFORCE searcher's policy: an ENAS-style LSTM controller over the keys of a Tune space.

The policy is autoregressive over the keys of the flat Tune space, in the space's key order.
A learned start vector goes into a ``torch.nn.LSTMCell``; at step ``t`` a softmax head of key
``t`` reads the hidden state and picks one of that key's choices; the embedding of the chosen
value is the input of step ``t + 1``. Logits are shaped as in ENAS,
``tanh_constant * tanh(logits / temperature)``, which bounds how peaked the policy can get.

Each key is one ``Decision``: a categorical domain has one choice per value; a numeric domain
(uniform / loguniform / randint) is discretised into ``num_bins`` equal-width bins, log-spaced
for log domains (an integer domain with at most ``num_bins`` values gets one choice per value).
A bin's value is drawn uniformly (log-uniformly for log domains) inside it with the searcher's
numpy RNG; a config's decision is the bin its value falls in.

Weights are initialised uniform in [-0.1, 0.1] (as in ENAS) from a private
``torch.Generator``: building a ``Controller`` never draws from torch's global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.searchers.base import integer_grid, is_log_domain


@dataclass(frozen=True)
class Decision:
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


def decision(key: str, domain: Any, num_bins: int) -> Decision:
    from ray.tune.search.sample import Categorical, Float, Integer

    if isinstance(domain, Categorical):
        return Decision(key, len(domain.categories), categories=tuple(domain.categories))
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
            return Decision(key, len(grid), categories=tuple(grid))
        space = np.geomspace if is_log else np.linspace
        edges = np.unique(np.round(space(first, top + 1, num_bins + 1)))
        edges = np.log(edges) if is_log else edges
        return Decision(
            key, len(edges) - 1, edges=tuple(edges.tolist()), log=is_log, integer=True,
            lower=float(first), upper=float(top), q=step if step > 1 else None,
        )  # fmt: skip
    lower, upper = float(domain.lower), float(domain.upper)
    q = getattr(domain.sampler, "q", None)
    space = np.geomspace if is_log else np.linspace
    edges = space(lower, upper, num_bins + 1)
    edges = np.log(edges) if is_log else edges
    return Decision(
        key, num_bins, edges=tuple(edges.tolist()), log=is_log, lower=lower, upper=upper, q=q
    )


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


def cpu_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies of a module's tensors (a state that later steps do not change)."""
    return {k: v.detach().clone() for k, v in state_dict.items()}
