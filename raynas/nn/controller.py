"""An ENAS-style autoregressive LSTM policy over a list of categorical decisions.

A learned start vector goes into a ``torch.nn.LSTMCell``; at step ``t`` a softmax head of
decision ``t`` reads the hidden state and picks one of that decision's choices; the embedding
of the chosen index is the input of step ``t + 1``. Logits are shaped as in ENAS,
``tanh_constant * tanh(logits / temperature)``, which bounds how peaked the policy can get.

The policy knows only the number of choices of each decision (plain arguments): the REINFORCE
searcher (``raynas.searchers.reinforce``, decisions = the keys of a Tune space) and the ENAS
one-shot search (``raynas.oneshot.methods``, decisions = the op of each supernet edge) both
use it. Weights are initialised uniform in [-0.1, 0.1] (as in ENAS) from a private
``torch.Generator``: building a ``Controller`` never draws from torch's global RNG.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


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

    @torch.no_grad()
    def greedy(self) -> torch.Tensor:
        """The most likely choice at every step (argmax decoding), shape (1, decisions)."""
        h = torch.zeros(1, self.hidden_size)
        c = torch.zeros(1, self.hidden_size)
        x = self.start
        actions = []
        for t in range(len(self.heads)):
            h, c = self.cell(x, (h, c))
            a = self._logits(t, h).argmax(-1)
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
