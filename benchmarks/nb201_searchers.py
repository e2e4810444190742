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

Columns: ``val``/``test`` are mean and sd (over seeds, ddof=1) of the val and test accuracy (%) of
the best-by-val architecture found within the budget; ``regret`` is the mean of (table's val
optimum - that val accuracy) with its standard error over seeds; ``hit`` the fraction of seeds
whose best-by-val architecture is the val optimum; ``uniq`` the mean number of distinct
architectures queried; ``ms med`` the median and ``ms mean`` the amortised mean time of suggest +
on_trial_complete over the first ``budget`` queries (all seeds pooled; "ms mean" is the amortised
cost, a searcher's periodic updates included). Under the table, "targets (issue 3)" checks the
goals for evolution and reinforce on this run's numbers (regret against optuna's, optimum found,
reinforce against random by two standard errors, ms per suggestion) and "targets (issue 29)" those
for local search and the predictor-guided searcher: per dataset, the best of raynas's own searchers
(evolution, reinforce, bananas) at or below plain local search at 100 and 300 queries, its regret
at 100 queries at most 0.2 (CIFAR-10) / 0.4 (CIFAR-100, ImageNet16-120), and bananas' ms per
suggestion over the last 50 queries (about 300 results) under a second.

Seeds are ``--first-seed`` .. ``--first-seed + --seeds - 1``: settings are tuned on some seeds
and confirmed on fresh ones (see benchmarks/README.md).

