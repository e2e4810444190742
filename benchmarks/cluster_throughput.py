"""Trials per second through a 2-node Ray cluster against one node with the same CPUs.

Both layouts are ``LocalCluster``s on 127.0.0.1 and take the same experiment (the ``table``
trainable: one NAS-Bench-201 lookup per trial, no training, so what is measured is the
orchestration: Tune's driver, actor placement, results and state writes), run as a user runs
it: ``raynas run FILE --address <cluster>`` in a subprocess.

- ``one node``: a single node (the head) with 2 CPUs; driver and trials on it.
- ``2 nodes``: a head with no CPUs (the driver) and two worker nodes of 1 CPU each.

Runs alternate between the layouts (``--reps`` pairs). Per run: the CLI's wall time, and the
trial phase: from the first to the last trial result, read from the modification times of
the driver's per-trial ``result.json`` files (each table trial writes one result), so Ray's
and the driver's start-up are left out. Prints trials/s over the trial phase, its mean per
layout, and what the cluster costs per trial: the difference in ms per trial.

    python benchmarks/cluster_throughput.py                  # 500 trials, 2 pairs
    python benchmarks/cluster_throughput.py --trials 100 --reps 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from local_cluster import LocalCluster  # noqa: E402
from node_loss import driver_results, start_run  # noqa: E402

LAYOUTS = {
    "one node": {"workers": 0, "head_cpus": 2},
    "2 nodes": {"workers": 2, "cpus": 1, "head_cpus": 0},
}


def experiment(trials: int) -> dict:
    """The table experiment of ``trials`` trials (as many at once as the CPUs allow)."""
    return {
        "space": "nb201",
        "searcher": "random",
        "trainable": "table",
        "metric": "val_acc",
        "mode": "max",
        "num_samples": trials,
        "resources": {"cpu": 1},
        "seed": 0,
    }


def run_once(layout: str, trials: int, storage: Path, name: str) -> dict:
    """One run of ``trials`` table trials on a fresh cluster of ``layout``."""
    with LocalCluster(fast_detection=False, **LAYOUTS[layout]) as cluster:
        log = storage / f"{name}.log"
        start = time.monotonic()
        proc = start_run(experiment(trials), storage, name, cluster.address, log)
        proc.wait()
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: raynas run exited {proc.returncode}; see {log}")
        stamps = sorted(p.stat().st_mtime for p in driver_results(cluster, name).values())
    if len(stamps) != trials:
        raise RuntimeError(f"{name}: {len(stamps)} trial results, expected {trials}")
    span = stamps[-1] - stamps[0]
    return {"layout": layout, "wall_s": wall, "span_s": span, "tps": (trials - 1) / span}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--reps", type=int, default=2, help="pairs of runs (one per layout)")
    args = p.parse_args(argv)
    print(
        f"# cluster throughput on {platform.node()} ({os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f} at start): {args.trials} table trials per run, "
        f"{args.reps} pairs, layouts alternate",
        flush=True,
    )
    print(f"{'run':>4}  {'layout':<9}{'wall_s':>8}{'trials_s':>10}{'trials/s':>10}", flush=True)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="raynas-throughput-") as tmp:
        for rep in range(args.reps):
            order = list(LAYOUTS) if rep % 2 == 0 else list(reversed(LAYOUTS))
            for layout in order:
                name = f"{layout.replace(' ', '-')}-{rep}"
                r = run_once(layout, args.trials, Path(tmp), name)
                runs.append(r)
                print(
                    f"{rep:>4}  {layout:<9}{r['wall_s']:>8.1f}{r['span_s']:>10.1f}"
                    f"{r['tps']:>10.1f}",
                    flush=True,
                )
    print(f"# load at end {os.getloadavg()[0]:.1f}")
    mean = {
        layout: statistics.mean(r["tps"] for r in runs if r["layout"] == layout)
        for layout in LAYOUTS
    }
    for layout, tps in mean.items():
        print(f"{layout}: {tps:.1f} trials/s ({1000 / tps:.1f} ms per trial)")
    cost = 1000 / mean["2 nodes"] - 1000 / mean["one node"]
    ratio = mean["2 nodes"] / mean["one node"]
    print(f"the 2-node cluster costs {cost:+.1f} ms per trial ({ratio:.2f}x the one-node rate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
