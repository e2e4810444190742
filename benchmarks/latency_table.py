"""How well the mobilenetv3 latency lookup table predicts measured end-to-end latency.

Builds (or, with ``--cached``, reuses) the ``raynas.hardware.LatencyTable`` of this machine,
then draws ``--subnets`` random subnets with ``numpy.random.default_rng(--seed)`` (the table's
own calibration subnets come from another seed) and times each one end to end with
``raynas.hardware.latency_samples`` (one forward per sample, batch ``--batch-size``,
``--threads`` torch threads, ``--clock`` wall or cpu: see ``raynas.hardware``). The subnets
are timed in ``--rounds`` (20) interleaved passes of ``--repeats / --rounds`` calls each
(40 in all), so a change of the machine's speed hits them all alike; "measured" is the median
over all calls of a subnet.

The table's own calibration subnets (``raynas.hardware.calibration_genotypes``, never among the
judged subnets) are timed in the same rounds, and the table is recalibrated with them
(``LatencyTable.calibrate``, as ``LatencyTable.recalibrate`` does for a user): on this
project's VM the speed of a subnet drifts by up to +-30% from one minute to the next, so a
table calibrated minutes earlier ("as built") is off by that factor while the rows' relative
costs hold. The judged prediction is the recalibrated one; the as-built error is printed too.

Columns: ``row sum`` is the plain sum of the subnet's table rows and fixed parts,
``as built`` the prediction with the build-time calibration, ``predicted`` with the
recalibration, ``measured`` the median end-to-end latency with its 10th-90th percentile
range, ``err`` / ``built err`` the relative errors (predicted - measured) / measured.

Latency on a shared machine is noisy: the header prints ``os.getloadavg()`` before and after.
The default resolution is 224 (the space's own): on a 2-core CPU at 1 thread the table builds
in about a minute and 20 subnets plus the 8 calibration subnets are timed in about 80 s.

Usage::

    python benchmarks/latency_table.py                     # resolution 224, threads 1
    python benchmarks/latency_table.py --resolution 160 --subnets 30 --json out.json
    python benchmarks/latency_table.py --cached            # reuse the cached table
    python benchmarks/latency_table.py --clock cpu         # thread CPU time, not wall time
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from typing import Any

import numpy as np
import torch
from scipy import stats

from raynas.hardware import (
    CALIBRATION_SUBNETS,
    LatencyTable,
    calibration_genotypes,
    interleaved_latency_samples,
)
from search_spaces.mobilenetv3 import MobileNetV3Space

#: issue target: median absolute relative error of predicted vs measured latency.
TARGET = 0.10


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def measure_subnets(
    space: MobileNetV3Space,
    genotypes: list[Any],
    resolution: int,
    width_mult: float,
    batch_size: int,
    threads: int,
    repeats: int,
    rounds: int,
    device: str,
    clock: str = "wall",
) -> list[np.ndarray]:
    """Per-call latencies of every subnet, timed in interleaved rounds."""
    models = [space.build(g, width_mult=width_mult) for g in genotypes]
    samples = interleaved_latency_samples(
        models,
        (3, resolution, resolution),
        device,
        batch_size,
        repeats,
        rounds,
        threads,
        clock,
    )
    return [np.asarray(t) for t in samples]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter latency; cpu: thread CPU time (threads 1 only)",
    )
    parser.add_argument("--subnets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per subnet")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved passes")
    parser.add_argument(
        "--calibration-subnets",
        type=int,
        default=CALIBRATION_SUBNETS,
        help="the table's calibration subnets re-timed with the held-out ones",
    )
    parser.add_argument("--cache-dir", default=None, help="default: raynas's cache folder")
    parser.add_argument("--cached", action="store_true", help="reuse a cached table")
    parser.add_argument(
        "--build-rounds", type=int, default=None, help="LatencyTable.build rounds (its default)"
    )
    parser.add_argument(
        "--build-repeats",
        type=int,
        default=None,
        help="LatencyTable.build calls per probe and per calibration subnet (its defaults)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if min(args.subnets, args.repeats, args.rounds, args.calibration_subnets) < 1:
        parser.error("--subnets, --repeats, --rounds and --calibration-subnets must be >= 1")

    build_options: dict[str, int] = {}
    if args.build_rounds is not None:
        build_options["rounds"] = args.build_rounds
    if args.build_repeats is not None:
        build_options["repeats"] = build_options["calibration_repeats"] = args.build_repeats
    space = MobileNetV3Space(width_mult=args.width_mult, resolution=args.resolution)
    load_before = _load()
    start = time.perf_counter()
    table = LatencyTable.build(
        space,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
        cache_dir=args.cache_dir,
        clock=args.clock,
        rebuild=not args.cached,
        **build_options,
    )
    build_s = time.perf_counter() - start

    rng = np.random.default_rng(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.subnets)]
    # The table's own calibration subnets are timed in the same interleaved rounds as the
    # held-out subnets, to recalibrate the table to the machine's speed now (as
    # ``LatencyTable.recalibrate`` does); they are never among the subnets judged.
    cal_genotypes = calibration_genotypes(space, args.calibration_subnets)
    start = time.perf_counter()
    measured = measure_subnets(
        space,
        genotypes + cal_genotypes,
        args.resolution,
        args.width_mult,
        args.batch_size,
        args.threads,
        args.repeats,
        args.rounds,
        args.device,
        args.clock,
    )
    measure_s = time.perf_counter() - start
    load_after = _load()
    cal_measured = [float(np.median(m)) for m in measured[len(genotypes) :]]
    recal = table.calibrate(list(zip(cal_genotypes, cal_measured, strict=True)))

    rows = []
    for g, samples in zip(genotypes, measured[: len(genotypes)], strict=True):
        med = float(np.median(samples))
        raw = table.row_sum(g)
        rows.append(
            {
                "arch": space.to_str(g),
                "row_sum_ms": raw,
                "built_ms": table.predict(g),
                "predicted_ms": recal.predict(g),
                "measured_ms": med,
                "measured_p10_ms": float(np.percentile(samples, 10)),
                "measured_p90_ms": float(np.percentile(samples, 90)),
                "rel_err": (recal.predict(g) - med) / med,
                "built_rel_err": (table.predict(g) - med) / med,
                "row_sum_rel_err": (raw - med) / med,
            }
        )
    abs_err = np.abs([r["rel_err"] for r in rows])
    built_err = np.abs([r["built_rel_err"] for r in rows])
    raw_err = np.abs([r["row_sum_rel_err"] for r in rows])

    summary = {
        "median_abs_rel_err": float(np.median(abs_err)),
        "mean_abs_rel_err": float(np.mean(abs_err)),
        "max_abs_rel_err": float(np.max(abs_err)),
        "within_10pct": float(np.mean(abs_err <= 0.10)),
        "built_median_abs_rel_err": float(np.median(built_err)),
        "row_sum_median_abs_rel_err": float(np.median(raw_err)),
        "spearman_row_sum": float(
            stats.spearmanr(
                [r["row_sum_ms"] for r in rows], [r["measured_ms"] for r in rows]
            ).statistic
        ),
        "target_median_abs_rel_err": TARGET,
        "pass": bool(np.median(abs_err) <= TARGET),
    }

    built = (
        f"cached, built in {table.meta.get('build_s')} s at {table.meta.get('created')}"
        if table.from_cache
        else f"{build_s:.1f} s"
    )
    print(f"# {shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}")
    print(
        f"# device key {table.device} | torch {torch.__version__} | {platform.platform()} | "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"# resolution {table.resolution}, width_mult {table.width_mult:g}, batch "
        f"{table.batch_size}, threads {args.threads}, clock {table.clock} | loadavg before "
        f"{load_before}, after {load_after}"
    )
    print(
        f"# table: {len(table.rows)} block rows + {len(table.fixed)} fixed parts, build "
        f"{built} ({table.meta.get('rounds')} rounds, {table.meta.get('repeats')} calls per "
        f"probe); as built: scale {table.scale:.3f} from {len(table.calibration or [])} "
        f"calibration subnets | file {table.path}"
    )
    print(
        f"# recalibrated now: the same {len(cal_genotypes)} calibration subnets timed in the "
        f"rounds below -> scale {recal.scale:.3f}"
    )
    print(
        f"# {args.subnets} held-out subnets (seed {args.seed}), {args.repeats} calls each in "
        f"{args.rounds} interleaved rounds, measured in {measure_s:.1f} s"
    )
    print()
    print(
        f"{'#':>3} {'row sum':>8} {'as built':>8} {'predicted':>9} {'measured':>8} "
        f"{'p10-p90':>13} {'err':>7} {'built err':>9}"
    )
    for i, r in enumerate(rows):
        spread = f"{r['measured_p10_ms']:.1f}-{r['measured_p90_ms']:.1f}"
        print(
            f"{i:>3} {r['row_sum_ms']:>8.2f} {r['built_ms']:>8.2f} {r['predicted_ms']:>9.2f} "
            f"{r['measured_ms']:>8.2f} {spread:>13} {r['rel_err']:>+7.1%} "
            f"{r['built_rel_err']:>+9.1%}  {r['arch']}"
        )
    print()
    print(
        f"predicted (recalibrated now): median |rel err| {summary['median_abs_rel_err']:.1%} "
        f"(mean {summary['mean_abs_rel_err']:.1%}, max {summary['max_abs_rel_err']:.1%}, "
        f"{summary['within_10pct']:.0%} of subnets within 10%) -> "
        f"{'PASS' if summary['pass'] else 'FAIL'} (target <= {TARGET:.0%})"
    )
    print(
        f"as built: {summary['built_median_abs_rel_err']:.1%}; uncalibrated row sum: "
        f"{summary['row_sum_median_abs_rel_err']:.1%}; Spearman(row sum, measured) "
        f"{summary['spearman_row_sum']:.3f}"
    )

    if args.json:
        out = {
            "args": vars(args),
            "device": table.device,
            "torch": torch.__version__,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "build_s": build_s,
            "from_cache": table.from_cache,
            "table_meta": table.meta,
            "scale": table.scale,
            "offset_ms": table.offset_ms,
            "calibration": table.calibration,
            "recalibrated_scale": recal.scale,
            "recalibration": recal.calibration,
            "measure_s": measure_s,
            "subnets": rows,
            "summary": summary,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
