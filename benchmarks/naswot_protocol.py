"""The NASWOT search protocol on the NAS-Bench-201 table (Mellor et al., ICML 2021, Alg. 1).

For each sample size N (default 10, 100, 1000) and each repeat: draw N architectures, pick
the one with the highest naswot score, and record its CIFAR-10 test accuracy from the shipped
12-epoch table; next to it, the accuracy of one architecture of the sample picked at random,
and the best accuracy in the sample (what a perfect proxy would pick). Reported: mean and sd
(ddof=1) over the repeats, and the scoring cost in seconds per architecture.

Exact and approximate runs (which one is printed with the table): with ``--pool 15625`` every
architecture of the space is scored once and each repeat draws its N architectures fresh from
all of them: the protocol as published, except that an architecture's score comes from one
fixed batch and initialisation seed rather than a new one per repeat. Scoring the whole space
costs ~0.45 CPU s per architecture (~2 CPU hours; ``--workers 2`` halves the wall time on two
cores). A smaller pool P (default 3000, drawn uniformly without replacement) is an
approximation: repeats draw from the pool, so they share architectures when N is a large
fraction of P (N=1000 of P=3000: a third of the pool per draw), their spread is smaller than
with fresh samples and the picks tend towards the pool's own best; the means for small N are
unaffected in expectation.

The pool reuses the naswot scores of ``benchmarks/zero_cost.py --json FILE`` when given
``--scores FILE`` (its network size, batch and seed are then used for the new architectures
too, so all scores are comparable) and scores only the architectures that are missing. With
``--cache DIR`` each new score is appended to a file in DIR as soon as it is made (one file
per worker, named by network, batch and seed) and reused by the next run, so an interrupted
run resumes where it stopped. The ``--json`` output has the same ``meta``/``records`` layout,
so it can be passed back as ``--scores`` to rerun the protocol without scoring.

Usage::

    python benchmarks/naswot_protocol.py --scores benchmarks/results/zero_cost.json
    python benchmarks/naswot_protocol.py --root /path/to/data --pool 300 --sizes 10 100
    python benchmarks/naswot_protocol.py --scores benchmarks/results/zero_cost.json \
        --root /path/to/data --pool 15625 --workers 2 --cache naswot-cache --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import gzip
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import zero_cost as bench  # benchmarks/zero_cost.py: the scoring loop and its records

from raynas.benchmarks import nb201
from raynas.trainables.proxy import load_batch

PROXY = "naswot"


def _open(path: str, mode: str):
    """``open``, or ``gzip.open`` for a path ending in ``.gz`` (the whole-space JSON is large)."""
    return gzip.open(path, mode) if path.endswith(".gz") else open(path, mode)  # noqa: SIM115


def load_scores(path: str) -> tuple[dict, list[dict]]:
    """``meta`` and the records that hold a naswot score, from a zero_cost.py JSON file."""
    with _open(path, "rt") as fh:
        data = json.load(fh)
    records = [r for r in data["records"] if PROXY in r.get("scores", {})]
    if not records:
        raise SystemExit(f"{path}: no records with a {PROXY} score")
    return data["meta"], records


def cache_path(cache: str, meta: dict, worker: int | str) -> str:
    """A worker's cache file for scores made with ``meta`` (network, batch, seed); ``"*"``:
    the glob of all workers' files."""
    key = f"{PROXY}-C{meta['C']}-N{meta['N']}-b{meta['batch_size']}-s{meta['seed']}"
    return os.path.join(cache, f"{key}.w{worker}.jsonl")


