"""LCE's grace period and delta, swept by an offline replay of its decision rule.

    python benchmarks/lce_settings.py [--seeds 20] [--archs 100] [--out FILE]

``benchmarks/early_stopping.py`` runs one LCE setting through real Tuners (~25 s per seed). To
see whether any other setting would meet the issue's lines (<= 40% of FIFO's epochs, regret
<= 0.3 points), this script replays the stored curves through LCE's decision rule for a grid of
settings in one process, with the fits cached, so a grid of 20 settings x 20 seeds takes minutes.

The replay: the seed's architectures (``raynas.benchmarks.curves.arch_order``, the same subset
and order as the Tuner benchmark's seed) run on ``--workers`` slots in lock step, one epoch per
step, slots in a fixed order; a stopped or finished trial's slot takes the next architecture at
the next step. At each epoch t >= grace and t < max_t, once some trial has finished, LCE fits
the first t values (``raynas.estimators.curves.predict``, fast method, bounds 0..100, exactly
the arguments ``LCEScheduler`` passes) and stops the trial when P(final > the best final seen)
< delta; ``check_every`` is 1. Tune's ASHA (rungs 4 and 12, eta 3, its cut-off: the 1 - 1/eta
percentile of the values recorded earlier at the rung) runs through the same replay as the peer:
compare its row with the Tuner benchmark's ASHA row to see how far the replay's timing is from
a Tuner's. Regret, as in the Tuner benchmark: the best stored final val_acc of the seed's
architectures minus the final of the trial with the highest last-reported val_acc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from raynas.benchmarks import curves as curve_data

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


def lce(values: np.ndarray, grace: int, delta: float, cache: dict, seed: int = 0) -> Decide:
    max_t = values.shape[1]

    def decide(index: int, t: int, value: float, state: dict) -> bool:
        if t < grace or not state["finished"]:
            return True
        reference = float(max(values[i, -1] for i in state["finished"]))
        key = (index, t, reference)
        if key not in cache:
            pred = fit_prefix(
                values[index], t, max_t, reference, "fast", np.random.default_rng([seed, index, t])
            )
            cache[key] = 1.0 if pred is None else pred.p_beat  # no fit: LCE continues
        return cache[key] >= delta

    return decide


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="curves parquet (default: the shipped one)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--archs", type=int, default=100, help="architectures per seed")
    parser.add_argument("--workers", type=int, default=4, help="trials in flight")
    parser.add_argument("--graces", default="4,5,6,7,8")
    parser.add_argument("--deltas", default="0.2,0.1,0.05,0.01")
    parser.add_argument("--out", default=None, help="also write the printed text here")
    args = parser.parse_args(argv)
    table = curve_data.table(args.table)
    piv = table.frame().pivot_table(index="arch", columns="epoch", values="val_acc")
    archs = list(piv.index)
    values = piv.to_numpy(dtype=float)
    max_t = values.shape[1]
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    out("$ python benchmarks/lce_settings.py " + " ".join(argv or sys.argv[1:]))
    out(
        f"table: {table.path} ({len(archs)} architectures x {max_t} epochs); {args.seeds} seeds "
        f"x {args.archs} architectures, {args.workers} in flight, replayed in lock step"
    )
    cache: dict = {}
    settings: dict[str, Decide] = {}
    for grace in (int(g) for g in args.graces.split(",")):
        for delta in (float(d) for d in args.deltas.split(",")):
            settings[f"lce g{grace} d{delta:g}"] = lce(values, grace, delta, cache)
    orders = [
        [archs.index(a) for a in curve_data.arch_order(seed, args.archs, args.table)]
        for seed in range(args.seeds)
    ]
    out(f"{'setting':16s} {'% FIFO':>7s} {'regret':>13s} {'worst':>6s}")
    for name, make in [("asha 4/12 (peer)", lambda: asha(4, 3, max_t))] + [
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
            f"{name:16s} {100 * np.mean(fractions):6.1f}% {regrets.mean():6.2f} ± "
            f"{regrets.std():4.2f} {regrets.max():6.2f}{meets}"
        )
    out(
        "(means over seeds; regret in points, ± sd over seeds; 'meets both': <= 40% of FIFO's "
        f"epochs and mean regret <= 0.3; {len(cache)} LCE fits)"
    )
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
