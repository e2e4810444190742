"""The lecture's NAS-Bench-201 table (CIFAR-10) with raynas's own rows, CPU-sized.

Weight-sharing rows: every one-shot method of the ``oneshot`` trainable (RSPS, DARTS-V1 =
first order, DARTS-V2 = second order, GDAS, SETN, ENAS; PC-DARTS with ``--pcdarts``) searches
the nb201 space on the genuine CIFAR-10 subset (``/work/shared/data/cifar-10-mini``) with
``--seeds`` seeds, each search a ``DartsSearch``/``make_search`` run of ``--epochs`` epochs
(no Tune: the engine the trainable runs, one process per search, ``--workers`` at a time,
one torch thread each). Reported per method: the CIFAR-10 test (and val) accuracy of the
derived cell in the shipped NB201 table (12-epoch schedule) as mean ± sd (ddof=1) over the
seeds, how many of its 6 edges are parameter-free (skip, avg pool, none), and the search wall
time (mean, seconds; the CPU is shared, the load average is printed).

Table-based rows: REA (``evolution``), RS (``random``), REINFORCE (``reinforce``) run the
sequential suggest/complete loop of ``benchmarks/nb201_searchers.py`` on the shipped table
(``--queries`` queries, ``--table-seeds`` seeds, best by val, its test accuracy); BOHB if the
searcher registry has ``bohb`` (else the row says it is missing). NASWOT N=10/100/1000: the
exact protocol's numbers of ``benchmarks/results/naswot_protocol.txt`` (the whole space
scored once; its scores file is not stored, so they are quoted, not recomputed; the row says
so).

Next to each row: the lecture's numbers (NB201 paper, Dong & Yang, ICLR 2020, Table 5,
CIFAR-10 test accuracy after 200 epochs; NASWOT: Mellor et al., ICML 2021). Ours use the
12-epoch table, whose optimum is 89.16 (test), so compare orderings, not values.

Every finished search is appended to ``--jsonl`` as soon as it ends, and a rerun with the
same file skips the searches already there (an interrupted run continues).

Usage::

    python benchmarks/lecture_table.py --epochs 10 --seeds 3 --workers 2 \
        --jsonl benchmarks/results/lecture_table.jsonl
    python benchmarks/lecture_table.py --quick          # smoke run (tiny sizes, 1 seed)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: (label, oneshot options) of the weight-sharing rows, in the lecture's order.
WEIGHT_SHARING = (
    ("RSPS", {"method": "rsps"}),
    ("DARTS-V1", {"method": "darts", "order": 1}),
    ("DARTS-V2", {"method": "darts", "order": 2}),
    ("GDAS", {"method": "gdas"}),
    ("SETN", {"method": "setn"}),
    ("ENAS", {"method": "enas"}),
)
PCDARTS = ("PC-DARTS", {"method": "darts", "pc_k": 4})
#: (label, registry name) of the table-based searchers.
TABLE_BASED = (
    ("REA", "evolution"),
    ("RS", "random"),
    ("REINFORCE", "reinforce"),
    ("BOHB", "bohb"),
)
#: The lecture's CIFAR-10 test accuracy (mean, sd): NB201 paper Table 5 (200-epoch training),
#: NASWOT paper (Mellor et al., 2021) for its rows.
LECTURE: dict[str, tuple[float, float]] = {
    "RSPS": (87.66, 1.69),
    "DARTS-V1": (54.30, 0.00),
    "DARTS-V2": (54.30, 0.00),
    "GDAS": (93.61, 0.09),
    "SETN": (87.64, 0.00),
    "ENAS": (54.30, 0.00),
    "REA": (93.92, 0.30),
    "RS": (93.70, 0.36),
    "REINFORCE": (93.85, 0.37),
    "BOHB": (93.61, 0.52),
    "NASWOT N=10": (92.96, 0.81),
    "NASWOT N=100": (92.81, 0.99),
    "NASWOT N=1000": (92.96, 0.81),
}
PARAM_FREE = ("skip_connect", "avg_pool_3x3", "none")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The one-shot options shared by every search (``--quick``: a smoke size)."""
    images = 64 if args.quick else args.images
    return {
        "dataset": "cifar10",
        "root": args.root,
        "val_fraction": images,
        "subset": images,
        "image_size": 16,
        "build": {"C": 4 if args.quick else 8, "N": 1},
        "batch_size": 64,
        "epochs": 1 if args.quick else args.epochs,
        "threads": 1,
        "tensorboard": False,
        "device": "cpu",
    }


