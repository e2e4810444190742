"""CLI end to end on a real local Ray: run, report, export, spaces, tensorboard."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from helpers import EXAMPLES, cli_env, tensorboard

from raynas import cli


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def finished(ray_address, tmp_path_factory):
    """A finished 12-trial random-search experiment over the NB201 table."""
    root = tmp_path_factory.mktemp("results")
    code = cli.main(
        [
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            str(root),
            "--name",
            "cli",
            "--set",
            "num_samples=12",
            "-q",
        ]
    )
    assert code == 0
    return root / "cli"


def test_run_prints_best_architecture_and_writes_results(finished, capsys):
    assert (finished / "raynas.yaml").is_file()
    trial_dirs = [p for p in finished.iterdir() if p.name.startswith("table_trainable_")]
    assert len(trial_dirs) == 12
    # TensorBoard: per-trial event files (Tune's TBX logger) and the search-level file.
    assert all(any(p.glob("events.out.tfevents.*")) for p in trial_dirs)
    assert any((finished / "search").glob("events.out.tfevents.*"))


def test_report_shows_terminated_trials_and_leaderboard(finished, capsys):
    code, out, _ = run_cli(["report", str(finished), "--top", "3"], capsys)
    assert code == 0
    assert "trials: 12 of num_samples=12   terminated: 12" in out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 3
    values = [float(r.split()[2]) for r in rows]
    assert values == sorted(values, reverse=True)


def test_export_writes_best_architecture_json(finished, capsys, tmp_path):
    out_file = tmp_path / "best.json"
    code, _, _ = run_cli(["export", str(finished), "--out", str(out_file)], capsys)
    assert code == 0
    best = json.loads(out_file.read_text())
    from raynas.benchmarks.nb201 import table

    assert best["space"] == "nb201"
    assert len(best["genotype"]["ops"]) == 6 and len(best["config"]) == 6
    entry = table().lookup(best["arch"], "cifar10")
    assert best["metrics"]["val_acc"] == pytest.approx(entry.val_acc)
    # It is the best of the experiment.
    _, report, _ = run_cli(["report", str(finished), "--top", "1"], capsys)
    assert best["arch"] in report


def test_run_and_report_of_a_table_experiment_import_no_torch(ray_address, tmp_path):
    # A table lookup needs no torch: importing it would cost the driver seconds (more on a
    # loaded machine), e.g. for the search's TensorBoard view or the report's target names.
    code = f"""
import sys
from raynas import cli
run = ["run", {str(EXAMPLES / "nb201_random.yaml")!r}, "--set", "num_samples=2", "-q"]
assert cli.main([*run, "--storage-path", {str(tmp_path)!r}, "--address", {ray_address!r}]) == 0
assert cli.main(["report", {str(tmp_path / "nb201-random")!r}]) == 0
assert "torch" not in sys.modules, "torch imported"
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
    assert any((tmp_path / "nb201-random" / "search").glob("events.out.tfevents.*"))


def test_report_on_missing_folder_is_a_user_error(tmp_path, capsys):
    code, _, err = run_cli(["report", str(tmp_path / "nope")], capsys)
    assert code == 2 and "experiment folder not found" in err
    code, _, err = run_cli(["export", str(tmp_path)], capsys)
    assert code == 2 and "not a raynas experiment folder" in err


def test_run_refuses_to_overwrite_an_experiment(finished, capsys):
    code, _, err = run_cli(
        [
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            str(finished.parent),
            "--name",
            "cli",
        ],
        capsys,
    )
    assert code == 2 and "raynas resume" in err


def test_spaces_lists_names_and_sizes(capsys):
    code, out, _ = run_cli(["spaces"], capsys)
    assert code == 0
    assert "nb201" in out and "15,625 architectures" in out
    assert "darts" in out and "mobilenetv3" in out and "macro" in out


