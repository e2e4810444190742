"""The single-path one-shot methods: RSPS, GDAS, SETN and ENAS on the DARTS engine.

Each is a ``DartsSearch`` (same supernet, data split, optimisers, checkpoint, derivation and
per-epoch report) that trains the shared weights on one sampled path per step: the supernet
computes only the op a path picks for each edge (``Supernet.forward(x, path)``).

* ``rsps`` (Li & Talwalkar, 2019): every weight step on a path drawn uniformly from the
  space; after each epoch ``candidates`` random architectures are scored with the shared
  weights on the same ``eval_batches`` val batches and the lowest val loss is the derived
  architecture. α is not used.
* ``gdas`` (Dong & Yang, CVPR 2019): each step draws one op per edge by Gumbel-max from
  log softmax(α); the forward scales the drawn op by the straight-through one-hot
  ``h - softmax((log softmax(α) + g) / τ).detach() + softmax(...)`` so that α gets gradients.
  α by Adam on a val batch, then w on a train batch (each with a fresh draw). τ falls linearly
  from ``tau_max`` (epoch 1) to ``tau_min`` (last epoch). Derived: argmax of α, as DARTS.
* ``setn`` (Dong & Yang, ICCV 2019): w trained on uniformly drawn paths; the template
  distribution softmax(α) by Adam on val batches through the mixed supernet (first order,
  SETN's "joint" mode); after each epoch ``candidates`` architectures drawn from the template
  are scored as in RSPS and the best is the derived one.
* ``enas`` (Pham et al., 2018): the LSTM policy of ``raynas.nn.controller`` (the REINFORCE
  searcher's) draws a path; w is trained on drawn paths; per train batch (after
  ``arch_warmup_epochs``) the policy takes one REINFORCE step with Adam
  (``controller_lr``) on the reward R = accuracy of a newly drawn path on one val batch:
  loss = -(R - b) log p(path) - ``entropy_weight`` · H, with b an exponential moving average
  of R (``baseline_decay``; b is updated before the advantage, as in NB201's ENAS). Derived:
  the policy's argmax path.

Paths are valid architectures of the space. nb201: one op (``none`` included) per edge. darts:
per node two distinct inputs, each with a non-``none`` op; the other edges are ``none``
(the genotype's shape). Drawing a darts path from a distribution over the ops of each edge
picks the two inputs without replacement with probability proportional to the edge's
non-``none`` mass, then each edge's op among the non-``none`` ops.

**Scoring** a path (RSPS/SETN candidates, ENAS rewards, these methods' ``val_*``): forward
with BatchNorm in training mode (batch statistics, as the NB201 search networks, which keep
no running statistics), no gradients, the running statistics restored afterwards. The
single-path methods report as ``val_loss`` / ``val_acc`` the derived path so scored on the
whole val split (not the mixed supernet; for RSPS and ENAS α is never trained).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from raynas.nn.controller import Controller
from raynas.nn.supernet import DARTS_PRIMITIVES, DartsSupernet
from raynas.oneshot import derive
from raynas.oneshot.options import DartsOptions, SearchSettings
from raynas.oneshot.search import DartsSearch
from search_spaces.base import SearchSpace

Path = dict[str, list[int]]


class SinglePathSearch(DartsSearch):
    """Common part of the single-path methods: drawing, training and scoring paths."""

    def __init__(
        self, space: SearchSpace, options: DartsOptions, settings: SearchSettings | None = None
    ) -> None:
        super().__init__(space, options, settings)
        self.path_generator = torch.Generator().manual_seed(self.settings.seed + 2)
        self.select_generator = torch.Generator().manual_seed(self.settings.seed + 3)
        self.best_path: Path | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "path_generator": self.path_generator.get_state(),
            "select_generator": self.select_generator.get_state(),
            "best_path": self.best_path,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.path_generator.set_state(state["path_generator"])
        self.select_generator.set_state(state["select_generator"])
        self.best_path = state["best_path"]

    # ------------------------------------------------------------------ paths
    def uniform_probs(self) -> dict[str, torch.Tensor]:
        shape = (len(self.model.edges), len(self.model.primitives))
        return {t: torch.full(shape, 1.0 / shape[1]) for t in self.model.cell_types}

    def draw_path(self, probs: Mapping[str, torch.Tensor]) -> Path:
        """A valid architecture of the space drawn from per-edge op probabilities."""
        return {
            t: _draw_cell(self.model, probs[t].detach().cpu().double(), self.path_generator)
            for t in self.model.cell_types
        }

    def path_genotype(self, path: Path) -> Any:
        """The genotype of the space that ``path`` is."""
        return derive.genotype_of_path(self.model, path)

    @torch.no_grad()
    def score_path(
        self, path: Path, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[float, float]:
        """Mean loss and accuracy (%) of ``path`` over ``batches`` (BN batch statistics)."""
        buffers = [b.detach().clone() for b in self.model.buffers()]
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        try:
            for x, y in batches:
                x, y = self._to_device(x, y)
                logits = self.model(x, path)
                total_loss += F.cross_entropy(logits, y, reduction="sum").item()
                correct += int((logits.argmax(1) == y).sum().item())
                seen += len(y)
        finally:
            for b, saved in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(saved)
        return total_loss / seen, 100.0 * correct / seen

    def derived_path(self) -> Path:
        """The path of the derived architecture."""
        if self.best_path is not None:
            return self.best_path
        return derive.path_of(self.model, self.genotype())

    def val_metrics(self) -> tuple[float, float]:
        return self.score_path(self.derived_path(), self._loader("val", False, torch.Generator()))

    def select(self, probs: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Draw ``candidates`` paths from ``probs``, score them on the same val batches, keep
        the best (lowest loss) as ``best_path``; returns the ranking summary."""
        opts = self.options
        loader = self._loader("val", True, self.select_generator)
        batches = list(itertools.islice(loader, opts.eval_batches))
        scored = []
        for _ in range(opts.candidates):
            path = self.draw_path(probs)
            loss, acc = self.score_path(path, batches)
            scored.append((loss, -acc, path))
        scored.sort(key=lambda item: (item[0], item[1]))
        self.best_path = scored[0][2]
        losses = [item[0] for item in scored]
        return {
            "candidates": len(scored),
            "candidate_best_loss": losses[0],
            "candidate_best_acc": -scored[0][1],
            "candidate_median_loss": statistics.median(losses),
            "candidate_worst_loss": losses[-1],
            "candidate_distinct": len({str(item[2]) for item in scored}),
        }

    def genotype(self) -> Any:
        if self.best_path is not None:
            return self.path_genotype(self.best_path)
        return super().genotype()

    def _train_batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self._loader("train", True, self.train_generator):
            yield tuple(self._to_device(x, y))


