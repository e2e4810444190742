"""``darts`` trainable: one differentiable architecture search (DARTS / PC-DARTS) per trial.

A trial trains the weight-sharing supernet of the experiment's space (``darts`` or ``nb201``,
see ``raynas.nn.supernet``) with DARTS' bilevel optimisation (Liu et al., ICLR 2019) on a
split of the training data: the weights w by SGD on the ``train`` split, the architecture
parameters α by Adam on the ``val`` split (``val_fraction``, half of the images by default as
in DARTS). Each iteration first updates α on a val batch, then w on a train batch:

* ``order: 1`` (first order, ξ = 0): ∇α L_val(w, α).
* ``order: 2`` (second order, one unrolled step): ∇α L_val(w', α) - ξ ∇²_{α,w} L_train(w, α)
  ∇w' L_val(w', α) with w' = w - ξ (momentum · m + ∇w L_train(w, α) + wd · w) and ξ the
  current weight learning rate; the Hessian-vector product by central finite differences
  with ε = ``fd_r`` / ||∇w' L_val|| (DARTS' ``_hessian_vector_product``).
* ``pc_k: K > 1`` with ``edge_norm`` (default on with K > 1): PC-DARTS (Xu et al., ICLR
  2020): partial channel connections with ratio 1/K and edge normalisation. PC-DARTS also
  waits ``arch_warmup_epochs`` (15 in the paper) before updating α; the default here is 0.

Defaults are the DARTS paper's: w by SGD lr 0.025, momentum 0.9, weight decay 3e-4, cosine
to 0.001, gradient clipping at 5; α by Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3;
supernet C=16 with 8 cells (darts) or C=16, N=5 (nb201).

**Tune config.** The experiment passes the space's ``tune_space()`` as param space; a darts
trial IGNORES those architecture keys (the search happens inside the trial). It reads only
these optional keys, which override the options of the same name, so several searches can be
trials of one experiment (unknown ``darts.*`` keys are an error):

    darts.seed       int       seed of the data split, supernet init, α init and batch order
    darts.order      1 | 2     first or second order
    darts.pc_k       int >= 1  PC-DARTS channel ratio (1 = DARTS)
    darts.edge_norm  bool      PC-DARTS edge normalisation (default: pc_k > 1)

The ``sweep`` option (e.g. ``{seed: [0, 1, 2], order: [1, 2]}``) builds these keys as Tune
grid searches; they are in ``make(...).param_space``, which the experiment merges into the
param space (with Tune's random searcher: every combination is run ``num_samples`` times).

**Reported per epoch** (plus Tune's own keys): ``epoch``, ``train_loss``, ``train_acc`` (the
weight steps, train mode), ``val_loss``, ``val_acc`` (the supernet on the whole val split, eval
mode), ``arch`` (the derived genotype's canonical string), ``genotype`` (``space.to_json`` of
it, as JSON text so Tune's loggers keep it whole), ``alpha_entropy`` (mean entropy of
softmax(α) over all edges, nats; per cell type as ``alpha_entropy_normal`` and, for darts,
``alpha_entropy_reduce``), ``alpha_normal`` (and ``alpha_reduce``) the raw α as a nested list
(edges x ops, 4 decimals; an nb201 cell's α is ``alpha_normal``), ``beta_*`` with edge
normalisation, ``lr``, ``params_m`` (supernet weights), ``peak_mem_mb``, ``cost_s`` (seconds
for the epoch, evaluation included), ``seed``, ``order``, ``pc_k``; with ``nb201_table`` set
(nb201 space only) ``table_val_acc`` / ``table_test_acc`` of the derived cell in the shipped
NB201 table.

``peak_mem_mb``: on CUDA ``torch.cuda.max_memory_allocated`` over the epoch (reset at the
start). On CPU the peak resident set size of the process over the epoch: ``VmHWM`` of
``/proc/self/status``, reset at the start of the epoch by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0); where that is impossible, the process lifetime peak
(``ru_maxrss``). It includes the process baseline (Python, torch, Ray, the dataset), so compare
it between trials of one machine; ``benchmarks/darts.py`` measures activation memory alone.

**Checkpoints** every epoch: supernet weights and α/β, both optimisers, the LR schedule, both
batch-order generators, torch's RNG, the epoch; a restored trial continues exactly (CPU,
fixed seed). **TensorBoard**: per epoch, softmax(α) of each cell type as a heatmap image
(rows: edges, columns: ops; colours scaled from the image's min to its max), the α table and
the genotype as text, written into the trial's folder (``tune.get_context().get_trial_dir()``;
Tune copies it to the experiment folder with ``SyncConfig(sync_artifacts=True)``), next to
Tune's scalars, and flushed to disk before the epoch is reported, so a trial stopped right after
its report keeps its last epoch (``raynas.tensorboard.summary_writer``). A non-finite loss or α
ends the trial with ``FloatingPointError``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas import data as datamod
from raynas.nn.supernet import SUPERNET_OPTIONS, Supernet, build_supernet, check_supernet_options
from raynas.trainables.train import resolve_device, rng_state, set_rng_state
from search_spaces.base import SearchSpace

CHECKPOINT_FILE = "state.pt"
#: Prefix of the Tune config keys a darts trial reads.
CONFIG_PREFIX = "darts."
#: Settings that a trial's config may override (``darts.<name>``), and which ``sweep`` takes.
CONFIG_KEYS = ("seed", "order", "pc_k", "edge_norm")


@dataclass(frozen=True)
class DartsOptions:
    """Options of the ``darts`` trainable (validated in ``__post_init__``)."""

    dataset: str = "digits"
    root: str | None = None
    val_fraction: float | int = 0.5
    subset: float | int | None = None
    image_size: int | None = None
    epochs: int = 50
    batch_size: int = 64
    build: dict = field(default_factory=dict)
    lr: float = 0.025
    min_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_warmup_epochs: int = 0
    order: int = 1
    fd_r: float = 0.01
    pc_k: int = 1
    edge_norm: bool | None = None
    seed: int = 0
    sweep: dict | None = None
    nb201_table: str | None = None
    device: str = "auto"
    threads: int | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an int >= 1, got {value!r}")
        for key in ("lr", "arch_lr", "fd_r"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)!r}")
        for key in ("min_lr", "weight_decay", "arch_weight_decay"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or null, got {self.grad_clip!r}")
        betas = tuple(self.arch_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"arch_betas must be two numbers in [0, 1), got {self.arch_betas!r}")
        object.__setattr__(self, "arch_betas", (float(betas[0]), float(betas[1])))
        if self.arch_warmup_epochs < 0:
            raise ValueError(f"arch_warmup_epochs must be >= 0, got {self.arch_warmup_epochs!r}")
        check_setting("order", self.order)
        check_setting("pc_k", self.pc_k)
        check_setting("seed", self.seed)
        if self.edge_norm is not None:
            check_setting("edge_norm", self.edge_norm)
        if self.dataset not in datamod.NAMES:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; choose one of: {', '.join(datamod.NAMES)}"
            )
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1 or null, got {self.image_size!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.nb201_table is not None:
            from raynas.benchmarks.nb201 import check_dataset

            check_dataset(self.nb201_table)
        if self.sweep is not None:
            sweep_space(self.sweep)


def check_setting(name: str, value: Any) -> Any:
    """Validate one per-trial setting (``seed``, ``order``, ``pc_k``, ``edge_norm``)."""
    if name == "edge_norm":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"edge_norm must be true or false, got {value!r}")
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if name == "order" and value not in (1, 2):
        raise ValueError(f"order must be 1 (first order) or 2 (second order), got {value}")
    if name == "pc_k" and value < 1:
        raise ValueError(f"pc_k must be >= 1 (1 = DARTS, no partial channels), got {value}")
    if name == "seed" and value < 0:
        raise ValueError(f"seed must be >= 0, got {value}")
    return value


def sweep_space(sweep: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    """Tune grid searches over ``darts.<key>`` for the settings in ``sweep``.

    Raises:
        ValueError: an unknown key, an empty list, or an invalid value.
    """
    from ray import tune

    if not sweep:
        return {}
    if not isinstance(sweep, Mapping):
        raise ValueError(f"sweep must be a mapping such as {{seed: [0, 1]}}, got {sweep!r}")
    space = {}
    for key, values in sweep.items():
        if key not in CONFIG_KEYS:
            raise ValueError(f"unknown sweep key {key!r}; valid keys: {', '.join(CONFIG_KEYS)}")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"sweep.{key} must be a non-empty list, got {values!r}")
        space[CONFIG_PREFIX + key] = tune.grid_search([check_setting(key, v) for v in values])
    return space


@dataclass(frozen=True)
class SearchSettings:
    """What distinguishes one search (trial) from another of the same experiment."""

    seed: int = 0
    order: int = 1
    pc_k: int = 1
    edge_norm: bool = False

    @classmethod
    def resolve(cls, options: DartsOptions, config: Mapping[str, Any] | None = None):
        """Options, overridden by the ``darts.*`` keys of a Tune config.

        Raises:
            ValueError: an unknown ``darts.*`` key or an invalid value.
        """
        config = config or {}
        values: dict[str, Any] = {
            "seed": options.seed,
            "order": options.order,
            "pc_k": options.pc_k,
            "edge_norm": options.edge_norm,
        }
        for key, value in config.items():
            if not str(key).startswith(CONFIG_PREFIX):
                continue  # the space's architecture keys: not used by a search
            name = str(key)[len(CONFIG_PREFIX) :]
            if name not in CONFIG_KEYS:
                raise ValueError(
                    f"unknown config key {key!r} for trainable 'darts'; valid keys: "
                    f"{', '.join(CONFIG_PREFIX + k for k in CONFIG_KEYS)}"
                )
            values[name] = check_setting(name, value)
        missing = [k for k in (options.sweep or {}) if CONFIG_PREFIX + k not in config]
        if missing:
            raise ValueError(
                f"option sweep lists {', '.join(missing)} but the trial config has no "
                f"{', '.join(CONFIG_PREFIX + k for k in missing)}: the experiment must add the "
                "trainable's param_space to the Tuner's param_space"
            )
        if values["edge_norm"] is None:
            values["edge_norm"] = values["pc_k"] > 1
        return cls(**values)


# ------------------------------------------------------------------------------ memory
def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            text = fh.read()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


class PeakMemory:
    """Peak memory (MB) since ``reset``: CUDA max allocated, or the process RSS peak on CPU.

    On CPU ``reset`` writes ``5`` to ``/proc/self/clear_refs``, which resets ``VmHWM`` (the
    RSS high-water mark) to the current RSS; without it (no procfs, no permission) the peak
    is the process lifetime's (``getrusage``'s ``ru_maxrss``) and ``resettable`` is False.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.resettable = device.type == "cuda"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        kb = _proc_status_kb("VmHWM") if self.resettable else None
        if kb is None:
            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
        return kb / 1024