def run_search(label: str, extra: dict[str, Any], seed: int, common: dict) -> dict[str, Any]:
    """One weight-sharing search (in a worker process); returns its row."""
    import torch

    import search_spaces
    from raynas.benchmarks import nb201
    from raynas.oneshot.methods import make_search
    from raynas.oneshot.options import DartsOptions

    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    opts = DartsOptions(**{**common, **extra, "seed": seed})
    wall, cpu = time.perf_counter(), time.process_time()
    search = make_search(space, opts)
    epochs = []
    for _ in range(opts.epochs):
        m = search.step()
        epochs.append({"epoch": m["epoch"], "arch": m["arch"], "cost_s": m["cost_s"]})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    arch = search.arch()
    entry = nb201.table().lookup(arch, "cifar10")
    genotype = space.from_str(arch)
    return {
        "method": label,
        "seed": seed,
        "options": extra,
        "arch": arch,
        "test_acc": entry.test_acc,
        "val_acc": entry.val_acc,
        "param_free": sum(op in PARAM_FREE for op in genotype.ops),
        "wall_s": wall,
        "cpu_s": cpu,
        "load": os.getloadavg()[0],
        "epochs": epochs,
        "settings": {k: v for k, v in common.items() if k != "root"},
    }


def run_weight_sharing(args: argparse.Namespace, methods) -> list[dict[str, Any]]:
    common = settings(args)
    done: list[dict[str, Any]] = []
    if args.jsonl and os.path.exists(args.jsonl):
        with open(args.jsonl) as fh:
            done = [json.loads(line) for line in fh if line.strip()]
        wanted = {k: v for k, v in common.items() if k != "root"}
        done = [r for r in done if r["settings"] == wanted]
    have = {(r["method"], r["seed"]) for r in done}
    seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
    # seed-major order: every method has some seeds early if the run is cut short
    jobs = [(lb, ex, s) for s in seeds for lb, ex in methods if (lb, s) not in have]
    print(f"(weight-sharing searches: {len(jobs)} to run, {len(done)} reused)", flush=True)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(run_search, lb, ex, s, common): (lb, s) for lb, ex, s in jobs}
        for future in as_completed(futures):
            row = future.result()
            done.append(row)
            print(
                f"  {row['method']} seed {row['seed']}: {row['arch']} test "
                f"{row['test_acc']:.2f} ({row['wall_s']:.0f} s, load {row['load']:.1f})",
                flush=True,
            )
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    return done


