"""Macro + micro space: the skeleton choices reach the built network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import search_spaces
from raynas.nn.nb201 import NB201Cell, ResidualReduction


def test_stage_sizes_decide_cells_and_reductions_nb201():
    space = search_spaces.get("macro", micro="nb201")
    genotype = space.sample(np.random.default_rng(0))
    config = dict(
        space.encode(genotype),
        **{"macro.C": 8, "macro.s1.cells": 1, "macro.s2.cells": 3, "macro.s3.cells": 2},
    )
    model = space.build(space.decode(config))
    kinds = [type(m).__name__ for m in model.cells]
    assert kinds == [
        "NB201Cell",
        "ResidualReduction",
        "NB201Cell",
        "NB201Cell",
        "NB201Cell",
        "ResidualReduction",
        "NB201Cell",
        "NB201Cell",
    ]
    assert model.stem[0].out_channels == 8
    assert isinstance(model.cells[0], NB201Cell) and isinstance(model.cells[1], ResidualReduction)


def test_darts_micro_puts_reduction_cells_between_stages():
    space = search_spaces.get("macro", micro="darts", channels=[8], cells=[1, 2])
    config = dict(
        space.encode(space.sample(np.random.default_rng(1))),
        **{"macro.s1.cells": 2, "macro.s2.cells": 1, "macro.s3.cells": 1},
    )
    model = space.build(space.decode(config)).eval()
    reductions = [i for i, cell in enumerate(model.cells) if cell.reduction]
    assert reductions == [2, 4] and len(model.cells) == 6
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_size_is_macro_times_micro():
    space = search_spaces.get("macro", micro="nb201", channels=[8, 16], cells=[1, 2, 3])
    assert space.size() == 2 * 3**3 * 15625


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"micro": "mobilenetv3"}, "invalid micro space 'mobilenetv3'"),
        ({"channels": [0]}, "channels must be positive"),
        ({"micro": "darts", "channels": [9]}, "channels must be even"),
        ({"cells": [-1]}, "cells must be integers >= 0"),
    ],
)
def test_bad_options_raise(options, message):
    with pytest.raises(ValueError, match=message):
        search_spaces.get("macro", **options)
