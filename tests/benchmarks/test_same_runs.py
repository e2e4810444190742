"""same_runs.py tells two fixed-seed searcher benchmark runs apart only by a changed result."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

SCRIPT = REPO / "benchmarks" / "same_runs.py"


def _bench(out_json) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "nb201_searchers.py"),
            *("--seeds", "1", "--budgets", "5", "12", "--datasets", "cifar10"),
            *("--searchers", "evolution", "local", "--json", str(out_json)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _same_runs(*paths):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, paths)], capture_output=True, text=True
    )


def test_reruns_are_identical_apart_from_timings_and_a_changed_query_is_not(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    _bench(first)
    _bench(second)
    proc = _same_runs(first, second)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "IDENTICAL apart from timings" in proc.stdout

    data = json.loads(second.read_text())
    data["runs"][1]["arch"][3] = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    proc = _same_runs(first, changed)
    assert proc.returncode == 1
    assert "fields that differ: arch" in proc.stdout and "DIFFERENT" in proc.stdout
