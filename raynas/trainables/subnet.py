"""``subnet`` trainable: score a ``mobilenetv3`` subnet with weights inherited from a supernet.

Per trial (one result, ``epoch`` 1): decode the genotype the searcher proposed, copy its
weights out of the supernet (``OFASupernet.subnet``), recalibrate its BatchNorm statistics on
``bn_batches`` fixed batches of training images (``bn_batches: 0`` keeps the supernet's
statistics, to measure what recalibration adds), evaluate it on the validation split the
supernet was trained with, and report ``val_acc``, ``val_loss``, ``params_m``, ``flops_m``
(MACs of one input), ``arch``, ``cost_s`` (seconds spent scoring), ``latency_ms_<target>``
for every hardware target (``raynas.hardware.targets``: the target's latency table predicts
it, nothing is timed) and ``latency_ms`` (the first target's).

The supernet (``supernet``: an experiment folder of the ``supernet`` trainable, a checkpoint
folder or file, local or a URI; see ``raynas.trainables.supernet.load_supernet``) is read once
per worker process: ``cached_supernet`` keeps it keyed by the checkpoint read and its
modification time, with the data splits and the recalibration batches, so thousands of trials
through Tune pay for it once per worker. The data (dataset, folder, image size, subset,
validation fraction, seed) are the supernet trainable's own options, so the validation images
are the ones the supernet never trained on; ``root`` overrides only the data folder.

``make`` runs in the driver before Ray starts: it reads the supernet (a missing, truncated or
wrong-space/width checkpoint is a one-line ``ConfigError``), and reads every target's latency
table at the data's image size (a missing table is a one-line error saying how to build it;
``build_tables: true`` measures missing tables here instead). The tables travel with the
trainable, so workers predict without touching the cache.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from raynas import data as datamod
from raynas.errors import ConfigError
from raynas.hardware import targets as hw_targets
from raynas.nn.measure import count_macs, count_params
from raynas.registry import check_int
from search_spaces.base import SearchSpace

#: The supernet trainable's options that define the data a subnet is scored on.
DATA_OPTIONS = ("dataset", "root", "image_size", "subset", "val_fraction", "seed")


@dataclass
class Loaded:
    """A supernet read once per process, with the data it is scored on.

    Attributes:
        supernet: the ``OFASupernet`` in eval mode.
        meta: what ``load_supernet`` returned with it (identity, options, epoch, path).
        splits: the data splits of the supernet's training run.
        calibration: training batches for BN recalibration (images only), by batch size
            and count.
    """

    supernet: Any
    meta: dict[str, Any]
    splits: datamod.Splits
    calibration: dict[tuple[int, int, int], list[torch.Tensor]]


_CACHE: dict[tuple[str, str | None, float | None], Loaded] = {}


def _mtime(source: str) -> float | None:
    try:
        return os.stat(source).st_mtime
    except OSError:  # a URI (or a vanished file: load_supernet names it)
        return None


def data_options(meta: Mapping[str, Any], root: str | None = None) -> dict[str, Any]:
    """The data options of the supernet's run (``DATA_OPTIONS``), ``root`` overriding its."""
    options = dict(meta.get("options") or {})
    out = {k: options[k] for k in DATA_OPTIONS if k in options}
    out.setdefault("dataset", "digits")
    if root is not None:
        out["root"] = root
    return out


def cached_supernet(
    source: str | os.PathLike, width_mult: float | None = None, root: str | None = None
) -> Loaded:
    """The supernet of ``source`` and its data, read once per process.

    Args:
        source: experiment folder, checkpoint folder or checkpoint file (local or URI).
        width_mult: the width the supernet must have (None: any).
        root: data folder overriding the supernet run's (None: its own, else
            ``$RAYNAS_DATA``).

    Raises:
        ConfigError: a missing, truncated or mismatched checkpoint, or unreadable data.
    """
    from raynas.trainables.supernet import load_supernet

    source = os.fspath(source)
    key = (source, root, _mtime(source))
    if key in _CACHE:
        loaded = _CACHE[key]
    else:
        net, meta = load_supernet(source, width_mult=None)
        net.eval()
        o = data_options(meta, root)
        try:
            splits = datamod.load(
                o["dataset"],
                root=o.get("root"),
                val_fraction=o.get("val_fraction", 0.1),
                subset=o.get("subset"),
                seed=int(o.get("seed", 0)),
                image_size=int(o["image_size"]) if o.get("image_size") else None,
            )
        except datamod.DatasetError as e:
            raise ConfigError(f"supernet {source}: its data: {e}") from None
        loaded = Loaded(net, meta, splits, {})
        _CACHE.clear()  # one supernet per process is the use; do not pile them up
        _CACHE[key] = loaded
    have = float(loaded.meta["identity"]["width_mult"])
    if width_mult is not None and abs(have - float(width_mult)) > 1e-9:
        raise ConfigError(
            f"supernet {source} has width_mult {have:g}, the experiment's space has "
            f"{float(width_mult):g}; set space.options.width_mult to {have:g}"
        )
    return loaded


