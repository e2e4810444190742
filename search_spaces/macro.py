"""Combined macro + micro space: the network skeleton and the cell are searched together.

Macro decisions: the initial channels ``macro.C`` and the number of normal cells in each of the
three stages ``macro.s1.cells``, ``macro.s2.cells``, ``macro.s3.cells``; a reduction sits
between consecutive stages, so the stage sizes decide where reductions sit and how deep the
network is. Micro decisions: every key of the cell space (``nb201`` or ``darts``), prefixed
with ``cell.`` (e.g. ``cell.edge.1<-0``, ``cell.normal.n0.inputs``).

With ``micro="nb201"`` the reductions are NB201's residual blocks; with ``micro="darts"`` they
are DARTS reduction cells (so ``layers = s1 + s2 + s3 + 2``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces.base import Genotype, SearchSpace, choice

MICRO = ("nb201", "darts")
PREFIX = "cell."
STAGES = 3


@dataclass(frozen=True)
class MacroGenotype:
    """Initial channels, normal cells per stage, and the micro space's cell genotype."""

    C: int
    cells: tuple[int, ...]
    cell: Genotype


class MacroSpace(SearchSpace):
    """Macro skeleton x micro cell.

    Args:
        micro: the cell space, ``nb201`` or ``darts``.
        channels: allowed initial channel counts.
        cells: allowed numbers of normal cells per stage.
        micro_options: options of the micro space (e.g. ``{"ops": [...]}`` for nb201).
    """

    name = "macro"

    def __init__(
        self,
        micro: str = "nb201",
        channels: Sequence[int] = (8, 16, 32),
        cells: Sequence[int] = (1, 2, 3, 4, 5),
        micro_options: Mapping[str, Any] | None = None,
    ) -> None:
        import search_spaces

        if micro not in MICRO:
            raise ValueError(f"invalid micro space {micro!r}; allowed: {', '.join(MICRO)}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be positive integers, got {list(channels)}")
        if micro == "darts" and any(int(c) % 2 for c in channels):
            # DARTS' FactorizedReduce splits channels in two halves.
            raise ValueError(f"channels must be even for the darts micro space, got {channels}")
        if not cells or any(int(n) < 0 for n in cells):
            raise ValueError(f"cells must be integers >= 0, got {list(cells)}")
        self.micro_name = micro
        self.micro = search_spaces.get(micro, **dict(micro_options or {}))
        self.channels = tuple(int(c) for c in channels)
        self.cells = tuple(int(n) for n in cells)

    def tune_space(self) -> dict[str, Any]:
        space: dict[str, Any] = {"macro.C": choice(self.channels)}
        for s in range(1, STAGES + 1):
            space[f"macro.s{s}.cells"] = choice(self.cells)
        space.update({PREFIX + k: v for k, v in self.micro.tune_space().items()})
        return space

    def decode(self, config: Mapping[str, Any]) -> MacroGenotype:
        self.check_config(config)
        cell = self.micro.decode(
            {k[len(PREFIX) :]: v for k, v in config.items() if k.startswith(PREFIX)}
        )
        cells = tuple(int(config[f"macro.s{s}.cells"]) for s in range(1, STAGES + 1))
        return MacroGenotype(int(config["macro.C"]), cells, cell)

    def encode(self, genotype: MacroGenotype) -> dict[str, Any]:
        config: dict[str, Any] = {"macro.C": genotype.C}
        for s, n in enumerate(genotype.cells, start=1):
            config[f"macro.s{s}.cells"] = n
        config.update({PREFIX + k: v for k, v in self.micro.encode(genotype.cell).items()})
        return config

    def to_str(self, genotype: MacroGenotype) -> str:
        cells = ".".join(str(n) for n in genotype.cells)
        return f"C{genotype.C}-N{cells}:{self.micro.to_str(genotype.cell)}"

    def from_str(self, text: str) -> MacroGenotype:
        match = re.fullmatch(r"C(\d+)-N(\d+)\.(\d+)\.(\d+):(.*)", text, flags=re.S)
        if match is None:
            raise ValueError(f"not a macro architecture string: {text[:80]!r}")
        c, a, b, d, cell = match.groups()
        return MacroGenotype(int(c), (int(a), int(b), int(d)), self.micro.from_str(cell))

    def to_json(self, genotype: MacroGenotype) -> dict[str, Any]:
        return {
            "C": genotype.C,
            "cells": list(genotype.cells),
            "micro": self.micro_name,
            "cell": self.micro.to_json(genotype.cell),
        }

    def build(
        self, genotype: MacroGenotype, num_classes: int = 10, in_channels: int = 3, **options
    ):
        """The micro space's network with this skeleton; ``options`` go to the micro build."""
        a, b, c = genotype.cells
        if self.micro_name == "nb201":
            return self.micro.build(
                genotype.cell, num_classes, in_channels, C=genotype.C, N=(a, b, c), **options
            )
        return self.micro.build(
            genotype.cell,
            num_classes,
            in_channels,
            C=genotype.C,
            layers=a + b + c + 2,
            reduction_layers=(a, a + 1 + b),
            **options,
        )
