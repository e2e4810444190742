"""Whether two ``nb201_searchers.py --json`` files hold the same runs, timings aside.

    python benchmarks/same_runs.py BEFORE.json AFTER.json [MORE_BEFORE.json MORE_AFTER.json ...]

For each pair it prints the number of runs, the fields whose values differ in any run, and
whether everything but the timing fields (``ms``, ``cpu_ms``, ``ms_median``, ``ms_mean``,
``wall_s``) is identical: every query's val and test accuracy and architecture string, the
best found, the number of queries and why a run stopped. The ``meta`` entries compared are
the settings (seeds, budgets, searchers, options, datasets, optimum); its ``command`` and
``wall_s`` are not. Exit code 1 when a pair differs beyond timings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TIMING = {"ms", "cpu_ms", "ms_median", "ms_mean", "wall_s"}
META_IGNORED = {"command", "wall_s"}


def compare(before: dict, after: dict) -> tuple[int, set[str], bool]:
    """(runs, fields differing in any run or in meta, identical apart from timings)."""
    runs_b, runs_a = before["runs"], after["runs"]
    differing: set[str] = set()
    if len(runs_b) != len(runs_a):
        differing.add("<number of runs>")
    for rb, ra in zip(runs_b, runs_a, strict=False):
        for key in set(rb) | set(ra):
            if rb.get(key) != ra.get(key):
                differing.add(key)
    meta_b, meta_a = before["meta"], after["meta"]
    for key in set(meta_b) | set(meta_a):
        if key not in META_IGNORED and meta_b.get(key) != meta_a.get(key):
            differing.add(f"meta.{key}")
    return len(runs_b), differing, not (differing - TIMING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="BEFORE AFTER [BEFORE AFTER ...]")
    args = parser.parse_args(argv)
    if len(args.files) % 2:
        parser.error("give the files in pairs: BEFORE AFTER")
    ok = True
    for before, after in zip(args.files[::2], args.files[1::2], strict=True):
        runs, differing, same = compare(
            json.loads(before.read_text()), json.loads(after.read_text())
        )
        ok &= same
        print(
            f"{before.name} vs {after.name}: {runs} runs; fields that differ: "
            f"{', '.join(sorted(differing)) or 'none'}; "
            f"{'IDENTICAL apart from timings' if same else 'DIFFERENT'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