def load_cache(cache: str | None, meta: dict) -> list[dict]:
    """Records appended to ``cache`` by earlier (possibly interrupted) runs with ``meta``.

    A last line cut short by a crash is cut from its file, so the next append starts a
    fresh line; any other unreadable line is an error naming it.
    """
    if not cache:
        return []
    records = []
    for path in sorted(glob.glob(cache_path(cache, meta, "*"))):
        with open(path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]
                fh.truncate(len(data))
        for i, line in enumerate(data.decode().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{i}: not a JSON record ({exc})") from None
    return records


def _score_shard(
    archs: list[str], meta: dict, root: str, threads: int, cache_file: str | None, label: str
) -> list[dict]:
    """One worker: score ``archs`` on ``threads`` torch threads, appending to ``cache_file``
    (already cleaned of a cut last line by ``load_cache``)."""
    torch.set_num_threads(threads)
    inputs, targets, _, _ = load_batch("cifar10", root, meta["seed"], meta["batch_size"])
    bench.warm_up([PROXY], inputs, targets)
    with contextlib.ExitStack() as stack:
        sink = None
        if cache_file:
            fh = stack.enter_context(open(cache_file, "a"))

            def sink(record: dict) -> None:
                fh.write(json.dumps(record) + "\n")
                fh.flush()

        return bench.score_archs(
            archs,
            [PROXY],
            inputs,
            targets,
            meta["C"],
            meta["N"],
            meta["seed"],
            bench.progress_printer(time.perf_counter(), label),
            sink,
        )


def top_up(
    records: list[dict],
    pool: int,
    seed: int,
    meta: dict,
    root: str,
    workers: int = 1,
    threads: int = 1,
    cache: str | None = None,
) -> tuple[list[dict], int, int]:
    """Score uniformly drawn architectures that are not in ``records`` until ``pool``.

    Records in ``cache`` (same network, batch and seed) are reused first; new ones are
    appended there as they are scored, so an interrupted run loses at most one architecture
    per worker. ``workers`` processes score disjoint shards, each on ``threads`` threads.
    Returns the pool's records, how many were scored now and how many came from the cache.
    """
    seen = {r["arch"] for r in records}
    cached = [r for r in load_cache(cache, meta) if r["arch"] not in seen]
    cached = list({r["arch"]: r for r in cached}.values())
    used = min(len(cached), max(0, pool - len(records)))  # cached records in the pool
    records = records + cached
    missing = pool - len(records)
    if missing <= 0:
        return records[:pool], 0, used
    table = nb201.table()
    seen = {r["arch"] for r in records}
    order = np.random.default_rng(seed).permutation(len(table))
    archs = [table.arch_strs[int(i)] for i in order if table.arch_strs[int(i)] not in seen]
    archs = archs[:missing]
    if not root:
        raise SystemExit(
            f"{missing} architectures to score and no CIFAR-10 folder: pass --root or set "
            "$RAYNAS_DATA"
        )
    if cache:
        os.makedirs(cache, exist_ok=True)
    files = [cache_path(cache, meta, k) if cache else None for k in range(workers)]
    if workers == 1:
        new = _score_shard(archs, meta, root, threads, files[0], "")
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as ex:
            futures = [
                ex.submit(_score_shard, archs[k::workers], meta, root, threads, files[k], f"w{k} ")
                for k in range(workers)
            ]
            new = [r for f in futures for r in f.result()]
    return records + new, len(new), used


def pool_rho(scores: np.ndarray, accs: np.ndarray, finite_only: bool = False) -> float:
    """Spearman rho of the scores with the accuracies; non-finite scores rank last or go."""
    if finite_only:
        keep = np.isfinite(scores)
        return bench.spearman(scores[keep], accs[keep])
    return bench.spearman(np.where(np.isfinite(scores), scores, -np.inf), accs)


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
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    parser.add_argument(
        "--cache", default=None, help="folder: scores appended as made, reused when rerun"
    )
    parser.add_argument(
        "--json", default=None, help="write pool records and results here (.gz: compressed)"
    )
    args = parser.parse_args(argv)

    if args.workers < 1 or args.threads < 1:
        raise SystemExit(
            f"--workers and --threads must be >= 1, got {args.workers} and {args.threads}"
        )
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
    load_start = os.getloadavg()
    records, scored, from_cache = top_up(
        records, args.pool, args.seed, meta, root, args.workers, args.threads, args.cache
    )
    # table order, so the draws depend on which archs are in the pool, not on the order in
    # which files, caches and workers delivered them
    records = sorted(records, key=lambda r: r["index"])

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
        f"and scored once ({reused} reused from {args.scores or '-'}, {from_cache} from the "
        f"cache {args.cache or '-'}, {scored} scored now; pool best {accs.max():.2f}, "
        f"{int((~np.isfinite(scores)).sum())} non-finite scores ranked last)",
        f"# naswot vs test accuracy over the pool: Spearman {pool_rho(scores, accs):.3f} "
        f"(non-finite ranked last), {pool_rho(scores, accs, finite_only=True):.3f} (finite only)",
        (
            "# EXACT: the pool is the whole space, so every repeat draws its N archs fresh "
            "from all 15,625"
            if len(records) == len(nb201.table())
            else "# APPROXIMATION: each repeat draws N archs from this pool without replacement, "
            "not fresh from the space; for N near the pool size repeats overlap (N/pool = "
            + ", ".join(f"{n / len(records):.0%}" for n in args.sizes)
            + "), so sd is understated"
        ),
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
                "from_cache": from_cache,
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
        with _open(args.json, "wt") as fh:
            json.dump(out, fh, indent=None if args.json.endswith(".gz") else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