class RSPSSearch(SinglePathSearch):
    """Random search with weight sharing (see the module docstring)."""

    learns_alpha = False

    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        total, correct, seen = 0.0, 0, 0
        uniform = self.uniform_probs()
        for x, y in self._train_batches():
            loss, right = self.weight_step(x, y, self.draw_path(uniform))
            total, correct, seen = total + loss * len(y), correct + right, seen + len(y)
        self.schedule.step()
        return total / seen, 100.0 * correct / seen

    def after_epoch(self) -> dict[str, Any]:
        return self.select(self.uniform_probs())


class SETNSearch(SinglePathSearch):
    """SETN: uniform paths for w, a learned template distribution for the architecture."""

    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        update_arch = self.epoch >= self.options.arch_warmup_epochs
        val_batches = _cycle(self._loader("val", True, self.val_generator))
        total, correct, seen = 0.0, 0, 0
        uniform = self.uniform_probs()
        for x, y in self._train_batches():
            if update_arch:
                xv, yv = self._to_device(*next(val_batches))
                self.arch_step(x, y, xv, yv)  # first order through the mixed supernet
            loss, right = self.weight_step(x, y, self.draw_path(uniform))
            total, correct, seen = total + loss * len(y), correct + right, seen + len(y)
        self.schedule.step()
        return total / seen, 100.0 * correct / seen

    def after_epoch(self) -> dict[str, Any]:
        with torch.no_grad():
            template = self.model.op_weights()
        return self.select(template)


