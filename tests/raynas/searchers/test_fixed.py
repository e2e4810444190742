"""The ``fixed`` searcher: given architectures once each; search-then-evaluate via the CLI."""

from __future__ import annotations

import csv
import json
import pickle

import pytest
import yaml
from helpers import table_tuner

import search_spaces
from raynas import cli, experiment, results, searchers
from raynas.benchmarks.nb201 import table
from raynas.config import ConfigError, from_mapping
from raynas.searchers.fixed import FixedSearcher
from search_spaces.darts import DARTS_V2, Genotype

NB201 = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
]


def _fixed(space: str, archs, **kw) -> FixedSearcher:
    return searchers.make("fixed", search_spaces.get(space), seed=0, archs=archs, **kw)


def _run_experiment(root, name: str, **overrides):
    data = {
        "name": name,
        "space": "nb201",
        "searcher": "random",
        "trainable": "table",
        "num_samples": 4,
        "storage_path": str(root),
        "seed": 0,
        **overrides,
    }
    experiment.run(from_mapping(data), verbose=0)
    return root / name


def test_strings_are_suggested_in_order_then_finished():
    searcher = _fixed("nb201", NB201)
    space = search_spaces.get("nb201")
    got = [searcher.suggest(f"t{i}") for i in range(3)]
    assert [space.to_str(space.decode(c)) for c in got] == NB201
    assert searcher.suggest("t3") is FixedSearcher.FINISHED
    assert searcher.suggest("t4") is FixedSearcher.FINISHED


def test_darts_strings_published_text_and_canonical_form_are_accepted():
    space = search_spaces.get("darts")
    published = (
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
        "reduce_concat=range(2, 6))"
    )  # DARTS_V1 as written in the DARTS repository
    searcher = _fixed("darts", [space.to_str(DARTS_V2), published])
    v2, v1 = searcher.suggest("a"), searcher.suggest("b")
    assert space.decode(v2) == space.from_str(repr(DARTS_V2))
    assert ("sep_conv_3x3", 0) in space.decode(v1).normal and v1 != v2
    # The DARTS Genotype format of `raynas export` (space.to_json): the four fields, pairs
    # as [op, input] with the node's inputs in increasing order, concats [2, 3, 4, 5].
    as_json = space.to_json(DARTS_V2)
    assert list(as_json) == list(Genotype._fields)
    assert as_json["normal"][:2] == [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]]
    assert as_json["normal_concat"] == as_json["reduce_concat"] == [2, 3, 4, 5]
    assert space.to_str(Genotype(**as_json)) == space.to_str(DARTS_V2)


@pytest.mark.parametrize(
    ("space", "archs", "message"),
    [
        ("nb201", [NB201[0].replace("skip_connect", "skip_conect")], "invalid op 'skip_conect'"),
        (
            "nb201",
            ["no/such/folder"],
            r"archs\[0\]: 'no/such/folder' is neither an arch.*not found",
        ),
        ("darts", [NB201[0]], "neither an architecture of the darts space"),
        (
            "darts",
            [repr(DARTS_V2).replace("dil_conv_3x3", "dil_conv_7x7")],
            "dil_conv_7x7",
        ),
        ("nb201", [], "archs must be a non-empty list"),
        ("nb201", NB201[0], "archs must be a non-empty list"),
        ("nb201", [NB201[0], 3], r"archs\[1\]: 3 is not an architecture string"),
    ],
)
def test_bad_entries_are_clear_errors(space, archs, message):
    with pytest.raises(ValueError, match=message):
        _fixed(space, archs)


def test_an_op_outside_a_reduced_space_is_refused():
    space = search_spaces.get("nb201", ops=["skip_connect", "nor_conv_1x1", "nor_conv_3x3"])
    with pytest.raises(ValueError, match="invalid value 'avg_pool_3x3'"):
        searchers.make("fixed", space, archs=[NB201[2]])


def test_missing_archs_is_a_config_error_of_the_experiment():
    cfg = from_mapping({"space": "nb201", "searcher": {"name": "fixed", "options": {}}})
    with pytest.raises(ConfigError, match="searcher 'fixed': archs must be a non-empty list"):
        experiment.build(cfg)


