"""Pictures of a search: ``raynas report --plot`` PNGs read back, and TensorBoard (its HTTP
API and one page in headless Chromium) on real runs of tiny table experiments."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import EXAMPLES, tensorboard

from raynas import cli, plots, results


def _run(root: Path, name: str, file: Path, *sets: str) -> Path:
    args = ["run", str(file), "--storage-path", str(root), "--name", name, "-q"]
    for s in sets:
        args += ["--set", s]
    cli.main(args)
    return root / name


@pytest.fixture(scope="module")
def random_exp(ray_address, tmp_path_factory) -> Path:
    """12 trials of random search over the NB201 table (one result per trial)."""
    return _run(
        tmp_path_factory.mktemp("plots"), "rand", EXAMPLES / "nb201_random.yaml", "num_samples=12"
    )


@pytest.fixture(scope="module")
def mo_exp(ray_address, tmp_path_factory) -> Path:
    """20 trials of two-objective evolution (val_acc max, params_m min)."""
    return _run(
        tmp_path_factory.mktemp("plots"),
        "mo",
        EXAMPLES / "nb201_multiobjective.yaml",
        "num_samples=20",
        "searcher.options.population_size=8",
    )


def _last_results(exp: Path) -> list[dict]:
    """Each trial's last result, read from its own result.json (not through raynas)."""
    out = []
    for f in exp.glob("*_trainable_*/result.json"):
        out.append(json.loads(f.read_text().strip().splitlines()[-1]))
    return out


def _png(path: Path) -> np.ndarray:
    """A PNG read back; asserts it is a real, non-blank picture."""
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(path).convert("RGB"))
    height, width, _ = pixels.shape
    assert width >= 400 and height >= 300, (width, height)
    not_white = (pixels < 245).any(axis=-1).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert not_white > 0.02 and colours > 20, (not_white, colours)
    return pixels