``--tuner`` (async mode; default 5 seeds, cifar10): every (dataset, searcher, seed) also runs
through a real ``ray.tune.Tuner`` on the ``table`` trainable, one local Ray for the whole
benchmark, ``--concurrency`` trials in flight (``max_concurrent_trials``, i.e. a
``ConcurrencyLimiter``; Tune's random search limits itself), each trial sleeping ``--delay-s``
so that suggestions are made while results are pending. Queries are ordered as Tune created the
trials. It prints the table above for the Tuner runs (no ms columns) and, per budget, the mean
val regret through the Tuner against the sequential loop of the same seeds, their paired
difference and its standard error, the hit rates and the wall time per Tuner run.

Registry entries that cannot be built with their defaults (``fixed`` needs the architectures to
run) are left out of a default run and named in the header.

Usage::

    python benchmarks/nb201_searchers.py                      # 10 seeds, budgets 50 100 300
    python benchmarks/nb201_searchers.py --seeds 30 --first-seed 5000   # fresh seeds
    python benchmarks/nb201_searchers.py --quick              # smoke run
    python benchmarks/nb201_searchers.py --searchers optuna random --json out.json
    python benchmarks/nb201_searchers.py --option optuna.multivariate=true
    python benchmarks/nb201_searchers.py --tuner --searchers evolution reinforce

Searchers run with the registry's defaults unless ``--option NAME.KEY=VALUE`` overrides one
(VALUE is read as JSON, else taken as a string); the header line lists the overrides.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
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
DEFAULT_BUDGETS = (50, 100, 300)
#: raynas's own searchers that the issue-29 targets compare with plain local search.
OWN = ("evolution", "reinforce", "bananas")
#: Regret at 100 queries that the best of them must reach (issue 29).
REGRET_AT_100 = {"cifar10": 0.2, "cifar100": 0.4, "imagenet16-120": 0.4}
#: Queries at the end of a run whose ms per suggestion is checked ("at 300 results").
LAST_QUERIES = 50
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
    cpu_ms: list[float] = field(default_factory=list)  # the same in this process's CPU time
    stopped: str | None = None  # why the run ended before n_requested queries
    mode: str = "sequential"  # or "tuner" (--tuner: queries in the order Tune created them)
    wall_s: float | None = None  # whole run (tuner mode: Tuner.fit)

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
        # training_iteration 1: what Tune adds to a table trial's one result (BOHB reads its
        # budget from it).
        return {
            METRIC: entry.val_acc,
            "test_acc": entry.test_acc,
            "arch": arch,
            "training_iteration": 1,
        }

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
        t0, c0 = time.perf_counter(), time.process_time()
        config = algo.suggest(trial_id)
        t_suggest, c_suggest = time.perf_counter() - t0, time.process_time() - c0
        if config is None or config == Searcher.FINISHED:
            what = "None" if config is None else "Searcher.FINISHED"
            run.stopped = f"suggest returned {what} after {i} queries"
            break
        try:
            result = record(config)
        except (ValueError, KeyError) as err:
            raise RuntimeError(f"searcher {name!r} suggested a bad config {config!r}") from err
        t0, c0 = time.perf_counter(), time.process_time()
        algo.on_trial_complete(trial_id, result)
        run.ms.append(1e3 * (t_suggest + time.perf_counter() - t0))
        run.cpu_ms.append(1e3 * (c_suggest + time.process_time() - c0))
    return run


def run_tuner(
    name: str,
    dataset: str,
    seed: int,
    n_queries: int,
    space,
    storage: str,
    concurrency: int,
    delay_s: float,
    trial_cpu: float,
    options: dict[str, Any] | None = None,
) -> Run:
    """Run searcher ``name`` through a real ``tune.Tuner`` on the ``table`` trainable.

    ``n_queries`` trials, at most ``concurrency`` in flight (Tune's ``max_concurrent_trials``,
    a ``ConcurrencyLimiter`` around a ``Searcher``; Tune's random search limits itself), each
    sleeping ``delay_s`` before it reports, so the searcher suggests while results are pending.
    Queries are ordered as Tune created the trials (the counter of the experiment tag).
    """
    from ray import tune
    from ray.tune.search import Searcher

    from raynas import trainables

    run = Run(dataset=dataset, searcher=name, seed=seed, n_requested=n_queries, mode="tuner")
    algo = searchers.make(
        name,
        space,
        metric=METRIC,
        mode=MODE,
        seed=seed,
        max_concurrent=concurrency,
        **(options or {}),
    )
    trainable = tune.with_resources(
        trainables.make("table", space, dataset=dataset, delay_s=delay_s), {"cpu": trial_cpu}
    )
    t0 = time.perf_counter()
    grid = tune.Tuner(
        trainable,
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=algo,
            num_samples=n_queries,
            max_concurrent_trials=concurrency if isinstance(algo, Searcher) else None,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=storage, name=f"{name}-{dataset}-{seed}", verbose=0
        ),
    ).fit()
    run.wall_s = time.perf_counter() - t0
    if grid.errors:
        raise RuntimeError(f"{name} {dataset} seed {seed}: {len(grid.errors)} trial(s) errored")
    done = sorted(
        (int(str(r.metrics["experiment_tag"]).split("_")[0]), r.metrics)
        for r in grid
        if r.metrics and METRIC in r.metrics
    )
    for _, metrics in done:
        run.arch.append(metrics["arch"])
        run.val.append(float(metrics[METRIC]))
        run.test.append(float(metrics["test_acc"]))
    if len(done) != n_queries:
        run.stopped = f"{len(done)} of {n_queries} trials reported {METRIC}"
    return run


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def _fmt_sd(mean: float, sd: float) -> str:
    return f"{mean:6.2f} ± {sd:4.2f}" if np.isfinite(sd) else f"{mean:6.2f}       "