class GDASSearch(SinglePathSearch):
    """GDAS: Gumbel-softmax one-hot paths with straight-through gradients to α."""

    def tau(self, epoch: int | None = None) -> float:
        """Temperature of epoch ``epoch`` (0-based; default the current one)."""
        e = self.epoch if epoch is None else epoch
        hi, lo, n = self.options.tau_max, self.options.tau_min, self.options.epochs
        return hi if n == 1 else hi - (hi - lo) * min(e, n - 1) / (n - 1)

    def gumbel_path(self, tau: float) -> tuple[Path, dict[str, torch.Tensor]]:
        """One Gumbel-max draw per edge and its straight-through one-hot weights."""
        path: Path = {}
        weights: dict[str, torch.Tensor] = {}
        for t in self.model.cell_types:
            alpha = self.model.alphas[t]
            noise = torch.empty(alpha.shape).exponential_(generator=self.path_generator)
            gumbel = -noise.log().to(alpha.device)
            soft = F.softmax((F.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
            index = soft.argmax(-1)
            hard = torch.zeros_like(soft).scatter_(-1, index[:, None], 1.0)
            weights[t] = hard - soft.detach() + soft
            path[t] = index.tolist()
        return path, weights

    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        tau = self.tau()
        update_arch = self.epoch >= self.options.arch_warmup_epochs
        val_batches = _cycle(self._loader("val", True, self.val_generator))
        total, correct, seen = 0.0, 0, 0
        for x, y in self._train_batches():
            if update_arch:
                xv, yv = self._to_device(*next(val_batches))
                path, weights = self.gumbel_path(tau)
                loss = F.cross_entropy(self.model(xv, path, weights), yv)
                self._check_finite(loss, "validation loss in the architecture step")
                grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
                for p, g in zip(self.alphas, grads, strict=True):
                    p.grad = torch.zeros_like(p) if g is None else g
                self.a_optimizer.step()
                self.a_optimizer.zero_grad(set_to_none=True)
            path, weights = self.gumbel_path(tau)
            weights = {t: w.detach() for t, w in weights.items()}
            loss, right = self.weight_step(x, y, path, weights)
            total, correct, seen = total + loss * len(y), correct + right, seen + len(y)
        self.schedule.step()
        return total / seen, 100.0 * correct / seen

    def after_epoch(self) -> dict[str, Any]:
        return {"tau": self.tau(self.epoch - 1)}

    def genotype(self) -> Any:
        return derive.genotype(self.model)


class ENASSearch(SinglePathSearch):
    """ENAS: an LSTM policy (``raynas.nn.controller``) trained by REINFORCE draws the paths."""

    learns_alpha = False

    def __init__(
        self, space: SearchSpace, options: DartsOptions, settings: SearchSettings | None = None
    ) -> None:
        super().__init__(space, options, settings)
        self.sizes = _decision_sizes(self.model)
        init = torch.Generator().manual_seed(self.settings.seed + 4)
        self.controller = Controller(
            self.sizes,
            options.controller_hidden,
            options.controller_temperature,
            options.controller_tanh,
            init,
        )
        self.c_optimizer = torch.optim.Adam(self.controller.parameters(), lr=options.controller_lr)
        self.baseline: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "c_optimizer": self.c_optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.c_optimizer.load_state_dict(state["c_optimizer"])
        self.baseline = state["baseline"]

    def policy_path(self) -> Path:
        actions = self.controller.sample(1, self.path_generator)[0].tolist()
        return _path_of_actions(self.model, actions), actions

    def controller_step(self, xv: torch.Tensor, yv: torch.Tensor) -> float:
        """One REINFORCE step on the reward (accuracy in [0, 1]) of a drawn path."""
        path, actions = self.policy_path()
        _, acc = self.score_path(path, [(xv, yv)])
        reward = acc / 100.0
        decay = self.options.baseline_decay
        self.baseline = (
            reward if self.baseline is None else decay * self.baseline + (1 - decay) * reward
        )
        logp, entropy = self.controller.evaluate(torch.tensor([actions]))
        loss = -(logp * (reward - self.baseline)).sum() - self.options.entropy_weight * (
            entropy.sum()
        )
        self.c_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.c_optimizer.step()
        return reward

    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        update_arch = self.epoch >= self.options.arch_warmup_epochs
        val_batches = _cycle(self._loader("val", True, self.val_generator))
        total, correct, seen = 0.0, 0, 0
        self._rewards: list[float] = []
        for x, y in self._train_batches():
            if update_arch:
                self._rewards.append(self.controller_step(*self._to_device(*next(val_batches))))
            path, _ = self.policy_path()
            loss, right = self.weight_step(x, y, path)
            total, correct, seen = total + loss * len(y), correct + right, seen + len(y)
        self.schedule.step()
        return total / seen, 100.0 * correct / seen

    def derived_path(self) -> Path:
        return _path_of_actions(self.model, self.controller.greedy()[0].tolist())

    def genotype(self) -> Any:
        return self.path_genotype(self.derived_path())

    def after_epoch(self) -> dict[str, Any]:
        with torch.no_grad():
            _, entropy = self.controller.evaluate(self.controller.greedy())
        rewards = getattr(self, "_rewards", [])
        return {
            "controller_entropy": float(entropy.sum()) / len(self.sizes),
            "controller_baseline": float("nan") if self.baseline is None else self.baseline,
            "controller_reward": float(np.mean(rewards)) if rewards else float("nan"),
        }


#: Search class of each method.
SEARCHES: dict[str, type[DartsSearch]] = {
    "darts": DartsSearch,
    "rsps": RSPSSearch,
    "gdas": GDASSearch,
    "setn": SETNSearch,
    "enas": ENASSearch,
}


def make_search(
    space: SearchSpace, options: DartsOptions, settings: SearchSettings | None = None
) -> DartsSearch:
    """The search of ``options.method`` (``DartsSearch`` for darts)."""
    return SEARCHES[options.method](space, options, settings)


# ---------------------------------------------------------------------------- helpers
def _cycle(loader) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def _draw_cell(model, probs: torch.Tensor, generator: torch.Generator) -> list[int]:
    """One op index per edge of a cell, a valid cell of the model's space."""
    if not isinstance(model, DartsSupernet):
        return torch.multinomial(probs.float(), 1, generator=generator).squeeze(1).tolist()
    none = DARTS_PRIMITIVES.index("none")
    ops = probs.clone()
    ops[:, none] = 0.0
    mass = ops.sum(1)
    path = [none] * len(model.edges)
    start = 0
    for n in range(len(model.inputs_per_node)):
        count = model.inputs_per_node[n]
        edge_mass = mass[start : start + count].float().clamp_min(1e-12)
        chosen = torch.multinomial(edge_mass, 2, replacement=False, generator=generator)
        for j in chosen.tolist():
            e = start + j
            path[e] = int(torch.multinomial(ops[e].float(), 1, generator=generator))
        start += count
    return path


def _decision_sizes(model) -> list[int]:
    """The ENAS policy's decisions: nb201, one op per edge; darts, per node (input, op,
    second input among the others, op), in cell type order."""
    if not isinstance(model, DartsSupernet):
        return [len(model.primitives)] * len(model.edges) * len(model.cell_types)
    ops = len(DARTS_PRIMITIVES) - 1
    per_cell = []
    for count in model.inputs_per_node:
        per_cell += [count, ops, count - 1, ops]
    return per_cell * len(model.cell_types)


def _path_of_actions(model, actions: list[int]) -> Path:
    """The path the policy's ``actions`` (see ``_decision_sizes``) stand for."""
    if not isinstance(model, DartsSupernet):
        e = len(model.edges)
        return {t: actions[i * e : (i + 1) * e] for i, t in enumerate(model.cell_types)}
    none = DARTS_PRIMITIVES.index("none")
    per_cell = 4 * len(model.inputs_per_node)
    path: Path = {}
    for i, t in enumerate(model.cell_types):
        acts = actions[i * per_cell : (i + 1) * per_cell]
        cell = [none] * len(model.edges)
        start = 0
        for n, count in enumerate(model.inputs_per_node):
            first, op1, second, op2 = acts[4 * n : 4 * n + 4]
            others = [j for j in range(count) if j != first]
            cell[start + first] = op1 + 1  # op decisions skip ``none`` (index 0)
            cell[start + others[second]] = op2 + 1
            start += count
        path[t] = cell
    return path
