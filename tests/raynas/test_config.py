"""Experiment-file validation: every bad input fails before Ray starts, with one clear line."""

from __future__ import annotations

import textwrap

import pytest

from raynas import cli
from raynas.config import ConfigError, load

GOOD = """
name: ok
space: nb201
searcher: {name: optuna, options: {n_startup_trials: 5}}
scheduler: {name: asha, options: {grace_period: 1, max_t: 3}}
trainable: {name: table, options: {dataset: cifar100}}
metric: val_acc
mode: max
num_samples: 4
max_concurrent: 2
resources: {cpu: 1, gpu: 0}
seed: 3
"""


def write(tmp_path, text: str):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_loads_into_typed_frozen_config(tmp_path):
    cfg = load(write(tmp_path, GOOD))
    assert cfg.searcher.name == "optuna" and cfg.searcher.options == {"n_startup_trials": 5}
    assert cfg.resources.cpu == 1.0 and cfg.num_samples == 4
    with pytest.raises(Exception, match="frozen"):
        cfg.num_samples = 5


def test_name_defaults_to_file_stem_and_overrides_apply(tmp_path):
    cfg = load(
        write(tmp_path, "space: nb201\n"),
        ["searcher.options.n_initial_points=3", "searcher.name=hyperopt", "num_samples=7"],
    )
    assert cfg.name == "exp" and cfg.num_samples == 7
    assert cfg.searcher.name == "hyperopt" and cfg.searcher.options == {"n_initial_points": 3}


BAD = [
    ("space: nb201\nnum_samples: [1\n", "invalid YAML"),
    ("", "the experiment file is empty"),
    ("- space\n", "must be a YAML mapping"),
    ("space: nb201\nseracher: random\n", "unknown key 'seracher'; valid keys: name, space"),
    ("searcher: random\n", "missing required key 'space'"),
    ("space: nb210\n", "unknown space 'nb210'; choose one of: darts, macro, mobilenetv3, nb201"),
    ("space: nb201\nsearcher: evolutoin\n", "unknown searcher 'evolutoin'; choose one of: "),
    ("space: nb201\nscheduler: hyperband\n", "unknown scheduler 'hyperband'; choose one of: "),
    ("space: nb201\ntrainable: tabel\n", "unknown trainable 'tabel'; choose one of: "),
    ("space: nb201\nnum_samples: 0\n", "num_samples: Input should be greater than or equal to 1"),
    ("space: nb201\nnum_samples: many\n", "num_samples: Input should be a valid integer"),
    ("space: nb201\nmode: maximize\n", "mode: Input should be 'max' or 'min'"),
    ("space: nb201\nresources: {cpu: 0}\n", "resources.cpu: Input should be greater than 0"),
    ("space: nb201\nresources: {tpu: 1}\n", "unknown key 'resources.tpu'; valid keys: cpu, gpu"),
    ("space: nb201\nmax_concurrent: -2\n", "max_concurrent: Input should be greater than or"),
    ("space: nb201\nname: 'a b/c'\n", "name must be letters, digits"),
    ("space: {name: nb201, options: {C: 8, ops: [conv_7x7]}}\n", "invalid nb201 op"),
    (
        "space: {name: nb201, options: {channels: 3}}\n",
        "space 'nb201': unknown option 'channels' for search space 'nb201'; valid options: C, N",
    ),
    (
        "space: nb201\nsearcher: {name: optuna, options: {n_startup: 3}}\n",
        "unknown option 'n_startup' for searcher 'optuna'; valid options: points_to_evaluate",
    ),
    (
        "space: nb201\nsearcher: {name: hyperopt, options: {gamma: 2}}\n",
        "gamma must be in (0, 1), got 2",
    ),
    (
        "space: nb201\nscheduler: {name: asha, options: {grace_priod: 1}}\n",
        "unknown option 'grace_priod' for scheduler 'asha'",
    ),
    (
        "space: nb201\nscheduler: {name: asha, options: {max_t: 0}}\n",
        "invalid options {'max_t': 0} for scheduler 'asha'",
    ),
    (
        "space: nb201\ntrainable: {name: table, options: {dataset: mnist}}\n",
        "unknown nb201 dataset 'mnist'; choose one of: cifar10, cifar100, imagenet16-120",
    ),
    ("space: darts\ntrainable: table\n", "the table trainable needs the nb201 space, got 'darts'"),
    ("space: nb201\nnum_samples: 4\nseed: 1\nnum_samples: 100\n", "duplicate key 'num_samples'"),
    ("space: {name: nb201, options: {C: 8, C: 16}}\n", "duplicate key 'C'"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_experiment_file_exits_2_with_one_clear_line(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    code = cli.main(["run", str(path), "--storage-path", str(tmp_path / "results"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raynas: error: ")
    assert message in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()  # nothing started, nothing written


def test_missing_file_and_bad_override(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "experiment file not found" in capsys.readouterr().err
    path = write(tmp_path, "space: nb201\n")
    assert cli.main(["run", str(path), "--set", "num_samples"]) == 2
    assert "--set expects key=value" in capsys.readouterr().err


def test_unreachable_cluster_fails_fast(tmp_path, capsys):
    path = write(tmp_path, "space: nb201\n")
    code = cli.main(
        ["run", str(path), "--address", "127.0.0.1:9", "--storage-path", str(tmp_path / "r")]
    )
    assert code == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_set_reaches_into_a_component_left_at_its_default(tmp_path):
    # the --help example: the file names no searcher, so the default one gets the option
    cfg = load(
        write(tmp_path, "space: nb201\n"),
        ["searcher.options.seed=3", "trainable.options.dataset=cifar100"],
    )
    assert (cfg.searcher.name, cfg.searcher.options) == ("random", {"seed": 3})
    assert (cfg.trainable.name, cfg.trainable.options) == ("table", {"dataset": "cifar100"})


def test_name_and_storage_path_from_the_command_line_stay_as_typed(tmp_path):
    overrides = cli.run_overrides([], "2024-06-01", "/data/run #2")
    cfg = load(write(tmp_path, "space: nb201\n"), overrides)
    assert cfg.name == "2024-06-01" and cfg.storage_path == "/data/run #2"


def test_an_empty_name_is_the_file_stem(tmp_path):
    assert load(write(tmp_path, "name:\nspace: nb201\n")).name == "exp"


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# r\xe9sum\xe9\nspace: nb201\n".encode("latin-1"))
    assert cli.main(["run", str(path), "--storage-path", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "latin1.yaml: not UTF-8 text" in err and "Traceback" not in err


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_max_concurrent_reaches_tunes_random_search(tmp_path):
    # Tune's random search (a SearchAlgorithm, not a Searcher) limits concurrency itself; the
    # Tuner's max_concurrent_trials does not apply to it, so build() must hand the value over.
    from raynas import experiment

    text = GOOD.replace("{name: optuna, options: {n_startup_trials: 5}}", "random")
    parts = experiment.build(load(write(tmp_path, text)))
    assert parts.searcher.max_concurrent == 2
