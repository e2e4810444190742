"""An ensemble of small MLP regressors trained together, for performance prediction.

``MLPEnsemble`` holds ``members`` fully connected networks (``layers`` hidden layers of
``hidden`` ReLU units) as stacked weight tensors, so the whole ensemble trains and predicts in
one batched pass (``torch.baddbmm``) instead of one network at a time. Members differ by their
random initialisation (PyTorch's default uniform fan-in bounds) and, optionally, by a bootstrap
resample of the data; the spread of their predictions is the ensemble's uncertainty
(Lakshminarayanan et al. 2017; BANANAS, White et al. 2021).

Training is full-batch Adam (``torch.optim.Adam``'s update, see ``_Adam``) on the mean
squared error of standardised targets for ``epochs`` steps, from a fresh initialisation at
every ``fit``, or, with ``fit(..., warm=steps)`` on a fitted ensemble, for ``steps`` steps
from the current weights (each member keeps its own weights, so the spread of the members
stays; the targets are standardised afresh and Adam's moments start from zero). Everything
random comes from the ``torch.Generator`` passed in; torch's global RNG is never drawn from.
Training and prediction run on the CPU on
one intra-op thread (the ops are tiny; see ``raynas.torch_state.single_thread``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch

from raynas.registry import check_int
from raynas.torch_state import single_thread


class MLPEnsemble:
    """``members`` MLPs ``dim -> hidden x layers -> 1`` trained together.

    Args:
        members: networks in the ensemble (>= 1; one gives no uncertainty).
        hidden: units per hidden layer (>= 1).
        layers: hidden layers (>= 1).
        epochs: full-batch Adam steps per ``fit`` (>= 1).
        lr: Adam's learning rate (> 0).
        weight_decay: Adam's L2 penalty (>= 0).
        bootstrap: train each member on its own bootstrap resample of the data.
    """

    def __init__(
        self,
        members: int = 5,
        hidden: int = 32,
        layers: int = 2,
        epochs: int = 200,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        bootstrap: bool = False,
    ) -> None:
        for name, value in (("members", members), ("hidden", hidden), ("layers", layers)):
            check_int(name, value, 1)
        check_int("epochs", epochs, 1)
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, int | float)
            or not weight_decay >= 0
        ):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.members = int(members)
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.bootstrap = bool(bootstrap)
        self.weights: list[torch.Tensor] = []  # per layer: (members, fan_in, fan_out)
        self.biases: list[torch.Tensor] = []  # per layer: (members, 1, fan_out)
        self.y_mean = 0.0
        self.y_std = 1.0

    @property
    def fitted(self) -> bool:
        return bool(self.weights)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        generator: torch.Generator,
        warm: int | None = None,
    ) -> float:
        """Train every member on ``x`` (n x dim) and ``y`` (n).

        Args:
            x: inputs, n x dim.
            y: targets, n.
            generator: source of the initial weights and bootstrap resamples.
            warm: None to train ``epochs`` steps from a fresh initialisation; ``k`` >= 1 to
                train ``k`` steps from the current weights when the ensemble is fitted on
                inputs of the same width (else from a fresh initialisation for ``epochs``).

        Returns:
            The final training loss (mean squared error of the standardised targets).
        """
        if warm is not None:
            check_int("warm", warm, 1)
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        y_np = np.asarray(y, dtype=np.float64)
        if x_t.ndim != 2 or len(x_t) != len(y_np) or len(y_np) == 0:
            raise ValueError(
                f"need n x dim inputs and n targets, got {tuple(x_t.shape)}, {y.shape}"
            )
        self.y_mean = float(y_np.mean())
        self.y_std = float(y_np.std()) if len(y_np) > 1 and y_np.std() > 0 else 1.0
        y_t = torch.as_tensor((y_np - self.y_mean) / self.y_std, dtype=torch.float32)
        steps = self.epochs
        with single_thread():
            if warm is not None and self.fitted and self.weights[0].shape[1] == x_t.shape[1]:
                params = [*self.weights, *self.biases]
                for p in params:
                    p.requires_grad_(True)
                steps = warm
            else:
                params = self._init(x_t.shape[1], generator)
            n = len(y_t)
            if self.bootstrap:
                rows = torch.randint(n, (self.members, n), generator=generator)
                inputs, targets = x_t[rows], y_t[rows]
            else:
                inputs = x_t.unsqueeze(0).expand(self.members, -1, -1)
                targets = y_t.unsqueeze(0).expand(self.members, -1)
            loss = torch.tensor(math.nan)
            adam = _Adam(params, self.lr, self.weight_decay)
            for _ in range(steps):
                for p in params:
                    p.grad = None
                loss = ((self._forward(inputs) - targets) ** 2).mean()
                loss.backward()
                adam.step()
        for p in params:
            p.requires_grad_(False)
        return float(loss.detach())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions of every member for ``x`` (n x dim), in the units of ``y``:
        a (members x n) array."""
        if not self.fitted:
            raise RuntimeError("MLPEnsemble.predict before fit")
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        with single_thread(), torch.no_grad():
            out = self._forward(x_t.unsqueeze(0).expand(self.members, -1, -1))
        return out.numpy().astype(np.float64) * self.y_std + self.y_mean

    def _init(self, dim: int, generator: torch.Generator) -> list[torch.Tensor]:
        sizes = [dim] + [self.hidden] * self.layers + [1]
        self.weights, self.biases = [], []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation bounds
            w = torch.empty(self.members, fan_in, fan_out).uniform_(
                -bound, bound, generator=generator
            )
            b = torch.empty(self.members, 1, fan_out).uniform_(-bound, bound, generator=generator)
            self.weights.append(w.requires_grad_())
            self.biases.append(b.requires_grad_())
        return [*self.weights, *self.biases]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        return {
            "weights": [w.detach().clone() for w in self.weights],
            "biases": [b.detach().clone() for b in self.biases],
            "y_mean": self.y_mean,
            "y_std": self.y_std,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.weights = [w.clone() for w in state["weights"]]
        self.biases = [b.clone() for b in state["biases"]]
        self.y_mean = state["y_mean"]
        self.y_std = state["y_std"]


class _Adam:
    """``torch.optim.Adam``'s default CPU update (betas 0.9/0.999, eps 1e-8, L2 weight decay,
    one tensor at a time), written out: the same arithmetic in the same order, without
    ``torch.optim``'s per-step wrappers, whose first call imports ``torch._dynamo`` (1-2 s of
    CPU once per process, which fell on a searcher's first suggestion with a fit)."""

    BETA1, BETA2, EPS = 0.9, 0.999, 1e-8

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float) -> None:
        self.params = params
        self.lr = lr
        self.weight_decay = weight_decay
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        step = float(self.steps)
        step_size = self.lr / (1 - self.BETA1**step)
        bias_correction2_sqrt = (1 - self.BETA2**step) ** 0.5
        for p, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            grad = p.grad
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            exp_avg.lerp_(grad, 1 - self.BETA1)
            exp_avg_sq.mul_(self.BETA2).addcmul_(grad, grad, value=1 - self.BETA2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.EPS)
            p.addcdiv_(exp_avg, denom, value=-step_size)
