"""Paired comparison of ``nb201_searchers.py --json`` runs of one searcher, seed by seed.

For every run file after the first (the reference), per dataset and budget: the searcher's mean
val regret with its standard error, the paired difference to the reference on the same seeds
(mean ± se, seeds better / worse), the seeds that miss the val optimum, and, where the reference
file also holds ``--against`` (default ``local``), the paired difference to that searcher. Then
the tail of the "first query that reaches the val optimum" (regret 0): its median, 75th and
90th percentiles and the seeds not there yet after 100/150/200/250/300 queries, the measure of
how often a run of a given budget misses the optimum.

Usage::

    python benchmarks/nb201_paired.py REF.json VARIANT.json [...] [--searcher bananas]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb201_searchers import _se  # noqa: E402

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
TAIL_AT = (100, 150, 200, 250, 300)


def _load(path: str) -> tuple[dict, dict]:
    with open(path) as f:
        data = json.load(f)
    runs = {(r["dataset"], r["searcher"], r["seed"]): r for r in data["runs"]}
    return data["meta"], runs


def _regret(meta: dict, run: dict, budget: int) -> float:
    return meta["optimum"][run["dataset"]]["val"] - run["best"][str(budget)]["val_acc"]


def _first_hit(meta: dict, run: dict) -> float:
    """1-based query that first reaches the val optimum's accuracy (inf: never)."""
    optimum = meta["optimum"][run["dataset"]]["val"]
    hits = [i for i, v in enumerate(run["val"]) if v >= optimum - 1e-9]
    return hits[0] + 1 if hits else math.inf


def compare(ref_path: str, paths: list[str], searcher: str, against: str) -> None:
    ref_meta, ref = _load(ref_path)
    budgets = sorted({int(b) for r in ref.values() for b in r["best"]})
    for path in [ref_path, *paths]:
        meta, runs = _load(path)
        print(f"== {path}  ({meta.get('command', '')})")
        for dataset in DATASETS:
            seeds = sorted(s for d, n, s in runs if d == dataset and n == searcher)
            if not seeds:
                continue
            for budget in budgets:
                var = np.array([_regret(meta, runs[dataset, searcher, s], budget) for s in seeds])
                line = f"{dataset:15s} @{budget:3d} {var.mean():.3f} ± {_se(var):.3f}"
                line += f" misses {int((var > 0).sum())}/{len(var)}"
                if path != ref_path and all((dataset, searcher, s) in ref for s in seeds):
                    base = [_regret(ref_meta, ref[dataset, searcher, s], budget) for s in seeds]
                    d = var - np.array(base)
                    line += (
                        f" | - ref {d.mean():+.3f} ± {_se(d):.3f}"
                        f" ({int((d < 0).sum())} better / {int((d > 0).sum())} worse)"
                    )
                if all((dataset, against, s) in ref for s in seeds):
                    peer = [_regret(ref_meta, ref[dataset, against, s], budget) for s in seeds]
                    d = var - np.array(peer)
                    line += (
                        f" | {against} {np.mean(peer):.3f}, - {against} {d.mean():+.3f}"
                        f" ± {_se(d):.3f} ({against} misses {int((np.array(peer) > 0).sum())})"
                    )
                print(line)
            hits = np.array([_first_hit(meta, runs[dataset, searcher, s]) for s in seeds])
            finite = np.where(np.isfinite(hits), hits, 10**9)
            tail = [int((hits > b).sum()) for b in TAIL_AT]
            q50, q75, q90 = np.percentile(finite, [50, 75, 90], method="higher")
            print(
                f"{dataset:15s} first hit of the optimum: median {q50:.0f}, p75 {q75:.0f},"
                f" p90 {q90:.0f} (10^9: never); seeds not there after"
                f" {'/'.join(map(str, TAIL_AT))} queries: {'/'.join(map(str, tail))}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ref", help="reference run file (nb201_searchers.py --json)")
    parser.add_argument("variants", nargs="*", help="run files compared with it, seed by seed")
    parser.add_argument("--searcher", default="bananas")
    parser.add_argument("--against", default="local", help="peer searcher in the reference")
    args = parser.parse_args(argv)
    compare(args.ref, args.variants, args.searcher, args.against)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