def calibration_batches(loaded: Loaded, batches: int, batch_size: int, seed: int) -> list:
    """The first ``batches`` training batches of ``batch_size`` images (shuffled and
    augmented as in training, from a generator seeded with ``seed``): the same tensors for
    every trial of the process."""
    key = (batches, batch_size, seed)
    if key not in loaded.calibration:
        loader = datamod.Loader(
            loaded.splits,
            "train",
            batch_size,
            train=True,
            generator=torch.Generator().manual_seed(seed),
        )
        found = []
        for x, _ in loader:
            if len(found) == batches:
                break
            found.append(x)
        loaded.calibration[key] = found
    return loaded.calibration[key]


@torch.no_grad()
def evaluate(model: nn.Module, splits: datamod.Splits, split: str = "val") -> tuple[float, float]:
    """``(mean cross-entropy, accuracy in %)`` of ``model`` (eval mode) on ``split``."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, correct, seen = 0.0, 0, 0
    for x, y in datamod.Loader(splits, split, 512, train=False):
        logits = model(x)
        total += loss_fn(logits, y).item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, 100.0 * correct / seen


class Scorer:
    """Scores genotypes with inherited weights (what one ``subnet`` trial does).

    Args:
        loaded: the supernet and its data (``cached_supernet``).
        tables: hardware target name -> its ``LatencyTable``.
        bn_batches: recalibration batches (0: keep the supernet's statistics).
        bn_batch_size: images per recalibration batch.
        seed: seed of the recalibration images.
    """

    def __init__(
        self,
        loaded: Loaded,
        tables: Mapping[str, Any],
        bn_batches: int = 2,
        bn_batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.loaded = loaded
        self.tables = dict(tables)
        self.bn_batches = bn_batches
        self.batches = calibration_batches(loaded, bn_batches, bn_batch_size, seed)

    def subnet(self, genotype: Any, recalibrate: bool | None = None) -> nn.Module:
        """The standalone subnet of ``genotype`` with inherited (and recalibrated) weights.

        Raises:
            ValueError: a genotype outside the supernet's elastic range (named).
        """
        from raynas.nn.ofa import recalibrate_bn

        net = self.loaded.supernet.subnet(genotype.blocks)
        if self.bn_batches if recalibrate is None else recalibrate:
            recalibrate_bn(net, self.batches)
        return net.eval()

    def score(self, genotype: Any, arch: str) -> dict[str, Any]:
        """The metrics one ``subnet`` trial reports for ``genotype``."""
        start = time.perf_counter()
        model = self.subnet(genotype)
        val_loss, val_acc = evaluate(model, self.loaded.splits)
        cost = time.perf_counter() - start
        splits = self.loaded.splits
        shape = (splits.in_channels, splits.image_size, splits.image_size)
        metrics: dict[str, Any] = {
            "epoch": 1,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "params_m": count_params(model) / 1e6,
            "flops_m": count_macs(model, shape) / 1e6,
            "arch": arch,
            "cost_s": cost,
        }
        for i, (name, table) in enumerate(self.tables.items()):
            ms = float(table.predict(genotype))
            metrics[hw_targets.METRIC_PREFIX + name] = ms
            if i == 0:
                metrics["latency_ms"] = ms
        return metrics


def load_tables(
    names: Sequence[hw_targets.Target],
    loaded: Loaded,
    cache_dir: str | None = None,
    build: bool = False,
) -> dict[str, Any]:
    """Each target's latency table at the supernet's data image size, width and classes."""
    identity = loaded.meta["identity"]
    return {
        t.name: hw_targets.table(
            t,
            loaded.splits.image_size,
            float(identity["width_mult"]),
            int(identity.get("num_classes", loaded.splits.num_classes)),
            cache_dir=cache_dir,
            build=build,
        )
        for t in names
    }


def make(
    space: SearchSpace,
    supernet: str | None = None,
    targets: str | Sequence[str] = ("cpu-b1",),
    bn_batches: int = 2,
    bn_batch_size: int = 64,
    root: str | None = None,
    build_tables: bool = False,
    table_cache: str | None = None,
    threads: int | None = 1,
    seed: int = 0,
) -> Callable[[dict], None]:
    """The ``subnet`` trainable for the ``mobilenetv3`` space (see the module docstring).

    Args:
        space: a ``MobileNetV3Space`` whose ``width_mult`` is the supernet's.
        supernet: experiment folder of the ``supernet`` trainable, a checkpoint folder or
            ``supernet.pt`` file, local or a URI.
        targets: hardware targets whose latency is reported (``latency_ms_<target>``).
        bn_batches: BatchNorm recalibration batches (0: off).
        bn_batch_size: images per recalibration batch.
        root: data folder, overriding the supernet run's (e.g. on another machine).
        build_tables: measure a target's missing latency table in the driver before the run
            (on this machine: the trials' machine should be the same kind) instead of failing.
        table_cache: latency table cache folder (default ``$RAYNAS_LATENCY_CACHE`` or
            ``~/.cache/raynas/latency``).
        threads: torch CPU threads inside the trial (None: leave as Ray set it).
        seed: seed of the recalibration images.

    Raises:
        ValueError: a bad option; ConfigError: an unreadable supernet, data or latency table.
    """
    if getattr(space, "name", None) != "mobilenetv3":
        raise ValueError(f"the subnet trainable needs the mobilenetv3 space, got {space.name!r}")
    if not supernet or not isinstance(supernet, str | os.PathLike):
        raise ValueError(
            "option supernet is required: the experiment folder (or checkpoint) of a "
            "supernet trainable run"
        )
    parsed = hw_targets.parse_all(targets)
    check_int("bn_batches", bn_batches, 0)
    check_int("bn_batch_size", bn_batch_size, 2)
    check_int("seed", seed, 0)
    if threads is not None:
        check_int("threads", threads, 1)
    loaded = cached_supernet(supernet, space.width_mult, root)
    source = os.fspath(loaded.meta.get("path") or supernet)  # the checkpoint read
    tables = load_tables(parsed, loaded, table_cache, build_tables)

    def subnet_trainable(config: dict) -> None:
        from ray import tune

        if threads:
            torch.set_num_threads(threads)
        scorer = Scorer(
            cached_supernet(source, space.width_mult, root),
            tables,
            bn_batches,
            bn_batch_size,
            seed,
        )
        genotype = space.decode(config)
        tune.report(scorer.score(genotype, space.to_str(genotype)))

    return subnet_trainable


def metrics(space: SearchSpace, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The metrics the ``subnet`` trainable reports with ``options``."""
    found = ("epoch", "val_loss", "val_acc", "params_m", "flops_m", "arch", "cost_s")
    parsed = hw_targets.parse_all(options.get("targets", ("cpu-b1",)))
    return (*found, "latency_ms", *(t.metric for t in parsed))


#: Format of a file written by ``export``.
EXPORT_FORMAT = 1


def export(config: Any, chosen: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write the subnet ``chosen`` (``raynas.results.best``) of a ``subnet`` experiment as a
    standalone file: its inherited weights, recalibrated as the trials did, and its genotype.

    The file (``torch.save`` of a dict) holds ``format``, ``space`` ("mobilenetv3"),
    ``arch`` (canonical string), ``genotype``, ``build`` (``width_mult``, ``num_classes``,
    ``in_channels``, ``dropout``: the arguments of ``MobileNetV3Space.build``),
    ``state_dict``, ``metrics`` (the trial's) and ``supernet`` (the checkpoint read);
    ``load_exported`` rebuilds the network from it with no supernet code.

    Args:
        config: the experiment's ``ExperimentConfig`` (trainable ``subnet``).
        chosen: the exported trial (``arch``, ``metrics``).
        path: the file to write.

    Raises:
        ConfigError: the experiment's trainable is not ``subnet``, or the supernet cannot be
            read.
    """
    import search_spaces
    from raynas import atomic

    if config.trainable.name != "subnet":
        raise ConfigError(
            f"--weights needs an experiment of the subnet trainable, got {config.trainable.name!r}"
        )
    options = config.trainable.options
    space = search_spaces.get(config.space.name, **config.space.options)
    genotype = space.from_str(str(chosen["arch"]))
    loaded = cached_supernet(options["supernet"], space.width_mult, options.get("root"))
    scorer = Scorer(
        loaded,
        {},
        int(options.get("bn_batches", 2)),
        int(options.get("bn_batch_size", 64)),
        int(options.get("seed", 0)),
    )
    model = scorer.subnet(genotype)
    identity = loaded.meta["identity"]
    payload = {
        "format": EXPORT_FORMAT,
        "space": "mobilenetv3",
        "arch": space.to_str(genotype),
        "genotype": space.to_json(genotype),
        "build": {
            "width_mult": float(identity["width_mult"]),
            "num_classes": int(identity.get("num_classes", loaded.splits.num_classes)),
            "in_channels": int(identity.get("in_channels", loaded.splits.in_channels)),
            "dropout": space.dropout,
        },
        "state_dict": model.state_dict(),
        "metrics": dict(chosen.get("metrics") or {}),
        "supernet": str(loaded.meta.get("path", options["supernet"])),
    }

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        atomic.write_bytes(path, buffer.getvalue())
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None


def load_exported(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """The network written by ``export`` (eval mode) and the file's other entries.

    Needs only the ``mobilenetv3`` space: ``space.build(genotype, **build)`` then
    ``load_state_dict``.

    Raises:
        ConfigError: a missing or unreadable file, or not a file ``export`` wrote.
    """
    import search_spaces

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise ConfigError(f"no exported subnet at {path}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ConfigError(f"cannot read exported subnet {path}: {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise ConfigError(f"{path} is not a subnet written by raynas export --weights")
    build = dict(payload["build"])
    space = search_spaces.get("mobilenetv3", width_mult=build["width_mult"])
    genotype = space.from_str(payload["arch"])
    model = space.build(genotype, **build)
    model.load_state_dict(payload["state_dict"])
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval(), info
