"""The NASWOT search protocol on the NAS-Bench-201 table (Mellor et al., ICML 2021, Alg. 1).

For each sample size N (default 10, 100, 1000) and each repeat: draw N architectures, pick
the one with the highest naswot score, and record its CIFAR-10 test accuracy from the shipped
12-epoch table; next to it, the accuracy of one architecture of the sample picked at random,
and the best accuracy in the sample (what a perfect proxy would pick). Reported: mean and sd
(ddof=1) over the repeats, and the scoring cost in seconds per architecture.

Approximation (printed with the table): scoring 1000 fresh architectures for each of >= 50
repeats would take hours on a CPU, so a fixed pool of P architectures (default 3000, drawn
uniformly without replacement from the 15,625) is scored once, and each repeat draws its N
architectures from the pool without replacement. P must be >= the largest N. Repeats share
architectures when N is a large fraction of P (N=1000 of P=3000: a third of the pool per
draw), so their spread is smaller than with fresh samples and the picks tend towards the
pool's own best; the means for small N are unaffected in expectation.

The pool reuses the naswot scores of ``benchmarks/zero_cost.py --json FILE`` when given
``--scores FILE`` (its network size, batch and seed are then used for the new architectures
too, so all scores are comparable) and scores only the architectures that are missing. The
``--json`` output has the same ``meta``/``records`` layout, so it can be passed back as
``--scores`` to rerun the protocol without scoring.

Usage::

    python benchmarks/naswot_protocol.py --scores benchmarks/results/zero_cost.json
    python benchmarks/naswot_protocol.py --root /path/to/data --pool 300 --sizes 10 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import zero_cost as bench  # benchmarks/zero_cost.py: the scoring loop and its records

from raynas.benchmarks import nb201
from raynas.trainables.proxy import load_batch

PROXY = "naswot"


def load_scores(path: str) -> tuple[dict, list[dict]]:
    """``meta`` and the records that hold a naswot score, from a zero_cost.py JSON file."""
    with open(path) as fh:
        data = json.load(fh)
    records = [r for r in data["records"] if PROXY in r.get("scores", {})]
    if not records:
        raise SystemExit(f"{path}: no records with a {PROXY} score")
    return data["meta"], records


def top_up(
    records: list[dict], pool: int, seed: int, meta: dict, root: str
) -> tuple[list[dict], int]:
    """Score uniformly drawn architectures that are not in ``records`` until ``pool``."""
    missing = pool - len(records)
    if missing <= 0:
        return records[:pool], 0
    table = nb201.table()
    seen = {r["arch"] for r in records}
    order = np.random.default_rng(seed).permutation(len(table))
    archs = [table.arch_strs[int(i)] for i in order if table.arch_strs[int(i)] not in seen]
    archs = archs[:missing]
    inputs, targets, _, _ = load_batch("cifar10", root, meta["seed"], meta["batch_size"])
    bench.warm_up([PROXY], inputs, targets)
    started = time.perf_counter()
    new = bench.score_archs(
        archs,
        [PROXY],
        inputs,
        targets,
        meta["C"],
        meta["N"],
        meta["seed"],
        bench.progress_printer(started),
    )
    return records + new, len(new)


def run_protocol(
    scores: np.ndarray, accs: np.ndarray, sizes: Sequence[int], repeats: int, seed: int
) -> list[dict]:
    """Mean/sd over repeats of the naswot pick, a random pick and the best in the sample."""
    rng = np.random.default_rng(seed)
    ranked = np.where(np.isnan(scores), -np.inf, scores)
    rows = []
    for n in sizes:
        picked, random_pick, best = [], [], []
        for _ in range(repeats):
            sample = rng.choice(len(scores), size=n, replace=False)
            picked.append(accs[sample[int(np.argmax(ranked[sample]))]])
            random_pick.append(accs[sample[int(rng.integers(n))]])
            best.append(accs[sample].max())
        rows.append(
            {
                "N": int(n),
                "repeats": repeats,
                "naswot_mean": float(np.mean(picked)),
                "naswot_sd": float(np.std(picked, ddof=1)),
                "random_mean": float(np.mean(random_pick)),
                "random_sd": float(np.std(random_pick, ddof=1)),
                "best_mean": float(np.mean(best)),
                "best_sd": float(np.std(best, ddof=1)),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", default=None, help="JSON of zero_cost.py to reuse")
    parser.add_argument("--pool", type=int, default=3000, help="scored archs (default 3000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=500, help="draws per N (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="pool top-up and repeats")
    parser.add_argument("--root", default=None, help="CIFAR-10 folder (default $RAYNAS_DATA)")
    parser.add_argument("--C", type=int, default=16, help="without --scores only")
    parser.add_argument("--N", type=int, default=5, help="without --scores only")
    parser.add_argument("--batch-size", type=int, default=64, help="without --scores only")
    parser.add_argument("--data-seed", type=int, default=0, help="without --scores only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write pool records and results here")
    args = parser.parse_args(argv)

    if args.repeats < 2:
        raise SystemExit(f"--repeats must be >= 2, got {args.repeats}")
    if min(args.sizes) < 1 or max(args.sizes) > args.pool:
        raise SystemExit(
            f"every --sizes value must be in [1, --pool={args.pool}], got {args.sizes}: "
            "draws are without replacement from the scored pool"
        )
    if args.pool > len(nb201.table()):
        raise SystemExit(f"--pool must be <= {len(nb201.table())}, got {args.pool}")
    torch.set_num_threads(args.threads)
    root = args.root or os.environ.get("RAYNAS_DATA")

    if args.scores:
        meta, records = load_scores(args.scores)
        meta = {k: meta[k] for k in ("seed", "batch_size", "C", "N")}
    else:
        meta = {"seed": args.data_seed, "batch_size": args.batch_size, "C": args.C, "N": args.N}
        records = []
    reused = min(len(records), args.pool)
    if len(records) < args.pool and not root:
        raise SystemExit("no CIFAR-10 folder to score the pool: pass --root or set $RAYNAS_DATA")
    load_start = os.getloadavg()
    records, scored = top_up(records, args.pool, args.seed, meta, root)

    scores = np.array([r["scores"][PROXY] for r in records], dtype=float)
    accs = np.array([r["test_acc"] for r in records], dtype=float)
    rows = run_protocol(scores, accs, args.sizes, args.repeats, args.seed)
    s_arch = float(np.mean([r["wall_s"][PROXY] for r in records]))
    cpu_arch = float(np.mean([r["cpu_s"][PROXY] for r in records]))
    build_s = float(np.mean([r["build_s"] for r in records]))
    load = float(np.mean([r["load"] for r in records]))

    _, optimum = nb201.table().optimum("cifar10", split="test")
    header = [
        f"# NASWOT protocol, NB201 CIFAR-10 test accuracy (12-epoch table; optimum "
        f"{optimum:.2f}), {args.repeats} repeats per N, seed {args.seed}",
        f"# pool: {len(records)} archs drawn uniformly without replacement from the 15,625 "
        f"and scored once ({reused} reused from {args.scores or '-'}, {scored} scored now; "
        f"pool best {accs.max():.2f}, {int((~np.isfinite(scores)).sum())} non-finite scores "
        f"ranked last)",
        "# APPROXIMATION: each repeat draws N archs from this pool without replacement, not "
        "fresh from the space; for N near the pool size repeats overlap (N/pool = "
        + ", ".join(f"{n / len(records):.0%}" for n in args.sizes)
        + "), so sd is understated",
        f"# naswot: C={meta['C']} N={meta['N']}, one batch of {meta['batch_size']} CIFAR-10 "
        f"train images (seed {meta['seed']}), {args.threads} thread(s): {s_arch:.3f} s/arch "
        f"wall ({cpu_arch:.3f} CPU) + build {build_s:.3f} s/arch; mean load {load:.2f} "
        f"(load at start {load_start[0]:.2f}, {os.cpu_count()} cores)",
    ]
    print("\n".join(header))
    head = (
        f"{'N':>5} {'naswot pick':>15} {'random pick':>15} {'best in sample':>15} {'score s':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['N']:>5} {r['naswot_mean']:>8.2f} ± {r['naswot_sd']:<5.2f} "
            f"{r['random_mean']:>8.2f} ± {r['random_sd']:<5.2f} "
            f"{r['best_mean']:>8.2f} ± {r['best_sd']:<5.2f} {r['N'] * (s_arch + build_s):>8.1f}"
        )
    print("# score s: seconds to score the N archs of one search at the mean s/arch (+ build)")

    if args.json:
        out = {
            "meta": {
                **meta,
                "pool": len(records),
                "reused": reused,
                "scored": scored,
                "repeats": args.repeats,
                "sizes": args.sizes,
                "protocol_seed": args.seed,
                "s_per_arch": s_arch,
                "cpu_s_per_arch": cpu_arch,
                "build_s_per_arch": build_s,
                "mean_load": load,
                "command": " ".join(sys.argv),
            },
            "summary": rows,
            "records": records,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
