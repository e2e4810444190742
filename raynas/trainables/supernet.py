"""``supernet`` trainable: one trial trains one OFA supernet; ``load_supernet`` reads it back.

A trial trains the elastic MobileNetV3 supernet of the experiment's ``mobilenetv3`` space
(``raynas.nn.ofa``; ``width_mult`` and ``dropout`` are the space's options) by progressive
shrinking (Cai et al., "Once-for-All", ICLR 2020; engine: ``raynas.oneshot.shrinking``):

* ``phases`` (default ``{full: 2, kernel: 1, depth: 1, expand: 2}``, epochs per phase; phases
  may be left out; they always run in this order): ``full`` trains the largest subnet alone;
  ``kernel`` samples kernels 3/5/7 with depth 4 and expand 6; ``depth`` also depths 2-4;
  ``expand`` also expand ratios 3/4/6 (OFA splits the last two in two steps each; here each
  is one phase).
  ``sort_channels`` reorders the middle channels by importance when the expand phase begins.
* Each step trains ``subnets_per_step`` random subnets of the phase on the same batch,
  gradients summed (OFA's ``dynamic_batch_size``); with ``sandwich: true`` also the largest
  subnet and the phase's smallest (BigNAS' sandwich rule). ``kd_ratio > 0``: in-place
  distillation: the largest subnet is trained on the labels in every step and the others add
  ``kd_ratio * T^2 * KL(largest || subnet)`` at temperature ``kd_temperature`` (OFA's
  ``kd_ratio``; OFA's teacher is a separately trained network).
* SGD (momentum 0.9, Nesterov, weight decay 3e-5 except BatchNorm, biases and the kernel
  transformation matrices, as OFA), cosine per iteration to ``min_lr``, restarted each phase
  as in OFA, from ``lr`` in the full phase and from OFA's rates in the elastic ones (kernel
  0.03, depth and expand 0.0075 per 64-image batch, scaled by ``batch_size / 64``; a restart
  at the full phase's rate undoes what the full phase learnt). ``phase_lr`` (e.g.
  ``{kernel: 0.05}``) sets any phase's rate. ``elastic_warmup`` (epochs, default 0) makes
  each elastic phase rise linearly from ``min_lr`` to its rate over that many epochs (at most
  half the phase) before its cosine (OFA's kernel phase starts with 5 warm-up epochs of 120).

**Tune config.** The experiment's architecture keys are ignored; the optional keys
``supernet.seed``, ``supernet.sandwich``, ``supernet.kd_ratio`` override the options of the
same name, and the ``sweep`` option (e.g. ``{seed: [0, 1, 2]}``) makes them Tune grid searches
(``make(...).param_space``), so several supernets are trials of one experiment.

**Reported per epoch** (plus Tune's keys): ``epoch``, ``phase``, ``arch`` (the largest subnet's
canonical string: what ``val_acc`` scores and ``raynas export`` names), ``train_loss`` (mean
over steps and subnets, distillation term included), ``val_acc_largest``, ``val_acc_smallest``
(the space's smallest subnet), ``val_acc_random`` (mean over ``eval_subnets`` random subnets
drawn once from ``eval_seed``: the same in every epoch and every trial), ``val_acc`` (=
``val_acc_largest``), ``lr`` (at the epoch's start), ``params_m`` (the largest subnet),
``seed``, ``cost_s``. Each scored subnet is copied out of the supernet and its BatchNorm
statistics re-estimated on ``bn_batches`` training batches (OFA's ``reset_running_statistics``;
0: the supernet's running statistics). **TensorBoard**: Tune's scalars, and as text the phase
and the scored random subnets.

**Checkpoints**: every epoch a Tune checkpoint folder holding ``supernet.pt`` (``torch.save`` of
a dict with ``model``, ``identity`` (``OFASupernet.identity()``), ``settings``, ``dropout``,
``options`` (as the trial ran them), ``epoch``, ``phase``, the optimiser, the data-order and
subnet-sampling generators and torch's RNG); a restored trial continues exactly (CPU, fixed
seed).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs
import torch

from raynas.errors import ConfigError
from raynas.nn.ofa import OFASupernet
from raynas.oneshot.shrinking import (
    ProgressiveShrinking,
    SupernetOptions,
    TrialSettings,
    stages_to_str,
    sweep_space,
)
from raynas.storage import Location, is_uri, locate
from raynas.trainables.checkpoint import report_with_state, restore_state
from search_spaces.base import SearchSpace

#: The checkpoint file inside a Tune checkpoint folder.
CHECKPOINT_FILE = "supernet.pt"

_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")


def make(space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The ``supernet`` trainable for ``space``; options are those of ``SupernetOptions``.

    The returned function has a ``param_space`` attribute: the Tune keys of ``sweep`` (empty
    without it), to be merged into the experiment's param space.

    Raises:
        ValueError: a space other than ``mobilenetv3``, an unknown option or invalid value.
    """
    valid = [f.name for f in dataclasses.fields(SupernetOptions)]
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown option {key!r} for trainable 'supernet'; valid options: "
                f"{', '.join(valid)}"
            )
    if space.name != "mobilenetv3":
        raise ValueError(f"trainable 'supernet' needs the mobilenetv3 space, not {space.name!r}")
    opts = SupernetOptions(**options)
    width_mult, dropout = float(space.width_mult), float(space.dropout)

    def supernet_trainable(config: dict) -> None:
        from ray import tune

        if opts.threads:
            torch.set_num_threads(opts.threads)
        settings = TrialSettings.resolve(opts, config)
        engine = ProgressiveShrinking(opts, width_mult, dropout, settings)
        state = restore_state(CHECKPOINT_FILE)
        if state is not None:
            engine.load_state_dict(state)
        board = _Board(tune.get_context().get_trial_dir(), engine) if opts.tensorboard else None
        try:
            while engine.epoch < opts.epochs:
                metrics = engine.step()
                if board is not None:
                    board.log(metrics)
                report_with_state(metrics, engine.state_dict(), CHECKPOINT_FILE)
        finally:
            if board is not None:
                board.close()

    supernet_trainable.param_space = sweep_space(opts.sweep)
    return supernet_trainable


