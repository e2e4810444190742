"""Local search with several trials in flight, simulated on the NB201 table (no Ray, no Tuner).

A cheap stand-in for ``nb201_searchers.py --tuner`` when many seeds are needed: each query is
``suggest`` then a table lookup; up to ``--concurrency`` trials are in flight, each finishing
after a uniform random duration in [0.5, 1.5) (seeded per run), and the earliest to finish is
completed (``on_trial_complete``) before the next suggestion. A ``suggest`` that returns None
(the ``wait`` variant) leaves its slot empty until the next completion. Concurrency 1 is the
sequential loop of ``nb201_searchers.py``.

Variants of ``local``:

- ``explore``: the registry's ``local`` (while the current neighbourhood is in flight, it
  suggests unseen neighbours of the next best architectures of the start).
- ``wait``: a prototype that suggests nothing while the current architecture has no
  unsuggested neighbour left but some still in flight (Tune then asks again later).

Prints mean val regret ± se at each budget per (variant, concurrency), and the paired
difference of each concurrent run from the sequential run of the same seed.

Usage::

    python benchmarks/local_async_sim.py --seeds 100 --first-seed 1100
"""

from __future__ import annotations

import argparse
import heapq
import math

import numpy as np

import search_spaces
from raynas.benchmarks import nb201
from raynas.searchers.local import LocalSearcher

METRIC = "val_acc"


class WaitingLocal(LocalSearcher):
    """``local`` that waits (returns None) instead of exploring while its neighbourhood runs."""

    def suggest(self, trial_id: str) -> dict | None:
        in_flight = (
            not self.points_to_evaluate
            and self.init_left == 0
            and self.current is not None
            and self.from_current
            and all(self.arch_key(c) in self.seen for c in self.queue)
        )
        return None if in_flight else super().suggest(trial_id)


VARIANTS = {"explore": LocalSearcher, "wait": WaitingLocal}


def run(variant: str, dataset: str, seed: int, n: int, concurrency: int, space, table) -> list:
    """Val accuracy of each query, in suggestion order."""
    algo = VARIANTS[variant](space, metric=METRIC, mode="max", seed=seed)
    algo.set_search_properties(METRIC, "max", space.tune_space())
    durations = np.random.default_rng(seed + 12345)
    vals: list[float] = []
    running: list[tuple[float, str, float]] = []
    now = 0.0
    while len(vals) < n or running:
        while len(vals) < n and len(running) < concurrency:
            trial_id = f"t{len(vals)}"
            config = algo.suggest(trial_id)
            if config is None:
                break
            val = table.lookup(space.to_str(space.decode(config)), dataset).val_acc
            vals.append(val)
            heapq.heappush(running, (now + durations.uniform(0.5, 1.5), trial_id, val))
        if not running:
            raise RuntimeError(f"{variant} seed {seed}: nothing in flight and no suggestion")
        now, trial_id, val = heapq.heappop(running)
        algo.on_trial_complete(trial_id, {METRIC: val})
    return vals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar10", choices=nb201.DATASETS)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 300])
    args = parser.parse_args()
    space, table = search_spaces.get("nb201"), nb201.table()
    optimum = table.optimum(args.dataset, "val")[1]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    n = max(args.budgets)
    print(
        f"# {args.dataset}, seeds {seeds[0]}..{seeds[-1]}, {n} queries per run; "
        f"regret = val optimum {optimum:.2f} - best val found (mean ± se)"
    )
    regret = {}
    cases = [("explore", 1), ("explore", args.concurrency), ("wait", args.concurrency)]
    for variant, conc in cases:
        runs = [run(variant, args.dataset, s, n, conc, space, table) for s in seeds]
        regret[variant, conc] = np.array(
            [[optimum - max(v[:b]) for b in args.budgets] for v in runs]
        )
    seq = regret["explore", 1]

    def fmt(x: np.ndarray) -> str:
        return f"{x.mean():7.3f} ± {x.std(ddof=1) / math.sqrt(len(x)):5.3f}"

    print(f"{'variant':<8} {'in flight':>9} {'budget':>6} {'regret':>15} {'minus sequential':>17}")
    for (variant, conc), r in regret.items():
        for j, b in enumerate(args.budgets):
            diff = fmt(r[:, j] - seq[:, j]) if conc > 1 else f"{'-':>15}"
            print(f"{variant:<8} {conc:>9} {b:>6} {fmt(r[:, j])} {diff:>17}")


if __name__ == "__main__":
    main()
