"""Every registered searcher on the NAS-Bench-201 table: best architecture found by val accuracy.

Each searcher of ``raynas.searchers.names()`` (or the subset given by ``--searchers``) runs a
sequential suggest/complete loop on the shipped NB201 table, with no Ray cluster and no Tuner:
``set_search_properties("val_acc", "max", space.tune_space())``, then per query
``suggest(trial_id)``, a table lookup, and ``on_trial_complete(trial_id, {"val_acc": ...})``.
One run of the largest budget is made per (dataset, searcher, seed); the smaller budgets are
read from the same run (best-by-val over its first ``budget`` queries). A query is one
suggestion, so a searcher that re-suggests an architecture it has already seen pays for it.

Search algorithms that are not ``Searcher`` objects (no ``suggest``, e.g. Tune's
``BasicVariantGenerator`` behind "random") are run by drawing ``space.sample(rng)`` with
``rng = numpy.random.default_rng(seed)``, one generator per run. Over this all-categorical
space that is exactly the distribution of Tune's random search (each key uniform and
independent); only the random stream differs. Its ms/suggestion is the cost of that draw.

A searcher whose ``suggest`` returns ``None`` or ``Searcher.FINISHED`` with nothing pending can
never make progress in a sequential loop: the run stops there, is counted, and is listed in a
note under the table (its budgets are then read from the queries it did make).

Columns: ``val``/``test`` are mean and sd (over seeds, ddof=1) of the val and test accuracy (%)
of the best-by-val architecture found within the budget; ``regret`` is the mean of (table's
val optimum - that val accuracy); ``hit`` the fraction of seeds whose best-by-val architecture
is the val optimum; ``uniq`` the mean number of distinct architectures queried; ``ms med`` the
median and ``ms mean`` the amortised mean time of suggest + on_trial_complete over the first
``budget`` queries (all seeds pooled).

Usage::

    python benchmarks/nb201_searchers.py                      # 10 seeds, budgets 100 300
    python benchmarks/nb201_searchers.py --quick              # smoke run
    python benchmarks/nb201_searchers.py --searchers optuna random --json out.json
    python benchmarks/nb201_searchers.py --option optuna.multivariate=true

Searchers run with the registry's defaults unless ``--option NAME.KEY=VALUE`` overrides one
(VALUE is read as JSON, else taken as a string); the header line lists the overrides.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import search_spaces
from raynas import searchers
from raynas.benchmarks import nb201

METRIC = "val_acc"
MODE = "max"
DEFAULT_BUDGETS = (100, 300)
QUICK_BUDGETS = (20, 50)


@dataclass
class Run:
    """One (dataset, searcher, seed) run of ``n_requested`` queries."""

    dataset: str
    searcher: str
    seed: int
    n_requested: int
    val: list[float] = field(default_factory=list)  # val acc of each query, in order
    test: list[float] = field(default_factory=list)
    arch: list[str] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)  # suggest + on_trial_complete, per query
    stopped: str | None = None  # why the run ended before n_requested queries

    def best_at(self, budget: int) -> tuple[int, float, float, str]:
        """Index, val, test and arch of the best-by-val query among the first ``budget``.

        Ties keep the earliest query.
        """
        vals = self.val[:budget]
        i = int(np.argmax(vals))
        return i, vals[i], self.test[i], self.arch[i]


def _quiet_logs() -> None:
    try:
        import optuna
    except ImportError:
        pass
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hyperopt").setLevel(logging.WARNING)


def run_one(
    name: str,
    dataset: str,
    seed: int,
    n_queries: int,
    space,
    table: nb201.NB201Table,
    options: dict[str, Any] | None = None,
) -> Run:
    """Run searcher ``name`` (with registry ``options``) for ``n_queries`` sequential queries."""
    from ray.tune.search import Searcher

    run = Run(dataset=dataset, searcher=name, seed=seed, n_requested=n_queries)
    algo = searchers.make(name, space, metric=METRIC, mode=MODE, seed=seed, **(options or {}))

    def record(config: dict) -> dict:
        arch = space.to_str(space.decode(config))
        entry = table.lookup(arch, dataset)
        run.arch.append(arch)
        run.val.append(entry.val_acc)
        run.test.append(entry.test_acc)
        return {METRIC: entry.val_acc, "test_acc": entry.test_acc, "arch": arch}

    if not hasattr(algo, "suggest"):
        # Not a Searcher (Tune's BasicVariantGenerator): uniform sampling, see module docstring.
        rng = np.random.default_rng(seed)
        for _ in range(n_queries):
            t0 = time.perf_counter()
            genotype = space.sample(rng)
            run.ms.append(1e3 * (time.perf_counter() - t0))
            record(space.encode(genotype))
        return run

    if not algo.set_search_properties(METRIC, MODE, space.tune_space()):
        raise RuntimeError(f"searcher {name!r} refused set_search_properties (space already set?)")
    for i in range(n_queries):
        trial_id = f"{name}-{dataset}-{seed}-{i}"
        t0 = time.perf_counter()
        config = algo.suggest(trial_id)
        t_suggest = time.perf_counter() - t0
        if config is None or config == Searcher.FINISHED:
            what = "None" if config is None else "Searcher.FINISHED"
            run.stopped = f"suggest returned {what} after {i} queries"
            break
        try:
            result = record(config)
        except (ValueError, KeyError) as err:
            raise RuntimeError(f"searcher {name!r} suggested a bad config {config!r}") from err
        t0 = time.perf_counter()
        algo.on_trial_complete(trial_id, result)
        run.ms.append(1e3 * (t_suggest + time.perf_counter() - t0))
    return run


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def _fmt_sd(mean: float, sd: float) -> str:
    return f"{mean:6.2f} ± {sd:4.2f}" if np.isfinite(sd) else f"{mean:6.2f}       "


def summarize(runs: list[Run], budgets: list[int], table: nb201.NB201Table) -> list[dict]:
    """One row per (dataset, searcher, budget), in the order the runs were made."""
    rows = []
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.searcher), []).append(r)
    for (dataset, name), group in groups.items():
        opt_arch, opt_val = table.optimum(dataset, "val")
        group = [r for r in group if r.val]  # a run stopped before its first query has no best
        if not group:
            continue
        for budget in budgets:
            bests = [r.best_at(budget) for r in group]
            vals = [b[1] for b in bests]
            tests = [b[2] for b in bests]
            ms = np.concatenate([r.ms[:budget] for r in group])
            rows.append(
                {
                    "dataset": dataset,
                    "searcher": name,
                    "budget": budget,
                    "seeds": len(group),
                    "val": _mean_sd(vals),
                    "test": _mean_sd(tests),
                    "regret": float(np.mean([opt_val - v for v in vals])),
                    "hit": float(np.mean([b[3] == opt_arch for b in bests])),
                    "uniq": float(np.mean([len(set(r.arch[:budget])) for r in group])),
                    "ms_median": float(np.median(ms)),
                    "ms_mean": float(np.mean(ms)),
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'dataset':<15} {'searcher':<10} {'budget':>6} {'val':>13} {'test':>13} "
        f"{'regret':>7} {'hit':>5} {'uniq':>6} {'ms med':>7} {'ms mean':>7}"
    )
    print(header)
    print("-" * len(header))
    last = None
    for row in rows:
        if last is not None and row["dataset"] != last:
            print()
        last = row["dataset"]
        print(
            f"{row['dataset']:<15} {row['searcher']:<10} {row['budget']:>6} "
            f"{_fmt_sd(*row['val'])} {_fmt_sd(*row['test'])} {row['regret']:>7.3f} "
            f"{row['hit']:>5.2f} {row['uniq']:>6.1f} {row['ms_median']:>7.2f} "
            f"{row['ms_mean']:>7.2f}"
        )


def write_json(path: str, meta: dict, runs: list[Run], budgets: list[int]) -> None:
    per_seed = []
    for r in runs:
        item = asdict(r)
        item["n_queries"] = len(r.val)
        item["ms_median"] = float(np.median(r.ms)) if r.ms else None
        item["ms_mean"] = float(np.mean(r.ms)) if r.ms else None
        item["best"] = {}
        for budget in budgets:
            if not r.val:
                continue
            i, val, test, arch = r.best_at(budget)
            item["best"][str(budget)] = {
                "query": i,
                "val_acc": val,
                "test_acc": test,
                "arch": arch,
                "found_val_optimum": arch == meta["optimum"][r.dataset]["val_arch"],
                "unique_archs": len(set(r.arch[:budget])),
            }
        per_seed.append(item)
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
        json.dump({"meta": meta, "runs": per_seed}, f, indent=1)
    os.replace(f.name, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--searchers",
        nargs="+",
        metavar="NAME",
        help=f"subset of the registry (default: all of {searchers.names()})",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=nb201.DATASETS,
        metavar="DATASET",
        help=f"default: all of {list(nb201.DATASETS)}",
    )
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per searcher (default 10)")
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        help=f"query budgets; one run of the largest (default {DEFAULT_BUDGETS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 seeds, budgets 20 50, cifar10 (explicit flags win)",
    )
    parser.add_argument("--json", metavar="FILE", help="write all per-seed numbers here")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="searcher option, e.g. optuna.multivariate=true (repeatable; VALUE is JSON)",
    )
    args = parser.parse_args(argv)

    args.searchers = args.searchers or searchers.names()
    unknown = [s for s in args.searchers if s not in searchers.names()]
    if unknown:
        parser.error(
            f"unknown searcher {unknown[0]!r}; choose one of: {', '.join(searchers.names())}"
        )
    args.datasets = args.datasets or (["cifar10"] if args.quick else list(nb201.DATASETS))
    args.seeds = args.seeds if args.seeds is not None else (2 if args.quick else 10)
    args.budgets = sorted(set(args.budgets or (QUICK_BUDGETS if args.quick else DEFAULT_BUDGETS)))
    args.options = {}
    for item in args.option:
        target, eq, raw = item.partition("=")
        name, dot, key = target.partition(".")
        if not (eq and dot and name and key):
            parser.error(f"--option must look like NAME.KEY=VALUE, got {item!r}")
        if name not in args.searchers:
            parser.error(f"--option {item!r} names searcher {name!r}, which is not being run")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        args.options.setdefault(name, {})[key] = value
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.budgets[0] < 1:
        parser.error(f"budgets must be >= 1, got {args.budgets[0]}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _quiet_logs()
    space = search_spaces.get("nb201")
    for name, options in args.options.items():
        try:  # a bad option is a user error: one line, no traceback
            searchers.make(name, space, metric=METRIC, mode=MODE, seed=0, **options)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    table = nb201.table()
    n_queries = args.budgets[-1]
    command = (
        shlex.join([os.path.basename(sys.executable), *sys.argv])
        if argv is None
        else (shlex.join(["nb201_searchers.py", *argv]))
    )

    optimum: dict[str, Any] = {}
    for d in args.datasets:
        val_arch, val_opt = table.optimum(d, "val")
        _, test_opt = table.optimum(d, "test")
        optimum[d] = {
            "val_arch": val_arch,
            "val": val_opt,
            "test_of_val_arch": table.lookup(val_arch, d).test_acc,
            "test": test_opt,
        }
    print(f"# command: {command}")
    print(
        f"# seeds: 0..{args.seeds - 1} ({args.seeds}); budgets: {args.budgets} queries "
        f"(one run of {n_queries} per seed); metric {METRIC} ({MODE}); "
        f"searchers: {', '.join(args.searchers)}; "
        f"options: {json.dumps(args.options) if args.options else 'registry defaults'}"
    )
    for d, o in optimum.items():
        print(
            f"# {d}: val optimum {o['val']:.2f} (its test {o['test_of_val_arch']:.2f}); "
            f"test optimum {o['test']:.2f}"
        )

    start = time.perf_counter()
    runs: list[Run] = []
    for d in args.datasets:
        for name in args.searchers:
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                runs.append(
                    run_one(name, d, seed, n_queries, space, table, args.options.get(name))
                )
            print(
                f"  {d} {name}: {args.seeds} seeds in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - start

    print()
    print_table(summarize(runs, args.budgets, table))
    stopped = [r for r in runs if r.stopped]
    if stopped:
        print(f"\nnote: {len(stopped)} run(s) stopped early; their budgets use the queries made:")
        for r in stopped:
            print(f"  {r.dataset} {r.searcher} seed {r.seed}: {r.stopped}")
    print(f"\n# wall time {wall:.1f} s ({len(runs)} runs)")

    if args.json:
        meta = {
            "command": command,
            "seeds": args.seeds,
            "budgets": args.budgets,
            "metric": METRIC,
            "mode": MODE,
            "searchers": args.searchers,
            "options": args.options,
            "datasets": args.datasets,
            "optimum": optimum,
            "wall_s": wall,
        }
        write_json(args.json, meta, runs, args.budgets)
        print(f"# per-seed numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
