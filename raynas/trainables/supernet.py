"""``supernet`` trainable: one trial trains one OFA supernet; ``load_supernet`` reads it back.

Checkpoints: every epoch a Tune checkpoint folder holding ``supernet.pt`` (``torch.save`` of a
dict with ``model``, ``identity`` (``OFASupernet.identity()``), ``dropout``, ``options``,
``epoch`` and the optimiser, LR schedule and RNG state for an exact resume).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs
import torch

from raynas.errors import ConfigError
from raynas.nn.ofa import OFASupernet
from raynas.storage import Location, is_uri, locate

#: The checkpoint file inside a Tune checkpoint folder.
CHECKPOINT_FILE = "supernet.pt"

_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")


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
        ``path`` (the file read, as shown in messages) and ``trial_config`` when saved.

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
    if "trial_config" in state:
        meta["trial_config"] = state["trial_config"]
    return net, meta
