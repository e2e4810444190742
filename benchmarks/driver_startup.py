"""How long ``raynas run`` takes from launch to its first trial, phase by phase.

    python benchmarks/driver_startup.py [--runs 5] [--repo PATH ...] [--out FILE]

Each run launches the real CLI (``python -m raynas.cli run``, embedded local Ray, its own
``RAY_TMPDIR``) on the NB201 random example with 2 table trials and times, from outside:

- ``to ray.init``: launch to the first line Ray logs from ``ray.init`` (interpreter start,
  imports, config validation, building the searcher/scheduler/trainable);
- ``ray.init``: from there to ``raynas.yaml`` being written (the local Ray started);
- ``to 1st start``: to the first trial's ``params.json`` in the driver's staging folder (Tuner
  set-up, default callbacks, the first trial created and its actor started on a worker);
- ``to 1st result``: to the first line of a trial's ``result.json`` there;
- ``total``: launch to the first result;
- ``driver CPU``: CPU seconds the driver process itself used until its first trial started
  (from ``/proc/<pid>/stat``; Ray's own processes not included), the figure that depends
  least on the machine's load.

``--repo`` runs the same measurement against other checkouts (e.g. a worktree of the commit
before a change, put first on ``PYTHONPATH``); runs alternate between the checkouts so they
share the machine's load. Medians (and min..max) are printed per checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("to ray.init", "ray.init", "to 1st start", "to 1st result", "total", "driver CPU")
_RAY_LOG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\s")


def _first_file(root: Path, pattern: str, nonempty: bool = False) -> float | None:
    times = [
        p.stat().st_mtime
        for p in root.glob(pattern)
        if p.is_file() and (not nonempty or p.stat().st_size)
    ]
    return min(times) if times else None


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(repo: Path, work: Path, timeout_s: float = 300.0) -> dict[str, float]:
    """One launch of ``raynas run`` from checkout ``repo``; seconds per phase."""
    env = dict(os.environ)
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_TMPDIR=str(work / "ray"),
        PYTHONPATH=str(repo) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    (work / "ray").mkdir(parents=True)
    log = work / "driver.log"
    cmd = [
        sys.executable,
        "-m",
        "raynas.cli",
        "run",
        str(repo / "examples" / "nb201_random.yaml"),
        "--storage-path",
        str(work / "results"),
        "--name",
        "startup",
        "-q",
        "--set",
        "num_samples=2",
    ]
    t0 = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=work)
    staging = work / "ray"
    marks: dict[str, float] = {}
    cpu = 0.0
    deadline = t0 + timeout_s
    while "result" not in marks:
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"no first result in {timeout_s} s; see {log}")
        if proc.poll() is not None and proc.returncode != 0:
            raise RuntimeError(f"raynas run exited {proc.returncode}; see {log}")
        yaml_file = work / "results" / "startup" / "raynas.yaml"
        if "yaml" not in marks and yaml_file.is_file():
            marks["yaml"] = yaml_file.stat().st_mtime
        pattern = "**/driver_artifacts/*/"
        if "start" not in marks:
            cpu = _cpu_s(proc.pid) or cpu
        if "start" not in marks and (t := _first_file(staging, pattern + "params.json")):
            marks["start"] = t
        if "start" in marks and (t := _first_file(staging, pattern + "result.json", True)):
            marks["result"] = t
        time.sleep(0.05)
    proc.wait(timeout=timeout_s)
    init = None
    for line in log.read_text().splitlines():
        if m := _RAY_LOG.match(line):
            init = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            break
    if init is None:
        raise RuntimeError(f"no Ray log line in {log}")
    return {
        "to ray.init": init - t0,
        "ray.init": marks["yaml"] - init,
        "to 1st start": marks["start"] - marks["yaml"],
        "to 1st result": marks["result"] - marks["start"],
        "total": marks["result"] - t0,
        "driver CPU": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repo", type=Path, nargs="+", default=[REPO])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows: dict[Path, list[dict[str, float]]] = {r: [] for r in args.repo}
    for i in range(args.runs):
        for repo in args.repo:
            with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
                rows[repo].append(measure(repo.resolve(), Path(tmp)))
            shown = "  ".join(f"{k} {v:5.1f}" for k, v in rows[repo][-1].items())
            print(f"run {i} {repo}: {shown}", flush=True)
    load = os.getloadavg()
    lines = [
        f"driver start-up, {args.runs} runs per checkout, load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores",
        f"{'checkout':<40} " + " ".join(f"{p:>19}" for p in PHASES),
    ]
    for repo, runs in rows.items():
        cells = []
        for p in PHASES:
            vals = [r[p] for r in runs]
            cells.append(
                f"{statistics.median(vals):5.1f} ({min(vals):4.1f}-{max(vals):4.1f})".rjust(19)
            )
        lines.append(f"{str(repo)[-40:]:<40} " + " ".join(cells))
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
