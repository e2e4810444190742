"""Every experiment file in examples/ loads and builds (space, searcher, scheduler, trainable)
without starting Ray, so a typo or a stale option in an example fails here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import EXAMPLES, REPO

import search_spaces
from raynas import config, experiment

# An example whose header says it depends on code still being written must fail to build until
# then (strict xfail: once it builds, the note has to go).
NOT_READY = "NOT RUNNABLE YET"

FILES = sorted(EXAMPLES.glob("*.yaml"))


def _is_run_output(entry: object) -> bool:
    """A path to an earlier run's output (an experiment folder or export) that is not here."""
    if not isinstance(entry, str) or "/" not in entry:
        return False
    return not (Path(entry).exists() or (REPO / entry).exists())


def _load(path: Path) -> config.ExperimentConfig:
    """``config.load``, except that a ``fixed`` searcher's ``archs`` that name an earlier run's
    output (darts_eval.yaml reads the darts search's folder) are replaced by as many sampled
    architectures of the space, so the rest of the file is still validated."""
    data = yaml.safe_load(path.read_text())
    data.setdefault("name", path.stem)
    searcher = data.get("searcher")
    if isinstance(searcher, dict) and searcher.get("name") == "fixed":
        archs = searcher.get("options", {}).get("archs")
        if isinstance(archs, list) and any(_is_run_output(a) for a in archs):
            cfg = config.from_mapping(data, str(path))
            space = search_spaces.get(cfg.space.name, **cfg.space.options)
            rng = np.random.default_rng(0)
            searcher["options"]["archs"] = [space.to_str(space.sample(rng)) for _ in archs]
    return config.from_mapping(data, str(path))


def test_examples_folder_has_the_nb201_searcher_examples():
    names = {f.name for f in FILES}
    assert {"nb201_evolution.yaml", "nb201_reinforce.yaml", "nb201_multiobjective.yaml"} <= names


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            f,
            marks=pytest.mark.xfail(
                NOT_READY in f.read_text(), reason=f"marked {NOT_READY!r}", strict=True
            ),
        )
        for f in FILES
    ],
    ids=[f.name for f in FILES],
)
def test_example_loads_and_builds(path):
    assert path.read_text().startswith("#"), "an example starts with a comment saying what it does"
    cfg = _load(path)
    parts = experiment.build(cfg)
    assert parts.space.name == cfg.space.name
    assert callable(parts.trainable)


def test_a_bad_option_in_an_example_fails_the_build(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (EXAMPLES / "nb201_evolution.yaml").read_text()
    bad.write_text(text.replace("population_size: 20", "population_size: 1"))
    with pytest.raises(config.ConfigError, match="population_size must be an integer >= 2"):
        experiment.build(_load(bad))