def test_position_and_pending_trials_survive_save_and_restore(tmp_path):
    searcher = _fixed("nb201", NB201, metric="val_acc", mode="max")
    first = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"val_acc": 90.0})
    searcher.suggest("t1")  # in flight when saved
    searcher.save(str(tmp_path / "searcher.pkl"))

    restored = _fixed("nb201", [NB201[0]])  # another list: the saved state wins
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.archs == NB201 and "t1" in restored.pending
    space = search_spaces.get("nb201")
    assert space.to_str(space.decode(restored.suggest("t2"))) == NB201[2]
    assert restored.suggest("t3") is FixedSearcher.FINISHED
    assert restored.history == [(first, 90.0)]


@pytest.fixture(scope="module")
def fixed_run(ray_address, tmp_path_factory):
    """A raynas experiment (real Tuner, table trainable) with the fixed searcher, 4 archs."""
    root = tmp_path_factory.mktemp("fixed")
    archs = [NB201[1], NB201[0], NB201[2], NB201[1]]  # a repeat runs twice
    searcher = {"name": "fixed", "options": {"archs": archs}}
    folder = _run_experiment(root, "fixed", searcher=searcher, max_concurrent=1)
    return folder, archs


def test_tuner_runs_exactly_the_given_archs_in_order(fixed_run):
    folder, archs = fixed_run
    summary = results.load(folder)
    assert summary.states == {"TERMINATED": 4}
    assert sorted(summary.trials["arch"]) == sorted(archs)
    for _, row in summary.trials.iterrows():
        assert row["val_acc"] == table().lookup(row["arch"], "cifar10").val_acc
    # The order: the searcher state Tune saved holds the completed trials in order (one
    # trial at a time), and nothing left to suggest.
    (state_file,) = folder.glob("searcher-state-*.pkl")
    with open(state_file, "rb") as f:
        state = pickle.load(f)
    space = search_spaces.get("nb201")
    assert [space.to_str(space.decode(c)) for c, _ in state["history"]] == archs
    assert state["points_to_evaluate"] == [] and state["pending"] == {}


def test_export_json_and_experiment_folder_give_the_best_architecture(fixed_run, tmp_path):
    folder, archs = fixed_run
    best = results.best(results.load(folder))
    assert best["arch"] == max(archs, key=lambda a: table().lookup(a, "cifar10").val_acc)
    exported = tmp_path / "best.json"
    exported.write_text(json.dumps(best))
    searcher = _fixed("nb201", [str(folder), str(exported), best["arch"]])
    assert searcher.archs == [best["arch"]] * 3
    assert searcher.suggest("a") == best["config"]
    # Another space's export, a file that is not an export, a folder that is no experiment.
    other = tmp_path / "darts.json"
    other.write_text(json.dumps({**best, "space": "darts"}))
    with pytest.raises(ValueError, match="an architecture of the 'darts' space, not of 'nb201'"):
        _fixed("nb201", [str(other)])
    with pytest.raises(ValueError, match="cannot read .*raynas.yaml as a `raynas export` JSON"):
        _fixed("nb201", [str(folder / "raynas.yaml")])
    other.write_text(json.dumps({"config": best["config"]}))
    with pytest.raises(ValueError, match=r"is not a `raynas export` JSON file \(no 'arch'"):
        _fixed("nb201", [str(other)])
    with pytest.raises(ValueError, match="is not a raynas experiment folder"):
        _fixed("nb201", [str(tmp_path)])


@pytest.mark.slow
def test_experiment_without_a_finished_trial_is_refused(ray_address, tmp_path):
    # Every trial fails (the curves trainable has no stored curve for the random
    # searcher's architecture): no finished trial to take an arch from. (A missing data
    # folder is refused before Ray starts.)
    folder = _run_experiment(tmp_path, "failed", num_samples=1, trainable="curves", max_failures=0)
    assert results.load(folder).states == {"ERROR": 1}
    with pytest.raises(ValueError, match=r"has no finished trial \(error: 1\).*raynas resume"):
        _fixed("nb201", [str(folder)])


def _tuner(space, searcher, tmp_path, num_samples: int):
    return table_tuner(space, searcher, tmp_path, "fixed", num_samples, 1)


