"""The searcher benchmark runs (smoke size) and prints a row per searcher and budget."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

from raynas import searchers


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
    assert {(r[1], r[2]) for r in rows} == {
        (s, b) for s in searchers.names() for b in ("20", "50")
    }
    for r in rows:
        assert 0 < float(r[3]) <= 84.90  # mean best val acc cannot exceed the table's optimum
    assert json.loads(out_json.read_text())
