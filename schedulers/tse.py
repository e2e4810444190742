"""Asynchronous successive halving ranked by the Training Speed Estimate (Ru et al. 2021).

Rungs sit at ``grace_period * reduction_factor**k`` (below ``max_t``). When a trial first
reaches a rung, its TSE there is compared with the TSEs that earlier trials recorded at the
same rung by Tune's ASHA rule, so that the two schedulers differ only in what they rank: the
cut-off is the ``1 / reduction_factor`` quantile (numpy's linear interpolation) of the earlier
trials' TSEs, and the trial continues if its TSE is at or below it. This keeps the best
``1 / reduction_factor`` of the trials in the long run and is more lenient while few trials
have been recorded (the second trial continues only if it is no worse than the first; the
fifth of five continues if it is second best). Lower TSE is better, whatever the experiment's
``mode``: it ranks training speed, not the metric. The first trial at a rung always
continues, as in Tune's ASHA. A diverged trial (NaN or infinite TSE) is left out of the
cut-off and stops at a rung unless it is the first there.

Until 2026-11-29 the rule kept the best ``max(1, floor(n / reduction_factor))`` of the ``n``
trials recorded (itself included), which is stricter than ASHA's while ``n`` is small; the
benchmark figures measured with it are marked as such in ``benchmarks/results``.

The score (``tse_metric``): by default TSE-E, the sum of ``loss_attr`` (``train_loss``, each
epoch's mean training loss) over the trial's last ``E`` results up to the rung; E = 1, the
paper's best setting, is the last epoch's training loss. ``tse_metric="tse_ema"`` (or any
key) uses that reported value instead, e.g. the ``tse_ema`` or cumulative ``tse`` of the
``train`` trainable. A NaN or infinite loss makes the score infinite (a diverged trial); a
missing one defers the decision to the next result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from raynas.estimators.tse import tse_e
from schedulers.base import CONTINUE, STOP, DecisionScheduler, check_int, number


class TSEScheduler(DecisionScheduler):
    """Successive halving whose rung ranking is the Training Speed Estimate.

    Args:
        metric: the experiment's metric (only recorded; the ranking uses the TSE).
        mode: the experiment's mode (only recorded).
        time_attr: progress attribute the rungs are placed on.
        max_t: trials are stopped when they reach it; rungs lie below it.
        grace_period: the first rung. 1 matches Tune's ASHA, but the first epoch's training
            loss hardly ranks architectures: prefer 2 or more (benchmarks/README.md, "Early
            stopping on learning curves").
        reduction_factor: eta: rungs are eta apart and keep the best 1/eta.
        tse_metric: a reported key to rank by (e.g. "tse_ema"); None computes TSE-E.
        loss_attr: the per-epoch training loss TSE-E sums.
        E: how many of the last results TSE-E sums.
        log_path: the decision log; default ``<experiment dir>/scheduler_decisions.jsonl``.
    """

    kind = "tse"
    needs_metric = False

    def __init__(
        self,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 3,
        tse_metric: str | None = None,
        loss_attr: str = "train_loss",
        E: int = 1,  # noqa: N803 - the paper's name
        log_path: str | None = None,
    ) -> None:
        if not isinstance(reduction_factor, int | float) or not reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor!r}")
        if tse_metric is not None and (not isinstance(tse_metric, str) or not tse_metric):
            raise ValueError(f"tse_metric must be a result key or None, got {tse_metric!r}")
        if not isinstance(loss_attr, str) or not loss_attr:
            raise ValueError(f"loss_attr must be a result key, got {loss_attr!r}")
        check_int("E", E, 1)
        super().__init__(
            metric=metric,
            mode=mode,
            time_attr=time_attr,
            max_t=max_t,
            grace_period=grace_period,
            log_path=log_path,
        )
        self._eta = float(reduction_factor)
        self._tse_metric = tse_metric
        self._loss_attr = loss_attr
        self._window = E
        self.rungs: list[float] = []
        rung = float(grace_period)
        while rung < self._max_t:
            self.rungs.append(rung)
            rung *= self._eta
        self._recorded: dict[float, dict[str, float]] = {r: {} for r in self.rungs}

    def _options(self) -> dict[str, Any]:
        return {
            **super()._options(),
            "reduction_factor": self._eta,
            "tse_metric": self._tse_metric,
            "loss_attr": self._loss_attr,
            "E": self._window,
        }

    def _observe(self, result: Mapping[str, Any]) -> dict[str, Any]:
        key = self._tse_metric or self._loss_attr
        return {key: number(result.get(key))}

    def score(self, tid: str, t: float) -> float | None:
        """The trial's TSE at ``t`` (lower is better; inf if diverged); None if unknown."""
        history = self._history[tid]
        if self._tse_metric:
            value = history[t].get(self._tse_metric)
            return None if value is None else (value if math.isfinite(value) else math.inf)
        losses = [history[s].get(self._loss_attr) for s in sorted(history) if s <= t]
        losses = losses[-self._window :]
        if not losses or any(v is None for v in losses):
            return None
        return tse_e(losses, self._window)

    def _crossing(self, tid: str, t: float) -> tuple[list[float], float | None]:
        """Rungs in (the trial's highest recorded rung, ``t``], and its score now.

        With a float time_attr one result can pass several rungs; the trial is ranked and
        recorded only at the highest of them, since a score measured at ``t`` must not be
        ranked at a lower rung against the others' scores measured there. Rungs passed over
        stay without it (Tune's ASHA records the trial there at its next results, with later
        scores still; with every integer step reported the two agree, see the tests).
        """
        done = [r for r in self.rungs if tid in self._recorded[r]]
        crossed = [r for r in self.rungs if r <= t and (not done or r > done[-1])]
        return crossed, (self.score(tid, t) if crossed else None)

    def _reset_derived(self) -> None:
        self._recorded = {r: {} for r in self.rungs}

    def _record_if_crossed(self, tid: str, t: float) -> None:
        crossed, score = self._crossing(tid, t)
        if crossed and score is not None:
            self._recorded[crossed[-1]][tid] = score

    def _rebuild_trial(self, tid: str) -> None:
        # Live results are recorded by _decide (after ranking against the others); this
        # rebuilds the same records from a trial's history after a restore.
        for t in sorted(self._history[tid]):
            if t < self._max_t:
                self._record_if_crossed(tid, t)

    def _final_result(self, trial, result: Mapping[str, Any] | None) -> None:
        # A trial that ends by itself on a rung below max_t is recorded there, as Tune's ASHA
        # records a completed trial's last result, and as a restore would rebuild it.
        super()._final_result(trial, result)
        tid = getattr(trial, "trial_id", None)
        t = number((result or {}).get(self._time_attr))
        if tid in self._history and t in self._history[tid] and t < self._max_t:
            self._record_if_crossed(tid, t)

    def _decide(self, tid: str, t: float) -> tuple[str, str, dict[str, Any]]:
        attr = self._time_attr
        if t < self._grace_period:
            return CONTINUE, f"grace period ({attr}={_fmt(t)} < {_fmt(self._grace_period)})", {}
        crossed, score = self._crossing(tid, t)
        if not crossed:
            later = [r for r in self.rungs if r > t]
            nxt = f"next rung at {_fmt(later[0])}" if later else "no rung left before max_t"
            return CONTINUE, f"between rungs ({nxt})", {}
        rung = max(crossed)
        key = self._tse_metric or f"{self._loss_attr} (TSE-E, E={self._window})"
        if score is None:
            return CONTINUE, f"no {key} at rung {_fmt(rung)} yet; decided at the next result", {}
        others = list(self._recorded[rung].values())
        n = len(others) + 1
        rank = 1 + sum(1 for s in others if s < score)
        finite = [s for s in others if math.isfinite(s)]
        # Tune's ASHA continues a trial whose reward is >= the (1 - 1/eta) quantile of the
        # others'; for a score where lower is better that is <= the 1/eta quantile.
        cutoff = float(np.percentile(finite, 100 / self._eta)) if finite else math.inf
        self._recorded[rung][tid] = score
        if not others:
            stop, why = False, "the first at this rung continues"
        elif not math.isfinite(score):
            stop, why = True, "diverged"
        else:
            stop = score > cutoff
            quantile = f"1/{self._eta:g} quantile of the {len(finite)} earlier finite TSEs"
            why = f"{'above' if stop else 'at or below'} the cut-off {cutoff:.4g}, the {quantile}"
        info = {
            "rung": _num(rung),
            "score": _num(score),
            "rank": rank,
            "n": n,
            "cutoff": _num(cutoff),
        }
        reason = (
            f"rung {_fmt(rung)}: TSE {score:.4g} ranks {rank} of {n}; "
            f"{'stop' if stop else 'continue'}: {why}"
        )
        return (STOP if stop else CONTINUE), reason, info


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _fmt(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else f"{t:g}"
