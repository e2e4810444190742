"""The early-stopping benchmark's table analyses (the Tuner runs are covered by the scheduler
tests, which use the same ``curves`` trainable)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from raynas.benchmarks import curves


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "early_stopping_bench", REPO / "benchmarks" / "early_stopping.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(tmp_path, n_val: int, arch_sd: float, archs: int = 300, seed: int = 0):
    """Curves whose final val_acc is a true accuracy (sd ``arch_sd`` between architectures)
    measured on ``n_val`` images (binomial); two cells stuck at chance."""
    rng = np.random.default_rng(seed)
    truth = np.clip(rng.normal(0.45, arch_sd / 100, archs), 0.05, 0.95)
    truth[:2] = 0.1
    rows = []
    for i, p in enumerate(truth):
        for epoch in (1, 2):
            acc = 100 * rng.binomial(n_val, p * (0.8 if epoch == 1 else 1.0)) / n_val
            rows.append(
                {
                    "arch": f"a{i}",
                    "seed": 0,
                    "epoch": epoch,
                    "train_loss": 2.0 / epoch,
                    "val_acc": acc,
                    "cost_s": 1.0,
                }
            )
    path = tmp_path / f"t{n_val}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return curves.table(path)


@pytest.mark.parametrize("n_val, arch_sd", [(1000, 0.5), (5000, 2.0)])
def test_measurement_noise_infers_the_validation_size_and_splits_the_variance(
    bench, tmp_path, n_val, arch_sd
):
    n, cells, observed, sampling, between, reliability = bench.measurement_noise(
        _table(tmp_path, n_val, arch_sd)
    )
    assert n == n_val
    assert cells == 298  # the two chance-level cells are left out
    assert sampling == pytest.approx(100 * math.sqrt(0.45 * 0.55 / n_val), rel=0.05)
    assert between == pytest.approx(arch_sd, abs=0.35)
    assert reliability == pytest.approx(arch_sd**2 / (arch_sd**2 + sampling**2), abs=0.15)