def run_table_based(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    import nb201_searchers as ns

    import search_spaces
    from raynas import searchers
    from raynas.benchmarks import nb201

    ns._quiet_logs()
    space = search_spaces.get("nb201")
    table = nb201.table()
    out: dict[str, dict[str, Any]] = {}
    seeds = range(args.first_seed, args.first_seed + args.table_seeds)
    for label, name in TABLE_BASED:
        if name not in searchers.names():
            out[label] = {"missing": f"no '{name}' searcher in raynas yet"}
            continue
        tests, vals, walls = [], [], []
        for seed in seeds:
            start = time.perf_counter()
            run = ns.run_one(name, "cifar10", seed, args.queries, space, table)
            walls.append(time.perf_counter() - start)
            _, val, test, _ = run.best_at(args.queries)
            tests.append(test)
            vals.append(val)
        out[label] = {"test": tests, "val": vals, "wall_s": walls}
    return out


def naswot_quoted() -> dict[str, dict[str, Any]]:
    """The exact NASWOT protocol's rows quoted from ``results/naswot_protocol.txt``."""
    text = (HERE / "results" / "naswot_protocol.txt").read_text()
    block = text.split("Quote these:", 1)[1]
    out = {}
    for n, mean, sd, score_s in re.findall(
        r"^\s+(\d+)\s+([\d.]+) ± ([\d.]+)\s+[\d.]+ ± [\d.]+\s+[\d.]+ ± [\d.]+\s+([\d.]+)\s*$",
        block,
        re.MULTILINE,
    )[:3]:
        out[f"NASWOT N={n}"] = {"mean": float(mean), "sd": float(sd), "score_s": float(score_s)}
    return out


def _mean_sd(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:6.2f}       "
    return f"{statistics.mean(xs):6.2f} ± {statistics.stdev(xs):4.2f}"


def print_table(args, ws_rows, table_rows, naswot, methods) -> dict[str, float]:
    from raynas.benchmarks import nb201

    table = nb201.table()
    common = settings(args)
    print(
        f"\n## NB201 CIFAR-10: raynas (12-epoch table) next to the lecture (200-epoch table)\n"
        f"weight-sharing: CIFAR-10 subset ({common['subset']} train + {common['val_fraction']} "
        f"val images at 16x16), supernet C={common['build']['C']} N=1, batch 64, "
        f"{common['epochs']} epochs, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}"
        f", 1 thread per search, {args.workers} searches at a time"
    )
    if table_rows:
        print(
            f"table-based: {args.queries} queries per run, best by val, seeds "
            f"{args.first_seed}..{args.first_seed + args.table_seeds - 1}"
        )
    header = (
        f"{'method':<14} {'kind':<14} {'ours test acc':>15} {'ours val acc':>15} "
        f"{'param-free':>10} {'search s':>9} {'n':>3} {'lecture test acc':>17}"
    )
    print(header)
    print("-" * len(header))
    means: dict[str, float] = {}
    for label, _ in methods:
        rows = [r for r in ws_rows if r["method"] == label]
        lec = LECTURE.get(label)
        lec_s = f"{lec[0]:6.2f} ± {lec[1]:4.2f}" if lec else "-"
        if not rows:
            print(f"{label:<14} {'weight-sharing':<14} {'(not run)':>15}")
            continue
        tests = [r["test_acc"] for r in rows]
        means[label] = statistics.mean(tests)
        print(
            f"{label:<14} {'weight-sharing':<14} {_mean_sd(tests):>15} "
            f"{_mean_sd([r['val_acc'] for r in rows]):>15} "
            f"{statistics.mean(r['param_free'] for r in rows):>8.1f}/6 "
            f"{statistics.mean(r['wall_s'] for r in rows):>9.0f} {len(rows):>3} {lec_s:>17}"
        )
    for label, _ in TABLE_BASED if table_rows else ():
        row = table_rows[label]
        lec = LECTURE[label]
        lec_s = f"{lec[0]:6.2f} ± {lec[1]:4.2f}"
        if "missing" in row:
            print(f"{label:<14} {'table':<14} {'missing: ' + row['missing']:<48} {lec_s:>17}")
            continue
        means[label] = statistics.mean(row["test"])
        print(
            f"{label:<14} {'table':<14} {_mean_sd(row['test']):>15} {_mean_sd(row['val']):>15} "
            f"{'-':>10} {statistics.mean(row['wall_s']):>9.2f} {len(row['test']):>3} {lec_s:>17}"
        )
    for label, row in naswot.items():
        lec = LECTURE[label]
        means[label] = row["mean"]
        print(
            f"{label:<14} {'training-free':<14} {row['mean']:6.2f} ± {row['sd']:4.2f} "
            f"{'-':>15} {'-':>10} {row['score_s']:>9.1f} {500:>3} "
            f"{lec[0]:6.2f} ± {lec[1]:4.2f}"
        )
    best_arch, _ = table.optimum("cifar10", "test")
    skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
    skip += "skip_connect~2|"
    print(
        f"reference (12-epoch table): best cell {table.lookup(best_arch, 'cifar10').test_acc:.2f},"
        f" all-skip cell {table.lookup(skip, 'cifar10').test_acc:.2f}, median cell "
        f"{statistics.median(table.test('cifar10')):.2f}"
    )
    print(
        "NASWOT rows: quoted from benchmarks/results/naswot_protocol.txt (exact protocol, 500 "
        "repeats; 'search s' = seconds to score the N cells), not rerun here"
    )
    return means


def print_ordering(means: dict[str, float], methods) -> None:
    ws = {lb: means[lb] for lb, _ in methods if lb in means}
    tb = {lb: means[lb] for lb, _ in TABLE_BASED if lb in means}
    if not ws or not tb:
        return
    best_ws = max(ws, key=ws.get)
    worst_tb = min(tb, key=tb.get)
    print("\nordering checks (means of ours):")
    print(
        f"  weight-sharing below table-based: best weight-sharing {best_ws} {ws[best_ws]:.2f} "
        f"vs worst table-based {worst_tb} {tb[worst_tb]:.2f}: "
        f"{'holds' if ws[best_ws] < tb[worst_tb] else 'does NOT hold'}"
    )
    order = sorted(ws, key=ws.get, reverse=True)
    print(
        f"  GDAS best of the weight-sharing ones: order {' > '.join(order)}: "
        f"{'holds' if order[0] == 'GDAS' else 'does NOT hold'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("RAYNAS_DATA", "/work/shared/data"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=1000, help="train and val images each")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--table-seeds", type=int, default=20)
    parser.add_argument("--pcdarts", action="store_true", help="add a PC-DARTS (K=4) row")
    parser.add_argument("--methods", help="comma-separated weight-sharing rows (default: all)")
    parser.add_argument("--only", default="weight-sharing,table")
    parser.add_argument("--jsonl", help="append each finished search here; reuse it on rerun")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.table_seeds, args.queries = 1, 2, 20
    methods = WEIGHT_SHARING + ((PCDARTS,) if args.pcdarts else ())
    if args.methods:
        wanted = args.methods.split(",")
        unknown = sorted(set(wanted) - {label for label, _ in methods})
        if unknown:
            parser.error(f"unknown --methods {', '.join(unknown)}")
        methods = tuple(m for m in methods if m[0] in wanted)
    print(f"# command: python benchmarks/lecture_table.py {' '.join(sys.argv[1:])}")
    print(f"# {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    start = time.perf_counter()
    parts = args.only.split(",")
    ws_rows = run_weight_sharing(args, methods) if "weight-sharing" in parts else []
    table_rows = run_table_based(args) if "table" in parts else {}
    means = print_table(args, ws_rows, table_rows, naswot_quoted(), methods)
    print_ordering(means, methods)
    print(f"\ntotal: {(time.perf_counter() - start) / 60:.1f} min; load average {os.getloadavg()}")
    if not math.isfinite(sum(means.values())):
        raise SystemExit("non-finite accuracy in the table")


if __name__ == "__main__":
    main()
