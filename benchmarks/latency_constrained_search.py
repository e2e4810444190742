"""Run the latency-constrained mobilenetv3 example and compare predicted with measured latency.

Runs ``examples/mobilenetv3_latency.yaml`` (evolution with a ``latency_ms`` bound predicted by
the cached per-device ``LatencyTable``; the ``train`` trainable with ``latency: true``) end to
end through ``raynas.experiment.run``, then, per trial: the table's prediction for its subnet
(the same cached table the searcher used), the latency the trial measured (median of 50
calls, batch 1, 1 thread, while the other trial in flight was training) and, for reference,
the latency measured again here, alone, after the search (``measure_latency``, same settings).
Summary: how many trials the bound admits by prediction and by measurement, the median
absolute relative error of the prediction against each measurement, Spearman's rank
correlation, and the share of random subnets that the bound excludes.

Usage::

    python benchmarks/latency_constrained_search.py      # the example as it is (digits)
    python benchmarks/latency_constrained_search.py --set num_samples=20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default=str(REPO / "examples" / "mobilenetv3_latency.yaml"))
    parser.add_argument("--storage-path", default=None, help="default: a temporary folder")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

    from raynas import config, experiment
    from raynas import data as datamod
    from raynas.hardware import measure_latency
    from raynas.searchers.constraints import SpaceConstraint

    storage = args.storage_path or tempfile.mkdtemp(prefix="latency-search-")
    overrides = [f"storage_path={storage}", *args.set]
    cfg = config.load(args.example, overrides)
    print(f"# {' '.join(sys.argv)}")
    print(f"# {args.example} with {overrides}; load before {_load()}")
    start = time.perf_counter()
    grid = experiment.run(cfg, verbose=0)
    wall = time.perf_counter() - start
    print(f"# experiment wall time {wall:.0f} s (table build included when not cached)")

    space = experiment.build(cfg).space
    spec = dict(cfg.searcher.options["constraint"])
    bound = spec["latency_ms"]["max"]
    predictor = SpaceConstraint(space, spec).quantities["latency_ms"]
    table = predictor.table
    print(
        f"# table {table.path} (from cache: {table.from_cache}), built "
        f"{table.meta.get('created')} in {table.meta.get('build_s')} s; scale "
        f"{table.scale:.3f}, offset {table.offset_ms:.2f} ms"
    )
    rng = np.random.default_rng(123)
    sample = [predictor(space.encode(space.sample(rng))) for _ in range(2000)]
    print(
        f"# random subnets' predictions: min {min(sample):.2f}, median {np.median(sample):.2f}, "
        f"max {max(sample):.2f} ms; the bound {bound} ms excludes "
        f"{100 * np.mean(np.array(sample) > bound):.0f}% of 2000 random subnets"
    )

    rows = []
    threads = cfg.trainable.options.get("threads") or 1
    root = cfg.trainable.options.get("root")
    # measured as the trials measured: the dataset's channels and image size
    splits = datamod.load(cfg.trainable.options.get("dataset", "digits"), root=root)
    for result in grid:
        if result.error or "latency_ms" not in (result.metrics or {}):
            print(f"# trial without latency: {result.error}")
            continue
        genotype = space.decode(result.config)
        model = space.build(
            genotype, num_classes=splits.num_classes, in_channels=splits.in_channels
        )
        shape = (splits.in_channels, splits.image_size, splits.image_size)
        alone = measure_latency(model, shape, threads=threads)
        rows.append(
            (
                result.metrics["trial_id"],
                predictor(result.config),
                float(result.metrics["latency_ms"]),
                alone.median_ms,
                float(result.metrics["val_acc"]),
                space.to_str(genotype),
            )
        )
    print()
    print(
        f"{'trial':>8} | {'predicted':>9} | {'in trial':>8} | {'alone':>7} | err(trial) | "
        f"err(alone) | val_acc | arch"
    )
    for tid, pred, meas, alone, acc, arch in rows:
        print(
            f"{tid:>8} | {pred:9.2f} | {meas:8.2f} | {alone:7.2f} | "
            f"{100 * (pred - meas) / meas:+9.1f}% | {100 * (pred - alone) / alone:+9.1f}% | "
            f"{acc:7.2f} | {arch}"
        )
    pred = np.array([r[1] for r in rows])
    meas = np.array([r[2] for r in rows])
    alone = np.array([r[3] for r in rows])
    print()
    print(f"trials: {len(rows)}; bound {bound} ms")
    print(f"  predicted <= bound: {int((pred <= bound).sum())}/{len(rows)}")
    print(f"  measured in trial <= bound: {int((meas <= bound).sum())}/{len(rows)}")
    print(f"  measured alone <= bound: {int((alone <= bound).sum())}/{len(rows)}")
    print(
        f"  median |pred - meas| / meas: in trial "
        f"{100 * np.median(abs(pred - meas) / meas):.1f}%, alone "
        f"{100 * np.median(abs(pred - alone) / alone):.1f}%"
    )
    print(
        f"  Spearman(pred, meas): in trial {_spearman(pred, meas):.2f}, alone "
        f"{_spearman(pred, alone):.2f}  (n={len(rows)}, predictions span "
        f"{pred.min():.1f}-{pred.max():.1f} ms)"
    )
    print(f"load after {_load()}; torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
