"""``points_to_evaluate`` beyond ``num_samples``: every searcher runs ``num_samples`` trials."""

from __future__ import annotations

import logging

import search_spaces
from raynas import experiment, results
from raynas.config import from_mapping

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
]


def test_random_search_runs_num_samples_trials_not_every_point(ray_address, tmp_path, caplog):
    # Tune's BasicVariantGenerator alone runs all 4 points; raynas cuts the list to 2.
    searcher = "random"
    space = search_spaces.get("nb201")
    points = [space.encode(space.from_str(a)) for a in ARCHS]
    data = {
        "name": searcher,
        "space": "nb201",
        "searcher": {"name": searcher, "options": {"points_to_evaluate": points}},
        "trainable": "table",
        "num_samples": 2,
        "max_concurrent": 1,
        "storage_path": str(tmp_path),
        "seed": 0,
    }
    with caplog.at_level(logging.WARNING, logger="raynas.preflight"):
        experiment.run(from_mapping(data), verbose=0)
    trials = results.load(tmp_path / searcher).trials
    assert sorted(trials["arch"]) == sorted(ARCHS[:2])
    assert "points_to_evaluate has 4 configs but num_samples is 2" in caplog.text
