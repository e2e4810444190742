"""The early-stopping benchmark's table analyses (the Tuner runs are covered by the scheduler
tests, which use the same ``curves`` trainable)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, load_benchmark

from raynas.benchmarks import curves, nb201


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("early_stopping")


def _table(tmp_path, n_val: int, arch_sd: float, archs: int = 300, epochs: int = 2, seed=0):
    """Curves of real NB201 cells whose final val_acc is a true accuracy (sd ``arch_sd``
    between architectures) measured on ``n_val`` images (binomial); two cells at chance."""
    rng = np.random.default_rng(seed)
    names = nb201.table().arch_strs[:archs]
    truth = np.clip(rng.normal(0.45, arch_sd / 100, archs), 0.05, 0.95)
    truth[:2] = 0.1
    rows = []
    for arch, p in zip(names, truth, strict=True):
        tse = tse_ema = 0.0
        for epoch in range(1, epochs + 1):
            scale = (1 - 0.5 / (epoch + 1)) / (1 - 0.5 / (epochs + 1))
            loss = 2.0 / epoch + rng.normal(0, 0.05)
            tse, tse_ema = tse + loss, 0.9 * tse_ema + loss
            rows.append(
                {
                    "arch": arch,
                    "seed": 0,
                    "epoch": epoch,
                    "train_loss": loss,
                    "tse": tse,
                    "tse_ema": tse_ema,
                    "val_acc": 100 * rng.binomial(n_val, p * scale) / n_val,
                    "cost_s": 1.0,
                }
            )
    path = tmp_path / f"t{n_val}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("n_val, arch_sd", [(1000, 0.5), (5000, 2.0)])
def test_measurement_noise_infers_the_validation_size_and_splits_the_variance(
    bench, tmp_path, n_val, arch_sd
):
    n, cells, observed, sampling, between, reliability = bench.measurement_noise(
        curves.table(_table(tmp_path, n_val, arch_sd))
    )
    assert n == n_val
    assert cells == 298  # the two chance-level cells are left out
    assert sampling == pytest.approx(100 * math.sqrt(0.45 * 0.55 / n_val), rel=0.05)
    assert between == pytest.approx(arch_sd, abs=0.35)
    assert reliability == pytest.approx(arch_sd**2 / (arch_sd**2 + sampling**2), abs=0.15)


def test_table_only_prints_the_analyses_of_another_table_without_tuners(tmp_path):
    path = _table(tmp_path, 2000, 2.0, archs=40, epochs=20)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "early_stopping.py"),
            "--table",
            str(path),
            "--table-only",
            "--mcmc-archs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "one measurement on 2000 validation images" in out
    assert "12-epoch CIFAR-10 test accuracy of the same 40 cells: Spearman" in out
    assert "Spearman correlation with final (epoch 20) val_acc, 40 archs" in out
    assert "seeds of trial order" not in out  # no Tuner ran


def test_paired_with_asha_differences_are_per_seed_and_signed(bench):
    # per seed: (epochs, best final, decision ms, wall s)
    results = {
        "asha": [(800, 48.0, [], 1.0), (820, 47.5, [], 1.0)],
        "tse": [(760, 47.8, [], 1.0), (780, 47.9, [], 1.0)],
    }
    epochs, regret = bench.paired_with(results, "tse", "asha")
    assert epochs.tolist() == [-40.0, -40.0]
    # seed 0: TSE's winner is 0.2 worse than ASHA's (more regret); seed 1: 0.4 better
    assert regret == pytest.approx([0.2, -0.4])


def test_each_scheduler_is_paired_with_the_asha_of_its_rungs(bench):
    names = ["fifo", "asha", "asha-g2", "tse", "tse-e1-g2", "tse-g1", "lce"]
    assert bench.asha_peer("tse", names) == "asha"
    assert bench.asha_peer("lce", names) == "asha"
    assert bench.asha_peer("tse-e1-g2", names) == "asha-g2"
    assert bench.asha_peer("tse-g1", names) is None  # its ASHA (asha-g1) did not run
    keys = ("max_t", "grace_period", "reduction_factor")
    for name, (_, options) in bench.SETTINGS.items():  # a variant and its ASHA: equal rungs
        if name.startswith("asha") or not name.endswith(bench.RUNG_SUFFIXES):
            continue
        peer = bench.asha_peer(name, list(bench.SETTINGS))
        assert {k: options[k] for k in keys} == {k: bench.SETTINGS[peer][1][k] for k in keys}


def _runs(**schedulers):
    """Per-seed results from (epochs, regret) lists against a FIFO best final of 50."""
    n = len(next(iter(schedulers.values())))
    results = {"fifo": [(2000, 50.0, [], 1.0)] * n}
    for name, rows in schedulers.items():
        results[name] = [(epochs, 50.0 - regret, [], 1.0) for epochs, regret in rows]
    return results


def test_budget_matched_interpolates_ashas_regret_at_the_schedulers_epochs(bench):
    results = _runs(
        **{
            "asha-g2": [(200, 1.0), (200, 1.0), (200, 1.0)],
            "asha": [(400, 0.0), (400, 0.0), (400, 0.0)],
            "tse-e1": [(300, 0.1), (300, 0.3), (300, 0.2)],
        }
    )
    diff, (low, high), asha, same = bench.budget_matched(results, "tse-e1", ["asha-g2", "asha"])
    assert asha == pytest.approx(0.5)  # halfway between 200 and 400 epochs
    assert diff == pytest.approx(0.2 - 0.5)
    assert -0.4 - 1e-9 <= low <= diff <= high <= -0.2 + 1e-9  # seeds vary TSE by +-0.1 only
    assert same == pytest.approx(360.0)  # ASHA's regret reaches 0.2 at 360 epochs


def test_budget_matched_refuses_outside_ashas_range_and_a_non_decreasing_front(bench):
    rows = {"asha-g2": [(200, 1.0)] * 2, "asha": [(400, 0.0)] * 2}
    cheaper = _runs(**rows, tse=[(150, 0.1)] * 2)
    assert bench.budget_matched(cheaper, "tse", ["asha-g2", "asha"]) is None
    flat = _runs(**{"asha-g2": [(200, 0.5)] * 2, "asha": [(400, 0.5)] * 2}, tse=[(300, 0.5)] * 2)
    diff, _, asha, same = bench.budget_matched(flat, "tse", ["asha-g2", "asha"])
    assert (diff, asha, same) == (0.0, 0.5, None)


def _log(tmp_path, rows, name="run.log"):
    """A stdout of ``run_schedulers``: its per-seed lines among other output."""
    lines = ["$ python benchmarks/early_stopping.py --seeds 3", "settings (...):"]
    for seed, sched, epochs, best in rows:
        lines.append(
            f"  seed {seed:2d} {sched:7s} epochs {epochs:5d}  best final {best:6.2f}  "
            f"wall {float('nan') if sched == 'fifo' else 12.5:5.1f} s"
        )
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_results_from_log_reads_complete_seeds_and_drops_an_interrupted_one(bench, tmp_path):
    rows = [
        (200, "fifo", 2000, 48.6),
        (200, "asha", 800, 48.2),
        (200, "tse-e1-g2", 540, 48.5),
        (201, "fifo", 2000, 48.4),
        (201, "asha", 790, 48.4),
        (201, "tse-e1-g2", 530, 47.9),
        (202, "fifo", 2000, 48.0),
        (202, "asha", 810, 47.0),  # interrupted before tse-e1-g2 ran
    ]
    names, seeds, results = bench.results_from_log(_log(tmp_path, rows))
    assert names == ["fifo", "asha", "tse-e1-g2"]
    assert seeds == [200, 201]
    assert results["tse-e1-g2"][1][:2] == (530, 47.9)
    assert math.isnan(results["fifo"][0][3]) and results["asha"][0][3] == 12.5
    # asking only for the schedulers seed 202 has keeps it
    names, seeds, results = bench.results_from_log(_log(tmp_path, rows), ["fifo", "asha"])
    assert seeds == [200, 201, 202] and results["asha"][2][:2] == (810, 47.0)
    with pytest.raises(ValueError, match="no per-seed lines for lce"):
        bench.results_from_log(_log(tmp_path, rows), ["fifo", "lce"])
    with pytest.raises(ValueError, match="no per-seed lines for fifo"):
        bench.results_from_log(_log(tmp_path, [(200, "asha", 800, 48.2)]))


def test_mean_upper_bound_is_one_sided_and_tightens_with_seeds(bench):
    assert bench.mean_upper_bound([0.2] * 10) == pytest.approx(0.2)
    rng = np.random.default_rng(1)
    few, many = rng.exponential(0.3, 20), rng.exponential(0.3, 200)
    assert few.mean() < bench.mean_upper_bound(few)
    # about mean + 1.645 standard errors (the bootstrap of a skewed sample: within 30%)
    for values in (few, many):
        normal = values.mean() + 1.645 * values.std(ddof=1) / math.sqrt(len(values))
        assert bench.mean_upper_bound(values) == pytest.approx(normal, rel=0.3)
    assert bench.mean_upper_bound(many) - many.mean() < bench.mean_upper_bound(few) - few.mean()


def test_from_log_summarises_an_earlier_runs_stdout_without_tuners(tmp_path):
    rows = []
    for seed in range(200, 206):
        rows += [(seed, "fifo", 2000, 48.6), (seed, "asha", 800, 48.6 - 0.1 * (seed % 3))]
        rows += [(seed, "tse-e1", 780 + seed % 2, 48.6 - 0.3 * (seed % 2))]
    script = str(REPO / "benchmarks" / "early_stopping.py")
    proc = subprocess.run(
        [sys.executable, script, "--from-log", str(_log(tmp_path, rows)), "--out", "o.txt"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "6 seeds (200 to 205) read from the per-seed lines" in out
    tse = next(line for line in out.splitlines() if line.startswith("tse-e1 "))
    assert tse.split()[:3] == ["tse-e1", "780", "39.0%"]  # 780.5 epochs of 2000
    assert "0.15 ±" in tse  # regret 0.3 on half the seeds
    assert "paired with each ASHA setting" in out
    pair = next(line for line in out.splitlines() if line.split()[:2] == ["tse-e1", "asha"])
    assert pair.split()[2] == "-19.5"  # 780.5 - 800 epochs per seed
    assert "Spearman correlation with final" not in out  # no table analyses
    assert (tmp_path / "o.txt").read_text().strip() == out.strip()
    bad = subprocess.run(
        [sys.executable, script, "--from-log", str(tmp_path / "missing.log")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "--from-log" in bad.stderr and "missing.log" in bad.stderr
