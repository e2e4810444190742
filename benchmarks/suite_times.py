"""Test-suite wall time per test file, from pytest's ``--durations=0`` output.

Reads the saved output of one or two pytest runs (``pytest -q --durations=0 ... > FILE``) and
prints, per test file, the summed setup + call + teardown seconds of its tests, largest first,
with the run's own summary line (``N passed in S s``). With two files (before, after) it prints
both columns and the change, over the tests the first file lists (so an after run of the
whole suite compares with a before run of ``-m slow`` on the same tests).

    nice -n 5 .venv/bin/python -m pytest -q -m slow --durations=0 > before.txt
    python benchmarks/suite_times.py before.txt [after.txt]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

#: "12.34s call     tests/x/test_y.py::test_z[param]"
_LINE = re.compile(r"^(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(\S+)$")
_SUMMARY = re.compile(r"^=*\s*(.*\bin [\d.]+s.*?)\s*=*$")


def durations(text: str) -> dict[str, float]:
    """Test id -> summed setup, call and teardown seconds, from ``--durations`` lines."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(3)] += float(m.group(1))
    return dict(out)


def summary(text: str) -> str:
    """The run's last summary line (``81 passed, ... in 1044.89s (0:17:24)``), or ''."""
    found = [m.group(1) for line in text.splitlines() if (m := _SUMMARY.match(line.strip()))]
    return found[-1] if found else ""


def per_file(tests: dict[str, float], only: set[str] | None = None) -> dict[str, float]:
    """Test file -> seconds, over ``only``'s test ids if given."""
    out: dict[str, float] = defaultdict(float)
    for test, seconds in tests.items():
        if only is None or test in only:
            out[test.split("::", 1)[0]] += seconds
    return dict(out)


def table(before: dict[str, float], after: dict[str, float] | None) -> str:
    """Per-file seconds (and the change, with ``after``), largest first, with a total row."""
    rows = sorted(before, key=lambda f: -max(before[f], (after or {}).get(f, 0.0)))
    if after is None:
        lines = [f"{'seconds':>8}  file"]
        lines += [f"{before[f]:8.1f}  {f}" for f in rows]
        lines.append(f"{sum(before.values()):8.1f}  total ({len(rows)} files)")
        return "\n".join(lines)
    lines = [f"{'before':>8}{'after':>8}{'change':>8}  file"]
    for f in rows:
        a = after.get(f, 0.0)
        lines.append(f"{before[f]:8.1f}{a:8.1f}{a - before[f]:+8.1f}  {f}")
    b, a = sum(before.values()), sum(after.get(f, 0.0) for f in rows)
    lines.append(f"{b:8.1f}{a:8.1f}{a - b:+8.1f}  total ({len(rows)} files)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("before", type=Path, help="pytest --durations=0 output")
    p.add_argument("after", type=Path, nargs="?", help="a second run's output, to compare")
    args = p.parse_args(argv)
    text_before = args.before.read_text()
    tests_before = durations(text_before)
    if not tests_before:
        print(f"{args.before}: no --durations lines found", file=sys.stderr)
        return 2
    print(f"# before: {args.before.name}: {summary(text_before)}")
    after = None
    if args.after is not None:
        text_after = args.after.read_text()
        print(f"# after:  {args.after.name}: {summary(text_after)}")
        tests_after = durations(text_after)
        missing = sorted(set(tests_before) - set(tests_after))
        if missing:
            print(f"# {len(missing)} tests of before not in after, e.g. {missing[0]}")
        after = per_file(tests_after, only=set(tests_before))
    print(table(per_file(tests_before), after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