def _se(xs: list[float]) -> float:
    """Standard error of the mean (nan for fewer than two values)."""
    a = np.asarray(xs, dtype=float)
    return float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def _fmt_ms(ms: float) -> str:
    return f"{ms:>7.2f}" if np.isfinite(ms) else f"{'-':>7}"  # Tuner runs: not measured


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
            ms = np.concatenate([r.ms[:budget] for r in group]) if group[0].ms else None
            rows.append(
                {
                    "dataset": dataset,
                    "searcher": name,
                    "budget": budget,
                    "seeds": len(group),
                    "val": _mean_sd(vals),
                    "test": _mean_sd(tests),
                    "regret": float(np.mean([opt_val - v for v in vals])),
                    "regret_se": _se([opt_val - v for v in vals]),
                    "hit": float(np.mean([b[3] == opt_arch for b in bests])),
                    "uniq": float(np.mean([len(set(r.arch[:budget])) for r in group])),
                    "ms_median": float(np.median(ms)) if ms is not None else math.nan,
                    "ms_mean": float(np.mean(ms)) if ms is not None else math.nan,
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'dataset':<15} {'searcher':<10} {'budget':>6} {'val':>13} {'test':>13} "
        f"{'regret ± se':>13} {'hit':>5} {'uniq':>6} {'ms med':>7} {'ms mean':>7}"
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
            f"{_fmt_sd(*row['val'])} {_fmt_sd(*row['test'])} "
            f"{row['regret']:>7.3f} ± {row['regret_se']:5.3f} "
            f"{row['hit']:>5.2f} {row['uniq']:>6.1f} {_fmt_ms(row['ms_median'])} "
            f"{_fmt_ms(row['ms_mean'])}"
        )


def _vals_at(runs: list[Run], dataset: str, name: str, budget: int) -> list[float]:
    return [
        r.best_at(budget)[1] for r in runs if r.dataset == dataset and r.searcher == name and r.val
    ]


def print_targets(runs: list[Run], rows: list[dict], budgets: list[int]) -> None:
    """The issue's targets for evolution and reinforce, checked on this run's numbers.

    - evolution: mean val regret no worse than optuna's at every budget; regret <= 0.2 at 100
      queries on cifar10; global (val) optimum found in >= 80% of seeds at the largest budget;
      median ms per suggestion (suggest + on_trial_complete) <= 1.
    - reinforce: mean best val above random's by >= 2 standard errors of the difference at the
      largest budget; amortised mean ms per suggestion (updates included) <= 10.
    """
    by = {(r["dataset"], r["searcher"], r["budget"]): r for r in rows}
    lines = []

    def check(text: str, ok: bool) -> None:
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {text}")

    top = budgets[-1]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        evo = {b: by.get((dataset, "evolution", b)) for b in budgets}
        for b in budgets:
            peer = by.get((dataset, "optuna", b))
            if evo[b] and peer:
                check(
                    f"{dataset:<15} evolution regret@{b} {evo[b]['regret']:.3f} <= optuna "
                    f"{peer['regret']:.3f}",
                    evo[b]["regret"] <= peer["regret"] + 1e-9,
                )
        if dataset == "cifar10" and evo.get(100):
            check(
                f"{dataset:<15} evolution regret@100 {evo[100]['regret']:.3f} <= 0.2",
                evo[100]["regret"] <= 0.2,
            )
        if evo[top]:
            check(
                f"{dataset:<15} evolution optimum found@{top} in {100 * evo[top]['hit']:.0f}% "
                f"of seeds >= 80%",
                evo[top]["hit"] >= 0.8,
            )
            check(
                f"{dataset:<15} evolution median ms/suggestion {evo[top]['ms_median']:.3f} <= 1",
                evo[top]["ms_median"] <= 1.0,
            )
        rl, rnd = _vals_at(runs, dataset, "reinforce", top), _vals_at(runs, dataset, "random", top)
        if len(rl) > 1 and len(rnd) > 1:
            diff = float(np.mean(rl) - np.mean(rnd))
            se = math.sqrt(np.var(rl, ddof=1) / len(rl) + np.var(rnd, ddof=1) / len(rnd))
            check(
                f"{dataset:<15} reinforce - random val@{top} = {diff:.3f} >= 2 se "
                f"({2 * se:.3f}): {diff / se if se else math.inf:.1f} se",
                diff >= 2 * se,
            )
        rl_row = by.get((dataset, "reinforce", top))
        if rl_row:
            check(
                f"{dataset:<15} reinforce amortised ms/suggestion {rl_row['ms_mean']:.3f} <= 10 "
                f"(median {rl_row['ms_median']:.3f})",
                rl_row["ms_mean"] <= 10.0,
            )
    if lines:
        print("\ntargets (issue 3):")
        print("\n".join(lines))


