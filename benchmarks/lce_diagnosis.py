"""Why LCE stops good trials: its prediction for the best curves, epoch by epoch.

For the ``--top`` curves of the shipped learning-curve dataset with the best final val_acc,
fit the LCE ensemble (``raynas.estimators.curves.predict``, as ``LCEScheduler`` does) to the
first t epochs for every t from ``--first`` to max_t - 1 and print the predicted final value
and the probability of beating ``--reference`` (default: the best final value of the dataset
minus 0.4, about the best of a random 100). A cell prints ``mean/P``; P < delta (0.05) is a stop.
Also printed: the dataset's mean val_acc per epoch, the shape the families have to follow.

Usage::

    python benchmarks/lce_diagnosis.py --top 12 --method fast
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from raynas.benchmarks import curves as curve_data
from raynas.estimators import curves


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default=None, help="curves parquet (default: the shipped one)")
    parser.add_argument("--top", type=int, default=12, help="how many of the best curves")
    parser.add_argument("--first", type=int, default=4, help="first number of epochs fitted")
    parser.add_argument("--reference", type=float, default=None, help="value to beat at max_t")
    parser.add_argument("--method", choices=("fast", "mcmc"), default="fast")
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    piv = (
        curve_data.table(args.table)
        .frame()
        .pivot_table(index="arch", columns="epoch", values="val_acc")
    )
    max_t = int(piv.columns.max())
    if not 3 <= args.first < max_t:
        raise SystemExit(f"--first must be in [3, {max_t - 1}], got {args.first}")
    final = piv[max_t].sort_values(ascending=False)
    reference = args.reference if args.reference is not None else float(final.iloc[0]) - 0.4
    means = " ".join(f"{v:.1f}" for v in piv.mean().to_numpy())
    print(f"# {len(piv)} curves x {max_t} epochs; mean val_acc per epoch: {means}")
    print(
        f"# LCE ({args.method}, bounds 0..100) on the {args.top} best curves; reference "
        f"{reference:.2f}; each cell: predicted final / P(final > reference); * = P < "
        f"{args.delta} (a stop)"
    )
    epochs = range(args.first, max_t)
    mid = max_t // 2  # the value half way, next to the final one
    print(f"{'final':>6} {'ep' + str(mid):>5} " + " ".join(f"{'t=' + str(t):>11}" for t in epochs))
    stops, fits, started = 0, 0, time.perf_counter()
    for arch in final.index[: args.top]:
        ys = piv.loc[arch].to_numpy(dtype=float)
        cells = []
        for t in epochs:
            pred = curves.predict(
                np.arange(1, t + 1, dtype=float),
                ys[:t],
                max_t,
                reference,
                mode="max",
                method=args.method,
                bounds=(0, 100),
                rng=np.random.default_rng([args.seed, t]),
            )
            fits += 1
            if pred is None:
                cells.append(f"{'no fit':>11}")
                continue
            stop = pred.p_beat < args.delta
            stops += stop
            cells.append(f"{pred.mean:5.1f}/{pred.p_beat:4.2f}{'*' if stop else ' '}")
        print(f"{final[arch]:6.1f} {ys[mid - 1]:5.1f} " + " ".join(cells))
    print(
        f"# {stops} of {fits} checks would stop a top-{args.top} curve; "
        f"{(time.perf_counter() - started) / fits * 1000:.0f} ms per fit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
