"""One DARTS search epoch of the test suite's size on 1 and on 2 torch threads.

Why ``tests/conftest.py`` sets ``OMP_NUM_THREADS=1``: the tests' networks are tiny, and on a
2-core machine where something else keeps a core busy (Ray, another job), torch's second
intra-op thread spins waiting for it. Each row runs in a fresh interpreter with
``torch.set_num_threads(n)``: the build and one epoch (``step()``) of ``DartsSearch`` on the
darts space, C 4, 3 layers, 64 synthetic images, batch 32: the settings of
``tests/raynas/trainables/test_darts_search.py::test_second_order_epoch_runs_and_differs_from_first_order``.

    python benchmarks/torch_threads.py [--threads 1 2] [--orders 1 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import search_spaces
from raynas.trainables.darts import DartsOptions, DartsSearch
t0 = time.perf_counter()
search = DartsSearch(search_spaces.get("darts"), DartsOptions(
    dataset="synthetic", batch_size=32, build={"C": 4, "layers": 3}, order=int(sys.argv[2]),
    epochs=1, val_fraction=64, subset=64))
t1 = time.perf_counter()
search.step()
print(f"{t1 - t0:.2f} {time.perf_counter() - t1:.2f}")
"""


def run(threads: int, order: int) -> tuple[float, float]:
    """(build seconds, epoch seconds) of one fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(threads), str(order)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    build, step = out.stdout.split()
    return float(build), float(step)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--orders", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    print(f"{'threads':>8}{'order':>6}{'build_s':>9}{'epoch_s':>9}")
    for threads in args.threads:
        for order in args.orders:
            build, step = run(threads, order)
            print(f"{threads:>8}{order:>6}{build:>9.2f}{step:>9.2f}", flush=True)
    print(f"# load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
