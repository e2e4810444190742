"""Learning-curve extrapolation scheduler (Domhan, Springenberg and Hutter, IJCAI 2015).

After ``grace_period`` and then every ``check_every`` results, the trial's curve of ``metric``
against ``time_attr`` is fitted by an ensemble of parametric learning-curve families
(``raynas.estimators.learning_curves``: pow3, pow4, log_log_linear, hill3, log_power, mmf, exp4,
janoschek, weibull, ilog2, vapor_pressure). If the predictive distribution of the metric at
``max_t`` gives probability < ``delta`` of beating the reference, the trial is stopped.

The reference ("best seen") is, by default, the best value at ``max_t`` among trials that
reached ``max_t`` (``reference="final"``, as Domhan et al.: a partial curve is compared with
what complete runs achieved; until one trial completes nothing is stopped). With
``reference="any"`` it is the best value any trial reported at any ``t``, which can stop
trials before the first completes but compares a final prediction with values that are not
final. Trials that end by themselves before ``max_t`` give no final value: set ``max_t`` to
the trainable's number of epochs.

Family weights (``weights``): ``"bic"`` (default) weighs each family by how well it fits the
trial's own points, as Domhan et al.'s fast variants do; ``"completed"`` by how well it
predicted, from as many points, the final values of the trials that have reached ``max_t``
(``raynas.estimators.learning_curves.completed_weights``), so the experiment itself picks
the families that extrapolate its curves.

The curve (``curve_metric``, ``curve_mode``): by default the curve of ``metric`` is
extrapolated. Another reported key can be named instead, e.g. ``curve_metric="train_loss"``,
``curve_mode="min"``: the training loss is smooth and often ranks the final val_acc better
early than val_acc itself does (the observation behind TSE). Then the reference is the best
final training loss, and ``metric`` stays the objective Tune reports and picks by.

Calibration (``calibrate=True``): P(beat) is corrected by how far the predictions missed on
the trials that reached ``max_t``. Each finished trial's curve, cut at the same ``t``, is
predicted as the trial's own is; the residuals ``r = final - predicted`` shift the reference,
and P(beat) is the mean over them of P(prediction beats ``best - r``). This removes a bias all
curves share, e.g. the late fall of the loss under a cosine learning-rate schedule, which the
saturating families cannot foresee. It needs ``min_completed`` finished trials before it
stops one. It helps only when the bias is shared by all curves: benchmarks/README.md ("Early
stopping on learning curves") has the measurements behind ``examples/cifar10_lce.yaml``.

Methods (``method``): ``"fast"`` (default) least squares per family, BIC weights and a residual
bootstrap, typically a few tens of ms per check; ``"mcmc"`` Domhan's Bayesian weighted ensemble
sampled by an affine-invariant ensemble sampler, 0.3-1 s per check. See
``raynas.estimators.learning_curves`` for both. Randomness is seeded from ``seed``, ``t`` and the
points fitted, so a decision depends only on the results, never on when it is taken nor on the
trial ids (which Tune draws anew for every run): two runs of a seeded experiment decide the same.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raynas.estimators import learning_curves
from schedulers.base import CONTINUE, STOP, DecisionScheduler, check_int, number

METHODS = ("fast", "mcmc")
REFERENCES = ("final", "any")
WEIGHTS = ("bic", "completed")


class LCEScheduler(DecisionScheduler):
    """Stops trials whose extrapolated learning curve is unlikely to beat the best seen.

    Args:
        metric: the result key of the learning curve (default: from the TuneConfig).
        mode: "max" or "min" (default: from the TuneConfig).
        time_attr: the x axis of the curve; values must be > 0 (epochs).
        max_t: the target: predictions are for the metric at ``max_t``; trials are stopped
            when they reach it.
        grace_period: no decision before ``time_attr`` reaches this.
        check_every: fit every this many results once past ``grace_period``. Past it, a
            result whose curve metric is NaN or infinite stops the trial at once (diverged);
            one without the key is skipped.
        delta: stop when P(metric at max_t beats the reference) < delta.
        method: "fast" (least squares + bootstrap) or "mcmc".
        reference: "final" (best value at max_t of completed trials) or "any" (best value
            reported at any time).
        families: curve families to use (default: all eleven).
        weights: how the families are weighted: "bic" (by how well each fits the trial's own
            points; Domhan et al.'s choice for the fast method) or "completed" (by how well
            each predicted, from as many points, the final values of the trials that reached
            ``max_t``: ``raynas.estimators.learning_curves.completed_weights``). On short noisy
            curves the BIC favours four-parameter families that fit the points seen and extrapolate
            badly; "completed" learns from the experiment which families extrapolate. It
            needs ``min_completed`` trials at ``max_t`` before it stops any trial. mcmc
            samples its own weights over the families "completed" keeps.
        min_completed: trials that must have reached ``max_t`` before ``weights="completed"``
            or ``calibrate`` stops a trial.
        curve_metric: the result key whose curve is extrapolated and compared (default:
            ``metric``), e.g. "train_loss"; ``metric`` then stays Tune's objective.
        curve_mode: "max" or "min" for ``curve_metric`` (needed with it).
        calibrate: correct P(beat) by the residuals of the finished trials' predictions from
            as many points (see the module doc).
        bounds: optional ``[low, high]`` the metric cannot leave, e.g. ``[0, 1]`` for an
            accuracy, ``[0, None]`` for a loss with ``mode="min"``; either may be None.
            Predictions are clipped to it.
        n_bootstrap: bootstrap replicates per family (fast).
        mcmc_steps: ensemble updates per fit (mcmc); the first half is burn-in.
        seed: seeds the bootstrap/MCMC together with t and the points fitted.
        log_path: the decision log; default ``<experiment dir>/scheduler_decisions.jsonl``.
    """

    kind = "lce"

    def __init__(
        self,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        max_t: float = 100,
        grace_period: float = 5,
        check_every: int = 1,
        delta: float = 0.05,
        method: str = "fast",
        reference: str = "final",
        families: Sequence[str] | None = None,
        weights: str = "bic",
        min_completed: int = 3,
        bounds: Sequence[float | None] | None = None,
        n_bootstrap: int = 64,
        mcmc_steps: int = 400,
        seed: int = 0,
        log_path: str | None = None,
        curve_metric: str | None = None,
        curve_mode: str | None = None,
        calibrate: bool = False,
    ) -> None:
        check_int("check_every", check_every, 1)
        _check_curve(curve_metric, curve_mode)
        if not isinstance(calibrate, bool):
            raise ValueError(f"calibrate must be true or false, got {calibrate!r}")
        if not isinstance(delta, int | float) or not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
        if reference not in REFERENCES:
            raise ValueError(
                f"unknown reference {reference!r}; choose one of: {', '.join(REFERENCES)}"
            )
        families = learning_curves.check_families(families)
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; choose one of: {', '.join(WEIGHTS)}")
        check_int("min_completed", min_completed, 1)
        bounds = _check_bounds(bounds)
        check_int("n_bootstrap", n_bootstrap, 8)
        check_int("mcmc_steps", mcmc_steps, 20)
        check_int("seed", seed, 0)
        super().__init__(
            metric=metric,
            mode=mode,
            time_attr=time_attr,
            max_t=max_t,
            grace_period=grace_period,
            log_path=log_path,
        )
        self._check_every = check_every
        self._delta = float(delta)
        self._method = method
        self._reference = reference
        self._families = families
        self._weights = weights
        self._min_completed = min_completed
        self._points: dict[tuple[str, float], dict[str, float]] = {}  # (trial, t) -> family -> y
        self._bounds = bounds
        self._n_bootstrap = n_bootstrap
        self._mcmc_steps = mcmc_steps
        self._seed = seed
        self._curve_metric = curve_metric
        self._curve_mode = curve_mode
        self._calibrate = calibrate
        self._finals: dict[str, tuple[float, float]] = {}  # trial -> (t, value) at >= max_t
        self._best_any: float | None = None
        self._means: dict[tuple[str, float], float | None] = {}  # (finished trial, t) -> mean

    def _options(self) -> dict[str, Any]:
        return {
            **super()._options(),
            "check_every": self._check_every,
            "delta": self._delta,
            "method": self._method,
            "reference": self._reference,
            "families": list(self._families),
            "weights": self._weights,
            "min_completed": self._min_completed,
            "bounds": None if self._bounds is None else list(self._bounds),
            "seed": self._seed,
            "curve_metric": self._curve_metric,
            "curve_mode": self._curve_mode,
            "calibrate": self._calibrate,
        }

    @property
    def _key(self) -> str | None:
        """The result key of the extrapolated curve."""
        return self._curve_metric or self._metric

    @property
    def _cmode(self) -> str | None:
        """Its mode."""
        return self._curve_mode or self._mode

    def _observe(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {"y": number(result.get(self._key))}

    def _better(self, a: float, b: float) -> bool:
        return a > b if self._cmode == "max" else a < b

    def _reset_derived(self) -> None:
        self._finals = {}
        self._best_any = None
        self._points = {}
        self._means = {}

    def _note(self, tid: str, t: float) -> None:
        y = self._history[tid][t].get("y")
        if y is None or not math.isfinite(y):
            return
        if t >= self._max_t and (tid not in self._finals or t < self._finals[tid][0]):
            self._finals[tid] = (t, y)
        if self._best_any is None or self._better(y, self._best_any):
            self._best_any = y

    def reference_value(self) -> float | None:
        """The value a trial must be predicted to beat (None: nothing to compare with yet)."""
        if self._reference == "any":
            return self._best_any
        finals = [y for _, y in self._finals.values()]
        if not finals:
            return None
        return max(finals) if self._cmode == "max" else min(finals)

    def _decide(self, tid: str, t: float) -> tuple[str, str, dict[str, Any]]:
        history = self._history[tid]
        attr = self._time_attr
        if t < self._grace_period:
            return CONTINUE, f"grace period ({attr}={_fmt(t)} < {_fmt(self._grace_period)})", {}
        y = history[t].get("y")
        if y is None:
            return CONTINUE, f"{self._key!r} missing in this result; not used", {}
        if not math.isfinite(y):
            # a diverged run (NaN or infinite loss/accuracy) would otherwise train to max_t
            return STOP, f"{self._key!r} is {y} in this result: diverged", {}
        index = sum(1 for s in history if self._grace_period <= s <= t) - 1
        if index % self._check_every:
            return CONTINUE, f"no check (every {self._check_every} results)", {}
        best = self.reference_value()
        if best is None:
            return CONTINUE, "no reference yet: no trial has reached max_t", {}
        points = self._curve(tid, t)
        if len(points) < 3:
            return CONTINUE, f"too few points to fit ({len(points)} < 3)", {}
        if self._calibrate and len(self._finals) < self._min_completed:
            return CONTINUE, self._waiting(len(self._finals)), {"best": best}
        learnt = None
        notes = []
        if self._weights == "completed":
            learnt, why = self._completed_weights(t)
            if learnt is None:
                return CONTINUE, why, {"best": best}
            notes.append(why)
        pred = self._predict(t, points, best, learnt)
        if pred is None:
            return CONTINUE, "no curve family fits (the curve does not improve)", {"best": best}
        p_beat = float(pred.p_beat)
        top = dict(sorted(pred.weights.items(), key=lambda kv: -kv[1])[:3])
        info = {
            "best": best,
            "pred_mean": round(float(pred.mean), 6),
            "pred_sd": round(float(pred.sd), 6),
            "p_beat": float(f"{p_beat:.4g}"),
            "delta": self._delta,
            "n_points": pred.n_points,
            "weights": top,
        }
        if self._calibrate:
            residuals = self._residuals(t, best, learnt)
            if len(residuals) < self._min_completed:
                return CONTINUE, self._waiting(len(residuals), t), info
            p_beat = pred.calibrated_p_beat(best, residuals)
            info["p_beat_fit"] = info["p_beat"]
            info["p_beat"] = float(f"{p_beat:.4g}")
            info["residual_mean"] = round(float(residuals.mean()), 6)
            notes.append(
                f"calibrated by {len(residuals)} completed trials (P before: {pred.p_beat:.3g}, "
                f"mean residual {residuals.mean():+.3g})"
            )
        stop = p_beat < self._delta
        op = ">" if self._cmode == "max" else "<"
        reason = (
            f"P({self._key}@{_fmt(self._max_t)} {op} {best:.4g}) = {p_beat:.3g} "
            f"{'<' if stop else '>='} delta {self._delta:g}; "
            f"predicted {pred.mean:.4g} ± {pred.sd:.2g}"
        )
        reason += "".join(f"; {n}" for n in notes)
        return (STOP if stop else CONTINUE), reason, info

    def _predict(self, t, points, best, learnt) -> learning_curves.Prediction | None:
        """LCE's prediction at ``max_t`` from a trial's ``points`` up to ``t``; its randomness
        is seeded by ``seed``, ``t`` and the points only (not the trial id, which differs
        between two runs of the same experiment)."""
        x, ys = np.array(points).T
        key = zlib.crc32(np.ascontiguousarray(points, dtype=np.float64).tobytes())
        rng = np.random.default_rng([self._seed, key, round(t * 1000)])
        return learning_curves.predict(
            x,
            ys,
            self._max_t,
            best,
            mode=self._cmode,
            method=self._method,
            families=self._families,
            bounds=self._bounds,
            rng=rng,
            n_bootstrap=self._n_bootstrap,
            mcmc_steps=self._mcmc_steps,
            mcmc_burn=self._mcmc_steps // 2,
            family_weights=learnt,
        )

    def _residuals(self, t: float, best: float, learnt) -> np.ndarray:
        """``final - predicted`` of the finished trials, each predicted from its curve up to
        ``t`` as a running trial is: by the learnt weights' combination of the families' point
        predictions, or by its own fit (cached; it depends only on the trial's results)."""
        residuals = []
        for tid, (_, final) in sorted(self._finals.items()):
            if learnt is not None:
                mean = learning_curves.combined_prediction(self._points.get((tid, t), {}), learnt)
            else:
                if (tid, t) not in self._means:
                    points = self._curve(tid, t)
                    pred = None if len(points) < 3 else self._predict(t, points, best, None)
                    self._means[tid, t] = None if pred is None else float(pred.mean)
                mean = self._means[tid, t]
            if mean is not None:
                residuals.append(final - mean)
        return np.array(residuals, dtype=float)

    def _waiting(self, have: int, t: float | None = None) -> str:
        """Why calibration stops nothing yet: ``have`` of ``min_completed`` finished trials
        (with a prediction from ``t``, when given)."""
        where = "" if t is None else f" with a prediction from {self._time_attr}={_fmt(t)}"
        return f"calibrating P(beat): {have} of {self._min_completed} completed trials{where}"

    def _curve(self, tid: str, t: float) -> list[tuple[float, float]]:
        """The trial's finite ``(time, metric)`` points up to ``t``, in time order."""
        return sorted(
            (s, o["y"])
            for s, o in self._history[tid].items()
            if 0 < s <= t and o.get("y") is not None and math.isfinite(o["y"])
        )

    def _completed_weights(self, t: float) -> tuple[dict[str, float] | None, str]:
        """Family weights learnt from the trials at ``max_t`` and what they come from (None and
        why not, when there are too few)."""
        predictions, finals = [], []
        for tid, (_, final) in sorted(self._finals.items()):
            if (tid, t) not in self._points:
                points = self._curve(tid, t)
                self._points[tid, t] = (
                    {}
                    if len(points) < 3
                    else learning_curves.point_predictions(
                        *np.array(points).T,
                        self._max_t,
                        mode=self._cmode,
                        families=self._families,
                        bounds=self._bounds,
                    )
                )
            if self._points[tid, t]:
                predictions.append(self._points[tid, t])
                finals.append(final)
        if len(finals) < self._min_completed:
            return None, (
                f"learning family weights: {len(finals)} of {self._min_completed} completed "
                f"trials with a curve to {self._time_attr}={_fmt(t)}"
            )
        weights = learning_curves.completed_weights(predictions, finals)
        if not weights:
            return None, "no family predicted the completed trials"
        return weights, f"families weighted by {len(finals)} completed trials"


def _check_curve(curve_metric, curve_mode) -> None:
    if curve_metric is not None and (not isinstance(curve_metric, str) or not curve_metric):
        raise ValueError(f"curve_metric must be a result key or None, got {curve_metric!r}")
    if curve_mode is not None and curve_mode not in ("min", "max"):
        raise ValueError(f"curve_mode must be 'min' or 'max', got {curve_mode!r}")
    if curve_metric is not None and curve_mode is None:
        raise ValueError(f"curve_metric {curve_metric!r} needs curve_mode ('min' or 'max')")
    if curve_metric is None and curve_mode is not None:
        raise ValueError("curve_mode is for curve_metric; without it, set mode")


def _fmt(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def _check_bounds(bounds) -> tuple[float | None, float | None] | None:
    if bounds is None:
        return None
    if isinstance(bounds, str) or len(bounds) != 2:
        raise ValueError(f"bounds must be [low, high] (either may be null), got {bounds!r}")
    low, high = bounds
    for v in (low, high):
        if v is not None and (not isinstance(v, int | float) or not math.isfinite(v)):
            raise ValueError(f"bounds must hold finite numbers or null, got {bounds!r}")
    if low is not None and high is not None and not low < high:
        raise ValueError(f"bounds must have low < high, got {bounds!r}")
    return (low, high)