def rss_mb() -> float | None:
    """Current resident set size of this process in MB (``None`` without procfs)."""
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb / 1024


# ------------------------------------------------------------------------------ search
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
            root=options.root or datamod.default_root(),
            val_fraction=options.val_fraction,
            subset=options.subset,
            seed=s.seed,
        )
        if options.image_size is not None:
            splits = splits.resized(options.image_size)
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
        return {"space": self.space.name, "settings": asdict(self.settings), "build": self.build}

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
        return self.model.genotype()

    def arch(self) -> str:
        """Canonical string of the derived genotype."""
        return self.space.to_str(self.genotype())

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return F.cross_entropy(logits, y), logits

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
            loss, _ = self._loss(xv, yv)
            self._check_finite(loss, "validation loss in the architecture step")
            grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
            return _zeros_for_none(grads, self.alphas), loss.item()
        return self._unrolled_gradients(x, y, xv, yv)

    def _unrolled_gradients(self, x, y, xv, yv) -> tuple[list[torch.Tensor], float]:
        opts = self.options
        eta = self.w_optimizer.param_groups[0]["lr"]
        backup = [p.detach().clone() for p in self.weights]
        # w' = w - ξ (momentum · m + ∇w L_train + wd · w): one step of the SGD optimiser.
        loss, _ = self._loss(x, y)
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
        val_loss, _ = self._loss(xv, yv)
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
            loss, _ = self._loss(x, y)
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

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """One SGD step on w; returns the training loss and the number of correct samples."""
        self.w_optimizer.zero_grad(set_to_none=True)
        loss, logits = self._loss(x, y)
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
            out[f"alpha_{t}"] = np.round(_numpy(self.model.alphas[t]), decimals).tolist()
            if self.model.betas is not None:
                out[f"beta_{t}"] = np.round(_numpy(self.model.betas[t]), decimals).tolist()
        return out

    def step(self) -> dict[str, Any]:
        """Search one epoch, evaluate and derive; returns the epoch's metrics."""
        start = time.perf_counter()
        lr = self.w_optimizer.param_groups[0]["lr"]
        self.memory.reset()
        train_loss, train_acc = self.train_epoch()
        self.epoch += 1
        val_loss, val_acc = self.evaluate("val")
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


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


