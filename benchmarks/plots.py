"""What the pictures of a search cost: ``raynas report --plot`` and the driver's images.

    python benchmarks/plots.py [--trials 200] [--repeats 3] [--out FILE]

Runs ``examples/nb201_random.yaml`` (NB201 table, embedded local Ray with 2 CPUs) with
``--trials`` trials into a temporary folder, then times, ``--repeats`` times each (median,
min..max):

- ``report --plot (CLI)``: the whole command ``python -m raynas.cli report EXP --plot DIR`` in
  a fresh interpreter (imports, reading the experiment, drawing and writing the PNGs), and
  ``report (CLI)`` the same command without ``--plot`` (runs alternate between the two);
- ``write_plots``: ``raynas.plots.write_plots`` alone on the loaded experiment (drawing and
  writing the PNGs), in a warm process;
- ``driver images, 1st``: what the search-level TensorBoard callback adds to the driver at the
  end of an experiment (``SearchProgressCallback._write_images`` on the experiment's trials:
  best-so-far and op-frequency figures rendered and written as images), its first call in the
  process (matplotlib imported), then ``driver images, warm`` for later calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _stats(times: list[float]) -> str:
    return f"{statistics.median(times):8.2f} s   ({min(times):.2f} .. {max(times):.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, help="also write the table to this file")
    args = p.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from raynas import cli, experiment, plots, results
    from raynas.tensorboard import SearchProgressCallback

    work = Path(tempfile.mkdtemp(prefix="raynas-plots-bench-"))
    experiment.init_ray(num_cpus=2)
    example = REPO / "examples" / "nb201_random.yaml"
    start = time.perf_counter()
    code = cli.main(
        ["run", str(example), "--storage-path", str(work), "--name", "exp", "-q"]
        + ["--set", f"num_samples={args.trials}"]
    )
    run_s = time.perf_counter() - start
    import ray

    ray.shutdown()
    if code != 0:
        sys.exit(f"the experiment ended with exit code {code}")
    exp = work / "exp"

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cli_times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.repeats):
        for plot in (False, True):  # alternating: both share the machine's load
            extra = ["--plot", str(work / f"c{i}")] if plot else []
            command = [sys.executable, "-m", "raynas.cli", "report", str(exp), *extra]
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            cli_times[plot].append(time.perf_counter() - start)

    summary = results.load(exp)
    plot_times = []
    for i in range(args.repeats):
        start = time.perf_counter()
        written = plots.write_plots([summary], work / f"p{i}")
        plot_times.append(time.perf_counter() - start)

    trials = results.load_trials(exp)
    space = experiment.build(summary.config).space
    image_times = []
    for i in range(args.repeats + 1):
        callback = SearchProgressCallback(
            str(work / f"tb{i}"),
            "val_acc",
            "max",
            choices=plots.categorical_choices(space.tune_space()),
        )
        callback.completed = len(trials)
        start = time.perf_counter()
        callback._write_images(trials)
        image_times.append(time.perf_counter() - start)
        callback.on_experiment_end(trials=[])

    lines = [
        f"# benchmarks/plots.py --trials {args.trials} --repeats {args.repeats}   "
        f"({datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} CPUs)",
        f"experiment: nb201_random, {len(summary.trials)} trials, run in {run_s:.1f} s; "
        f"pictures: {', '.join(p.name for p in written)}",
        "",
        f"{'what':<24}{'median':>10}   (min .. max)",
        f"{'report (CLI)':<24}{_stats(cli_times[False])}",
        f"{'report --plot (CLI)':<24}{_stats(cli_times[True])}",
        f"{'write_plots':<24}{_stats(plot_times)}",
        f"{'driver images, 1st':<24}{image_times[0]:8.2f} s",
        f"{'driver images, warm':<24}{_stats(image_times[1:])}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
