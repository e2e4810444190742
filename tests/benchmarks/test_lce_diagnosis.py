"""The ranking table of ``benchmarks/lce_diagnosis.py`` on constructed curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def diagnosis():
    return load_benchmark("lce_diagnosis")


def _rows(lines):
    """{t: (rho LCE, rho val_acc, error mean, error sd, no fit)} from the table's lines."""
    rows = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0].isdigit():
            rows[int(parts[0])] = tuple(float(p) for p in parts[1:])
    return rows


def _frame(curves):
    return pd.DataFrame(curves, columns=range(1, curves.shape[1] + 1))


def test_ranking_of_saturating_curves_is_exact(diagnosis):
    # pow3 curves (a family LCE fits) whose asymptotes and final values are in the same order
    t = np.arange(1, 13, dtype=float)
    tops = np.linspace(40, 60, 8)
    curves = np.array([a - 30 * t**-0.8 for a in tops])
    lines = diagnosis.ranking(_frame(curves), 12, 5, "fast", 0, 20.0)
    rows = _rows(lines)
    assert sorted(rows) == list(range(5, 12))
    assert f"sd {np.std(tops, ddof=1):.2f} between architectures" in lines[0]
    for t_, (rho_lce, rho_val, err_mean, err_sd, no_fit) in rows.items():
        assert rho_lce == pytest.approx(1.0) and rho_val == pytest.approx(1.0), t_
        assert abs(err_mean) < 0.5 and err_sd < 0.5 and no_fit == 0, t_


def test_ranking_floor_and_a_curve_that_crosses(diagnosis):
    t = np.arange(1, 13, dtype=float)
    curves = np.array(
        [
            40 - 30 * t**-0.8,  # saturates at ~38.8
            45 - 30 * t**-0.8,
            50 - 30 * t**-0.8,
            np.full_like(t, 10.0),  # at chance: below the floor, left out
            # slow start, passes the others late: the plain value at t=5 ranks it last
            np.where(t <= 6, 12 + t, 18 + 5 * (t - 6)),
        ]
    )
    lines = diagnosis.ranking(_frame(curves), 12, 5, "fast", 0, 20.0)
    assert lines[0].startswith("# ranking over the 4 curves")
    rows = _rows(lines)
    # final ranks 1, 2, 3, 4 (riser best); ranks at t=5: 2, 3, 4, 1: rho = 1 - 6*12/60
    assert rows[5][1] == pytest.approx(-0.2)


def test_family_ranking_of_pow3_curves(diagnosis):
    # pow3 curves whose finals are in the order of their asymptotes: pow3 ranks them exactly
    t = np.arange(1, 13, dtype=float)
    curves = np.array([a - 30 * t**-0.8 for a in np.linspace(40, 60, 8)])
    lines = diagnosis.family_ranking(_frame(curves), 12, [5, 8], 0, 20.0)
    header = lines[1].split()
    assert header[0] == "t" and header[-3:] == ["BIC", "val_acc", "fits"]
    rows = {int(p[0]): p[1:] for p in (line.split() for line in lines[2:])}
    assert sorted(rows) == [5, 8]
    pow3 = header.index("pow3") - 1
    for cells in rows.values():
        assert float(cells[pow3]) == pytest.approx(1.0)
        assert float(cells[-2]) == pytest.approx(1.0) and int(cells[-1]) <= 8
