"""What raynas's crash record costs the driver: its share of the driver's CPU time.

    python benchmarks/driver_overhead.py [--repeats 2] [--out FILE]

Runs real experiments in this process (``raynas.experiment.run``, an embedded local Ray with
2 CPUs), each with and without ``CrashRecorder`` among the Tuner's callbacks, alternating:

- ``curves-100``: 100 replayed NB201 curves (``curves`` trainable, ``time_scale`` 0, FIFO:
  20 epochs each, a checkpoint every epoch: 2,000 results, like a 100-trial training run);
- ``table-200``: 200 NB201 table trials (one result each), the evolution searcher.

For each run: wall time, the driver process's CPU time (all its threads), and the time the
recorder itself spent inside its callbacks (wall, and CPU of the driver thread: the rest is
waiting for the disk), logged by it at the end of the run; each as a share of the run's
wall time and of the driver's CPU time.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas import config as cfgmod  # noqa: E402
from raynas import experiment  # noqa: E402
from raynas.benchmarks import curves  # noqa: E402

_LINE = re.compile(
    r"crash record: (\d+) journal lines, (\d+) state copies, ([\d.]+) s .*\(([\d.]+) s CPU"
)


def _config(name: str, root: Path, run: str) -> cfgmod.ExperimentConfig:
    if name == "curves-100":
        points = curves.points_to_evaluate(seed=0, n=100)
        sets = [
            "scheduler=fifo",
            "trainable.options.time_scale=0",
            "num_samples=100",
            f"searcher.options.points_to_evaluate={points!r}",
        ]
        file = REPO / "examples" / "nb201_curves_lce.yaml"
    else:
        sets = ["num_samples=200"]
        file = REPO / "examples" / "nb201_evolution.yaml"
    sets += [f"storage_path={root}", f"name={run}"]
    return cfgmod.load(file, sets)


class _Catch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.found: tuple[int, int, float, float] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if m := _LINE.search(record.getMessage()):
            self.found = (int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)))


def measure(name: str, recorder: bool, root: Path) -> dict[str, float]:
    """One run of workload ``name`` with or without the crash record."""
    from raynas.recorder import CrashRecorder

    real = experiment._callbacks

    def callbacks(parts, exp_dir):
        found = real(parts, exp_dir)
        return found if recorder else [c for c in found if not isinstance(c, CrashRecorder)]

    catch = _Catch()
    logger = logging.getLogger("raynas.recorder")
    logger.setLevel(logging.INFO)
    logger.addHandler(catch)
    experiment._callbacks = callbacks
    try:
        cfg = _config(name, root, f"{name}-{'rec' if recorder else 'off'}-{time.time_ns()}")
        cpu0, t0 = time.process_time(), time.perf_counter()
        experiment.run(cfg, verbose=0)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    finally:
        experiment._callbacks = real
        logger.removeHandler(catch)
    lines, copies, busy, busy_cpu = catch.found or (0, 0, 0.0, 0.0)
    if recorder and catch.found is None:
        raise RuntimeError("the recorder did not report its time")
    return {
        "wall": wall,
        "cpu": cpu,
        "busy": busy,
        "busy_cpu": busy_cpu,
        "lines": lines,
        "copies": copies,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workloads", nargs="+", default=["curves-100", "table-200"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    experiment.init_ray(num_cpus=2)
    runs: dict[tuple[str, bool], list[dict[str, float]]] = {}
    printed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        for i in range(args.repeats):
            for name in args.workloads:
                for rec in (True, False) if i % 2 == 0 else (False, True):
                    r = measure(name, rec, Path(tmp))
                    runs.setdefault((name, rec), []).append(r)
                    printed.append(
                        f"{name} recorder={'on' if rec else 'off'}: wall {r['wall']:.1f} s, "
                        f"driver CPU {r['cpu']:.1f} s, recorder {r['busy']:.2f} s "
                        f"({r['busy_cpu']:.2f} s CPU) "
                        f"({r['lines']} journal lines, {r['copies']} state copies)"
                    )
                    print(printed[-1], flush=True)
    load = os.getloadavg()
    lines = [
        f"driver overhead of the crash record, {args.repeats} runs each (medians), load "
        f"average at the end {load[0]:.1f} on {os.cpu_count()} cores",
        f"{'workload':<11} {'recorder':>8} {'wall s':>7} {'driver CPU s':>12} "
        f"{'recorder s':>10} {'of wall':>7} {'rec. CPU s':>10} {'of CPU':>6} "
        f"{'journal lines':>13} {'copies':>6}",
    ]
    for (name, rec), rs in runs.items():

        def med(key: str, rs=rs) -> float:
            return statistics.median(r[key] for r in rs)

        of_wall = f"{100 * med('busy') / med('wall'):.1f}%" if rec else "-"
        of_cpu = f"{100 * med('busy_cpu') / med('cpu'):.1f}%" if rec else "-"
        lines.append(
            f"{name:<11} {'on' if rec else 'off':>8} {med('wall'):>7.1f} {med('cpu'):>12.1f} "
            f"{med('busy'):>10.2f} {of_wall:>7} {med('busy_cpu'):>10.2f} {of_cpu:>6} "
            f"{med('lines'):>13.0f} {med('copies'):>6.0f}"
        )
    text = "\n".join([*lines, "", "runs, in order:", *printed])
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