def _report(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["report", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------ data
def test_best_so_far_keeps_the_running_best_and_skips_nan():
    values = [3.0, math.nan, 1.0, 5.0, 4.0]
    assert plots.best_so_far(values, "max").tolist() == [3.0, 3.0, 3.0, 5.0, 5.0]
    assert plots.best_so_far(values, "min").tolist() == [3.0, 3.0, 1.0, 1.0, 1.0]
    assert np.isnan(plots.best_so_far([math.nan, 2.0], "max")[0])


def test_op_frequencies_are_fractions_of_each_keys_choices():
    configs = pd.DataFrame({"a": ["x", "x", "y", "x"], "b": ["1", "2", "2", "2"]})
    table = plots.op_frequencies(configs, {"a": ["x", "y", "z"], "b": ["1", "2"]})
    assert table.loc["a", ["x", "y", "z"]].tolist() == [0.75, 0.25, 0.0]
    assert table.loc["b", ["1", "2"]].tolist() == [0.25, 0.75]
    assert np.isnan(table.loc["b", "x"])  # not a choice of b


# ------------------------------------------------------------------------------ report --plot
def test_report_plot_writes_only_the_pictures_that_apply(random_exp, tmp_path, capsys):
    out_dir = tmp_path / "pics"
    code, out, _ = _report([str(random_exp), "--plot", str(out_dir)], capsys)
    assert code == 0
    written = [
        line.removeprefix("wrote ") for line in out.splitlines() if line.startswith("wrote ")
    ]
    assert sorted(Path(p).name for p in written) == ["best_so_far.png", "op_frequency.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["best_so_far.png", "op_frequency.png"]
    for path in written:
        _png(Path(path))


def test_best_so_far_has_one_labelled_curve_per_experiment(random_exp, mo_exp, tmp_path):
    summaries = [results.load(random_exp), results.load(mo_exp)]
    written = plots.write_plots(summaries, tmp_path)
    assert {p.name for p in written} >= {
        "best_so_far.png",
        "rand-op_frequency.png",
        "mo-op_frequency.png",
        "mo-pareto_front.png",
    }
    _png(tmp_path / "best_so_far.png")
    curves = {}
    for s in summaries:
        done = plots.finished(s.trials)
        curves[f"{s.config.name} ({s.config.searcher.name})"] = (done["val_acc"], "val_acc", "max")
    fig = plots.best_so_far_figure(curves)
    (ax,) = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["rand (random)", "mo (evolution)"]
    for exp, label in ((random_exp, "rand (random)"), (mo_exp, "mo (evolution)")):
        # the curve: the running max of every trial's val_acc, in the order they finished
        rows = sorted(_last_results(exp), key=lambda r: (r["timestamp"], r["trial_id"]))
        expected = np.maximum.accumulate([r["val_acc"] for r in rows])
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
        assert line.get_ydata() == pytest.approx(expected)


def test_pareto_picture_joins_exactly_the_non_dominated_trials(mo_exp, tmp_path):
    summary = results.load(mo_exp)
    plots.write_plots([summary], tmp_path)
    _png(tmp_path / "pareto_front.png")
    rows = _last_results(mo_exp)

    def dominates(a, b):
        return (a["val_acc"] >= b["val_acc"] and a["params_m"] <= b["params_m"]) and (
            a["val_acc"] > b["val_acc"] or a["params_m"] < b["params_m"]
        )

    front = {(r["val_acc"], r["params_m"]) for r in rows if not any(dominates(o, r) for o in rows)}
    fig = plots.pareto_figure(
        plots.finished(summary.trials), summary.pareto_front(), summary.objectives()
    )
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("non-dom")]
    drawn = set(zip(line.get_xdata(), line.get_ydata(), strict=True))
    assert drawn == front and 2 <= len(front) < len(rows)


def test_op_frequency_counts_the_choices_of_the_finished_trials(random_exp):
    summary = results.load(random_exp)
    configs, choices = plots.architecture_configs(summary)
    table = plots.op_frequencies(configs, choices)
    rows = _last_results(random_exp)
    assert list(table.index) == [
        f"edge.{e}" for e in ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
    ]
    for key in table.index:
        for op in table.columns:
            expected = sum(r["config"][key] == op for r in rows) / len(rows)
            assert table.loc[key, op] == pytest.approx(expected)
    assert table.sum(axis=1).tolist() == pytest.approx([1.0] * 6)


@pytest.mark.slow
def test_scheduler_decisions_picture_shows_each_early_stop(ray_address, tmp_path, capsys):
    # The example's first 10 stored curves, cut at 12 epochs (Tune's random searcher runs
    # every one of its points_to_evaluate, whatever num_samples says).
    lce = yaml.safe_load((EXAMPLES / "nb201_curves_lce.yaml").read_text())
    lce["searcher"]["options"]["points_to_evaluate"] = lce["searcher"]["options"][
        "points_to_evaluate"
    ][:10]
    lce["scheduler"]["options"].update(max_t=12, grace_period=3, min_completed=2)
    lce.update(num_samples=10, max_concurrent=3)
    file = tmp_path / "lce.yaml"
    file.write_text(yaml.safe_dump(lce))
    exp = _run(tmp_path, "lce", file)
    code, out, _ = _report([str(exp), "--plot", str(tmp_path / "pics")], capsys)
    assert code == 0 and "wrote " + str(tmp_path / "pics" / "scheduler_decisions.png") in out
    _png(tmp_path / "pics" / "scheduler_decisions.png")
    records = [json.loads(line) for line in (exp / "scheduler_decisions.jsonl").open()]
    early = {r["trial_id"] for r in records if r.get("decision") == "STOP" and r.get("early")}
    assert early  # the picture shows stops
    fig = plots.decisions_figure(plots.read_decisions(exp))
    left = fig.axes[0]
    assert left.get_title().startswith(f"{len(early)} stopped early (x)")
    crosses = [ln for ln in left.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == len(early)
    # TensorBoard: a trial of several results has its curves from the first epoch on, under
    # trial/, without Tune's bookkeeping keys.
    from tensorboard.backend.event_processing import event_accumulator as ea

    for folder in exp.glob("curves_trainable_*"):
        last = json.loads((folder / "result.json").read_text().strip().splitlines()[-1])
        if last["training_iteration"] < 2:
            continue
        events = ea.EventAccumulator(str(folder))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        steps = [e.step for e in events.Scalars("trial/val_acc")]
        assert steps == list(range(1, last["training_iteration"] + 1))
        assert events.Scalars("trial/val_acc")[-1].value == pytest.approx(last["val_acc"])
        assert {"trial/train_loss", "trial/cost_s"} <= tags
        assert not tags & {
            "trial/done",
            "trial/time_this_iter_s",
            "trial/iterations_since_restore",
        }
        assert all(t.startswith("trial/") for t in tags)


def test_darts_alpha_picture_is_softmax_alpha_per_epoch(ray_address, tmp_path, capsys):
    darts = {
        "name": "darts-tiny",
        "space": "nb201",
        "searcher": "random",
        "scheduler": "fifo",
        "trainable": {
            "name": "darts",
            "options": {
                "dataset": "synthetic",
                "epochs": 2,
                "batch_size": 64,
                "build": {"C": 4, "N": 1},
                "threads": 1,
            },
        },
        "metric": "val_acc",
        "mode": "max",
        "num_samples": 1,
        "resources": {"cpu": 1, "gpu": 0},
    }
    file = tmp_path / "darts.yaml"
    file.write_text(json.dumps(darts))
    exp = _run(tmp_path, "darts", file)
    code, out, _ = _report([str(exp), "--plot", str(tmp_path / "pics")], capsys)
    assert code == 0
    (trial,) = [r["trial_id"] for r in _last_results(exp)]
    _png(tmp_path / "pics" / f"alpha_{trial}.png")
    summary = results.load(exp)
    history = summary.history(trial)
    assert history["epoch"].tolist() == [1, 2]
    edges, ops = plots.alpha_labels(summary, (6, 5))
    assert edges == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert ops == ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    fig = plots.alpha_figure(history, {"normal": edges}, ops, "t")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
    assert len(panels) == 6
    alpha = np.array([np.asarray(a) for a in history["alpha_normal"]])
    softmax = np.exp(alpha) / np.exp(alpha).sum(axis=-1, keepdims=True)
    for e, ax in enumerate(panels):
        for o, line in enumerate(ax.get_lines()):
            assert line.get_label() == ops[o]
            assert line.get_ydata() == pytest.approx(softmax[:, e, o])


def test_trial_board_state_keeps_the_trials_that_have_curves():
    # Tune saves callback state with each snapshot: after `raynas resume` a trial that already
    # reported twice keeps writing its curve from its next result on.
    from raynas.loggers import result_loggers

    board = result_loggers(["val_acc"])[2]
    board._curves.add("t1")
    restored = result_loggers(["val_acc"])[2]
    restored.set_state(board.get_state())
    assert restored._curves == {"t1"} and restored.metrics[0] == "val_acc"


def test_plot_into_a_file_is_one_line_and_exit_2(random_exp, tmp_path, capsys):
    a_file = tmp_path / "pics.png"
    a_file.write_text("")
    code, out, err = _report([str(random_exp), "--plot", str(a_file)], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"raynas: error: --plot {a_file} is a file, not a folder"]


def test_plot_without_a_finished_trial_is_one_line_and_exit_2(ray_address, tmp_path, capsys):
    # every trial errors: the curves trainable has no stored curve for the random searcher's
    # architecture (a missing data folder is refused before Ray starts)
    exp = {
        "name": "none",
        "space": "nb201",
        "searcher": "random",
        "trainable": "curves",
        "seed": 0,
        "metric": "val_acc",
        "mode": "max",
        "num_samples": 1,
        "max_failures": 0,
    }
    file = tmp_path / "none.yaml"
    file.write_text(json.dumps(exp))
    folder = _run(tmp_path, "none", file)
    assert results.load(folder).states == {"ERROR": 1}
    code, _, err = _report([str(folder), "--plot", str(tmp_path / "pics")], capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("raynas: error: nothing to plot: no finished trial reported its metric")
    assert not (tmp_path / "pics").exists()


# ------------------------------------------------------------------------------ TensorBoard
def _get(url: str, data: dict | None = None):
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        raw = resp.read()
    return raw if resp.headers.get_content_type().startswith("image/") else json.loads(raw)


@pytest.fixture(scope="module")
def board(random_exp):
    """``raynas tensorboard`` over the random experiment (12 trial runs and ``search``)."""
    with tensorboard(random_exp, runs=13) as url:
        yield url


def test_tensorboard_trials_of_one_result_have_only_their_metrics(board):
    tags = _get(f"{board}/data/plugin/scalars/tags")
    assert {"search/val_acc", "search/best_val_acc"} <= set(tags["search"])
    trials = [run for run in tags if run.startswith("table_trainable_")]
    assert len(trials) == 12
    for run in trials:  # no one-point chart of arch_index, cost_s, done, time_*...
        assert set(tags[run]) == {
            "trial/val_acc",
            "trial/test_acc",
            "trial/params_m",
            "trial/flops_m",
        }


def test_tensorboard_hparams_list_the_architecture_string_and_keys(board, random_exp):
    experiment = _get(
        f"{board}/data/plugin/hparams/experiment", {"experimentName": "", "includeMetrics": True}
    )
    hparams = {h["name"]: h for h in experiment["hparamInfos"]}
    keys = [f"edge.{e}" for e in ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")]
    assert set(hparams) == {"arch", *keys}
    archs = {r["arch"] for r in _last_results(random_exp)}
    assert set(hparams["arch"]["domainDiscrete"]) == archs
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"trial/val_acc", "trial/params_m"} <= metrics


def test_tensorboard_search_run_has_the_pictures_as_images(board):
    tags = _get(f"{board}/data/plugin/images/tags")
    assert set(tags["search"]) == {"search/best_so_far", "search/op_frequency"}
    for tag in tags["search"]:
        (image,) = _get(f"{board}/data/plugin/images/images?run=search&tag={tag}&sample=0")
        raw = _get(f"{board}/data/plugin/images/individualImage?{image['query']}")
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000


def test_search_images_are_redrawn_as_the_search_goes_on(mo_exp):
    from tensorboard.backend.event_processing import event_accumulator as ea

    events = ea.EventAccumulator(str(mo_exp / "search"), size_guidance={ea.IMAGES: 0})
    events.Reload()
    # a two-objective search also gets its Pareto front
    assert {"search/best_so_far", "search/op_frequency", "search/pareto_front"} == set(
        events.Tags()["images"]
    )
    for tag in ("search/best_so_far", "search/op_frequency", "search/pareto_front"):
        images = events.Images(tag)
        assert [e.step for e in images] == [16, 20]  # after 16 trials, and at the end
        assert all(e.encoded_image_string[:4] == b"\x89PNG" for e in images)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium (Debian: apt-get install chromium)")
def test_tensorboard_first_page_in_chromium_shows_the_search(board, tmp_path):
    shot = tmp_path / "tensorboard.png"
    # One headless page load: its DOM on stdout, its screenshot kept in the test's folder.
    # No sandbox (tests may run as root); WebGL by SwiftShader, so the charts draw their lines.
    page = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            f"--screenshot={shot}",
            "--dump-dom",
            f"{board}/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = page.stdout
    # The first group of cards the page opens on is the search, with its curves and pictures.
    groups = re.findall(r'class="group-title"[^>]*title="([^"]+)"', dom)
    assert groups[:2] == ["search", "trial"], groups
    cards = re.findall(r'title="((?:search|trial)/[^"]+)"', dom)
    first = cards[: cards.index(next(c for c in cards if c.startswith("trial/")))]
    assert set(first) == {
        "search/best_so_far",
        "search/best_val_acc",
        "search/op_frequency",
        "search/val_acc",
    }
    _png(shot)  # kept in the test's output folder
