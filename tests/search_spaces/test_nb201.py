"""NAS-Bench-201 specifics: canonical strings, table coverage, analytic params/MACs."""

from __future__ import annotations

import numpy as np
import pytest

import search_spaces
from raynas.benchmarks import nb201
from raynas.nn.measure import count_macs

BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
)


def test_canonical_string_order_matches_tune_keys():
    space = search_spaces.get("nb201")
    genotype = space.from_str(BEST)
    assert space.encode(genotype)["edge.3<-1"] == "nor_conv_1x1"
    assert space.to_str(genotype) == BEST


@pytest.mark.parametrize(
    "text",
    [
        "",
        "|none~0|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|",
        "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        # an edge twice: the last copy silently won
        "|none~0|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_bad_strings_raise(text):
    with pytest.raises(ValueError):
        search_spaces.get("nb201").from_str(text)


def test_every_table_architecture_round_trips():
    space = search_spaces.get("nb201")
    table = nb201.table()
    assert len(table) == space.size() == 15625
    strs = {space.to_str(space.from_str(a)) for a in table.arch_strs}
    assert strs == set(table.arch_strs)


@pytest.mark.parametrize("dataset", nb201.DATASETS)
def test_analytic_params_and_macs_match_built_network(dataset):
    space = search_spaces.get("nb201")
    info = nb201.DATASET_INFO[dataset]
    for seed in range(3):
        genotype = space.sample(np.random.default_rng(seed))
        model = space.build(genotype, num_classes=info["classes"]).eval()
        params = sum(p.numel() for p in model.parameters())
        macs = count_macs(model, (3, info["resolution"], info["resolution"]))
        expected = nb201.params_and_macs(
            genotype.ops, classes=info["classes"], resolution=info["resolution"]
        )
        assert (params, macs) == expected


def test_largest_cell_has_nb201_published_params():
    # NAS-Bench-201 reports 1.5316M parameters for the all-conv3x3 cell on CIFAR-10.
    model = search_spaces.get("nb201").build(
        search_spaces.get("nb201").from_str(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        )
    )
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(1.5316e6, rel=1e-3)


def test_ops_subset_option_restricts_choices():
    space = search_spaces.get("nb201", ops=["skip_connect", "nor_conv_3x3"])
    assert space.size() == 2**6
    with pytest.raises(ValueError, match="invalid nb201 op"):
        search_spaces.get("nb201", ops=["conv_7x7"])
