"""Training Speed Estimate (Ru, Lyle, Schut, Fil, van der Wilk and Gal, NeurIPS 2021).

The TSE of a trial after T epochs sums the per-epoch mean training losses: the faster a
network trains, the better it tends to generalise. Lower is better. Variants:

- ``tse``: the sum over all epochs so far;
- ``tse_e``: the sum over the last E epochs (TSE-E; the paper finds E = 1 works best,
  which discards the noisy early epochs);
- ``tse_ema``: TSE-EMA, the exponentially weighted sum ``sum_t gamma**(T - t) * loss_t``
  (the paper's definition): every epoch counts, later epochs more. The authors' released
  rank-correlation script computes a recency-weighted moving average instead (weight 0.9 on
  the newest epoch); both weight later epochs more than earlier ones. raynas before
  2026-11-29 computed the opposite, a moving average that kept 0.9 of the old value and
  was therefore dominated by the first, least informative epochs (at epoch 4: 73% epoch 1).

Non-finite losses (a diverged run) make the estimate ``inf``: the worst possible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _finite_or_inf(total: float) -> float:
    return total if math.isfinite(total) else math.inf


def tse(losses: Sequence[float]) -> float:
    """Sum of all per-epoch mean training losses."""
    if not losses:
        return math.nan
    values = [float(v) for v in losses]
    if not all(math.isfinite(v) for v in values):
        return math.inf
    try:
        return math.fsum(values)
    except OverflowError:  # finite losses whose sum passes the largest float
        return math.inf


def tse_e(losses: Sequence[float], window: int = 1) -> float:
    """Sum of the last ``window`` per-epoch losses (all of them when there are fewer)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    return tse(list(losses)[-window:])


def tse_ema(losses: Sequence[float], decay: float = 0.9) -> float:
    """TSE-EMA: ``sum_t decay**(T - t) * loss_t`` over the per-epoch losses (T the last)."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    value = None
    for loss in losses:
        value = tse_ema_step(value, loss, decay)
    return _finite_or_inf(value) if losses else math.nan


def tse_ema_step(previous: float | None, loss: float, decay: float) -> float:
    """TSE-EMA after one more epoch: ``decay * previous + loss`` (``previous`` None: the
    first epoch). The one place the recurrence is written; a trainer keeps ``previous``."""
    return float(loss) if previous is None else decay * previous + float(loss)
