"""Cell layouts the networks are built on, without torch: op names, nodes, reduction cells.

The networks in ``raynas.nn`` and the search spaces that describe them share these; they live
here, below both, so that ``raynas.nn`` never imports ``search_spaces`` and importing a space
does not import torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

#: Candidate ops of the DARTS evaluation cells (DARTS' PRIMITIVES without ``none``).
DARTS_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: Intermediate nodes of a DARTS cell.
DARTS_NODES = 4
#: States a DARTS cell concatenates into its output.
DARTS_CONCAT: tuple[int, ...] = (2, 3, 4, 5)

#: Ops of the NAS-Bench-201 cell.
NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: Edges ``(to, from)`` of the NAS-Bench-201 cell, in the order of its arch string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def default_reduction_layers(layers: int) -> tuple[int, ...]:
    """DARTS' reduction positions: cells ``layers // 3`` and ``2 * layers // 3`` (deduplicated)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def check_reduction_layers(layers: int, reduction_layers: Sequence[int]) -> tuple[int, ...]:
    """Validate reduction positions: sorted, distinct ints in ``[0, layers)``.

    Returns:
        The positions as a tuple of ints.

    Raises:
        ValueError: a position is not an int, out of range, repeated or out of order.
    """
    positions = tuple(reduction_layers)
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral) or not 0 <= p < layers:
            raise ValueError(
                f"invalid reduction layer {p!r} in reduction_layers={positions}; "
                f"allowed: ints in [0, {layers - 1}] (layers={layers})"
            )
    if list(positions) != sorted(set(positions)):
        raise ValueError(
            f"reduction_layers must be sorted and distinct, got {positions} (layers={layers})"
        )
    return tuple(int(p) for p in positions)
