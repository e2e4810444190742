"""LCE's grace period and delta, swept by an offline replay of its decision rule.

    python benchmarks/lce_settings.py [--seeds 20] [--archs 100] [--weights completed]
        [--calibrate] [--method fast|mcmc|curves] [--metric val_acc|train_loss] [--out FILE]

``benchmarks/early_stopping.py`` runs one LCE setting through real Tuners (~25 s per seed). To
see whether any other setting would meet the issue's lines (<= 40% of FIFO's epochs, regret
<= 0.3 points), this script replays the stored curves through LCE's decision rule for a grid of
settings in one process, with the fits cached, so a grid of 20 settings x 20 seeds takes minutes.

The replay: the seed's architectures (``raynas.benchmarks.curve_table.arch_order``, the same subset
and order as the Tuner benchmark's seed) run on ``--workers`` slots in lock step, one epoch per
step, slots in a fixed order; a stopped or finished trial's slot takes the next architecture at the
next step. At each epoch t >= grace and t < max_t, once some trial has finished, LCE fits the first
t values (``raynas.estimators.learning_curves.predict``, ``--method``: fast by default, or mcmc;
bounds 0..100, exactly the arguments ``LCEScheduler`` passes) and stops the trial when P(final >
the best final seen) < delta; ``check_every`` is 1. Tune's ASHA (rungs 4 and 12, eta 3, its
cut-off: the 1 - 1/eta percentile of the values recorded earlier at the rung; ``--asha-graces`` for
other first rungs) runs through the same replay as the peer: compare its row with the Tuner
benchmark's ASHA row to see how far the replay's timing is from a Tuner's.
``--weights completed`` weighs the families as ``LCEScheduler(weights="completed")`` does (by
their errors on the finished trials' finals; with mcmc, the families it keeps are sampled);
``--calibrate`` (replay only) adds to the prediction the residuals of the finished trials'
predictions from as many points. Either stops nothing before ``--min-completed`` trials have
finished.

``--method curves`` (replay only, not in ``LCEScheduler``) replaces the parametric families by
the finished trials' own curves (``matched``): each finished curve, shifted to the trial's first
t points, predicts its final value plus the shift, weighted by how well the shifted curve fits;
the spread of one prediction is ``--noise`` (one measurement's sd) and ``--spreads`` x (max_t -
t) / max_t (the extrapolation's). This asks whether a predictor that knows the experiment's
curve shape (the LR schedule's late rise, which the saturating families miss) does better than
the families; it stops nothing before ``--min-completed`` trials have finished.

``--metric train_loss`` has LCE extrapolate the training loss curve instead of val_acc (mode min,
bounds 0..; ``LCEScheduler(curve_metric="train_loss", curve_mode="min")``): the reference is the
lowest final training loss of the finished trials; ASHA, the pick and the regret stay on val_acc.

Regret, as in the Tuner benchmark: the best stored final val_acc of the seed's
architectures minus the final of the trial with the highest last-reported val_acc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import norm

from raynas.benchmarks import curve_table as curve_data
from raynas.estimators import learning_curves as curves

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
from lce_diagnosis import fit_prefix  # noqa: E402  (LCEScheduler's predict call)

#: decide(index, t, value, state) -> continue?; state is per replay
Decide = Callable[[int, int, float, dict], bool]


def replay(values: np.ndarray, order: Sequence[int], decide: Decide, workers: int):
    """(epochs consumed, index of the picked trial) of one replay of ``order``."""
    max_t = values.shape[1]
    queue = list(order)
    running: list[list[int]] = []  # [index, epochs done] per busy slot, in slot order
    last: dict[int, float] = {}
    state: dict = {"finished": []}
    epochs = 0
    while queue or running:
        while queue and len(running) < workers:
            running.append([queue.pop(0), 0])
        for slot in list(running):
            index, done = slot
            t = done + 1
            value = float(values[index, t - 1])
            epochs += 1
            last[index] = value
            slot[1] = t
            if t == max_t:
                state["finished"].append(index)
                running.remove(slot)
            elif not decide(index, t, value, state):
                running.remove(slot)
    best = max(order, key=lambda i: (last[i], -order.index(i)))
    return epochs, best


def asha(grace: int, eta: float, max_t: int) -> Decide:
    rungs = []
    r = grace
    while r < max_t:
        rungs.append(r)
        r = round(grace * eta ** len(rungs))

    def decide(index: int, t: int, value: float, state: dict) -> bool:
        if t not in rungs:
            return True
        recorded = state.setdefault(("rung", t), [])
        cutoff = np.percentile(recorded, 100 * (1 - 1 / eta)) if recorded else None
        recorded.append(value)
        return cutoff is None or value >= cutoff

    return decide


def lce(
    values: np.ndarray,
    grace: int,
    delta: float,
    cache: dict,
    seed: int = 0,
    *,
    weights: str = "bic",
    calibrate: bool = False,
    min_completed: int = 3,
    method: str = "fast",
    mode: str = "max",
    bounds=(0, 100),
) -> Decide:
    """LCE's rule on the curves ``values`` (of the metric LCE watches: val_acc, or train_loss
    with ``mode="min"``). ``weights="completed"``: the families weighted by how well they
    predicted the finished trials' finals from the same t (``curves.completed_weights``)
    instead of by their BIC; ``calibrate``: P(beat) corrected by the finished trials'
    residuals at the same t (``Prediction.calibrated_p_beat``). Either waits for ``min_completed``
    finished trials."""
    max_t = values.shape[1]
    learn = weights == "completed" or calibrate
    every = dict.fromkeys(curves.names(), 1.0)
    learnt_fast = weights == "completed" and method == "fast"

    def prediction(index: int, t: int, kept: Mapping[str, float] | None = None):
        """The fit of trial ``index``'s first ``t`` values: the fast method fits every family
        once and is reweighted afterwards; mcmc samples only the families ``kept`` keeps."""
        fams = None
        if kept is not None:
            fams = frozenset(k for k, v in kept.items() if v >= curves.MIN_WEIGHT)
        if (index, t, fams) not in cache:
            rng = np.random.default_rng([seed, index, t])
            cache[index, t, fams] = fit_prefix(
                values[index],
                t,
                max_t,
                0.0,
                method,
                rng,
                family_weights=kept if kept is not None else (every if learnt_fast else None),
                mode=mode,
                bounds=bounds,
            )
        return cache[index, t, fams]

    def points(index: int, t: int) -> dict[str, float]:
        if ("points", index, t) not in cache:
            x = np.arange(1, t + 1, dtype=float)
            cache["points", index, t] = curves.point_predictions(
                x, values[index, :t], max_t, mode=mode, bounds=bounds
            )
        return cache["points", index, t]

    def decide(index: int, t: int, value: float, state: dict) -> bool:
        finished = state["finished"]
        if t < grace or len(finished) < (min_completed if learn else 1):
            return True
        finals = [float(values[i, -1]) for i in finished]
        reference = max(finals) if mode == "max" else min(finals)
        if weights == "completed":
            w = curves.completed_weights([points(i, t) for i in finished], finals)
        if weights == "completed" and method == "mcmc":
            pred = prediction(index, t, w) if w else None
        else:
            pred = prediction(index, t)
            if pred is not None and weights == "completed":
                pred = pred.reweighted(w, reference)
        if pred is None:  # no fit: LCE continues
            return True
        if not calibrate:
            return pred.p_beats(reference) >= delta
        if weights == "completed":
            means = [curves.combined_prediction(points(i, t), w) for i in finished]
        else:
            means = [None if (p := prediction(i, t)) is None else p.mean for i in finished]
        residuals = [f - m for f, m in zip(finals, means, strict=True) if m is not None]
        if len(residuals) < min_completed:
            return True
        return pred.calibrated_p_beat(reference, residuals) >= delta

    return decide


def matched(
    values: np.ndarray,
    grace: int,
    delta: float,
    spread: float,
    noise: float,
    min_completed: int = 3,
) -> Decide:
    """Stop when P(final beats the best final) < ``delta``, the final predicted from the
    finished trials' curves shifted onto the trial's first t values (see ``--method curves``)."""
    max_t = values.shape[1]

    def decide(index: int, t: int, value: float, state: dict) -> bool:
        finished = state["finished"]
        if t < grace or len(finished) < min_completed:
            return True
        seen = values[index, :t]
        ref = values[finished]
        shift = (seen - ref[:, :t]).mean(axis=1)
        sse = ((seen - ref[:, :t] - shift[:, None]) ** 2).sum(axis=1)
        w = np.exp(-(sse - sse.min()) / (2 * noise**2))
        mean = ref[:, -1] + shift
        sd = np.sqrt(noise**2 * (1 + 1 / t) + (spread * (max_t - t) / max_t) ** 2)
        best = float(ref[:, -1].max())
        p = float(np.sum(w * norm.sf((best - mean) / sd)) / w.sum())
        return p >= delta

    return decide


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="curves parquet (default: the shipped one)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--archs", type=int, default=100, help="architectures per seed")
    parser.add_argument("--workers", type=int, default=4, help="trials in flight")
    parser.add_argument("--graces", default="4,5,6,7,8")
    parser.add_argument("--deltas", default="0.2,0.1,0.05,0.01")
    parser.add_argument(
        "--weights",
        choices=("bic", "completed"),
        default="bic",
        help="family weights: BIC (default) or learnt from the finished trials",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="correct P(beat) by the finished trials' residuals at the same t",
    )
    parser.add_argument(
        "--min-completed",
        type=int,
        default=3,
        help="with --weights completed or --calibrate: finished trials needed before a stop",
    )
    parser.add_argument(
        "--method",
        choices=("fast", "mcmc", "curves"),
        default="fast",
        help="LCE's fitting method (mcmc: Domhan's sampler, ~0.2 s per fit; curves: the "
        "finished trials' curves instead of the families, replay only)",
    )
    parser.add_argument(
        "--spreads",
        default="2",
        help="--method curves: extrapolation sds (points at t=0, shrinking to 0 at max_t)",
    )
    parser.add_argument(
        "--noise", type=float, default=0.7, help="--method curves: one measurement's sd"
    )
    parser.add_argument(
        "--asha-graces",
        default="4",
        help="first rungs of the ASHA peers (eta 3: rungs g, 3g, 9g below max_t)",
    )
    parser.add_argument(
        "--metric",
        choices=("val_acc", "train_loss"),
        default="val_acc",
        help="the curve LCE extrapolates: val_acc (mode max, bounds 0..100) or train_loss "
        "(mode min, bounds 0..); the pick and the regret are by val_acc either way",
    )
    parser.add_argument("--out", default=None, help="also write the printed text here")
    args = parser.parse_args(argv)
    if args.method == "curves" and args.metric != "val_acc":
        parser.error("--method curves replays val_acc only")
    table = curve_data.table(args.table)
    piv = table.frame().pivot_table(index="arch", columns="epoch", values="val_acc")
    archs = list(piv.index)
    values = piv.to_numpy(dtype=float)
    max_t = values.shape[1]
    watched, mode, bounds = values, "max", (0, 100)
    if args.metric == "train_loss":
        loss = table.frame().pivot_table(index="arch", columns="epoch", values="train_loss")
        watched, mode, bounds = loss.loc[archs].to_numpy(dtype=float), "min", (0, None)
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    out("$ python benchmarks/lce_settings.py " + " ".join(argv or sys.argv[1:]))
    out(
        f"table: {table.path} ({len(archs)} architectures x {max_t} epochs); {args.seeds} seeds "
        f"x {args.archs} architectures, {args.workers} in flight, replayed in lock step"
    )
    suffix = " mcmc" if args.method == "mcmc" else ""
    suffix += " w" if args.weights == "completed" else ""
    suffix += " cal" if args.calibrate else ""
    suffix += " loss" if args.metric == "train_loss" else ""
    if args.weights == "completed" or args.calibrate:
        out(
            f"w: family weights learnt from the finished trials; cal: P(beat) corrected by "
            f"their residuals; either from {args.min_completed} finished trials"
        )
    cache: dict = {}
    settings: dict[str, Decide] = {}
    for grace in (int(g) for g in args.graces.split(",")):
        for delta in (float(d) for d in args.deltas.split(",")):
            if args.method == "curves":
                for spread in (float(x) for x in args.spreads.split(",")):
                    settings[f"curves g{grace} d{delta:g} s{spread:g}"] = matched(
                        values, grace, delta, spread, args.noise, args.min_completed
                    )
                continue
            name = f"lce g{grace} d{delta:g}" + suffix
            settings[name] = lce(
                watched,
                grace,
                delta,
                cache,
                weights=args.weights,
                calibrate=args.calibrate,
                min_completed=args.min_completed,
                method=args.method,
                mode=mode,
                bounds=bounds,
            )
    orders = [
        [archs.index(a) for a in curve_data.arch_order(seed, args.archs, args.table)]
        for seed in range(args.seeds)
    ]
    out(f"{'setting':20s} {'% FIFO':>7s} {'regret':>13s} {'worst':>6s}")
    peers = [
        (f"asha g{g} (peer)", lambda g=g: asha(g, 3, max_t))
        for g in (int(g) for g in args.asha_graces.split(","))
    ]
    for name, make in peers + [
        (name, lambda decide=decide: decide) for name, decide in settings.items()
    ]:
        fractions, regrets = [], []
        for order in orders:
            epochs, picked = replay(values, order, make(), args.workers)
            fractions.append(epochs / (len(order) * max_t))
            regrets.append(values[order, -1].max() - values[picked, -1])
        regrets = np.array(regrets)
        meets = "  meets both" if np.mean(fractions) <= 0.4 and regrets.mean() <= 0.3 else ""
        out(
            f"{name:20s} {100 * np.mean(fractions):6.1f}% {regrets.mean():6.2f} ± "
            f"{regrets.std():4.2f} {regrets.max():6.2f}{meets}"
        )
    out(
        "(means over seeds; regret in points, ± sd over seeds; 'meets both': <= 40% of FIFO's "
        f"epochs and mean regret <= 0.3; {sum(k[0] != 'points' for k in cache)} LCE fits)"
    )
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
