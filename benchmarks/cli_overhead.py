"""Wall time of ``raynas run`` and ``raynas report`` processes, and whether they import torch.

Each command runs in a fresh Python process, as a user's or a test's ``raynas`` call does:
``raynas run`` of ``examples/nb201_random.yaml`` (NB201 table lookups, no torch needed) on a
local Ray this script starts once (``--address``, so Ray's own start is not counted), then
``raynas report`` of that experiment. Several Python interpreters can be compared (e.g. the
venvs of two checkouts); their runs are interleaved, so a change of machine load hits both.

    python benchmarks/cli_overhead.py --python .venv/bin/python ../other/.venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nb201_random.yaml"

#: Runs one CLI command in this process and prints whether torch got imported.
_CODE = """
import sys
from raynas import cli
code = cli.main(sys.argv[1:])
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


def _timed(python: str, args: list[str], cwd: str) -> tuple[float, bool]:
    """Seconds of one ``python -c _CODE args`` and whether it imported torch. ``cwd`` outside
    any checkout: ``-c`` puts the working directory first on ``sys.path``, so a checkout there
    would be imported instead of the interpreter's own raynas."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    out = subprocess.run(
        [python, "-c", _CODE, *args], capture_output=True, text=True, env=env, timeout=600, cwd=cwd
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{python} {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
    return seconds, "torch imported: True" in out.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--python", nargs="+", default=[sys.executable], help="interpreters")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=4, help="num_samples of each run")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.samples < 1:
        p.error("--repeats and --samples must be >= 1")

    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    rows: dict[str, dict[str, list]] = {py: {"run": [], "report": []} for py in args.python}
    try:
        with tempfile.TemporaryDirectory() as root:
            for r in range(args.repeats):
                for i, py in enumerate(args.python):
                    name = f"p{i}-r{r}"
                    run = ["run", str(EXAMPLE), "--address", address, "--storage-path", root]
                    run += ["--name", name, "-q", "--set", f"num_samples={args.samples}"]
                    rows[py]["run"].append(_timed(py, run, root))
                    rows[py]["report"].append(_timed(py, ["report", f"{root}/{name}"], root))
    finally:
        ray.shutdown()

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# benchmarks/cli_overhead.py --repeats {args.repeats} --samples {args.samples}")
    print(f"# load average at the end: {load}; seconds, median (min-max) of {args.repeats}")
    print(f"{'command':<8} {'median':>7} {'min':>6} {'max':>6}  torch  python")
    for py, cmds in rows.items():
        for cmd, results in cmds.items():
            secs = [s for s, _ in results]
            torch = "yes" if any(t for _, t in results) else "no"
            print(
                f"{cmd:<8} {statistics.median(secs):7.2f} {min(secs):6.2f} {max(secs):6.2f}"
                f"  {torch:<5}  {py}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
