"""The NASWOT protocol benchmark: parallel scoring into a cache that an interrupted run reuses."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CIFAR_ROOT, HAS_CIFAR, REPO

pytestmark = pytest.mark.skipif(
    not HAS_CIFAR, reason="CIFAR-10 subset not found (set RAYNAS_DATA)"
)
SMALL = ["--C", "4", "--N", "1", "--batch-size", "8", "--sizes", "2", "5", "--repeats", "5"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "naswot_protocol.py"), *SMALL, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _cached(cache: Path) -> list[dict]:
    files = sorted(cache.glob("naswot-C4-N1-b8-s0.w*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


@pytest.mark.slow
def test_workers_fill_the_cache_and_a_rerun_scores_only_what_is_missing(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out.json.gz"
    first = _run("--root", str(CIFAR_ROOT), "--pool", "6", "--workers", "2", "--cache", str(cache))
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(list(cache.glob("*.w0.jsonl"))) == 1 and len(list(cache.glob("*.w1.jsonl"))) == 1
    records = _cached(cache)
    assert len({r["arch"] for r in records}) == 6
    assert "APPROXIMATION" in first.stdout and "0 from the cache" in first.stdout

    # a crash mid-write leaves an unterminated last line: it is dropped, the rest reused
    w0 = next(cache.glob("*.w0.jsonl"))
    with open(w0, "a") as fh:
        fh.write('{"arch": "|nor_conv_3x3~0|+|no')
    second = _run(
        "--root", str(CIFAR_ROOT), "--pool", "8", "--cache", str(cache), "--json", str(out)
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert "6 from the cache" in second.stdout and "2 scored now" in second.stdout
    with gzip.open(out, "rt") as fh:
        saved = json.load(fh)
    assert len({r["arch"] for r in saved["records"]}) == 8
    assert {r["arch"] for r in records} <= {r["arch"] for r in saved["records"]}
    assert len(_cached(cache)) == 8  # the cut line is gone, the two new records appended

    # everything cached: no data folder needed; the same draws give the same table
    third = _run("--pool", "8", "--cache", str(cache))
    assert third.returncode == 0, third.stderr[-2000:]
    table = [line for line in third.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert table == [line for line in second.stdout.splitlines() if line.strip()[:1].isdigit()]


@pytest.mark.slow
def test_a_corrupt_cache_line_and_a_missing_data_folder_are_named(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "naswot-C4-N1-b8-s0.w0.jsonl").write_text('{"arch": 1}\nnot json\n{"arch": 2}\n')
    corrupt = _run("--pool", "6", "--cache", str(cache))
    assert corrupt.returncode != 0
    assert "naswot-C4-N1-b8-s0.w0.jsonl:2: not a JSON record" in corrupt.stderr

    env = {k: v for k, v in os.environ.items() if k != "RAYNAS_DATA"}
    missing = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "naswot_protocol.py"), *SMALL, "--pool", "6"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert missing.returncode != 0
    assert "6 architectures to score and no CIFAR-10 folder" in missing.stderr