@pytest.mark.parametrize("num_samples", [2, 4])
def test_num_samples_other_than_the_list_is_a_config_error(ray_address, tmp_path, num_samples):
    space = search_spaces.get("nb201")
    tuner = _tuner(space, _fixed("nb201", NB201), tmp_path, num_samples=num_samples)
    with pytest.raises(ConfigError, match=f"its 3 archs once, but num_samples is {num_samples}"):
        tuner.fit()


def _event_tags(trial_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for file in trial_dir.glob("events.out.tfevents*"):
        acc = EventAccumulator(str(file))
        acc.Reload()
        for kind in ("scalars", "images", "tensors"):
            tags.update(acc.Tags()[kind])
    return tags


def _last_result(trial_dir) -> dict:
    with open(trial_dir / "progress.csv") as f:
        return list(csv.DictReader(f))[-1]


@pytest.mark.slow
def test_search_export_then_evaluate_with_the_cli(ray_address, tmp_path, monkeypatch, capsys):
    """The two-command pipeline: a DARTS search, then training its genotype from scratch."""
    monkeypatch.chdir(tmp_path)
    tiny = {"dataset": "digits", "val_fraction": 64, "subset": 64, "batch_size": 32}
    search = {
        "name": "search",
        "space": {"name": "nb201"},
        "searcher": "random",
        "trainable": {
            "name": "darts",
            "options": {
                **tiny,
                "epochs": 2,
                "build": {"C": 4, "N": 1},
                "sweep": {"seed": [0, 1]},  # two searches
                "threads": 1,
            },
        },
        "num_samples": 1,
        "max_concurrent": 2,
    }
    evaluate = {
        "name": "eval",
        "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "searcher": {"name": "fixed", "options": {"archs": ["results/search"]}},
        "trainable": {"name": "train", "options": {**tiny, "epochs": 1, "amp": False}},
        "num_samples": 1,
    }
    for exp in (search, evaluate):
        (tmp_path / f"{exp['name']}.yaml").write_text(yaml.safe_dump(exp))

    # Before the search: a missing source folder is one line and exit code 2.
    capsys.readouterr()
    assert cli.main(["run", "eval.yaml", "--storage-path", "results", "-q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "raynas: error: searcher 'fixed': archs[0]: 'results/search' is neither an "
        "architecture of the nb201 space (not an nb201 architecture string: 'results/search') "
        f"nor an existing file or folder ({tmp_path / 'results' / 'search'} not found)"
    ]
    assert not (tmp_path / "results" / "eval").exists()

    assert cli.main(["run", "search.yaml", "--storage-path", "results", "-q"]) == 0
    assert cli.main(["export", "results/search", "--out", "best.json"]) == 0
    best = json.loads((tmp_path / "best.json").read_text())
    space = search_spaces.get("nb201")
    # The exported arch is the genotype the best search derived at its last epoch.
    lasts = [_last_result(d) for d in (tmp_path / "results" / "search").glob("darts_*")]
    assert len(lasts) == 2 and all(r["epoch"] == "2" for r in lasts)
    (top,) = [r for r in lasts if r["trial_id"] == best["metrics"]["trial_id"]]
    assert float(top["val_acc"]) == max(float(r["val_acc"]) for r in lasts)
    assert {r["seed"] for r in lasts} == {"0", "1"}
    assert best["arch"] == top["arch"]
    # TensorBoard of a search trial under `raynas run`: α heatmaps and the genotype text next
    # to the trial scalars in the experiment folder.
    tags = _event_tags(tmp_path / "results" / "search" / f"darts_trainable_{top['trial_id']}")
    assert {"alpha/normal", "trial/val_acc", "genotype/text_summary"} <= tags
    assert best["genotype"] == json.loads(top["genotype"])
    assert space.to_str(space.decode(best["config"])) == best["arch"]
    table().lookup(best["arch"], "cifar10")  # one of the 15,625 cells

    capsys.readouterr()
    assert cli.main(["run", "eval.yaml", "--storage-path", "results", "-q"]) == 0
    assert f"best architecture: {best['arch']}" in capsys.readouterr().out
    trials = list((tmp_path / "results" / "eval").glob("train_*"))
    assert len(trials) == 1
    last = _last_result(trials[0])
    assert last["arch"] == best["arch"] and last["epoch"] == "1"
    params = json.loads((trials[0] / "params.json").read_text())
    assert space.to_str(space.decode(params)) == best["arch"]
