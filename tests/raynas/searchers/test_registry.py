"""Every registered searcher: seeded, through a real Tuner on the NB201 table trainable."""

from __future__ import annotations

import pytest
from ray import tune

import search_spaces
from raynas import searchers, trainables
from raynas.benchmarks.nb201 import table


def test_unknown_searcher_lists_valid_names():
    with pytest.raises(
        ValueError, match="unknown searcher 'evolutoin'; choose one of: evolution, hyperopt"
    ):
        searchers.make("evolutoin", search_spaces.get("nb201"))


def _run(name: str, seed: int, tmp_path, num_samples: int = 8) -> list[str]:
    space = search_spaces.get("nb201")
    searcher = searchers.make(
        name, space, metric="val_acc", mode="max", seed=seed, max_concurrent=1
    )
    limit = 1 if isinstance(searcher, tune.search.Searcher) else None
    grid = tune.Tuner(
        trainables.make("table", space),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            search_alg=searcher,
            num_samples=num_samples,
            max_concurrent_trials=limit,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=f"{name}-{seed}", verbose=0),
    ).fit()
    assert not grid.errors
    # Trial ids are random for some searchers, so compare the suggested multiset.
    return sorted(r.metrics["arch"] for r in grid)


@pytest.mark.parametrize("name", searchers.names())
def test_searcher_runs_in_tuner_and_reports_table_values(ray_address, tmp_path, name):
    archs = _run(name, seed=0, tmp_path=tmp_path)
    assert len(archs) == 8
    known = set(table().arch_strs)
    assert all(a in known for a in archs)


@pytest.mark.parametrize("name", searchers.names())
def test_seeded_searcher_is_reproducible(ray_address, tmp_path, name):
    first = _run(name, seed=5, tmp_path=tmp_path / "a", num_samples=6)
    second = _run(name, seed=5, tmp_path=tmp_path / "b", num_samples=6)
    other = _run(name, seed=6, tmp_path=tmp_path / "c", num_samples=6)
    assert first == second
    assert first != other
