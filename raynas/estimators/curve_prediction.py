"""The predictive distribution of a partial learning curve at ``max_t`` (fast and mcmc methods).

See ``raynas.estimators.learning_curves`` for the methods and the priors they share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

from raynas.estimators.curve_families import (
    _INF,
    BOOTSTRAP_ITERS,
    FAMILIES,
    MIN_WEIGHT,
    check_families,
)
from raynas.estimators.curve_fit import Fit, fit, levenberg_marquardt
from raynas.estimators.curve_mcmc import _mcmc


@dataclass(frozen=True)
class Prediction:
    """Predictive distribution of the metric at the target x, in the metric's own units.

    The distribution is a mixture of normals (the bootstrap replicates' or MCMC samples'
    predictions, each with its noise sd); ``p_beats`` evaluates it at any reference value.
    """

    mean: float
    sd: float
    p_beat: float  # probability that the value at the target beats ``best``
    weights: dict[str, float] = field(default_factory=dict)  # family -> ensemble weight
    n_points: int = 0
    mixture: Mixture | None = field(default=None, repr=False, compare=False)

    def p_beats(self, value: float | np.ndarray) -> float | np.ndarray:
        """P(the metric at the target beats ``value``); elementwise for an array."""
        if self.mixture is None:
            raise ValueError("this prediction carries no mixture")
        return self.mixture.p_beats(value)

    def calibrated_p_beat(self, best: float, residuals: Sequence[float]) -> float:
        """P(beats ``best``) corrected by the errors of earlier predictions: ``residuals`` are
        ``final - predicted mean`` of finished curves predicted from as many points; the mean
        over them of P(value + r beats ``best``) = P(value beats ``best - r``), in either mode
        (the shift is in the metric's units)."""
        return float(np.mean(self.p_beats(best - np.asarray(residuals, dtype=float))))

    def reweighted(self, family_weights: Mapping[str, float], best: float) -> Prediction | None:
        """The same replicates with the families weighted by ``family_weights`` (absent: 0),
        and ``p_beat`` against ``best``; None when no family here keeps a weight. Only for a
        fast-method prediction (its components belong to one family each)."""
        if self.mixture is None or self.mixture.labels is None:
            raise ValueError("only a fast-method prediction can be reweighted")
        mixture = self.mixture.reweighted(family_weights)
        if mixture is None:
            return None
        return _prediction(mixture, best, self.n_points)


@dataclass(frozen=True)
class Mixture:
    """Normals ``N(centers_i, scales_i^2)`` with weights ``weights_i``, on the oriented scale
    ``z = sign * y + shift`` (see the module doc), capped at ``hi_z`` (the metric's bound)."""

    centers: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    sign: int
    shift: float
    hi_z: float
    labels: np.ndarray | None = None  # each component's family (fast method)

    def reweighted(self, family_weights: Mapping[str, float]) -> Mixture | None:
        """Each family's components share ``family_weights[family]`` (normalised), or None."""
        w = np.array([float(family_weights.get(k, 0.0)) for k in self.labels])
        names, counts = np.unique(self.labels, return_counts=True)
        w = w / counts[np.searchsorted(names, self.labels)]
        total = w.sum()
        if not total > 0:
            return None
        return replace(self, weights=w / total)

    def family_weights(self) -> dict[str, float]:
        """family -> its share of the mixture, for the families that have one (empty without
        labels)."""
        if self.labels is None:
            return {}
        names = dict.fromkeys(self.labels)  # in the order of the fits
        shares = {str(k): float(self.weights[self.labels == k].sum()) for k in names}
        return {k: round(v, 4) for k, v in shares.items() if v > 0}

    def p_beats(self, value: float | np.ndarray) -> float | np.ndarray:
        v = np.asarray(value, dtype=float)
        vz = (self.sign * v + self.shift)[..., None]
        p = special.ndtr((self.centers - vz) / self.scales) @ self.weights
        p = np.where(vz[..., 0] >= self.hi_z, 0.0, np.clip(p, 0.0, 1.0))
        return float(p) if p.ndim == 0 else p

    def moments(self) -> tuple[float, float]:
        """(mean, sd) on the oriented scale."""
        mean = float(self.weights @ self.centers)
        second = float(self.weights @ (self.centers**2 + self.scales**2))
        return mean, math.sqrt(max(second - mean**2, 0.0))


def orient(y: np.ndarray, mode: str) -> tuple[int, float]:
    """``(sign, shift)`` with ``z = sign * y + shift`` improving upwards and positive."""
    sign = 1 if mode == "max" else -1
    s = sign * np.asarray(y, dtype=float)
    lo, hi = float(s.min()), float(s.max())
    if lo > 0:
        return sign, 0.0
    return sign, -lo + max(hi - lo, 1e-3 * max(abs(lo), 1.0))


def predict(
    x: Sequence[float],
    y: Sequence[float],
    target: float,
    best: float,
    *,
    mode: str = "max",
    method: str = "fast",
    families: Sequence[str] | None = None,
    bounds: Sequence[float | None] | None = None,
    rng: np.random.Generator,
    n_bootstrap: int = 64,
    mcmc_steps: int = 400,
    mcmc_burn: int = 200,
    family_weights: Mapping[str, float] | None = None,
) -> Prediction | None:
    """Predictive distribution of the curve ``y(x)`` at ``target`` and P(it beats ``best``).

    Args:
        x: observed abscissae (> 0, e.g. epochs), increasing.
        y: observed metric values (finite).
        target: where to predict (``max_t``).
        best: reference value; "beats" means greater for ``mode="max"``, smaller for "min".
        mode: "max" or "min".
        method: "fast" (least squares + residual bootstrap) or "mcmc" (see the module doc).
        families: family names to use (default: all).
        bounds: optional ``(low, high)`` the metric cannot leave (either may be None).
        rng: source of all randomness.
        n_bootstrap: bootstrap replicates per family (fast).
        mcmc_steps, mcmc_burn: sampler steps in all and discarded as burn-in (mcmc).
        family_weights: family name -> weight, e.g. from ``completed_weights``, used by the
            fast method instead of the BIC weights; families under ``MIN_WEIGHT`` (or absent)
            leave the ensemble, for either method (mcmc samples the weights of the rest).

    Returns:
        The prediction, or None when no family fits the curve.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    sign, shift = orient(y, mode)
    z = sign * y + shift
    span = float(np.ptp(z))
    floor = 1e-3 * max(span, 1e-6 * (float(np.abs(z).mean()) + 1e-12))
    lo_z, hi_z = _oriented_bounds(bounds, sign, shift)
    fits = _improving_fits(x, z, target, families)
    if family_weights is not None:
        fits = [f for f in fits if family_weights.get(f.family.name, 0.0) >= MIN_WEIGHT]
    if not fits:
        return None
    if method == "mcmc":
        samples, noise, weights = _mcmc(
            fits, x, z, target, lo_z, hi_z, floor, rng, mcmc_steps, mcmc_burn
        )
        if samples is None:
            return None
        share = np.full(samples.size, 1.0 / samples.size)
        mixture = Mixture(samples, noise, share, sign, shift, hi_z)
        return _prediction(mixture, best, x.size, weights)
    # With weights from outside every family is bootstrapped with an equal share first, so
    # that the same replicates serve any weights (Prediction.reweighted).
    uniform = family_weights is not None
    samples, noise, share, labels = _bootstrap(
        fits, x, target, lo_z, hi_z, floor, rng, n_bootstrap, uniform
    )
    mixture = Mixture(samples, noise, share, sign, shift, hi_z, labels)
    if uniform:
        mixture = mixture.reweighted(family_weights)
        if mixture is None:
            return None
    return _prediction(mixture, best, x.size)


def _prediction(mixture: Mixture, best: float, n_points: int, weights=None) -> Prediction:
    """The prediction a mixture gives; ``weights`` (family -> weight) default to its own."""
    mean_z, sd_z = mixture.moments()
    return Prediction(
        mean=mixture.sign * (mean_z - mixture.shift),
        sd=sd_z,
        p_beat=mixture.p_beats(best),  # 0 where the reference lies beyond the metric's bound
        weights=mixture.family_weights() if weights is None else weights,
        n_points=int(n_points),
        mixture=mixture,
    )


def _improving_fits(x, z, target, families) -> list[Fit]:
    """The least-squares fits of ``families`` whose curve improves from ``x[0]`` to ``target``."""
    fits = []
    for name in check_families(families):
        f = fit(FAMILIES[name], x, z)
        if f is None:
            continue
        ends = FAMILIES[name](np.array([x[0], target]), f.theta)
        if np.isfinite(ends).all() and ends[1] >= ends[0]:  # learning curves improve
            fits.append(f)
    return fits


def point_predictions(
    x: Sequence[float],
    y: Sequence[float],
    target: float,
    *,
    mode: str = "max",
    families: Sequence[str] | None = None,
    bounds: Sequence[float | None] | None = None,
) -> dict[str, float]:
    """Each family's least-squares prediction of ``y`` at ``target``, in the metric's units,
    for the families that fit an improving curve (clipped to ``bounds``)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    sign, shift = orient(y, mode)
    lo_z, hi_z = _oriented_bounds(bounds, sign, shift)
    out = {}
    for f in _improving_fits(x, sign * y + shift, target, families):
        z_end = float(np.clip(f.family(np.array([target]), f.theta)[0], lo_z, hi_z))
        out[f.family.name] = sign * (z_end - shift)
    return out


def completed_weights(
    predictions: Sequence[Mapping[str, float]], finals: Sequence[float]
) -> dict[str, float]:
    """Family weights from how well each family predicted curves that have since completed.

    ``predictions[j]`` holds each family's prediction for curve ``j`` (``point_predictions``
    from as many points as the curve now being judged has) and ``finals[j]`` the value curve
    ``j`` then reached. A family's weight is its Gaussian likelihood of those finals with a
    common noise variance, the smallest family's mean squared error:
    ``w_k ~ exp(-n * mse_k / (2 * min_k mse_k))``, so the family that extrapolated these
    curves best has weight 1 before normalising and one with twice its mean squared error
    ``exp(-n/2)``.
    A family with no prediction for more than half the curves gets 0. This replaces the
    BIC, which on short noisy curves favours families that fit the points seen but
    extrapolate badly.
    """
    if len(predictions) != len(finals) or not finals:
        raise ValueError("completed_weights needs one prediction dict per final, and >= 1")
    n = len(finals)
    mse = {}
    for name in sorted({k for p in predictions for k in p}):  # a fixed order: same sums
        errors = [f - p[name] for p, f in zip(predictions, finals, strict=True) if name in p]
        if 2 * len(errors) >= n:
            mse[name] = float(np.mean(np.square(errors)))
    if not mse:
        return {}
    scale = max(min(mse.values()), 1e-12)
    log_w = {k: -0.5 * n * (v / scale - 1.0) for k, v in mse.items()}
    total = sum(math.exp(v) for v in log_w.values())
    return {k: math.exp(v) / total for k, v in log_w.items()}


def combined_prediction(
    predictions: Mapping[str, float], weights: Mapping[str, float]
) -> float | None:
    """The ``weights``-weighted mean of the families' point ``predictions`` (one curve's
    ``point_predictions``); None when no family with a weight has a prediction."""
    total = sum(weights.get(k, 0.0) for k in predictions)
    if not total > 0:
        return None
    return sum(weights.get(k, 0.0) * v for k, v in predictions.items()) / total


def _oriented_bounds(bounds, sign: int, shift: float) -> tuple[float, float]:
    """``bounds`` on ``y`` as bounds on ``z = sign * y + shift``; a missing bound is infinite on
    its own side of ``y``, which is the other side of ``z`` for ``mode="min"``."""
    if bounds is None:
        return -_INF, _INF
    low, high = bounds
    low = -_INF if low is None else low
    high = _INF if high is None else high
    ends = (sign * low + shift, sign * high + shift)
    return min(ends), max(ends)


def _bootstrap(fits, x, target, lo_z, hi_z, floor, rng, n_boot, uniform=False):
    """(centers, scales, weights, family labels) of the bootstrap's predictive mixture; the
    families weighted by their BIC, or all equally (``uniform``)."""
    if uniform:
        w = np.ones(len(fits))
    else:
        bic = np.array([f.bic(floor) for f in fits])
        w = np.exp(-(bic - bic.min()) / 2)
    w = w / w.sum()
    keep = w >= MIN_WEIGHT  # negligible families are not worth their bootstrap
    fits = [f for f, k in zip(fits, keep, strict=True) if k]
    w = w[keep] / w[keep].sum()
    ends_x = np.array([x[0], target])
    centers, scales, shares, labels = [], [], [], []
    for f, wk in zip(fits, w, strict=True):
        n, k = f.n, f.family.k
        fitted = f.family(x, f.theta)
        r = (f.residuals - f.residuals.mean()) * math.sqrt(n / (n - k))
        replicas = fitted + r[rng.integers(0, n, size=(n_boot, n))]
        start = np.repeat(f.theta[None], n_boot, axis=0)
        theta, _ = levenberg_marquardt(f.family, x, replicas, start, iters=BOOTSTRAP_ITERS)
        ends = f.family(ends_x, np.vstack([f.theta, theta]))
        ok = np.isfinite(ends).all(axis=1) & (ends[:, 1] >= ends[:, 0])
        ok[0] = True  # the point fit passed the same test in predict()
        m = np.clip(ends[ok, 1], lo_z, hi_z)
        centers.append(m)
        scales.append(np.full(m.size, f.sigma(floor)))
        shares.append(np.full(m.size, wk / m.size))
        labels.append(np.full(m.size, f.family.name))
    return (
        np.concatenate(centers),
        np.concatenate(scales),
        np.concatenate(shares),
        np.concatenate(labels),
    )