def print_local_targets(runs: list[Run], rows: list[dict], budgets: list[int]) -> None:
    """The issue-29 targets, checked on this run's numbers.

    - Per dataset and budget (100 and 300 queries): the best of raynas's own searchers
      (``OWN``: evolution, reinforce, bananas) by mean val regret is at or below plain local
      search (``local``); its regret at 100 queries is at most ``REGRET_AT_100``.
    - bananas: ms per suggestion (suggest + on_trial_complete, its periodic fit included) over
      the last ``LAST_QUERIES`` queries of the runs (about 300 results) is under a second at
      most; the mean, 95th percentile and maximum are printed.
    """
    by = {(r["dataset"], r["searcher"], r["budget"]): r for r in rows}
    lines = []

    def check(text: str, ok: bool) -> None:
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {text}")

    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for budget in (b for b in (100, 300) if b in budgets):
            own = [by[k] for k in ((dataset, n, budget) for n in OWN) if k in by]
            if not own:
                continue
            best = min(own, key=lambda r: r["regret"])
            text = (
                f"{dataset:<15} best own@{budget} {best['searcher']} "
                f"{best['regret']:.3f} ± {best['regret_se']:.3f}"
            )
            local = by.get((dataset, "local", budget))
            if local:
                check(
                    f"{text} <= local {local['regret']:.3f} ± {local['regret_se']:.3f}",
                    best["regret"] <= local["regret"] + 1e-9,
                )
            if budget == 100:
                check(
                    f"{text} <= {REGRET_AT_100[dataset]}",
                    best["regret"] <= REGRET_AT_100[dataset] + 1e-9,
                )
        full = [
            r
            for r in runs
            if r.dataset == dataset and r.searcher == "bananas" and len(r.ms) >= LAST_QUERIES
        ]
        tail = [ms for r in full for ms in r.ms[-LAST_QUERIES:]]
        if tail:
            last = max(len(r.ms) for r in full)
            cpu = [ms for r in full for ms in r.cpu_ms[-LAST_QUERIES:]]
            check(
                f"{dataset:<15} bananas ms/suggestion over its last {LAST_QUERIES} queries "
                f"(~{last} results): mean {np.mean(tail):.1f}, p95 "
                f"{np.percentile(tail, 95):.1f}, max {np.max(tail):.1f} < 1000"
                + (
                    f" (CPU ms: mean {np.mean(cpu):.1f}, p95 {np.percentile(cpu, 95):.1f}, "
                    f"max {np.max(cpu):.1f})"
                    if cpu
                    else ""
                ),
                float(np.max(tail)) < 1000.0,
            )
    if lines:
        print("\ntargets (issue 29):")
        print("\n".join(lines))


