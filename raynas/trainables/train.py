"""``train`` trainable: decode -> build (any space) -> train with SGD (cosine or constant LR).

``lr_schedule``: ``cosine`` (default: from ``lr`` to ``min_lr`` over ``epochs``) or
``constant`` (``lr`` throughout), the regime the ``lce`` scheduler's curve families assume
(under a short cosine schedule val_acc can stall early and rise again as the rate anneals).

Every epoch reports the standard metrics of DESIGN.md (``epoch``, ``train_loss``,
``train_acc``, ``val_loss``, ``val_acc``, ``tse``, ``tse_ema``, ``params_m``, ``flops_m``,
``arch``, ``cost_s``; ``test_acc``/``test_loss`` with ``eval_test``, ``latency_ms`` with
``latency``) and a checkpoint holding everything needed to continue exactly: model, optimiser,
LR schedule, the data order generator, torch's global RNG, epoch and the TSE accumulators.
A trial restarted from a checkpoint (failure retry, PAUSE, ``raynas resume``) produces the
same metrics as an uninterrupted run (CPU, fixed seed).

``init_from`` (mobilenetv3): start each trial from the weights its architecture inherits from
an OFA supernet (``raynas.trainables.subnet.cached_supernet``) rather than a random init: the
fine-tuning step of Once-for-All, e.g. with the ``fixed`` searcher on a subnet found by a
search.

``tse`` is the Training Speed Estimate of Ru et al. (NeurIPS 2021): the sum over the epochs so
far of each epoch's mean training loss; ``tse_ema`` its TSE-EMA, those losses summed with
weight ``tse_ema_decay**(T - t)`` (later epochs weigh more). A non-finite training loss ends
the trial with ``FloatingPointError``; the experiment goes on.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas import data as datamod
from raynas.estimators.tse import tse_ema_step
from raynas.nn.measure import count_macs, count_params
from raynas.torch_state import resolve_device, rng_state, set_rng_state
from raynas.trainables.checkpoint import CHECKPOINT_FILE as CHECKPOINT_FILE
from raynas.trainables.checkpoint import report_with_state, restore_state
from search_spaces.base import SearchSpace

#: Values of ``TrainOptions.lr_schedule``.
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainOptions:
    """Options of the ``train`` trainable (validated in ``__post_init__``)."""

    dataset: str = "digits"
    root: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    min_lr: float = 0.0
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    val_fraction: float | int = 0.1
    subset: float | int | None = None
    subset_schedule: list | dict | None = None
    test_subset: float | int | None = None
    eval_test: bool = False
    cutout: int = 0
    image_size: int | None = None
    auxiliary_weight: float = 0.4
    drop_path_prob: float = 0.0
    tse_ema_decay: float = 0.9
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    threads: int | None = None
    latency: bool = False
    build: dict = field(default_factory=dict)
    init_from: str | None = None

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"{key} must be > 0, got {value!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0 or self.min_lr < 0:
            raise ValueError("weight_decay and min_lr must be >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; choose one of: "
                f"{', '.join(LR_SCHEDULES)}"
            )
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or null, got {self.grad_clip!r}")
        if not 0 <= self.drop_path_prob < 1:
            raise ValueError(f"drop_path_prob must be in [0, 1), got {self.drop_path_prob!r}")
        if not 0 <= self.tse_ema_decay < 1:
            raise ValueError(f"tse_ema_decay must be in [0, 1), got {self.tse_ema_decay!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.dataset not in datamod.NAMES:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; choose one of: {', '.join(datamod.NAMES)}"
            )
        if self.cutout < 0:
            raise ValueError(f"cutout must be >= 0, got {self.cutout!r}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1 or null, got {self.image_size!r}")
        if self.subset_schedule is not None:
            subset_steps(self.subset_schedule)


def subset_steps(schedule: list | dict) -> list[tuple[int, float | int]]:
    """``(first epoch, amount)`` pairs of a ``subset_schedule``, by epoch.

    A list gives the amount of epoch 1, 2, ... (the last holds for later epochs); a mapping
    ``{epoch: amount}`` the epoch from which each amount applies (it must name epoch 1). An
    amount is a fraction of the training split or an image count; amounts must not decrease.

    Raises:
        ValueError: an empty schedule, a bad epoch or amount, or a decreasing schedule.
    """
    if isinstance(schedule, Mapping):
        steps = []
        for epoch, amount in schedule.items():
            # (a saved raynas.yaml holds the epochs as strings: JSON keys)
            if isinstance(epoch, str) and epoch.isdigit():
                epoch = int(epoch)
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
                raise ValueError(f"subset_schedule: epoch {epoch!r} must be an integer >= 1")
            steps.append((epoch, amount))
        steps.sort()
        if steps and steps[0][0] != 1:
            raise ValueError(
                f"subset_schedule {{epoch: amount}} must start at epoch 1, got {steps[0][0]}"
            )
    elif isinstance(schedule, list | tuple):
        steps = [(i + 1, amount) for i, amount in enumerate(schedule)]
    else:
        raise ValueError(
            f"subset_schedule must be a list of amounts or a mapping {{epoch: amount}}, got "
            f"{schedule!r}"
        )
    if not steps:
        raise ValueError("subset_schedule must not be empty")
    datamod.check_subset_amounts("subset_schedule", [amount for _, amount in steps])
    return steps


def check_subset_schedule(options: TrainOptions) -> None:
    """DatasetError when ``options.subset_schedule`` names more images than the training split
    holds or decreases once its counts and fractions are compared as image counts (loads the
    dataset's splits; a schedule of fractions only needs no data and is not loaded)."""
    schedule = options.subset_schedule
    if schedule is None:
        return
    amounts = [amount for _, amount in subset_steps(schedule)]
    if not any(isinstance(a, int) and not isinstance(a, bool) for a in amounts):
        return
    splits = datamod.load(
        options.dataset,
        root=options.root,
        val_fraction=options.val_fraction,
        subset=options.subset,
        seed=options.seed,
    )
    datamod.subset_counts("subset_schedule", amounts, len(splits.train))


class Trainer:
    """Trains one architecture; the trainable and the benchmarks drive it epoch by epoch."""

    def __init__(self, space: SearchSpace, config: Mapping[str, Any], options: TrainOptions):
        self.options = options
        self.genotype = space.decode(config)
        self.arch = space.to_str(self.genotype)
        self.device = resolve_device(options.device)
        torch.manual_seed(options.seed)
        self.splits = datamod.load(
            options.dataset,
            root=options.root,
            val_fraction=options.val_fraction,
            subset=options.subset,
            test_subset=options.test_subset,
            seed=options.seed,
            image_size=options.image_size,
        )
        self.subset_steps: list[tuple[int, int]] = []
        if options.subset_schedule is not None:
            steps = subset_steps(options.subset_schedule)
            counts = datamod.subset_counts(
                "subset_schedule", [a for _, a in steps], len(self.splits.train)
            )
            self.subset_steps = [(e, c) for (e, _), c in zip(steps, counts, strict=True)]
            self.subset_order = datamod.nested_order(self.splits.train.y, options.seed)
        self.model = space.build(
            self.genotype,
            num_classes=self.splits.num_classes,
            in_channels=self.splits.in_channels,
            **options.build,
        )
        if options.init_from:
            self.model.load_state_dict(inherited_weights(space, self.genotype, options))
        size = self.splits.image_size
        self.input_shape = (self.splits.in_channels, size, size)
        self.params = count_params(self.model)
        self.macs = count_macs(self.model, self.input_shape)
        self.model.to(self.device)
        if options.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=options.lr,
            momentum=options.momentum,
            nesterov=options.nesterov and options.momentum > 0,
            weight_decay=options.weight_decay,
        )
        if options.lr_schedule == "cosine":
            self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=options.epochs, eta_min=options.min_lr
            )
        else:  # constant
            self.schedule = torch.optim.lr_scheduler.ConstantLR(
                self.optimizer, factor=1.0, total_iters=0
            )
        self.use_amp = options.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.epoch = 0
        self.tse = 0.0
        self.tse_ema: float | None = None
        self.latency_ms: float | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            **rng_state(),
            "epoch": self.epoch,
            "tse": self.tse,
            "tse_ema": self.tse_ema,
            "latency_ms": self.latency_ms,
            "options": asdict(self.options),
            "arch": self.arch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("arch") != self.arch:
            raise ValueError(
                f"checkpoint is for architecture {state.get('arch')!r}, not {self.arch!r}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        set_rng_state(state)
        self.epoch = int(state["epoch"])
        self.tse = float(state["tse"])
        self.tse_ema = state["tse_ema"]
        self.latency_ms = state.get("latency_ms")

    # ------------------------------------------------------------------ training
    def train_images(self, epoch: int) -> int:
        """Training images epoch ``epoch`` (1-based) uses: the subset schedule's count there,
        else the whole training split."""
        count = len(self.splits.train)
        for first, scheduled in self.subset_steps:
            if first <= epoch:
                count = scheduled
        return count

    def _loader(self, split: str, train: bool) -> datamod.Loader:
        splits = self.splits
        if split == "train" and self.subset_steps:  # nested subsets: a prefix of one order
            count = self.train_images(self.epoch + 1)
            keep = torch.from_numpy(np.sort(self.subset_order[:count]))
            picked = datamod.Split(splits.train.x[keep], splits.train.y[keep])
            splits = dataclasses.replace(splits, train=picked)
        return datamod.Loader(
            splits,
            split,
            self.options.batch_size,
            train=train,
            generator=self.generator,
            cutout=self.options.cutout,
        )

    def _to_device(self, x: torch.Tensor, y: torch.Tensor):
        x = x.to(self.device, non_blocking=True)
        if self.options.channels_last and self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def train_epoch(self) -> tuple[float, float]:
        opts = self.options
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = opts.drop_path_prob * self.epoch / opts.epochs
        self.model.train()
        loss_fn = nn.CrossEntropyLoss()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self._loader("train", train=True):
            x, y = self._to_device(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                out = self.model(x)
                if isinstance(out, tuple):  # DARTS auxiliary head in training mode
                    logits, aux = out
                    loss = loss_fn(logits, y) + opts.auxiliary_weight * loss_fn(aux, y)
                else:
                    logits, loss = out, loss_fn(out, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss ({loss.item()}) at epoch {self.epoch + 1} "
                    f"for {self.arch}; lower lr or check the data"
                )
            self.scaler.scale(loss).backward()
            if opts.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        self.schedule.step()
        return total_loss / seen, 100.0 * correct / seen

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        self.model.eval()
        loss_fn = nn.CrossEntropyLoss(reduction="sum")
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self._loader(split, train=False):
            x, y = self._to_device(x, y)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                logits = self.model(x)
            total_loss += loss_fn(logits.float(), y).item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        return total_loss / seen, 100.0 * correct / seen

    def step(self) -> dict[str, Any]:
        """Train one epoch and evaluate; returns the epoch's metrics."""
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        images = self.train_images(self.epoch + 1)
        train_loss, train_acc = self.train_epoch()
        self.epoch += 1
        self.tse += train_loss
        decay = self.options.tse_ema_decay
        self.tse_ema = tse_ema_step(self.tse_ema, train_loss, decay)
        val_loss, val_acc = self.evaluate("val")
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "tse": self.tse,
            "tse_ema": self.tse_ema,
            "lr": lr,
            "params_m": self.params / 1e6,
            "flops_m": self.macs / 1e6,
            "arch": self.arch,
        }
        if self.subset_steps:
            metrics["train_images"] = images
        if self.options.eval_test:
            metrics["test_loss"], metrics["test_acc"] = self.evaluate("test")
        metrics["cost_s"] = time.perf_counter() - start
        if self.options.latency:
            if self.latency_ms is None:
                from raynas.hardware import measure_latency

                stats = measure_latency(self.model, self.input_shape, device=str(self.device))
                self.latency_ms = stats.median_ms
            metrics["latency_ms"] = self.latency_ms
        return metrics


def _init_width(space: SearchSpace, options: TrainOptions) -> float | None:
    return options.build.get("width_mult", getattr(space, "width_mult", None))


def inherited_weights(
    space: SearchSpace, genotype: Any, options: TrainOptions
) -> dict[str, torch.Tensor]:
    """The state dict of ``genotype``'s subnet in the supernet ``options.init_from`` (read once
    per process), for a network built by ``space.build`` with ``options.build``."""
    from raynas.trainables.subnet import cached_supernet

    loaded = cached_supernet(options.init_from, _init_width(space, options))
    return loaded.supernet.subnet(genotype.blocks).state_dict()


def check_init_from(space: SearchSpace, options: TrainOptions) -> None:
    """ConfigError unless ``init_from`` names a supernet this run can start from: the
    mobilenetv3 space, the same width, classes and image channels as the data."""
    from raynas.errors import ConfigError
    from raynas.trainables.subnet import cached_supernet

    if getattr(space, "name", None) != "mobilenetv3":
        raise ConfigError(
            f"init_from needs the mobilenetv3 space (an OFA supernet), got {space.name!r}"
        )
    loaded = cached_supernet(options.init_from, _init_width(space, options))
    identity = loaded.meta["identity"]
    splits = loaded.splits
    if options.dataset != splits.name:
        raise ConfigError(
            f"init_from {options.init_from}: the supernet was trained on {splits.name!r}, "
            f"this run trains on {options.dataset!r}"
        )
    if int(identity.get("num_classes", splits.num_classes)) != splits.num_classes:
        raise ConfigError(
            f"init_from {options.init_from}: the supernet has {identity['num_classes']} "
            f"classes, the data {splits.num_classes}"
        )


def make(space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The ``train`` trainable for ``space``; options are those of ``TrainOptions``.

    ``init_from`` (mobilenetv3 only): a supernet of the ``supernet`` trainable (experiment
    folder, checkpoint folder or file, or a URI); each trial starts from the weights its
    architecture inherits from it (``OFASupernet.subnet``) instead of a random init. The
    supernet is checked here, before Ray starts, and read once per worker process.
    """
    valid = [f.name for f in dataclasses.fields(TrainOptions)]
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown option {key!r} for trainable 'train'; valid options: {', '.join(valid)}"
            )
    opts = TrainOptions(**options)
    if opts.init_from:
        check_init_from(space, opts)

    def train_trainable(config: dict) -> None:
        if opts.threads:
            torch.set_num_threads(opts.threads)
        trainer = Trainer(space, config, opts)
        state = restore_state()
        if state is not None:
            trainer.load_state_dict(state)
        while trainer.epoch < opts.epochs:
            metrics = trainer.step()
            report_with_state(metrics, trainer.state_dict())

    return train_trainable
