"""Why LCE stops good trials: its prediction for the best curves, epoch by epoch.

For the ``--top`` curves of the shipped learning-curve dataset with the best final val_acc, fit the
LCE ensemble (``raynas.estimators.learning_curves.predict``, as ``LCEScheduler`` does) to the first
t epochs for every t from ``--first`` to max_t - 1 and print the predicted final value and the
probability of beating ``--reference`` (default: the best final value of the dataset minus 0.4,
about the best of a random 100). A cell prints ``mean/P``; P < delta (0.05) is a stop. Also
printed: the dataset's mean val_acc per epoch, the shape the families have to follow.

Then, over every curve whose final val_acc is above ``--floor`` (default 20: cells that learn
at all), the same fit after each t: the Spearman correlation of the predicted final value with
the real one, next to that of the plain val_acc at t, and the prediction error (real minus
predicted: mean and sd) next to the spread (sd) of the real final values. LCE can only tell
a good architecture from a bad one when its error is small against that spread, and it can
only rank better than ASHA's comparison of values at the same t when its correlation is the
higher one. ``--no-ranking`` skips this part (it fits every curve at every t).

``--family-ranking`` adds the same Spearman correlation for each family's own least-squares
prediction (``curves.point_predictions``) at a few t, next to the BIC-weighted ensemble and
the plain val_acc: which families extrapolate these curves, and whether the BIC finds them.

Usage::

    python benchmarks/lce_diagnosis.py --top 12 --method fast
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
from scipy import stats

from raynas.benchmarks import curve_table as curve_data
from raynas.estimators import learning_curves as curves


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default=None, help="curves parquet (default: the shipped one)")
    parser.add_argument("--top", type=int, default=12, help="how many of the best curves")
    parser.add_argument("--first", type=int, default=4, help="first number of epochs fitted")
    parser.add_argument("--reference", type=float, default=None, help="value to beat at max_t")
    parser.add_argument("--method", choices=("fast", "mcmc"), default="fast")
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor", type=float, default=20.0, help="ranking: final val_acc above")
    parser.add_argument("--no-ranking", action="store_true", help="skip the ranking table")
    parser.add_argument(
        "--family-ranking",
        default=None,
        help="comma-separated t: add the per-family ranking table at these t (e.g. 5,6,8,10,12)",
    )
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
            pred = fit_prefix(
                ys, t, max_t, reference, args.method, np.random.default_rng([args.seed, t])
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
    if not args.no_ranking:
        print()
        for line in ranking(piv, max_t, args.first, args.method, args.seed, args.floor):
            print(line)
    if args.family_ranking:
        ts = [int(t) for t in args.family_ranking.split(",")]
        if not all(3 <= t < max_t for t in ts):
            raise SystemExit(f"--family-ranking: each t must be in [3, {max_t - 1}], got {ts}")
        print()
        for line in family_ranking(piv, max_t, ts, args.seed, args.floor):
            print(line)
    return 0


def fit_prefix(
    ys: np.ndarray,
    t: int,
    max_t: int,
    reference: float,
    method: str,
    rng,
    family_weights=None,
    mode: str = "max",
    bounds=(0, 100),
):
    """LCE's prediction at ``max_t`` from the first ``t`` values, as ``LCEScheduler`` fits it
    (None: no family fits)."""
    x = np.arange(1, t + 1, dtype=float)
    return curves.predict(
        x,
        ys[:t],
        max_t,
        reference,
        mode=mode,
        method=method,
        bounds=bounds,
        rng=rng,
        family_weights=family_weights,
    )


def ranking(piv, max_t: int, first: int, method: str, seed: int, floor: float) -> list[str]:
    """Lines of the ranking table: LCE's prediction against the plain value at each t."""
    rows = piv[piv[max_t] > floor]
    final = rows[max_t].to_numpy(dtype=float)
    values = rows.to_numpy(dtype=float)
    lines = [
        f"# ranking over the {len(rows)} curves with final val_acc > {floor:g}: final val_acc "
        f"sd {final.std(ddof=1):.2f} between architectures",
        f"# LCE ({method}) predicted final vs plain val_acc at t: Spearman with the final "
        "val_acc; LCE error = final minus predicted (mean, sd), over the curves that a family "
        "fits",
        f"{'t':>3} {'rho LCE':>8} {'rho val_acc':>11} {'error mean':>10} {'error sd':>8} "
        f"{'no fit':>6}",
    ]
    for t in range(first, max_t):
        preds = [
            fit_prefix(
                ys, t, max_t, float(ys[:t].max()), method, np.random.default_rng([seed, i, t])
            )
            for i, ys in enumerate(values)
        ]
        predicted = np.array([math.nan if p is None else float(p.mean) for p in preds])
        ok = np.isfinite(predicted)
        error = final[ok] - predicted[ok]
        rho_lce = stats.spearmanr(predicted[ok], final[ok]).statistic
        rho_val = stats.spearmanr(values[:, t - 1], final).statistic
        lines.append(
            f"{t:>3} {rho_lce:8.3f} {rho_val:11.3f} {error.mean():10.2f} {error.std(ddof=1):8.2f} "
            f"{int((~ok).sum()):>6}"
        )
    return lines


def family_ranking(piv, max_t: int, ts: Sequence[int], seed: int, floor: float) -> list[str]:
    """Lines of the per-family ranking table: rows t, columns the families' Spearman."""
    rows = piv[piv[max_t] > floor]
    final = rows[max_t].to_numpy(dtype=float)
    values = rows.to_numpy(dtype=float)
    names = curves.names()
    lines = [
        f"# per family: Spearman of its own least-squares prediction of the final val_acc with "
        f"the real one, over the {len(rows)} curves with final val_acc > {floor:g} (the curves "
        "it fits; 'fits' = the fewest any family fitted), next to the BIC-weighted ensemble "
        "(LCE's default) and the plain val_acc at t",
        f"{'t':>3} " + " ".join(f"{n[:8]:>8s}" for n in names) + "      BIC  val_acc  fits",
    ]
    for t in ts:
        x = np.arange(1, t + 1, dtype=float)
        points = [curves.point_predictions(x, ys[:t], max_t, bounds=(0, 100)) for ys in values]
        cells, fitted = [], len(rows)
        for name in names:
            p = np.array([q.get(name, math.nan) for q in points])
            ok = np.isfinite(p)
            fitted = min(fitted, int(ok.sum()))
            cells.append(f"{stats.spearmanr(p[ok], final[ok]).statistic:8.3f}")
        bic = [
            fit_prefix(ys, t, max_t, 0.0, "fast", np.random.default_rng([seed, i, t]))
            for i, ys in enumerate(values)
        ]
        ens = np.array([math.nan if b is None else b.mean for b in bic])
        ok = np.isfinite(ens)
        rho_bic = stats.spearmanr(ens[ok], final[ok]).statistic
        rho_val = stats.spearmanr(values[:, t - 1], final).statistic
        lines.append(f"{t:>3} " + " ".join(cells) + f" {rho_bic:8.3f} {rho_val:8.3f} {fitted:5d}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
