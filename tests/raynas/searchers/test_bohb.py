"""The ``bohb`` searcher: Tune's TuneBOHB over raynas's spaces, paired with HyperBandForBOHB,
with the ``train`` (subset schedule) and ``curves`` trainables; ``raynas resume`` of a run."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import yaml
from helpers import RAYNAS, cli_env

import search_spaces
from raynas import config, preflight, results
from raynas.errors import ConfigError
from raynas.searchers import make


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_suggestions_over_flat_categorical_spaces_decode_to_plain_values(space_name):
    # Tune converts the flat dotted keys to a ConfigSpace; ConfigSpace gives numpy.str_ back
    space = search_spaces.get(space_name)
    searcher = make("bohb", space, "val_acc", "max", seed=0, min_points_in_model=4)
    searcher.set_search_properties("val_acc", "max", space.tune_space())
    for i in range(8):  # 8 results on budget 1: the model is used from the 5th suggestion on
        suggested = searcher.suggest(f"t{i}")
        assert all(type(v) is str for v in suggested.values()), suggested
        space.decode(suggested)
        result = {"val_acc": float(i), "hyperband_info": {"budget": 1}}
        searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", result)
    assert len(searcher.bohber.configs[1]) == 8  # every result reached BOHB's model
    later = searcher.suggest("model")
    assert all(type(v) is str for v in later.values())
    space.decode(later)


def test_a_final_result_reaches_the_model_once():
    # a trainable that reports once (table) ends each trial with its only result
    space = search_spaces.get("nb201")
    searcher = make("bohb", space, "val_acc", "max", seed=0)
    searcher.set_search_properties("val_acc", "max", space.tune_space())
    for i in range(3):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": float(i), "training_iteration": 1})
    searcher.suggest("rung")  # reached the rung at budget 3 first, then completed there
    result = {"val_acc": 9.0, "training_iteration": 3, "hyperband_info": {"budget": 3}}
    searcher.on_trial_result("rung", result)
    searcher.on_trial_complete("rung", result)
    searcher.suggest("failed")
    searcher.on_trial_complete("failed", {"training_iteration": 1}, error=True)
    assert {b: len(c) for b, c in searcher.bohber.configs.items()} == {1: 3, 3: 1}
    assert searcher.bohber.losses[1] == [-0.0, -1.0, -2.0]  # mode max: BOHB minimises -acc


def test_a_seeded_bohb_suggests_the_same_whatever_else_uses_numpys_global_rng(tmp_path):
    import numpy as np

    space = search_spaces.get("nb201")

    def run(disturb: bool, restore_at: int | None = None) -> list[dict]:
        searcher = make("bohb", space, "val_acc", "max", seed=5, min_points_in_model=3)
        searcher.set_search_properties("val_acc", "max", space.tune_space())
        out = []
        for i in range(20):  # HpBandSter fits its first model after 14 results on a budget
            if disturb:
                np.random.seed(1000 + i)  # other code in the driver draws from the global RNG
            if i == restore_at:
                searcher.save(str(tmp_path / "bohb.pkl"))
                searcher = make("bohb", space, "val_acc", "max", seed=5, min_points_in_model=3)
                searcher.restore(str(tmp_path / "bohb.pkl"))
            out.append(searcher.suggest(f"t{i}"))
            searcher.on_trial_complete(f"t{i}", {"val_acc": float(i), "training_iteration": 1})
        assert searcher.bohber.kde_models  # the last suggestions came from the model
        np.random.seed(7)
        expected = np.random.rand()
        np.random.seed(7)
        searcher.suggest("last")
        assert np.random.rand() == expected  # the global stream is left where it was
        return out

    calm = run(disturb=False)
    assert run(disturb=True) == calm
    assert run(disturb=True, restore_at=17) == calm


def _config(**changes) -> config.ExperimentConfig:
    data = {
        "name": "bohb",
        "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "searcher": "bohb",
        "trainable": {"name": "train", "options": {"dataset": "digits", "epochs": 6}},
        **changes,
    }
    return config.from_mapping(data, "test")


def test_bohb_gets_its_scheduler_with_max_t_from_the_trainable_epochs():
    cfg = _config()
    assert cfg.scheduler.name == "hyperband_for_bohb"
    scheduler = preflight.build(cfg).scheduler
    assert type(scheduler).__name__ == "HyperBandForBOHB"
    assert scheduler._max_t_attr == 6 and scheduler._time_attr == "training_iteration"
    cfg = _config(scheduler={"name": "bohb", "options": {"max_t": 4}})
    assert preflight.build(cfg).scheduler._max_t_attr == 4
    cfg = _config(trainable={"name": "curves"})
    assert preflight.build(cfg).scheduler._max_t_attr == 20  # the stored curves' epochs


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"scheduler": "asha"},
            "scheduler 'asha' cannot run searcher 'bohb': BOHB needs scheduler "
            "'hyperband_for_bohb'",
        ),
        ({"scheduler": "fifo"}, "scheduler 'fifo' cannot run searcher 'bohb'"),
        (
            {"searcher": "random", "scheduler": "hyperband_for_bohb"},
            "scheduler 'hyperband_for_bohb' (HyperBandForBOHB) works only with searcher 'bohb'",
        ),
    ],
)
def test_bohb_and_a_scheduler_it_cannot_work_with_is_a_config_error(changes, says):
    with pytest.raises(ConfigError) as err:
        preflight.build(_config(**changes))
    assert says in str(err.value) and "\n" not in str(err.value)


def _experiment(tmp_path, name: str, **changes) -> str:
    data = {
        "name": name,
        "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "searcher": {"name": "bohb", "options": {"min_points_in_model": 3}},
        "trainable": {
            "name": "train",
            "options": {
                "dataset": "digits",
                "epochs": 3,
                "threads": 1,
                "subset_schedule": [0.25, 0.5, 1.0],
            },
        },
        "num_samples": 8,
        "max_concurrent": 2,
        "resources": {"cpu": 1},
        "storage_path": str(tmp_path),
        **changes,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.slow
def test_bohb_promotes_trials_to_larger_subsets_and_resumes_after_ctrl_c(ray_address, tmp_path):
    exp = tmp_path / "bohb"
    proc = subprocess.Popen(
        [*RAYNAS, "run", _experiment(tmp_path, "bohb"), "--address", ray_address, "-q"],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while len(list(exp.glob("*/checkpoint_*"))) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoints in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert f"raynas resume {exp}" in err
    resumed = subprocess.run(
        [*RAYNAS, "resume", str(exp), "--address", ray_address],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = results.load(exp)
    assert dict(summary.states) == {"TERMINATED": 8}
    # HyperBandForBOHB's brackets: budget 1 then 3; the trials it promoted to the top rung
    # trained on 25%, 50%, then all of the 1,294 training images, one epoch each.
    curves = [
        (r["training_iteration"].tolist(), r["train_images"].tolist())
        for r in (summary.history(t) for t in summary.trials["trial_id"])
    ]
    full = [images for epochs, images in curves if epochs == [1, 2, 3]]
    assert full and all(images == [324, 647, 1294] for images in full), curves
    assert any(epochs == [1] for epochs, _ in curves), curves  # some were stopped at budget 1


@pytest.mark.slow
def test_bohb_with_the_curves_trainable_runs_hyperband_brackets(ray_address, tmp_path, capsys):
    from raynas import cli
    from raynas.benchmarks.curve_table import points_to_evaluate

    points = points_to_evaluate(seed=0, n=9)  # curves replays stored architectures only
    path = _experiment(
        tmp_path,
        "curves",
        searcher={"name": "bohb", "options": {"points_to_evaluate": points}},
        trainable={"name": "curves"},
        num_samples=9,
        max_concurrent=3,
        resources={"cpu": 0.25},
    )
    assert cli.main(["run", path, "-q"]) == 0, capsys.readouterr().err
    summary = results.load(tmp_path / "curves")
    assert dict(summary.states) == {"TERMINATED": 9}
    lengths = sorted(len(summary.history(t)) for t in summary.trials["trial_id"])
    # max_t = the curves' 20 epochs, reduction factor 3: the brackets' rungs are at 2, 6 and
    # 18 epochs; each bracket stops its worse trials at a rung, and a trial still running when
    # its bracket ends stops where it is (how far depends on timing: 14 and 18 were seen)
    assert lengths[0] == 2 and lengths.count(2) >= 3, lengths
    assert 6 < lengths[-1] <= 18, lengths
