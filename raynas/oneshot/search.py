"""The DARTS / PC-DARTS search engine: bilevel optimisation of a supernet's weights and α.

See ``raynas.trainables.darts`` for the algorithm, its defaults and what each epoch reports.
The other one-shot methods (``raynas.oneshot.methods``) subclass ``DartsSearch`` and override
``train_epoch``, ``after_epoch``, ``val_metrics``, ``genotype`` and the state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas import data as datamod
from raynas.nn.supernet import Supernet, build_supernet, check_supernet_options
from raynas.oneshot import derive
from raynas.oneshot.memory import PeakMemory
from raynas.oneshot.options import DartsOptions, SearchSettings
from raynas.torch_state import resolve_device, rng_state, set_rng_state
from search_spaces.base import SearchSpace


def _batches(loader: datamod.Loader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of ``loader`` (a new shuffled pass whenever one ends)."""
    while True:
        yield from loader


class DartsSearch:
    """One bilevel search; the trainable and the benchmarks drive it epoch by epoch.

    Args:
        space: the search space (``space.name`` "darts" or "nb201").
        options: the trainable's options.
        settings: seed, order, pc_k, edge_norm of this search (default: from ``options``).
    """

    #: Whether α drives the search (its softmax is what TensorBoard's heatmaps show); RSPS and
    #: ENAS never train α, so a heatmap of it would only show the uniform initial values.
    learns_alpha = True

    def __init__(
        self,
        space: SearchSpace,
        options: DartsOptions,
        settings: SearchSettings | None = None,
    ) -> None:
        self.space = space
        self.options = options
        self.settings = settings or SearchSettings.resolve(options)
        s = self.settings
        self.device = resolve_device(options.device)
        self.build = check_supernet_options(space.name, dict(options.build))
        torch.manual_seed(s.seed)
        splits = datamod.load(
            options.dataset,
            root=options.root,
            val_fraction=options.val_fraction,
            subset=options.subset,
            seed=s.seed,
            image_size=options.image_size,
        )
        self.splits = splits
        primitives = getattr(space, "ops", None) if space.name == "nb201" else None
        self.model: Supernet = build_supernet(
            space.name,
            num_classes=splits.num_classes,
            in_channels=splits.in_channels,
            k=s.pc_k,
            edge_norm=s.edge_norm,
            primitives=primitives,
            **self.build,
        ).to(self.device)
        self.weights = self.model.weight_parameters()
        self.alphas = self.model.arch_parameters()
        self.params = sum(p.numel() for p in self.weights)
        self.w_optimizer = torch.optim.SGD(
            self.weights,
            lr=options.lr,
            momentum=options.momentum,
            weight_decay=options.weight_decay,
        )
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=options.epochs, eta_min=options.min_lr
        )
        self.a_optimizer = torch.optim.Adam(
            self.alphas,
            lr=options.arch_lr,
            betas=options.arch_betas,
            weight_decay=options.arch_weight_decay,
        )
        self.train_generator = torch.Generator().manual_seed(s.seed)
        self.val_generator = torch.Generator().manual_seed(s.seed + 1)
        self.memory = PeakMemory(self.device)
        self.epoch = 0
        self._table = None

    # ------------------------------------------------------------------ state
    def _identity(self) -> dict[str, Any]:
        identity = {
            "space": self.space.name,
            "settings": asdict(self.settings),
            "build": self.build,
        }
        if self.options.method != "darts":  # darts checkpoints keep their identity
            identity["method"] = self.options.method
        return identity

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "train_generator": self.train_generator.get_state(),
            "val_generator": self.val_generator.get_state(),
            **rng_state(),
            "epoch": self.epoch,
            "identity": self._identity(),
            "options": asdict(self.options),
            "arch": self.arch(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("identity") != self._identity():
            raise ValueError(
                f"checkpoint is for the search {state.get('identity')!r}, not {self._identity()!r}"
            )
        self.model.load_state_dict(state["model"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.train_generator.set_state(state["train_generator"])
        self.val_generator.set_state(state["val_generator"])
        set_rng_state(state)
        self.epoch = int(state["epoch"])

    # ------------------------------------------------------------------ architecture
    def genotype(self) -> Any:
        """The genotype derived from the current α (and β)."""
        return derive.genotype(self.model)

    def arch(self) -> str:
        """Canonical string of the derived genotype."""
        return self.space.to_str(self.genotype())

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.model(x), y)

    def _check_finite(self, loss: torch.Tensor, what: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite {what} ({loss.item()}) at epoch {self.epoch + 1} of the "
                f"{self.space.name} search {asdict(self.settings)}; lower lr/arch_lr, set "
                "grad_clip or check the data"
            )

    def arch_gradients(
        self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor
    ) -> tuple[list[torch.Tensor], float]:
        """∇ of the validation loss w.r.t. α (and β), first or second order.

        Returns:
            The gradients (in ``model.arch_parameters()`` order) and the validation loss
            (at w for first order, at the unrolled w' for second order).
        """
        if self.settings.order == 1:
            loss = self._loss(xv, yv)
            self._check_finite(loss, "validation loss in the architecture step")
            grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
            return _zeros_for_none(grads, self.alphas), loss.item()
        return self._unrolled_gradients(x, y, xv, yv)

    def _unrolled_gradients(self, x, y, xv, yv) -> tuple[list[torch.Tensor], float]:
        opts = self.options
        eta = self.w_optimizer.param_groups[0]["lr"]
        backup = [p.detach().clone() for p in self.weights]
        # w' = w - ξ (momentum · m + ∇w L_train + wd · w): one step of the SGD optimiser.
        loss = self._loss(x, y)
        self._check_finite(loss, "training loss in the unrolled step")
        # BN running statistics: only forwards at the current w count (this one, like the
        # α step's forward in first order); those at w' and w ± εv are undone below.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        grads = _zeros_for_none(
            torch.autograd.grad(loss, self.weights, allow_unused=True), self.weights
        )
        with torch.no_grad():
            for p, g in zip(self.weights, grads, strict=True):
                step = g + opts.weight_decay * p
                buf = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    step = step + opts.momentum * buf
                p.sub_(eta * step)
        val_loss = self._loss(xv, yv)
        self._check_finite(val_loss, "validation loss in the architecture step")
        grads = _zeros_for_none(
            torch.autograd.grad(val_loss, [*self.alphas, *self.weights], allow_unused=True),
            [*self.alphas, *self.weights],
        )
        d_alpha, vector = grads[: len(self.alphas)], grads[len(self.alphas) :]
        _restore(self.weights, backup)
        hvp = self._hessian_vector_product(vector, x, y, backup)
        _restore(list(self.model.buffers()), buffers)
        return [da - eta * h for da, h in zip(d_alpha, hvp, strict=True)], val_loss.item()

    def _hessian_vector_product(self, vector, x, y, backup) -> list[torch.Tensor]:
        """(∇α L_train(w + εv) - ∇α L_train(w - εv)) / 2ε with ε = fd_r / ||v||."""
        norm = torch.sqrt(sum((v.double() ** 2).sum() for v in vector))
        eps = self.options.fd_r / max(float(norm), 1e-12)
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, v in zip(self.weights, backup, vector, strict=True):
                    p.copy_(b + sign * eps * v)
            loss = self._loss(x, y)
            self._check_finite(loss, "training loss in the Hessian-vector product")
            grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
            sides.append(_zeros_for_none(grads, self.alphas))
        _restore(self.weights, backup)
        return [(gp - gn) / (2 * eps) for gp, gn in zip(*sides, strict=True)]

    def arch_step(self, x, y, xv, yv) -> float:
        """One Adam step on α (and β); returns the validation loss of the step."""
        grads, val_loss = self.arch_gradients(x, y, xv, yv)
        for p, g in zip(self.alphas, grads, strict=True):
            p.grad = g.detach()
        self.a_optimizer.step()
        self.a_optimizer.zero_grad(set_to_none=True)
        if not all(torch.isfinite(p).all() for p in self.alphas):
            raise FloatingPointError(
                f"non-finite architecture parameters at epoch {self.epoch + 1} of the "
                f"{self.space.name} search {asdict(self.settings)}; lower arch_lr"
            )
        return val_loss

    def weight_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        path: Mapping[str, Sequence[int]] | None = None,
        path_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[float, int]:
        """One SGD step on w, through the mixed supernet or the single ``path`` (scaled by
        ``path_weights``, see ``Supernet.forward``); returns the training loss and the number
        of correct samples."""
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x, path, path_weights)
        loss = F.cross_entropy(logits, y)
        self._check_finite(loss, "training loss")
        loss.backward(inputs=self.weights)
        if self.options.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.options.grad_clip)
        self.w_optimizer.step()
        return loss.item(), int((logits.argmax(1) == y).sum().item())

    # ------------------------------------------------------------------ epochs
    def _loader(self, split: str, train: bool, generator: torch.Generator) -> datamod.Loader:
        return datamod.Loader(
            self.splits, split, self.options.batch_size, train=train, generator=generator
        )

    def _to_device(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        return [t.to(self.device, non_blocking=True) for t in tensors]

    def train_epoch(self) -> tuple[float, float]:
        """One search epoch: per train batch an α step (after warm-up) then a w step."""
        self.model.train()
        update_arch = self.epoch >= self.options.arch_warmup_epochs
        val_batches = _batches(self._loader("val", True, self.val_generator))
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self._loader("train", True, self.train_generator):
            x, y = self._to_device(x, y)
            if update_arch:
                xv, yv = self._to_device(*next(val_batches))
                self.arch_step(x, y, xv, yv)
            loss, right = self.weight_step(x, y)
            total_loss += loss * len(y)
            correct += right
            seen += len(y)
        self.schedule.step()
        return total_loss / seen, 100.0 * correct / seen

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[float, float]:
        """Loss and accuracy (%) of the supernet on a split, in eval mode."""
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self._loader(split, False, torch.Generator()):
            x, y = self._to_device(x, y)
            logits = self.model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum().item())
            seen += len(y)
        return total_loss / seen, 100.0 * correct / seen

    def alpha_values(self, decimals: int = 4) -> dict[str, list]:
        """Raw α (and β) as nested lists: ``{"alpha_normal": [[...], ...], ...}``."""
        out: dict[str, list] = {}
        for t in self.model.cell_types:
            out[f"alpha_{t}"] = np.round(as_numpy(self.model.alphas[t]), decimals).tolist()
            if self.model.betas is not None:
                out[f"beta_{t}"] = np.round(as_numpy(self.model.betas[t]), decimals).tolist()
        return out

    def after_epoch(self) -> dict[str, Any]:
        """Work after an epoch's training (a method's selection); returns its own metrics."""
        return {}

    def val_metrics(self) -> tuple[float, float]:
        """The epoch's ``val_loss`` / ``val_acc``: the mixed supernet on the val split."""
        return self.evaluate("val")

    def step(self) -> dict[str, Any]:
        """Search one epoch, evaluate and derive; returns the epoch's metrics."""
        start = time.perf_counter()
        lr = self.w_optimizer.param_groups[0]["lr"]
        self.memory.reset()
        train_loss, train_acc = self.train_epoch()
        self.epoch += 1
        own = self.after_epoch()
        val_loss, val_acc = self.val_metrics()
        peak = self.memory.peak_mb()
        genotype = self.genotype()
        entropy = self.model.alpha_entropy()
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "arch": self.space.to_str(genotype),
            "genotype": json.dumps(self.space.to_json(genotype)),
            "alpha_entropy": float(np.mean(list(entropy.values()))),
            **{f"alpha_entropy_{t}": v for t, v in entropy.items()},
            "lr": lr,
            "params_m": self.params / 1e6,
            "peak_mem_mb": peak,
            **asdict(self.settings),
            **self.alpha_values(),
            **own,
        }
        if self.options.nb201_table and self.space.name == "nb201":
            if self._table is None:
                from raynas.benchmarks import nb201

                self._table = nb201.table()
            entry = self._table.lookup(metrics["arch"], self.options.nb201_table)
            metrics["table_val_acc"], metrics["table_test_acc"] = entry.val_acc, entry.test_acc
        metrics["cost_s"] = time.perf_counter() - start
        return metrics


def _zeros_for_none(grads: Sequence[torch.Tensor | None], params) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]


def _restore(params: Sequence[torch.Tensor], backup: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()
