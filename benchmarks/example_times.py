"""Wall time of the examples whose header states a time, through the real CLI.

Each example runs once as a user would (``raynas run FILE -q``, an embedded local Ray, Ray's
start included) into a temporary folder; the table gives the exit code, the wall time, the
trials, their mean time (Tune's ``time_total_s``) and mean time per training iteration
(``time_this_iter_s``), next to the time the example's header claims. CIFAR examples read
``$RAYNAS_DATA`` (default: ../shared/data next to the checkout).

    python benchmarks/example_times.py [--examples nb201_random digits_train ...] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
#: The examples whose header states a time (the DARTS ones take 4-11 minutes here: their
#: headers give their own measurement and command).
DEFAULT = [
    "nb201_optuna",
    "nb201_random",
    "nb201_evolution",
    "nb201_multiobjective",
    "nb201_reinforce",
    "nb201_curves_lce",
    "nb201_naswot",
    "nb201_proxy_seeded",
    "digits_train",
    "mobilenetv3_latency",
]
CLAIM = re.compile(
    r"(~\s*[\d.]+\s*(s|ms|min)\b[^.\n]*|about (a|one|[\d.]+)[- ]?(minute|second|min)s?[^.\n]*|"
    r"in seconds[^.\n]*|one to two minutes|[\d.]+\s*minutes|"
    r"[\d.]+ s (?:per|with|on|for|in)[^.(\n]*)",
    re.IGNORECASE,
)


def claim(path: Path) -> str:
    """The time the header (the leading comment block) states, as written."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    found = CLAIM.search(" ".join(lines))
    if found is None and path.stem == "nb201_optuna":
        return "README: `make demo` ... (~1 min)"
    return found.group(0).strip()[:60] if found else "-"


def trial_times(folder: Path) -> tuple[int, float | None, float | None]:
    """(trials, mean seconds per trial, mean seconds per training iteration)."""
    totals, iters = [], []
    for f in folder.glob("*/result.json"):
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        if not rows:
            continue
        totals.append(float(rows[-1].get("time_total_s", 0.0)))
        iters += [float(r["time_this_iter_s"]) for r in rows if "time_this_iter_s" in r]
    return (
        len(totals),
        mean(totals) if totals else None,
        mean(iters) if iters else None,
    )


def run(name: str, root: Path) -> dict:
    env = dict(os.environ)
    env.setdefault("RAYNAS_DATA", str(REPO.parent / "shared" / "data"))
    cmd = [sys.executable, "-m", "raynas.cli", "run", str(EXAMPLES / f"{name}.yaml"), "-q"]
    cmd += ["--storage-path", str(root), "--name", name]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.monotonic() - start
    trials, per_trial, per_iter = trial_times(root / name)
    return {
        "example": name,
        "rc": proc.returncode,
        "wall_s": wall,
        "trials": trials,
        "s_per_trial": per_trial,
        "s_per_iter": per_iter,
        "claim": claim(EXAMPLES / f"{name}.yaml"),
        "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", default=DEFAULT)
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    lines = [
        f"# python benchmarks/example_times.py; 2-core machine, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start",
        f"{'example':24} {'rc':>3} {'wall s':>7} {'trials':>6} {'s/trial':>8} {'s/iter':>7}"
        "  header says",
    ]
    print(*lines, sep="\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="raynas-examples-") as tmp:
        for name in args.examples:
            r = run(name, Path(tmp))
            line = (
                f"{r['example']:24} {r['rc']:>3} {r['wall_s']:>7.1f} {r['trials']:>6} "
                f"{fmt(r['s_per_trial']):>8} {fmt(r['s_per_iter']):>7}  {r['claim']}"
            )
            if r["stderr"]:
                line += f"  [{r['stderr'][0][:80]}]"
            print(line, flush=True)
            lines.append(line)
    lines.append(f"# load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