# ------------------------------------------------------------------------------ TensorBoard
# Viridis anchor colours (0, .25, .5, .75, 1): a colour map without matplotlib.
_VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float
)


def alpha_heatmap(weights: np.ndarray, cell: int = 12) -> np.ndarray:
    """A (3, H, W) uint8 image of a 2-D array: one ``cell`` x ``cell`` square per value,
    colours from the array's min (dark) to its max (yellow)."""
    w = np.asarray(weights, dtype=float)
    span = w.max() - w.min()
    norm = (w - w.min()) / span if span > 0 else np.zeros_like(w)
    pos = norm * (len(_VIRIDIS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (pos - lo)[..., None]
    rgb = _VIRIDIS[lo] * (1 - frac) + _VIRIDIS[lo + 1] * frac
    img = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    return img.round().astype(np.uint8).transpose(2, 0, 1)


def alpha_table(weights: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> str:
    """A markdown table of op weights (rows: edges, columns: ops)."""
    lines = ["| edge | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, row in zip(rows, weights, strict=True):
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines)


class AlphaBoard:
    """Per-epoch TensorBoard images (softmax(α) heatmaps) and texts (α table, genotype).

    The writer opens lazily, so the object can be created anywhere; ``close`` when done.
    """

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir
        self._writer = None

    def log(self, search: DartsSearch, metrics: Mapping[str, Any]) -> None:
        if self._writer is None:
            from raynas.tensorboard import summary_writer

            self._writer = summary_writer(self.logdir)
        step = int(metrics["epoch"])
        model = search.model
        with torch.no_grad():
            weights = {t: _numpy(w) for t, w in model.op_weights().items()}
        for t, w in weights.items():
            self._writer.add_image(f"alpha/{t}", alpha_heatmap(w), step, dataformats="CHW")
            self._writer.add_text(
                f"alpha/{t}_table", alpha_table(w, model.edge_labels(), model.primitives), step
            )
        self._writer.add_text("genotype", f"`{metrics['arch']}`", step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# ------------------------------------------------------------------------------ trainable
def make(space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The ``darts`` trainable for ``space``; options are those of ``DartsOptions``.

    The returned function has a ``param_space`` attribute: the Tune keys of ``sweep`` (empty
    without it), to be merged into the experiment's param space.

    Raises:
        ValueError: unsupported space, unknown option or invalid value.
    """
    valid = [f.name for f in dataclasses.fields(DartsOptions)]
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown option {key!r} for trainable 'darts'; valid options: {', '.join(valid)}"
            )
    if space.name not in SUPERNET_OPTIONS:
        raise ValueError(
            f"trainable 'darts' supports the search spaces {', '.join(SUPERNET_OPTIONS)}, "
            f"not {space.name!r}"
        )
    opts = DartsOptions(**options)
    build = check_supernet_options(space.name, dict(opts.build))
    for k in {opts.pc_k, *(opts.sweep or {}).get("pc_k", [])}:
        if build["C"] % k:
            raise ValueError(f"build.C ({build['C']}) must be divisible by pc_k ({k})")
    if opts.nb201_table and space.name != "nb201":
        raise ValueError("option nb201_table needs the nb201 space")

    def darts_trainable(config: dict) -> None:
        from ray import tune

        settings = SearchSettings.resolve(opts, config)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        search = DartsSearch(space, opts, settings)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                state = torch.load(
                    os.path.join(folder, CHECKPOINT_FILE), map_location="cpu", weights_only=False
                )
            search.load_state_dict(state)
        board = AlphaBoard(tune.get_context().get_trial_dir()) if opts.tensorboard else None
        try:
            while search.epoch < opts.epochs:
                metrics = search.step()
                if board is not None:
                    board.log(search, metrics)
                with tempfile.TemporaryDirectory() as folder:
                    torch.save(search.state_dict(), os.path.join(folder, CHECKPOINT_FILE))
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        finally:
            if board is not None:
                board.close()

    darts_trainable.param_space = sweep_space(opts.sweep)
    return darts_trainable


__all__ = [
    "CONFIG_KEYS",
    "AlphaBoard",
    "DartsOptions",
    "DartsSearch",
    "PeakMemory",
    "SearchSettings",
    "alpha_heatmap",
    "make",
]
