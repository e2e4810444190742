"""TensorBoard views of a one-shot search: softmax(α) heatmaps, the α table, the genotype."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from raynas.oneshot.search import DartsSearch, as_numpy

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

    Methods that never train α (``learns_alpha`` False: RSPS, ENAS) get the genotype text
    only; their progress is in the reported scalars (val_acc, ENAS's controller_*).

    The writer opens lazily, so the object can be created anywhere; ``close`` when done.
    """

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir
        self._writer = None

    def log(self, search: DartsSearch, metrics: Mapping[str, Any]) -> None:
        if self._writer is None:
            from raynas.event_writer import summary_writer

            self._writer = summary_writer(self.logdir)
        step = int(metrics["epoch"])
        model = search.model
        with torch.no_grad():
            weights = {t: as_numpy(w) for t, w in model.op_weights().items()}
        if not search.learns_alpha:  # RSPS, ENAS: α stays at its initial values
            weights = {}
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
