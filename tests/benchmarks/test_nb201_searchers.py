"""The searcher benchmark runs (smoke size) and prints a row per searcher and budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

import search_spaces
from raynas import searchers


def _builds_with_defaults(name: str) -> bool:
    try:
        searchers.make(name, search_spaces.get("nb201"), metric="val_acc", mode="max", seed=0)
    except ValueError:
        return False
    return True


def test_quick_benchmark_prints_every_searcher(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "nb201_searchers.py"),
            "--quick",
            "--json",
            str(out_json),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("cifar10 ")]
    # Every registry entry that builds with its defaults runs; the others are named.
    runnable = [s for s in searchers.names() if _builds_with_defaults(s)]
    assert {"evolution", "hyperopt", "optuna", "random", "reinforce"} <= set(runnable)
    assert {(r[1], r[2]) for r in rows} == {(s, b) for s in runnable for b in ("20", "50")}
    for name in set(searchers.names()) - set(runnable):
        assert f"# skipped {name}: needs options of its own" in proc.stdout
    for r in rows:
        assert 0 < float(r[3]) <= 84.90  # mean best val acc cannot exceed the table's optimum
    assert json.loads(out_json.read_text())


@pytest.mark.slow
def test_tuner_mode_compares_async_with_sequential_runs(tmp_path):
    """--tuner: each run through a real Tuner (own local Ray) next to the sequential loop."""
    out_json = tmp_path / "tuner.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "nb201_searchers.py"),
            "--tuner",
            "--searchers",
            "evolution",
            "reinforce",
            "--seeds",
            "1",
            "--budgets",
            "4",
            "8",
            "--delay-s",
            "0",
            "--num-cpus",
            "2",
            "--json",
            str(out_json),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "# tuner: real ray.tune.Tuner" in out
    assert "Configuration for experiment" not in out  # Tune's per-run banner is off
    compare = out.split("Tuner (async) vs sequential loop")[1]
    rows = [line.split() for line in compare.splitlines() if line.startswith("cifar10 ")]
    assert {(r[1], r[2]) for r in rows} == {
        (s, b) for s in ("evolution", "reinforce") for b in ("4", "8")
    }
    runs = json.loads(out_json.read_text())["runs"]
    tuned = [r for r in runs if r["mode"] == "tuner"]
    assert len(tuned) == 2 and len(runs) == 4
    for r in tuned:
        # Every trial of the Tuner reported, and the searchers never repeated an architecture.
        assert r["n_queries"] == 8 and r["stopped"] is None
        assert len(set(r["arch"])) == 8