def print_async_comparison(runs: list[Run], budgets: list[int], table: nb201.NB201Table) -> None:
    """Per (dataset, searcher, budget): mean val regret through the Tuner vs the sequential loop
    of the same seeds, their difference (paired by seed) and its standard error."""
    header = (
        f"{'dataset':<15} {'searcher':<10} {'budget':>6} {'seeds':>5} {'async regret':>15} "
        f"{'seq regret':>15} {'async - seq':>15} {'hit a/s':>9} {'uniq a':>6} {'s/run':>6}"
    )
    print(header)
    print("-" * len(header))
    pairs: dict[tuple[str, str], dict[int, dict[str, Run]]] = {}
    for r in runs:
        pairs.setdefault((r.dataset, r.searcher), {}).setdefault(r.seed, {})[r.mode] = r
    last = None
    for (dataset, name), by_seed in pairs.items():
        both = [p for _, p in sorted(by_seed.items()) if {"tuner", "sequential"} <= set(p)]
        both = [p for p in both if p["tuner"].val and p["sequential"].val]
        if not both:
            continue
        if last is not None and dataset != last:
            print()
        last = dataset
        opt_arch, opt_val = table.optimum(dataset, "val")
        for budget in budgets:
            a = np.array([opt_val - p["tuner"].best_at(budget)[1] for p in both])
            q = np.array([opt_val - p["sequential"].best_at(budget)[1] for p in both])
            n = len(both)

            def se(x: np.ndarray) -> float:
                return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")

            hit_a = np.mean([p["tuner"].best_at(budget)[3] == opt_arch for p in both])
            hit_s = np.mean([p["sequential"].best_at(budget)[3] == opt_arch for p in both])
            uniq = np.mean([len(set(p["tuner"].arch[:budget])) for p in both])
            wall = np.mean([p["tuner"].wall_s for p in both])
            print(
                f"{dataset:<15} {name:<10} {budget:>6} {n:>5} "
                f"{a.mean():>7.3f} ± {se(a):5.3f} {q.mean():>7.3f} ± {se(q):5.3f} "
                f"{(a - q).mean():>+7.3f} ± {se(a - q):5.3f} "
                f"{hit_a:>4.2f}/{hit_s:<4.2f} {uniq:>6.1f} {wall:>6.1f}"
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


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def _start_ray(num_cpus: int):
    """One local Ray for the whole benchmark, loopback only, no dashboard."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray


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
    parser.add_argument(
        "--seeds", type=int, help="seeds per searcher: FIRST..FIRST+N-1 (default 10)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="FIRST",
        help="first seed (default 0; e.g. fresh seeds for a confirmation run)",
    )
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
    parser.add_argument(
        "--tuner",
        action="store_true",
        help="async mode: every run also through a real Ray Tuner on the table trainable, "
        "compared with the sequential loop of the same seeds (default 5 seeds, cifar10)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="--tuner: trials in flight (default 4)"
    )
    parser.add_argument(
        "--delay-s",
        type=float,
        default=0.1,
        help="--tuner: seconds each table trial sleeps before reporting (default 0.1)",
    )
    parser.add_argument(
        "--num-cpus", type=int, default=4, help="--tuner: CPUs of the local Ray (default 4)"
    )
    parser.add_argument(
        "--trial-cpu", type=float, default=0.5, help="--tuner: CPUs per trial (default 0.5)"
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

    args.whole_registry = not args.searchers
    args.searchers = args.searchers or searchers.names()
    unknown = [s for s in args.searchers if s not in searchers.names()]
    if unknown:
        parser.error(
            f"unknown searcher {unknown[0]!r}; choose one of: {', '.join(searchers.names())}"
        )
    small = args.quick or args.tuner
    args.datasets = args.datasets or (["cifar10"] if small else list(nb201.DATASETS))
    default_seeds = 2 if args.quick else 5 if args.tuner else 10
    args.seeds = args.seeds if args.seeds is not None else default_seeds
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
    if args.concurrency < 1:
        parser.error(f"--concurrency must be >= 1, got {args.concurrency}")
    if not 0 <= args.delay_s <= 3600:
        parser.error(f"--delay-s must be in [0, 3600], got {args.delay_s}")
    if args.num_cpus < 1 or not 0 < args.trial_cpu <= args.num_cpus:
        parser.error(
            f"need --num-cpus >= 1 and 0 < --trial-cpu <= --num-cpus, got {args.num_cpus} "
            f"and {args.trial_cpu}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _quiet_logs()
    space = search_spaces.get("nb201")
    skipped = {}
    for name in list(args.searchers):
        try:  # a bad option is a user error: one line, no traceback
            searchers.make(
                name, space, metric=METRIC, mode=MODE, seed=0, **args.options.get(name, {})
            )
        except ValueError as err:
            if not args.whole_registry or name in args.options:
                print(f"error: searcher {name!r}: {err}", file=sys.stderr)
                return 2
            # A registry entry that is not a search strategy by itself (``fixed`` needs the
            # architectures to run): left out of the default run, and said so.
            skipped[name] = str(err)
            args.searchers.remove(name)
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
    print(f"# machine: {os.cpu_count()} CPUs; {_load()} (ms columns are wall-clock times)")
    print(
        f"# seeds: {args.first_seed}..{args.first_seed + args.seeds - 1} ({args.seeds}); "
        f"budgets: {args.budgets} queries "
        f"(one run of {n_queries} per seed); metric {METRIC} ({MODE}); "
        f"searchers: {', '.join(args.searchers)}; "
        f"options: {json.dumps(args.options) if args.options else 'registry defaults'}"
    )
    for name, why in skipped.items():
        print(f"# skipped {name}: needs options of its own ({why})")
    for d, o in optimum.items():
        print(
            f"# {d}: val optimum {o['val']:.2f} (its test {o['test_of_val_arch']:.2f}); "
            f"test optimum {o['test']:.2f}"
        )

    if args.tuner:
        # Per-trial JSON/CSV/TensorBoard files are not needed here (results come back through
        # the ResultGrid) and cost a few files per trial on a busy disk.
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        # ...so the ResultGrid warns once per trial that it found no result.json to read.
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        # Tune's new console output prints a banner per run even with verbose=0.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        print(
            f"# tuner: real ray.tune.Tuner per run on the table trainable (Tune's per-trial "
            f"logger files off); "
            f"{args.concurrency} trials in flight, each sleeping {args.delay_s} s; local Ray "
            f"num_cpus={args.num_cpus}, {args.trial_cpu} CPU per trial; compared with the "
            f"sequential loop of the same seeds"
        )
        ray_ctx = _start_ray(args.num_cpus)
        storage = tempfile.mkdtemp(prefix="nb201_searchers_tuner-")

    start = time.perf_counter()
    runs: list[Run] = []
    try:
        for d in args.datasets:
            for name in args.searchers:
                t0 = time.perf_counter()
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    options = args.options.get(name)
                    runs.append(run_one(name, d, seed, n_queries, space, table, options))
                    if args.tuner:
                        runs.append(
                            run_tuner(
                                name,
                                d,
                                seed,
                                n_queries,
                                space,
                                storage,
                                args.concurrency,
                                args.delay_s,
                                args.trial_cpu,
                                options,
                            )
                        )
                        print(
                            f"    {d} {name} seed {seed}: Tuner run of {n_queries} trials in "
                            f"{runs[-1].wall_s:.1f} s; {_load()}",
                            file=sys.stderr,
                            flush=True,
                        )
                print(
                    f"  {d} {name}: {args.seeds} seeds in {time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if args.tuner:
            ray_ctx.shutdown()
            shutil.rmtree(storage, ignore_errors=True)
    wall = time.perf_counter() - start

    print()
    if args.tuner:
        tuned = [r for r in runs if r.mode == "tuner"]
        print(f"through the Tuner ({args.concurrency} in flight):")
        print_table(summarize(tuned, args.budgets, table))
        print("\nval regret, Tuner (async) vs sequential loop, same seeds (mean ± se):")
        print_async_comparison(runs, args.budgets, table)
    else:
        rows = summarize(runs, args.budgets, table)
        print_table(rows)
        print_targets(runs, rows, args.budgets)
        print_local_targets(runs, rows, args.budgets)
    stopped = [r for r in runs if r.stopped]
    if stopped:
        print(f"\nnote: {len(stopped)} run(s) stopped early; their budgets use the queries made:")
        for r in stopped:
            print(f"  {r.dataset} {r.searcher} seed {r.seed} ({r.mode}): {r.stopped}")
    print(f"\n# wall time {wall:.1f} s ({len(runs)} runs); {_load()}")

    if args.json:
        meta = {
            "command": command,
            "seeds": args.seeds,
            "first_seed": args.first_seed,
            "budgets": args.budgets,
            "metric": METRIC,
            "mode": MODE,
            "searchers": args.searchers,
            "options": args.options,
            "datasets": args.datasets,
            "optimum": optimum,
            "wall_s": wall,
        }
        if args.tuner:
            meta["tuner"] = {
                "concurrency": args.concurrency,
                "delay_s": args.delay_s,
                "num_cpus": args.num_cpus,
                "trial_cpu": args.trial_cpu,
            }
        write_json(args.json, meta, runs, args.budgets)
        print(f"# per-seed numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
