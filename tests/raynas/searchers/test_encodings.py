"""Architecture encodings and the moves between configs that searchers share."""

from __future__ import annotations

import numpy as np
import pytest
from ray import tune

import search_spaces
from raynas.searchers import encodings, moves


def _configs(space, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.encode(space.sample(rng)) for _ in range(n)]


# ------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize(
    ("space", "name", "resolved", "dim"),
    [
        ("nb201", "auto", "adjacency", 30),
        ("nb201", "path", "path", 100),
        ("nb201", "onehot", "onehot", 30),
        ("nb201", "adjacency", "adjacency", 30),
        ("darts", "auto", "adjacency", 2 * 14 * 7),
        ("darts", "onehot", "onehot", 2 * (1 + 3 + 6 + 10 + 8 * 7)),
        ("mobilenetv3", "auto", "onehot", 5 * 3 + 40 * 3),
        ("macro", "auto", "adjacency", 3 + 3 * 5 + 30),
        ("macro", "path", "path", 3 + 3 * 5 + 100),
    ],
)
def test_encoding_names_and_sizes(space, name, resolved, dim):
    space = search_spaces.get(space)
    encoder = encodings.Encoder(name, space.tune_space(), space)
    assert encoder.name == resolved and encoder.dim == dim
    x = encoder(_configs(space, 4))
    assert x.shape == (4, dim) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("name", "space", "message"),
    [
        ("graph", "nb201", "unknown encoding 'graph'; choose one of: auto, onehot, adjacency"),
        ("path", "darts", "encoding 'path' needs a cell space .nb201, or macro around one."),
        ("adjacency", "mobilenetv3", "encoding 'adjacency' needs a cell space .nb201, darts"),
    ],
)
def test_encoding_rejects_unknown_or_unsupported(name, space, message):
    with pytest.raises(ValueError, match=message):
        encodings.resolve(name, search_spaces.get(space))


def test_nb201_path_encoding_counts_the_paths_without_none_edges():
    space = search_spaces.get("nb201")
    encoder = encodings.Encoder("path", space.tune_space(), space)
    all_conv = dict.fromkeys(space.tune_space(), "nor_conv_3x3")
    assert encoder([all_conv]).sum() == 4  # 0->3, 0->1->3, 0->2->3, 0->1->2->3
    cut = dict(all_conv, **{"edge.3<-0": "none", "edge.1<-0": "none"})
    assert encoder([cut]).sum() == 1  # only 0->2->3 is left
    assert encoder([dict.fromkeys(space.tune_space(), "none")]).sum() == 0


def test_darts_adjacency_shares_an_input_across_input_pairs():
    space = search_spaces.get("darts")
    encoder = encodings.Encoder("adjacency", space.tune_space(), space)
    a, b = _configs(space, 2)
    a["normal.n2.inputs"], a["normal.n2.op0"] = "0,1", "sep_conv_3x3"
    b["normal.n2.inputs"], b["normal.n2.op0"] = "0,3", "sep_conv_3x3"
    x = encoder([a, b])
    # node 2 reads input 0 through sep_conv_3x3 in both: one shared feature
    assert np.sum(x[0] * x[1]) >= 1
    assert x.sum(axis=1).tolist() == [16.0, 16.0]  # 2 cells x 4 nodes x 2 inputs


def test_equal_mobilenetv3_architectures_encode_equally():
    space = search_spaces.get("mobilenetv3")
    encoder = encodings.Encoder("onehot", space.tune_space(), space)
    config = _configs(space, 1)[0]
    config["s1.depth"] = 2
    other = dict(config, **{"s1.b4.kernel": 7 if config["s1.b4.kernel"] != 7 else 5})
    assert space.to_str(space.decode(config)) == space.to_str(space.decode(other))
    x = encoder([config, other])
    assert np.array_equal(x[0], x[1])


def test_onehot_of_a_flat_space_scales_numeric_keys():
    flat = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "width": tune.randint(8, 17),
        "act": tune.choice(["relu", "gelu"]),
    }
    encoder = encodings.Encoder("onehot", flat)
    x = encoder(
        [{"lr": 1e-4, "width": 16, "act": "gelu"}, {"lr": 1e-1, "width": 8, "act": "relu"}]
    )
    assert x.tolist() == [[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]]


# ------------------------------------------------------------------------------ moves
def test_neighbourhood_bound_counts_one_decision_changes():
    space = search_spaces.get("nb201")
    assert moves.neighbourhood_bound(space.tune_space()) == 24
    assert moves.neighbourhood_bound({"a": tune.randint(0, 10), "b": tune.choice([1, 2])}) == 10
    assert moves.neighbourhood_bound({"lr": tune.uniform(0, 1)}) is None


def test_sampled_neighbours_are_distinct_one_move_away_and_unseen():
    space = search_spaces.get("nb201")
    config = _configs(space, 1)[0]
    key = lambda c: space.to_str(space.decode(c))  # noqa: E731
    every = {key(c) for c in moves.neighbours(config, space.tune_space(), space)}
    seen = set(list(every)[:10])
    out = moves.sample_neighbours(
        config, moves.key_moves(space.tune_space()), 30, np.random.default_rng(0), key, seen
    )
    keys = [key(c) for c in out]
    assert len(keys) == len(set(keys)) == 14  # 24 neighbours, 10 excluded
    assert set(keys) <= every - seen
