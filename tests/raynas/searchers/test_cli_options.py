"""Bad options of local search and the predictor-guided searcher: one line, exit 2, via
``raynas run``."""

from __future__ import annotations

import pytest

from raynas import cli

# A macro space with 6,000 channel counts: over 6,000 configs one decision away, more than
# local search enumerates.
_CHANNELS = ", ".join(str(c) for c in range(2, 12_002, 2))
_WIDE = "space: {name: macro, options: {channels: [" + _CHANNELS + "]}}\n"

BAD = [
    (
        "space: nb201\nsearcher: {name: bananas, options: {encoding: graph}}\n",
        "searcher 'bananas': unknown encoding 'graph'; choose one of: auto, onehot, adjacency, "
        "path",
    ),
    (
        "space: mobilenetv3\ntrainable: train\n"
        "searcher: {name: bananas, options: {encoding: path}}\n",
        "searcher 'bananas': encoding 'path' needs a cell space (nb201, or macro around one), "
        "got space 'mobilenetv3'; use onehot",
    ),
    (
        "space: nb201\nsearcher: {name: bananas, options: {acquisition: ei}}\n",
        "searcher 'bananas': unknown acquisition 'ei'; choose one of: its, ucb",
    ),
    (
        "space: nb201\nsearcher: {name: bananas, options: {ensemble_size: 0}}\n",
        "searcher 'bananas': ensemble_size must be an integer >= 1, got 0",
    ),
    (
        "space: nb201\nsearcher: {name: bananas, options: {num_candidates: 0}}\n",
        "searcher 'bananas': num_candidates must be an integer >= 1, got 0",
    ),
    (
        _WIDE + "trainable: train\nsearcher: local\n",
        "searcher 'local': local search cannot enumerate the neighbours in space 'macro': up to "
        "6035 configs one decision away (more than 5000); set sample_neighbours",
    ),
    (
        "space: nb201\nsearcher: {name: local, options: {n_init: 0}}\n",
        "searcher 'local': n_init must be an integer >= 1, got 0",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_bad_searcher_option_exits_2_with_one_clear_line(tmp_path, capsys, text, message):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    code = cli.main(["run", str(path), "--storage-path", str(tmp_path / "results"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raynas: error: ")
    assert message in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_the_wide_space_runs_with_sampled_neighbours(tmp_path):
    from raynas import config, experiment

    path = tmp_path / "exp.yaml"
    path.write_text(
        _WIDE + "trainable: train\nsearcher: {name: local, options: {sample_neighbours: 20}}\n"
    )
    parts = experiment.build(config.load(path))
    assert parts.searcher.sample_neighbours == 20