@pytest.mark.parametrize("command", ["run", "resume", "report", "export", "tensorboard", "spaces"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: raynas " + command in capsys.readouterr().out


def test_tensorboard_serves_trial_and_search_scalars(finished):
    with tensorboard(finished, runs=13) as url:
        with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags", timeout=5) as resp:
            tags = json.loads(resp.read())
    assert "search" in tags and "search/best_val_acc" in tags["search"]
    trial_runs = [run for run in tags if run.startswith("table_trainable_")]
    assert len(trial_runs) == 12
    assert any("val_acc" in tag for tag in tags[trial_runs[0]])


# ----------------------------------------------------------------------- multi-objective
MO_SAMPLES = 30


@pytest.fixture(scope="module")
def multiobjective(ray_address, tmp_path_factory):
    """A finished run of examples/nb201_multiobjective.yaml (evolution, val_acc max + params_m
    min), shortened, with a small population so children are bred from the front."""
    root = tmp_path_factory.mktemp("mo")
    code = cli.main(
        [
            "run",
            str(EXAMPLES / "nb201_multiobjective.yaml"),
            "--storage-path",
            str(root),
            "--name",
            "mo",
            "--set",
            f"num_samples={MO_SAMPLES}",
            "--set",
            "searcher.options.population_size=10",
            "-q",
        ]
    )
    assert code == 0
    return root / "mo"


def _trial_results(exp) -> dict[str, dict]:
    """trial_id -> last result, read from the trial folders (not through raynas.results)."""
    out = {}
    for f in exp.glob("table_trainable_*/result.json"):
        last = json.loads(f.read_text().strip().splitlines()[-1])
        out[last["trial_id"]] = last
    return out


def _printed_front(out: str) -> tuple[str, dict[str, list[str]]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("pareto front over"))
    assert lines[start + 1].split() == ["trial_id", "val_acc", "params_m", "arch"]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        trial_id, *rest = line.split()
        rows[trial_id] = rest
    return lines[start], rows


def test_report_prints_the_complete_nondominated_pareto_front(multiobjective, capsys):
    code, out, _ = run_cli(["report", str(multiobjective)], capsys)
    assert code == 0
    header, printed = _printed_front(out)
    assert header.startswith("pareto front over val_acc (max), params_m (min): ")

    trials = _trial_results(multiobjective)
    assert len(trials) == MO_SAMPLES

    def dominates(a: dict, b: dict) -> bool:
        no_worse = a["val_acc"] >= b["val_acc"] and a["params_m"] <= b["params_m"]
        better = a["val_acc"] > b["val_acc"] or a["params_m"] < b["params_m"]
        return no_worse and better

    front = {t for t, r in trials.items() if not any(dominates(o, r) for o in trials.values())}
    # Complete and nothing else: exactly the non-dominated trials.
    assert set(printed) == front
    assert header.endswith(f": {len(front)} non-dominated trials")
    # A real trade-off: neither one trial nor every trial.
    assert 2 <= len(front) < MO_SAMPLES
    for trial_id, (val_acc, params_m, arch) in printed.items():
        assert float(val_acc) == pytest.approx(trials[trial_id]["val_acc"], abs=0.01)
        assert float(params_m) == pytest.approx(trials[trial_id]["params_m"], rel=1e-3)
        assert arch == trials[trial_id]["arch"]
    # Best val_acc first; along the front, fewer parameters cost accuracy.
    vals = [float(v[0]) for v in printed.values()]
    params = [float(v[1]) for v in printed.values()]
    assert vals == sorted(vals, reverse=True)
    assert params == sorted(params, reverse=True)


def test_report_of_a_single_objective_experiment_has_no_pareto_front(finished, capsys):
    code, out, _ = run_cli(["report", str(finished)], capsys)
    assert code == 0
    assert "pareto front" not in out


def test_report_lists_an_architecture_evaluated_twice_once(ray_address, tmp_path, capsys):
    best = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_3x3~2|"
    )
    other = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    exp = tmp_path / "twice.yaml"
    exp.write_text(
        "space: nb201\n"
        f"searcher: {{name: fixed, options: {{archs: ['{best}', '{other}', '{best}']}}}}\n"
        "trainable: {name: table, options: {dataset: cifar10}}\n"
        "metric: val_acc\nmode: max\nnum_samples: 3\nmax_concurrent: 1\n"
    )
    code, _, _ = run_cli(["run", str(exp), "--storage-path", str(tmp_path), "-q"], capsys)
    assert code == 0
    code, out, _ = run_cli(["report", str(tmp_path / "twice")], capsys)
    assert code == 0 and "trials: 3 of num_samples=3" in out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert [(r[-1], r[-2]) for r in rows] == [(best, "2"), (other, "1")]


def _summary(config: dict, rows: list[dict]):
    from collections import Counter

    import pandas as pd

    from raynas import config as cfgmod
    from raynas import results

    cfg = cfgmod.from_mapping({"name": "x", "space": "nb201", **config})
    return results.Summary(cfg, pd.DataFrame(rows), Counter(TERMINATED=len(rows)), 1.0, None)


def test_report_when_no_trial_reported_every_objective(capsys):
    from raynas import results

    nan = float("nan")
    objectives = {"objectives": {"val_acc": "max", "params_m": "min"}}
    rows = [
        {"trial_id": f"t{i}", "status": "TERMINATED", "val_acc": v, "params_m": nan, "arch": "a"}
        for i, v in enumerate([0.3, 0.1])
    ]
    summary = _summary({"searcher": {"name": "evolution", "options": objectives}}, rows)
    assert summary.pareto_front().empty
    text = results.format_report(summary, top=3)
    assert "t0" in text


def test_report_lists_a_repeated_evaluation_once_but_keeps_runs_of_other_configs():
    from raynas import results

    def row(trial_id, acc, seed):
        return {"trial_id": trial_id, "status": "TERMINATED", "val_acc": acc, "arch": "a",
                "config/op": "conv", "config/seed": seed}  # fmt: skip

    # t0/t1: a searcher suggested the same config again; t2: another seed found the same arch
    rows = [row("t0", 0.9, 0), row("t1", 0.8, 0), row("t2", 0.7, 1)]
    lines = results.format_report(_summary({}, rows)).splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("rank"))) + 1 :]
    assert [x.split()[1] for x in table[:2]] == ["t0", "t2"]
    assert table[0].split()[-2] == "2" and table[1].split()[-2] == "1"  # the trials column
    assert not any(x.split()[1:2] == ["t1"] for x in table)


def test_export_keeps_integer_metrics(capsys):
    import search_spaces
    from raynas import results

    space = search_spaces.get("nb201")
    config = {f"config/{k}": d.categories[0] for k, d in space.tune_space().items()}
    rows = [{"trial_id": "t0", "status": "TERMINATED", "epochs": 12, "val_acc": 0.9, **config}]
    best = results.best(_summary({"metric": "epochs"}, rows))
    assert best["metrics"]["epochs"] == 12 and best["metrics"]["val_acc"] == 0.9


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_report_top_must_be_a_positive_integer(top, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", str(tmp_path), "--top", top])
    assert exit_info.value.code == 2
    assert "expected an integer >= 1" in capsys.readouterr().err


def test_export_to_a_missing_folder_is_a_user_error(finished, tmp_path, capsys):
    out = tmp_path / "missing" / "best.json"
    code, _, err = run_cli(["export", str(finished), "--out", str(out)], capsys)
    assert code == 2 and f"cannot write {out}" in err and "Traceback" not in err
