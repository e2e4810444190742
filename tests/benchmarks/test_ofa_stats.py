"""The statistics of benchmarks/ofa.py: bootstrap interval, hypervolume; ofa_noise's guard."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from ofa import bootstrap_ci, hypervolume, spearman  # noqa: E402


def test_bootstrap_ci_brackets_a_strong_correlation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    b = a + 0.3 * rng.normal(size=40)
    lo, hi = bootstrap_ci(a, b, n=300)
    assert 0.5 < lo <= spearman(a, b) <= hi <= 1.0


@pytest.mark.parametrize("n", [1, 2])
def test_bootstrap_ci_of_too_few_pairs_is_nan_not_an_error(n: int) -> None:
    lo, hi = bootstrap_ci(list(range(n)), list(range(n)), n=50)
    assert math.isnan(lo) and math.isnan(hi)


def test_hypervolume_of_a_two_point_front() -> None:
    # (acc, latency): ref (0, 10); the point (50, 2) covers [2, 10) x 50 with (80, 6) on top
    # of [6, 10) x 30 more; a dominated point adds nothing.
    assert hypervolume([(50, 2), (80, 6), (40, 8)], (0, 10)) == pytest.approx(8 * 50 + 4 * 30)


def test_ofa_noise_refuses_fewer_than_three_pilots() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ofa_noise.py"), "--pilot-seeds", "990", "991"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "at least 3" in proc.stderr


def test_size_curves_share_every_pair_once_and_summarise_the_logs(tmp_path, capsys) -> None:
    from ofa_size_curves import NETS, _share, summary

    pairs = [(net, run) for run in ("32:0.1", "64:0.1") for net in NETS]
    jobs = _share(pairs, 2)
    assert sorted(p for job in jobs for p in job) == sorted(pairs)
    assert all(job for job in jobs)
    log = tmp_path / "a.log"
    log.write_text(
        "# job 0/1\n"
        "smallest size 32 lr 0.1 epoch 1 loss 2.100 val 20.50 s 4.0\n"
        "smallest size 32 lr 0.1 epoch 2 loss 1.900 val 25.00 s 8.0\n"
        "largest size 32 lr 0.1 epoch 1 loss 2.200 val 15.40 s 40.0\n"
    )
    summary([str(log)])
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["smallest"][3:5] == ["20.5", "25.0"]
    assert rows["largest"][3:5] == ["15.4", "-"]
