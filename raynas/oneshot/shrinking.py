"""Progressive shrinking of an OFA supernet (Cai et al., ICLR 2020), epoch by epoch.

See ``raynas.trainables.supernet`` for the schedule, the options and what each epoch reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raynas import data as datamod
from raynas.nn.measure import count_params
from raynas.nn.ofa import (
    DEPTHS,
    EXPANDS,
    KERNELS,
    LARGEST,
    MAX_DEPTH,
    MAX_EXPAND,
    MAX_KERNEL,
    NUM_STAGES,
    SMALLEST,
    OFASupernet,
    Stages,
    random_stages,
    recalibrate_bn,
)
from raynas.oneshot.options import check_training
from raynas.registry import check_int, sweep_grid
from raynas.torch_state import resolve_device, rng_state, set_rng_state

#: The phases of progressive shrinking, in the order they run.
PHASES = ("full", "kernel", "depth", "expand")
#: CPU-sized default schedule (epochs per phase).
DEFAULT_PHASES = {"full": 2, "kernel": 1, "depth": 1, "expand": 2}
#: OFA's base learning rates of the elastic phases per 64-image batch (train_ofa_net.py:
#: kernel 3e-2, depth and expand 7.5e-3 in their final steps; OFA multiplies them by the
#: number of 64-image GPU batches). The full phase uses ``lr``.
OFA_PHASE_LR = {"kernel": 3e-2, "depth": 7.5e-3, "expand": 7.5e-3}
#: Prefix of the Tune config keys a supernet trial reads.
CONFIG_PREFIX = "supernet."
#: Settings a trial's config may override (``supernet.<name>``), and which ``sweep`` takes.
CONFIG_KEYS = ("seed", "sandwich", "kd_ratio")

#: Per phase, the kernels, expand ratios and depths its subnets are drawn from (OFA: each
#: phase opens one more dimension; the others stay at their largest value).
PHASE_RANGES: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "full": ((MAX_KERNEL,), (MAX_EXPAND,), (MAX_DEPTH,)),
    "kernel": (KERNELS, (MAX_EXPAND,), (MAX_DEPTH,)),
    "depth": (KERNELS, (MAX_EXPAND,), DEPTHS),
    "expand": (KERNELS, EXPANDS, DEPTHS),
}


def check_phases(phases: Any) -> dict[str, int]:
    """``phases`` as ``{phase: epochs}`` in running order (``PHASES``, whatever the order of
    the mapping).

    Raises:
        ValueError: not a mapping, empty, an unknown phase, or epochs that are not an integer
            >= 1.
    """
    if not isinstance(phases, Mapping) or not phases:
        raise ValueError(
            f"phases must be a non-empty mapping of phase to epochs such as "
            f"{{full: 2, kernel: 1}}, got {phases!r}"
        )
    for name in phases:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; choose from: {', '.join(PHASES)}")
        check_int(f"phases.{name}", phases[name], 1)
    # Always in PHASES order, whatever the mapping's: YAML writers may sort keys.
    return {name: int(phases[name]) for name in PHASES if name in phases}


def check_setting(name: str, value: Any) -> Any:
    """Validate one per-trial setting (``seed``, ``sandwich``, ``kd_ratio``)."""
    if name == "sandwich":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"sandwich must be true or false, got {value!r}")
        return bool(value)
    if name == "kd_ratio":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"kd_ratio must be a number >= 0, got {value!r}")
        return float(value)
    check_int(name, value, 0)
    return int(value)


@dataclass(frozen=True)
class SupernetOptions:
    """Options of the ``supernet`` trainable (validated in ``__post_init__``)."""

    dataset: str = "digits"
    root: str | None = None
    val_fraction: float | int = 0.1
    subset: float | int | None = None
    image_size: int | None = None
    phases: dict = field(default_factory=lambda: dict(DEFAULT_PHASES))
    batch_size: int = 64
    lr: float = 0.05
    phase_lr: dict | None = None
    elastic_warmup: float = 0.0
    min_lr: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-5
    grad_clip: float | None = None
    subnets_per_step: int = 1
    sandwich: bool = False
    kd_ratio: float = 0.0
    kd_temperature: float = 1.0
    kernel_transform: bool = True
    eval_subnets: int = 4
    eval_seed: int = 0
    bn_batches: int = 4
    seed: int = 0
    sweep: dict | None = None
    device: str = "auto"
    threads: int | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", check_phases(self.phases))
        check_int("batch_size", self.batch_size, 1)
        check_int("subnets_per_step", self.subnets_per_step, 1)
        check_int("eval_subnets", self.eval_subnets, 0)
        check_int("eval_seed", self.eval_seed, 0)
        check_int("bn_batches", self.bn_batches, 0)
        check_training(
            self,
            positive=("lr", "kd_temperature"),
            non_negative=("min_lr", "weight_decay", "elastic_warmup"),
        )
        rates = {} if self.phase_lr is None else self.phase_lr
        if not isinstance(rates, Mapping):
            raise ValueError(f"phase_lr must be a mapping such as {{kernel: 0.03}}, got {rates!r}")
        for name, value in rates.items():
            if name not in PHASES:
                raise ValueError(
                    f"unknown phase {name!r} in phase_lr; choose from: {', '.join(PHASES)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"phase_lr.{name} must be a number > 0, got {value!r}")
        for key in ("seed", "sandwich", "kd_ratio"):
            check_setting(key, getattr(self, key))
        if self.image_size is not None:
            check_int("image_size", self.image_size, 1)
        if self.sweep is not None:
            sweep_space(self.sweep)

    def base_lr(self, phase: str) -> float:
        """The learning rate ``phase`` starts its cosine from: ``phase_lr[phase]`` if given,
        else ``lr`` for the full phase and OFA's rate (``OFA_PHASE_LR``) scaled linearly by
        ``batch_size / 64`` for the elastic ones."""
        if self.phase_lr and phase in self.phase_lr:
            return float(self.phase_lr[phase])
        if phase == "full":
            return self.lr
        return OFA_PHASE_LR[phase] * self.batch_size / 64

    @property
    def epochs(self) -> int:
        """Epochs of all phases together."""
        return sum(self.phases.values())


def sweep_space(sweep: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    """Tune grid searches over ``supernet.<key>`` (``raynas.registry.sweep_grid``)."""
    return sweep_grid(sweep, CONFIG_PREFIX, CONFIG_KEYS, check_setting)


@dataclass(frozen=True)
class TrialSettings:
    """What distinguishes one supernet (trial) from another of the same experiment."""

    seed: int = 0
    sandwich: bool = False
    kd_ratio: float = 0.0

    @classmethod
    def resolve(cls, options: SupernetOptions, config: Mapping[str, Any] | None = None):
        """Options, overridden by the ``supernet.*`` keys of a Tune config (other keys, the
        space's architecture keys, are ignored).

        Raises:
            ValueError: an unknown ``supernet.*`` key or an invalid value.
        """
        values = {key: getattr(options, key) for key in CONFIG_KEYS}
        for key, value in (config or {}).items():
            if str(key).startswith(CONFIG_PREFIX):
                name = str(key)[len(CONFIG_PREFIX) :]
                if name not in CONFIG_KEYS:
                    raise ValueError(
                        f"unknown config key {key!r} for trainable 'supernet'; valid keys: "
                        f"{', '.join(CONFIG_PREFIX + k for k in CONFIG_KEYS)}"
                    )
                values[name] = check_setting(name, value)
        return cls(**values)


def stages_to_str(stages: Stages) -> str:
    """The ``mobilenetv3`` space's canonical string of ``stages``."""
    from search_spaces.mobilenetv3 import MobileNetV3Genotype, genotype_to_str

    return genotype_to_str(MobileNetV3Genotype(tuple(map(len, stages)), stages))


def _phase_smallest(phase: str) -> Stages:
    kernels, expands, depths = PHASE_RANGES[phase]
    return ((((min(kernels), min(expands)),) * min(depths)),) * NUM_STAGES


def _kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened outputs, times T^2 (Hinton et al.)."""
    t = temperature
    return F.kl_div(
        F.log_softmax(student / t, dim=1), F.softmax(teacher / t, dim=1), reduction="batchmean"
    ) * (t * t)


class ProgressiveShrinking:
    """Trains one OFA supernet; the trainable and the benchmarks drive it epoch by epoch.

    Args:
        options: the trainable's options.
        width_mult: the supernet's channel multiplier (the space's).
        dropout: dropout before the classifier (the space's).
        settings: seed, sandwich, kd_ratio of this trial (default: from ``options``).
    """

    def __init__(
        self,
        options: SupernetOptions,
        width_mult: float = 1.0,
        dropout: float = 0.1,
        settings: TrialSettings | None = None,
    ) -> None:
        self.options = options
        self.settings = settings or TrialSettings.resolve(options)
        s = self.settings
        self.device = resolve_device(options.device)
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
        self.model = OFASupernet(
            width_mult=width_mult,
            num_classes=splits.num_classes,
            in_channels=splits.in_channels,
            dropout=dropout,
            kernel_transform=options.kernel_transform,
        ).to(self.device)
        # No weight decay on BatchNorm, biases and kernel transforms (OFA: "bn#bias").
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            plain = p.dim() > 1 and "transforms" not in name
            (decay if plain else no_decay).append(p)
        self.optimizer = torch.optim.SGD(
            [
                {"params": decay, "weight_decay": options.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=options.lr,
            momentum=options.momentum,
            nesterov=options.nesterov and options.momentum > 0,
        )
        self.generator = torch.Generator().manual_seed(s.seed)
        self.sampler = np.random.default_rng([s.seed, 1])
        # The same subnets are scored every epoch, and in every trial with the same eval_seed.
        eval_rng = np.random.default_rng([options.eval_seed, 2])
        self.eval_stages = [random_stages(eval_rng) for _ in range(options.eval_subnets)]
        self.params = count_params(self.model.subnet(LARGEST))
        #: The largest subnet's canonical mobilenetv3 string (what ``val_acc`` scores).
        self.arch = stages_to_str(LARGEST)
        self.epoch = 0
        self._calibration: list[torch.Tensor] | None = None

    # ------------------------------------------------------------------ schedule
    def phase_at(self, epoch: int) -> tuple[str, int, int]:
        """``(phase, epoch within it from 0, its epochs)`` of the 0-based ``epoch``."""
        start = 0
        for phase, epochs in self.options.phases.items():
            if epoch < start + epochs:
                return phase, epoch - start, epochs
            start += epochs
        raise ValueError(f"epoch {epoch} is past the schedule ({self.options.epochs} epochs)")

    def lr_at(self, epoch: int, progress: float) -> float:
        """Cosine from the phase's rate (``SupernetOptions.base_lr``) to ``min_lr``, restarted
        each phase as OFA does; ``progress`` in [0, 1) is the fraction of the epoch done.

        An elastic phase first rises linearly from ``min_lr`` to its rate over
        ``elastic_warmup`` epochs (at most half the phase), then runs its cosine over the rest.
        """
        phase, index, epochs = self.phase_at(epoch)
        o = self.options
        base = o.base_lr(phase)
        done = index + progress
        warmup = 0.0 if phase == "full" else min(o.elastic_warmup, epochs / 2)
        if done < warmup:
            return o.min_lr + (base - o.min_lr) * done / warmup
        t = (done - warmup) / (epochs - warmup)
        return o.min_lr + 0.5 * (base - o.min_lr) * (1 + math.cos(math.pi * t))

    def step_subnets(self, phase: str) -> list[Stages]:
        """The subnets trained on one batch: the largest alone in the full phase; else
        ``subnets_per_step`` random ones, preceded by the largest and the phase's smallest
        with the sandwich rule (by the largest alone with distillation)."""
        if phase == "full":
            return [LARGEST]
        kernels, expands, depths = PHASE_RANGES[phase]
        drawn = [
            random_stages(self.sampler, kernels, expands, depths)
            for _ in range(self.options.subnets_per_step)
        ]
        if self.settings.sandwich:
            return [LARGEST, _phase_smallest(phase), *drawn]
        if self.settings.kd_ratio > 0:
            return [LARGEST, *drawn]
        return drawn

    # ------------------------------------------------------------------ state
    def identity(self) -> dict[str, Any]:
        return {**self.model.identity(), "settings": asdict(self.settings)}

    def saved_options(self) -> dict[str, Any]:
        """The options as this trial ran them (its settings in place of the options')."""
        return {**asdict(self.options), **asdict(self.settings)}

    def state_dict(self) -> dict[str, Any]:
        phase = self.phase_at(self.epoch - 1)[0] if self.epoch else None
        return {
            "model": self.model.state_dict(),
            "identity": self.model.identity(),
            "settings": asdict(self.settings),
            "dropout": self.model.dropout,
            "options": self.saved_options(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler.bit_generator.state,
            **rng_state(),
            "epoch": self.epoch,
            "phase": phase,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        theirs = {**state.get("identity", {}), "settings": state.get("settings")}
        if theirs != self.identity():
            raise ValueError(f"checkpoint is for the supernet {theirs}, not {self.identity()}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sampler.bit_generator.state = state["sampler"]
        set_rng_state(state)
        self.epoch = int(state["epoch"])

    # ------------------------------------------------------------------ training
    def train_epoch(self) -> float:
        """One epoch of the current phase; the mean loss over steps and subnets."""
        o, s = self.options, self.settings
        phase, index, _ = self.phase_at(self.epoch)
        if phase == "expand" and index == 0:
            self.model.sort_channels(self.optimizer)
        loader = datamod.Loader(self.splits, "train", o.batch_size, True, self.generator)
        batches = len(loader)
        self.model.train()
        total, count = 0.0, 0
        for i, (x, y) in enumerate(loader):
            x, y = x.to(self.device), y.to(self.device)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.epoch, i / batches)
            self.optimizer.zero_grad(set_to_none=True)
            teacher = None
            for stages in self.step_subnets(phase):
                self.model.set_active(stages)
                out = self.model(x)
                loss = F.cross_entropy(out, y)
                if stages == LARGEST:
                    teacher = out.detach()
                elif s.kd_ratio > 0 and teacher is not None:
                    loss = loss + s.kd_ratio * _kd_loss(out, teacher, o.kd_temperature)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite training loss ({loss.item()}) at epoch {self.epoch + 1} "
                        f"({phase} phase); lower lr"
                    )
                loss.backward()
                total += loss.item()
                count += 1
            if o.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), o.grad_clip)
            self.optimizer.step()
        self.model.set_active(LARGEST)
        return total / max(count, 1)

    def calibration_batches(self) -> list[torch.Tensor]:
        """The first ``bn_batches`` training batches from a generator of their own (the same
        images every epoch; drawing them does not move the training order)."""
        if self._calibration is None:
            loader = datamod.Loader(
                self.splits,
                "train",
                self.options.batch_size,
                train=True,
                generator=torch.Generator().manual_seed(self.settings.seed + 1),
            )
            found: list[torch.Tensor] = []
            for x, _ in loader:
                if len(found) == self.options.bn_batches:
                    break
                found.append(x.to(self.device))
            self._calibration = found
        return self._calibration

    @torch.no_grad()
    def evaluate(self, stages: Stages) -> float:
        """Val accuracy (%) of subnet ``stages`` copied out of the supernet, its BatchNorm
        statistics re-estimated on ``calibration_batches`` (when ``bn_batches`` > 0)."""
        net = self.model.subnet(stages)
        if self.options.bn_batches:
            recalibrate_bn(net, self.calibration_batches())
        net.eval()
        correct, seen = 0, 0
        loader = datamod.Loader(self.splits, "val", max(self.options.batch_size, 256), False)
        for x, y in loader:
            pred = net(x.to(self.device)).argmax(1).cpu()
            correct += (pred == y).sum().item()
            seen += len(y)
        return 100.0 * correct / seen

    def step(self) -> dict[str, Any]:
        """Train one epoch and evaluate; returns the epoch's metrics."""
        start = time.perf_counter()
        phase = self.phase_at(self.epoch)[0]
        lr = self.lr_at(self.epoch, 0.0)
        train_loss = self.train_epoch()
        self.epoch += 1
        largest = self.evaluate(LARGEST)
        randoms = [self.evaluate(stages) for stages in self.eval_stages]
        return {
            "epoch": self.epoch,
            "phase": phase,
            "arch": self.arch,
            "train_loss": train_loss,
            "val_acc_largest": largest,
            "val_acc_smallest": self.evaluate(SMALLEST),
            "val_acc_random": float(np.mean(randoms)) if randoms else float("nan"),
            "val_acc": largest,
            "lr": lr,
            "params_m": self.params / 1e6,
            "seed": self.settings.seed,
            "cost_s": time.perf_counter() - start,
        }


__all__ = [
    "CONFIG_KEYS",
    "CONFIG_PREFIX",
    "DEFAULT_PHASES",
    "PHASES",
    "PHASE_RANGES",
    "ProgressiveShrinking",
    "SupernetOptions",
    "TrialSettings",
    "check_phases",
    "check_setting",
    "sweep_space",
]