class _Board:
    """TensorBoard texts of a supernet trial: its phase and the scored random subnets."""

    def __init__(self, logdir: str, engine: ProgressiveShrinking) -> None:
        from raynas.event_writer import summary_writer

        self._writer = summary_writer(logdir)
        self._subnets = "\n".join(
            f"{i}. `{stages_to_str(st)}`" for i, st in enumerate(engine.eval_stages, start=1)
        )

    def log(self, metrics: Mapping[str, Any]) -> None:
        step = int(metrics["epoch"])
        self._writer.add_text("phase", str(metrics["phase"]), step)
        self._writer.add_text("eval_subnets", self._subnets, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _read_state(loc: Location, name: str, shown: str) -> dict[str, Any]:
    try:
        data = loc.read_bytes(name)
    except (OSError, ValueError) as e:
        raise ConfigError(f"supernet checkpoint {shown}: cannot read it ({_line(e)})") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file fails in many ways
        raise ConfigError(
            f"supernet checkpoint {shown} is truncated or not a torch file ({_line(e)})"
        ) from None
    if not isinstance(state, Mapping) or "model" not in state or "identity" not in state:
        raise ConfigError(
            f"supernet checkpoint {shown} is not an OFA supernet checkpoint (no 'model' and "
            "'identity'); was it written by the supernet trainable?"
        )
    return dict(state)


def _line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def _parent_uri(uri: str) -> str:
    if not is_uri(uri):
        return os.path.dirname(uri)
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/").rpartition("/")[0]))


def _final_score(loc: Location, trial: str) -> float:
    """The trial's last reported ``val_acc_largest`` (-inf when it has none)."""
    try:
        lines = loc.child(trial).read_text("result.json").splitlines()
    except (OSError, ValueError):
        return float("-inf")
    for line in reversed(lines):
        try:
            value = json.loads(line).get("val_acc_largest")
        except ValueError:
            continue
        if isinstance(value, int | float):
            return float(value)
    return float("-inf")


def _find_checkpoint(loc: Location) -> tuple[Location, str]:
    """``(folder, CHECKPOINT_FILE)`` for a checkpoint file, a checkpoint folder, or the best
    trial's latest checkpoint of an experiment folder."""
    info = loc.info()
    if info.type == pafs.FileType.NotFound:
        raise ConfigError(f"supernet checkpoint {loc.shown}: no such file or folder")
    if info.type == pafs.FileType.File:
        parent, _, name = loc.path.rstrip("/").rpartition("/")
        return Location(loc.fs, parent or "/", _parent_uri(loc.uri)), name
    if loc.exists(CHECKPOINT_FILE):
        return loc, CHECKPOINT_FILE
    # An experiment folder: <trial>/checkpoint_NNNNNN/supernet.pt
    prefix = loc.path.rstrip("/") + "/"
    found: dict[str, list[tuple[int, str]]] = {}
    for entry in loc.list(recursive=True):
        relative = entry.path[len(prefix) :] if entry.path.startswith(prefix) else ""
        parts = relative.split("/")
        if len(parts) == 3 and parts[2] == CHECKPOINT_FILE:
            match = _CHECKPOINT_DIR.fullmatch(parts[1])
            if match:
                found.setdefault(parts[0], []).append((int(match.group(1)), parts[1]))
    if not found:
        raise ConfigError(
            f"no supernet checkpoint in {loc.shown} (looked for {CHECKPOINT_FILE} in the folder "
            f"and in <trial>/checkpoint_*/); is it a supernet experiment?"
        )
    trial = max(sorted(found), key=lambda t: _final_score(loc, t))
    latest = max(found[trial])[1]
    return loc.child(trial).child(latest), CHECKPOINT_FILE


def load_supernet(
    source: str | os.PathLike, *, width_mult: float | None = None, map_location: Any = "cpu"
) -> tuple[OFASupernet, dict[str, Any]]:
    """The supernet saved by a ``supernet`` trial, in eval mode, and what it was trained with.

    Args:
        source: an experiment folder (local path or URI: the trial with the best last
            ``val_acc_largest``, its latest checkpoint), a Tune checkpoint folder, or the
            ``supernet.pt`` file itself.
        width_mult: when given, the width the supernet must have.
        map_location: where the weights go (as ``torch.load``'s).

    Returns:
        ``(supernet, meta)``; ``meta`` has ``identity``, ``options`` (the trainable's options:
        dataset, root, image_size, subset, val_fraction, seed ...), ``epoch``, ``phase``,
        ``path`` (the file read, as shown in messages).

    Raises:
        ConfigError: the source is missing, truncated, not a supernet checkpoint, or of
            another space or width; the message names the path.
    """
    folder, name = _find_checkpoint(locate(source))
    shown = folder.child(name).shown
    state = _read_state(folder, name, shown)
    identity = dict(state["identity"])
    if identity.get("space") != "mobilenetv3":
        raise ConfigError(
            f"supernet checkpoint {shown} is for space {identity.get('space')!r}, not "
            "'mobilenetv3'"
        )
    if width_mult is not None and float(identity.get("width_mult", -1)) != float(width_mult):
        raise ConfigError(
            f"supernet checkpoint {shown} has width_mult {identity.get('width_mult')}, not "
            f"{width_mult}"
        )
    try:
        net = OFASupernet(
            width_mult=float(identity["width_mult"]),
            num_classes=int(identity["num_classes"]),
            in_channels=int(identity["in_channels"]),
            dropout=float(state.get("dropout", 0.1)),
            kernel_transform=bool(identity["kernel_transform"]),
        )
        net.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(
            f"supernet checkpoint {shown} does not fit its identity: {_line(e)}"
        ) from None
    net.to(map_location).eval()
    meta = {
        "identity": identity,
        "options": dict(state.get("options") or {}),
        "epoch": int(state.get("epoch", 0)),
        "phase": state.get("phase"),
        "path": shown,
    }
    return net, meta
