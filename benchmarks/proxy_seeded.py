"""Proxy-seeded regularized evolution against plain evolution on the NAS-Bench-201 table.

For each seed, two ``EvolutionSearcher`` runs with the same seed and default options (P = 30,
S = P, p_mutation 0.1, oldest out) search CIFAR-10 validation accuracy of the shipped 12-epoch
NB201 table in a sequential suggest/complete loop of ``--queries`` queries:

- ``evolution``: plain (30 random architectures, then evolution);
- ``evolution+seed``: ``proxy_seed`` = {proxy, pool, top_k, cifar10, batch 64, build C/N,
  seed 0, threads 1}: before the first suggestion the searcher scores its own random pool
  (drawn with its RNG) with the zero-cost proxy on one batch of real CIFAR-10 training images,
  exactly as in an experiment, and suggests the top-k first (then random up to P, then
  evolution).

A query is one table lookup (one "trained" architecture); proxy scoring is not a query, its
cost is reported separately (wall and process CPU seconds of scoring the pool in the
searcher, data loading included, on this CPU with one torch thread; on a busy shared machine
the wall time includes waiting for a core, the CPU time does not). Regret = optimum CIFAR-10
val accuracy (the table's best) - best val accuracy found within the first n queries.
Reported: mean and standard error over seeds at each checkpoint, the paired difference
(seeded - plain) with its standard error, wins/ties/losses of the seeded run, and how many
seeds found the optimum.
For reference, the regret of picking the pool's top-1 by the proxy (the NASWOT protocol with
N = pool, one query) and of the best of the top-k seeds (top_k queries).

Usage::

    python benchmarks/proxy_seeded.py --root /path/to/cifar  # or $RAYNAS_DATA
    python benchmarks/proxy_seeded.py --seeds 10 --pool 100 --top-k 10 --C 8 --N 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

import search_spaces
from raynas.benchmarks import nb201
from raynas.searchers.evolution import EvolutionSearcher

DATASET = "cifar10"


def run(space, seed: int, queries: int, proxy_seed: dict | None) -> tuple[list[float], dict]:
    """Best-so-far val accuracy after each query, and the searcher's proxy info."""
    table = nb201.table()
    searcher = EvolutionSearcher(
        space, metric="val_acc", mode="max", seed=seed, proxy_seed=proxy_seed
    )
    best, curve = -np.inf, []
    for i in range(queries):
        config = searcher.suggest(f"t{i}")
        val = table.lookup(space.to_str(space.decode(config)), DATASET).val_acc
        searcher.on_trial_complete(f"t{i}", {"val_acc": val})
        best = max(best, val)
        curve.append(best)
    info = {}
    if searcher.proxy_pool is not None:
        pool = searcher.proxy_pool
        vals = [table.lookup(a, DATASET).val_acc for a in pool["archs"]]
        info = {
            "cost_s": pool["cost_s"],
            "cpu_s": pool["cpu_s"],
            "n": len(pool["configs"]),
            "top1_val": vals[pool["top"][0]],
            "seeds_best_val": max(vals[i] for i in pool["top"]),
            "pool_best_val": max(vals),
        }
    return curve, info


def _mean_se(x) -> str:
    x = np.asarray(x, dtype=float)
    se = x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return f"{x.mean():6.3f} +- {se:5.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("RAYNAS_DATA"), help="CIFAR-10 folder")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100, 300])
    parser.add_argument("--proxy", default="naswot")
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.root:
        parser.error("CIFAR-10 data needed: pass --root or set $RAYNAS_DATA")
    if max(args.checkpoints) > args.queries:
        parser.error("checkpoints must be <= --queries")

    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    optimum = nb201.table().optimum(DATASET, "val")[1]
    proxy_seed = {
        "proxy": args.proxy,
        "pool": args.pool,
        "top_k": args.top_k,
        "dataset": DATASET,
        "root": args.root,
        "batch_size": args.batch_size,
        "build": {"C": args.C, "N": args.N},
        "seed": 0,
        "threads": 1,
    }
    print(f"# {' '.join(sys.argv)}")
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, load {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(
        f"# NB201 {DATASET} val (12-epoch table), optimum {optimum:.3f}; evolution defaults "
        f"(P=30, S=P, p_mut=0.1, oldest out); seeds 0..{args.seeds - 1}; sequential loop"
    )
    print(
        f"# proxy_seed: {args.proxy}, pool {args.pool}, top_k {args.top_k}, batch "
        f"{args.batch_size} real CIFAR-10 images, networks C={args.C} N={args.N}, 1 thread"
    )
    start = time.perf_counter()
    plain, seeded, infos = [], [], []
    for seed in range(args.seeds):
        plain.append(run(space, seed, args.queries, None)[0])
        curve, info = run(space, seed, args.queries, proxy_seed)
        seeded.append(curve)
        infos.append(info)
        print(
            f"# seed {seed}: plain {optimum - plain[-1][-1]:.3f}, seeded "
            f"{optimum - curve[-1]:.3f} regret at {args.queries}; pool scored in "
            f"{info['cost_s']:.1f} s",
            flush=True,
        )
    plain_r = optimum - np.asarray(plain)
    seeded_r = optimum - np.asarray(seeded)

    print()
    print("val regret (mean +- se over seeds; lower is better)")
    head = f"{'queries':>8} | {'evolution':>16} | {'evolution+seed':>16} | "
    print(head + f"{'seeded - plain':>16} | win/tie/loss | optimum found (plain/seeded)")
    for n in args.checkpoints:
        p, s = plain_r[:, n - 1], seeded_r[:, n - 1]
        d = s - p
        wins, ties = int((d < -1e-9).sum()), int((abs(d) <= 1e-9).sum())
        print(
            f"{n:>8} | {_mean_se(p):>16} | {_mean_se(s):>16} | {_mean_se(d):>16} | "
            f"{wins:>2}/{ties:>2}/{len(d) - wins - ties:>2}     | "
            f"{int((p <= 1e-9).sum())}/{len(p)} / {int((s <= 1e-9).sum())}/{len(s)}"
        )
    print()
    cost = np.array([i["cost_s"] for i in infos])
    n_arch = np.array([i["n"] for i in infos])
    print("reference (same pools)")
    print(
        f"  {args.proxy} top-1 of the pool (1 query):   regret "
        f"{_mean_se([optimum - i['top1_val'] for i in infos])}"
    )
    print(
        f"  best of the top-{args.top_k} seeds ({args.top_k} queries): regret "
        f"{_mean_se([optimum - i['seeds_best_val'] for i in infos])}"
    )
    print(
        f"  best of the whole pool ({args.pool} queries):  regret "
        f"{_mean_se([optimum - i['pool_best_val'] for i in infos])}"
    )
    cpu = np.array([i["cpu_s"] for i in infos])
    print(
        f"proxy scoring cost per search (pool of {n_arch.mean():.0f}, data loading included, "
        f"1 thread): wall {cost.mean():.1f} s ({(cost / n_arch).mean():.3f} s/arch), "
        f"process CPU {cpu.mean():.1f} s ({(cpu / n_arch).mean():.3f} s/arch); "
        f"load now {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
