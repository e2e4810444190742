"""Learning-curve extrapolation: parametric families, their fits and a predictive distribution.

After Domhan, Springenberg and Hutter, "Speeding up automatic hyperparameter optimization of
deep neural networks by extrapolation of learning curves" (IJCAI 2015). A partial curve
``y(x_1..x_n)`` is fitted by eleven parametric families (``names()``); their ensemble gives a
predictive distribution of ``y`` at a later ``x`` (``max_t``) and the probability that it beats
a reference value. Two methods (``predict(method=...)``):

``fast`` (default; tens of ms for 11 families and tens of points)
    Each family is fitted by least squares: a grid over its nonlinear parameters, with the
    linear ones solved in closed form at each grid point, gives the starts, and a batched
    Levenberg-Marquardt (numpy, box-projected) refines the best two. Families are weighted by
    ``exp(-BIC/2)``; those under ``MIN_WEIGHT`` leave the mixture. Parameter uncertainty
    comes from a residual bootstrap: ``n_bootstrap`` replicates (fitted curve + resampled
    centred residuals) are refitted together, a few LM iterations each from the point fit.
    The predictive distribution at ``x`` is the weighted mixture over families of the
    replicates' predictions plus Gaussian noise with the family's residual variance.

``mcmc`` (Domhan's model; ~0.3-1 s)
    ``y(x) = sum_k w_k f_k(x; theta_k) / sum_k w_k + N(0, sigma^2)`` with ``w_k`` in [0, 1]
    and all parameters sampled jointly by a self-written affine-invariant ensemble sampler
    (``stretch_sampler``: the "stretch move" of Goodman and Weare 2010, which is what
    ``emcee`` implements; 2 D + 2 walkers, ``mcmc_steps`` updates, the first
    ``mcmc_burn`` discarded), started around the least-squares fits. Priors as Domhan's:
    parameters inside each family's bounds, the combined curve not lower at ``x`` than at
    the first point, optional bounds on the value, noise no larger than the curve's range.
    With few points the posterior is wide (the weights and the families the data do not pin
    down roam): the method is conservative and stops less; give ``bounds`` for a bounded
    metric, as Domhan et al. did (accuracy <= 1).

Family weights from completed curves (``completed_weights``; ``predict(family_weights=...)``)
    The BIC weighs a family by how well it fits the points seen; on short, noisy curves it
    favours four-parameter families that fit them and extrapolate badly. Where other curves
    of the same experiment have completed, each family can instead be weighted by how well it
    predicted their final values from as many points (``point_predictions``), and the
    bootstrap mixture reweighted accordingly (``Prediction.reweighted``).

Both share the priors of Domhan et al.: learning curves improve, so a fit (or a replicate or
sample) whose value at the target is below its value at the first observed point is rejected;
``bounds`` (e.g. ``(0, 1)`` for an accuracy) clip predictions.

All fitting happens on an oriented scale ``z = sign * y + shift`` where ``sign`` is +1 to
maximise and -1 to minimise, so every family describes an improving curve; ``shift`` is 0
when all ``sign * y`` are positive (accuracy-like metrics: families are fitted in the metric's
own units) and otherwise moves the curve to positive values (the families with a log or an
exponential need that). Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

_INF = np.inf


def _cols(p: np.ndarray, k: int) -> list[np.ndarray]:
    """Parameter columns of ``p`` (shape (..., k)), each broadcastable against x (n,)."""
    return [p[..., i, None] for i in range(k)]


# Each family: f(x, p) for x of shape (n,) and p of shape (..., k) -> (..., n). Names and
# formulas as in Domhan et al. 2015, Table 1 (ilog2 uses log(x + 1) so x = 1 is defined).


def _pow3(x, p):
    c, a, al = _cols(p, 3)
    return c - a * x ** (-al)


def _pow4(x, p):
    c, a, b, al = _cols(p, 4)
    return c - (a * x + b) ** (-al)


def _log_log_linear(x, p):
    a, b = _cols(p, 2)
    return np.log(a * np.log(x) + b)


def _hill3(x, p):
    ymax, eta, kappa = _cols(p, 3)
    return ymax / (1.0 + (kappa / x) ** eta)  # = ymax x^eta / (kappa^eta + x^eta)


def _log_power(x, p):
    a, b, c = _cols(p, 3)
    return a / (1.0 + (x / np.exp(b)) ** c)


def _mmf(x, p):
    al, be, ka, de = _cols(p, 4)
    return al - (al - be) / (1.0 + (ka * x) ** de)


def _exp4(x, p):
    c, a, b, al = _cols(p, 4)
    return c - np.exp(-a * x**al + b)


def _janoschek(x, p):
    al, be, ka, de = _cols(p, 4)
    return al - (al - be) * np.exp(-ka * x**de)


def _weibull(x, p):
    al, be, ka, de = _cols(p, 4)
    return al - (al - be) * np.exp(-((ka * x) ** de))


def _ilog2(x, p):
    c, a = _cols(p, 2)
    return c - a / np.log(x + 1.0)


def _vapor_pressure(x, p):
    a, b, c = _cols(p, 3)
    return np.exp(a + b / x + c * np.log(x))


# --- starting points: a grid over the nonlinear parameters, the linear ones in closed form --


def _solve(basis: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares for a batch of designs ``basis`` (G, n, q): coefficients (G, q), SSE (G,)."""
    with np.errstate(all="ignore"):
        gram = np.einsum("gni,gnj->gij", basis, basis)
        rhs = np.einsum("gni,n->gi", basis, z)
        ridge = 1e-12 * (np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-30)
        gram = gram + ridge * np.eye(basis.shape[2])
        ok = np.isfinite(gram).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)
        beta = np.full(rhs.shape, np.nan)
        if ok.any():
            beta[ok] = np.linalg.solve(gram[ok], rhs[ok][..., None])[..., 0]
        sse = ((np.einsum("gnq,gq->gn", basis, beta) - z) ** 2).sum(axis=1)
    sse[~np.isfinite(sse)] = _INF
    return beta, sse


_SHAPES = np.array([0.25, 0.5, 1.0, 1.5, 2.5, 4.0])
_SPANS = np.geomspace(0.05, 30.0, 12)  # how far along its rise a curve is at the last x


def _init_pow3(x, z):
    al = np.geomspace(0.05, 4.0, 20)
    basis = np.stack([np.ones((al.size, x.size)), -(x[None] ** -al[:, None])], axis=2)
    beta, sse = _solve(basis, z)
    sse[beta[:, 1] <= 0] = _INF
    return np.stack([beta[:, 0], np.maximum(beta[:, 1], 1e-12), al], axis=1), sse


def _init_pow4(x, z):
    al, s = np.meshgrid(np.geomspace(0.05, 4.0, 12), x.min() * np.geomspace(0.03, 30.0, 9))
    al, s = al.ravel(), s.ravel()
    basis = np.stack(
        [np.ones((al.size, x.size)), -((x[None] + s[:, None]) ** -al[:, None])], axis=2
    )
    beta, sse = _solve(basis, z)
    sse[beta[:, 1] <= 0] = _INF
    a = np.maximum(beta[:, 1], 1e-12) ** (-1.0 / al)
    return np.stack([beta[:, 0], a, s * a, al], axis=1), sse


def _init_log_log_linear(x, z):
    e = np.exp(np.clip(z, -50.0, 50.0))
    basis = np.stack([np.log(x), np.ones_like(x)], axis=1)[None]
    beta, _ = _solve(basis, e)
    a, b = beta[0]
    a, b = max(a, 1e-12), max(b, 1e-12)
    p = np.array([a, b])
    return p[None], np.array([((_log_log_linear(x, p) - z) ** 2).sum()])


def _hill_grid(x):
    eta, kappa = np.meshgrid(_SHAPES, np.geomspace(0.3 * x.min(), 10.0 * x.max(), 12))
    return eta.ravel(), kappa.ravel()


def _init_hill3(x, z):
    eta, kappa = _hill_grid(x)
    g_ = 1.0 / (1.0 + (kappa[:, None] / x[None]) ** eta[:, None])
    beta, sse = _solve(g_[..., None], z)
    sse[beta[:, 0] <= 0] = _INF
    return np.stack([np.maximum(beta[:, 0], 1e-12), eta, kappa], axis=1), sse


def _init_log_power(x, z):
    p, sse = _init_hill3(x, z)  # log_power(a, b, c) == hill3(a, -c, exp(b))
    return np.stack([p[:, 0], np.log(p[:, 2]), -p[:, 1]], axis=1), sse


def _init_mmf(x, z):
    eta, kappa = _hill_grid(x)
    g_ = 1.0 / (1.0 + (kappa[:, None] / x[None]) ** eta[:, None])
    beta, sse = _solve(np.stack([g_, 1.0 - g_], axis=2), z)
    return np.stack([beta[:, 0], beta[:, 1], 1.0 / kappa, eta], axis=1), sse


def _exp_grid(x, power: bool):
    de, span = np.meshgrid(_SHAPES, _SPANS)
    de, span = de.ravel(), span.ravel()
    xmax = x.max()
    # exp(-k x^d) (janoschek, exp4) or exp(-(k x)^d) (weibull) reaches exp(-span) at xmax
    kappa = span ** (1.0 / de) / xmax if power else span / xmax**de
    return de, kappa


def _init_exp4(x, z):
    al, a = _exp_grid(x, power=False)
    g_ = np.exp(-a[:, None] * x[None] ** al[:, None])
    beta, sse = _solve(np.stack([np.ones_like(g_), -g_], axis=2), z)
    sse[beta[:, 1] <= 0] = _INF
    b = np.log(np.maximum(beta[:, 1], 1e-300))
    return np.stack([beta[:, 0], a, b, al], axis=1), sse


def _init_janoschek(x, z):
    de, ka = _exp_grid(x, power=False)
    g_ = np.exp(-ka[:, None] * x[None] ** de[:, None])
    beta, sse = _solve(np.stack([1.0 - g_, g_], axis=2), z)
    return np.stack([beta[:, 0], beta[:, 1], ka, de], axis=1), sse


def _init_weibull(x, z):
    de, ka = _exp_grid(x, power=True)
    g_ = np.exp(-((ka[:, None] * x[None]) ** de[:, None]))
    beta, sse = _solve(np.stack([1.0 - g_, g_], axis=2), z)
    return np.stack([beta[:, 0], beta[:, 1], ka, de], axis=1), sse


def _init_ilog2(x, z):
    basis = np.stack([np.ones_like(x), -1.0 / np.log(x + 1.0)], axis=1)[None]
    return _solve(basis, z)


def _init_vapor_pressure(x, z):
    if (z <= 0).any():
        return np.zeros((0, 3)), np.zeros(0)
    basis = np.stack([np.ones_like(x), 1.0 / x, np.log(x)], axis=1)[None]
    beta, _ = _solve(basis, np.log(z))
    return beta, ((_vapor_pressure(x, beta) - z) ** 2).sum(axis=1)


@dataclass(frozen=True)
class Family:
    """One parametric learning-curve family ``fn(x, params)`` with box bounds on its params."""

    name: str
    params: tuple[str, ...]
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    init: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray | None, float]]

    @property
    def k(self) -> int:
        return len(self.params)

    def __call__(self, x, params) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return self.fn(x, np.asarray(params, dtype=float))


_TINY = 1e-12
BOOTSTRAP_ITERS = 5  # LM iterations per bootstrap refit, started at the point fit
MIN_WEIGHT = 1e-3  # families below this BIC weight leave the mixture (fast method)
FIT_ITERS = 20  # LM iterations of a point fit (the degenerate 4-parameter families crawl)
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("pow3", ("c", "a", "alpha"), _pow3, (-_INF, 0, 1e-3), (_INF, _INF, 10), _init_pow3),
        Family(
            "pow4",
            ("c", "a", "b", "alpha"),
            _pow4,
            (-_INF, _TINY, 0, 1e-3),
            (_INF, _INF, _INF, 10),
            _init_pow4,
        ),
        Family(
            "log_log_linear",
            ("a", "b"),
            _log_log_linear,
            (0, _TINY),
            (_INF, _INF),
            _init_log_log_linear,
        ),
        Family(
            "hill3",
            ("ymax", "eta", "kappa"),
            _hill3,
            (0, 1e-3, _TINY),
            (_INF, 20, _INF),
            _init_hill3,
        ),
        Family(
            "log_power",
            ("a", "b", "c"),
            _log_power,
            (0, -_INF, -20),
            (_INF, _INF, -1e-3),
            _init_log_power,
        ),
        Family(
            "mmf",
            ("alpha", "beta", "kappa", "delta"),
            _mmf,
            (-_INF, -_INF, _TINY, 1e-3),
            (_INF, _INF, _INF, 20),
            _init_mmf,
        ),
        Family(
            "exp4",
            ("c", "a", "b", "alpha"),
            _exp4,
            (-_INF, 0, -_INF, 1e-3),
            (_INF, _INF, _INF, 10),
            _init_exp4,
        ),
        Family(
            "janoschek",
            ("alpha", "beta", "kappa", "delta"),
            _janoschek,
            (-_INF, -_INF, 0, 1e-3),
            (_INF, _INF, _INF, 10),
            _init_janoschek,
        ),
        Family(
            "weibull",
            ("alpha", "beta", "kappa", "delta"),
            _weibull,
            (-_INF, -_INF, _TINY, 1e-3),
            (_INF, _INF, _INF, 10),
            _init_weibull,
        ),
        Family("ilog2", ("c", "a"), _ilog2, (-_INF, 0), (_INF, _INF), _init_ilog2),
        Family(
            "vapor_pressure",
            ("a", "b", "c"),
            _vapor_pressure,
            (-_INF,) * 3,
            (_INF,) * 3,
            _init_vapor_pressure,
        ),
    )
}


def names() -> list[str]:
    """The curve families, in Domhan et al.'s order."""
    return list(FAMILIES)


def check_families(families: Sequence[str] | None) -> tuple[str, ...]:
    """The family names to use (all when None); ValueError naming an unknown one."""
    if families is None:
        return tuple(FAMILIES)
    if isinstance(families, str) or not len(families):
        raise ValueError(f"families must be a non-empty list of names, got {families!r}")
    for name in families:
        if name not in FAMILIES:
            raise ValueError(f"unknown curve family {name!r}; choose from: {', '.join(FAMILIES)}")
    return tuple(dict.fromkeys(families))


# --- fitting -----------------------------------------------------------------------------


@dataclass
class Fit:
    """Least-squares fit of one family to (x, z)."""

    family: Family
    theta: np.ndarray
    residuals: np.ndarray  # z - f(x)
    sse: float

    @property
    def n(self) -> int:
        return self.residuals.size

    def sigma(self, floor: float) -> float:
        """Residual standard deviation (degrees-of-freedom corrected), at least ``floor``."""
        return max(math.sqrt(self.sse / max(self.n - self.family.k, 1)), floor)

    def bic(self, floor: float) -> float:
        """Bayesian information criterion (noise variance floored at ``floor**2``)."""
        n, k = self.n, self.family.k
        return n * math.log(max(self.sse / n, floor**2)) + k * math.log(n)


def _sse(family: Family, x: np.ndarray, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Sum of squared residuals per row of ``theta`` (B, k) against ``z`` (n,) or (B, n)."""
    with np.errstate(all="ignore"):
        sse = ((family.fn(x, theta) - z) ** 2).sum(axis=-1)
    sse[~np.isfinite(sse)] = _INF
    return sse


def levenberg_marquardt(
    family: Family, x: np.ndarray, z: np.ndarray, theta: np.ndarray, iters: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """Batched, box-projected Levenberg-Marquardt: B independent least-squares problems.

    Args:
        family: the curve family.
        x: abscissae (n,).
        z: targets, (n,) shared or (B, n) one per problem.
        theta: starting points (B, k) with finite SSE.
        iters: maximum iterations (it stops earlier once every problem has converged).

    Returns:
        ``(theta, sse)``, shapes (B, k) and (B,).
    """
    lo, hi = np.array(family.lower), np.array(family.upper)
    theta = np.clip(np.array(theta, dtype=float), lo, hi)
    b, k = theta.shape
    sse = _sse(family, x, theta, z)
    lam = np.full(b, 1e-3)
    done = np.zeros(b, dtype=bool)
    eye = np.eye(k)
    with np.errstate(all="ignore"):
        for _ in range(iters):
            h = 1e-7 * np.maximum(np.abs(theta), 1e-4)  # (B, k) forward-difference steps
            points = np.concatenate(
                [theta[:, None, :], theta[:, None, :] + h[:, None, :] * eye], 1
            )
            f = family.fn(x, points)  # (B, k + 1, n)
            jac = (f[:, 1:] - f[:, :1]) / h[:, :, None]  # (B, k, n)
            jac = np.where(np.isfinite(jac), jac, 0.0)
            r = f[:, 0] - z
            r = np.where(np.isfinite(r), r, 0.0)
            gram = jac @ jac.transpose(0, 2, 1)  # (B, k, k)
            grad = (jac @ r[..., None])[..., 0]  # (B, k)
            damp = np.maximum(np.diagonal(gram, axis1=1, axis2=2), 1e-12)
            system = gram + (lam[:, None] * damp)[:, :, None] * eye
            try:
                step = -np.linalg.solve(system, grad[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = -grad / (lam[:, None] * damp)
            candidate = np.clip(theta + np.where(np.isfinite(step), step, 0.0), lo, hi)
            new_sse = _sse(family, x, candidate, z)
            better = (new_sse < sse) & ~done
            gain = (sse - new_sse) / np.maximum(sse, 1e-300)
            theta[better] = candidate[better]
            sse[better] = new_sse[better]
            lam = np.where(better, lam * 0.3, lam * 10.0)
            done |= (better & (gain < 1e-6)) | (lam > 1e7) | (sse <= 1e-28)
            if done.all():
                break
    return theta, sse


def fit(family: Family | str, x: np.ndarray, z: np.ndarray, starts: int = 2) -> Fit | None:
    """Fit ``family`` to the curve ``z(x)`` by least squares; None when it cannot be fitted.

    The ``starts`` best points of a grid over the family's nonlinear parameters (its linear
    parameters solved in closed form at each) are refined by Levenberg-Marquardt; the best
    result wins.

    Args:
        family: a ``Family`` or its name.
        x: positive abscissae (epochs), shape (n,).
        z: curve values, shape (n,); n must exceed the family's parameter count.
        starts: how many grid points to refine.

    Returns:
        The fit, or None (too few points, or no finite fit).
    """
    family = FAMILIES[family] if isinstance(family, str) else family
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    if x.size <= family.k:
        return None
    grid, grid_sse = family.init(x, z)
    keep = np.isfinite(grid_sse) & np.isfinite(grid).all(axis=1)
    if not keep.any():
        return None
    grid, grid_sse = grid[keep], grid_sse[keep]
    first = np.argsort(grid_sse, kind="stable")[:starts]
    start = _interior(grid[first], family)
    start = start[np.isfinite(_sse(family, x, start, z))]
    if not len(start):
        return None
    theta, sse = levenberg_marquardt(family, x, z, start, iters=FIT_ITERS)
    best = int(np.argmin(sse))
    if not np.isfinite(sse[best]):
        return None
    return Fit(family, theta[best], z - family(x, theta[best]), float(sse[best]))


def _interior(theta: np.ndarray, family: Family) -> np.ndarray:
    lo, hi = np.array(family.lower), np.array(family.upper)
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    return np.clip(theta, lo + 1e-9 * span, hi - 1e-9 * span)


# --- prediction --------------------------------------------------------------------------


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


# --- MCMC over the weighted ensemble (Domhan et al.'s model) --------------------------------


def stretch_sampler(
    log_prob: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    a: float = 2.0,
) -> np.ndarray:
    """Affine-invariant ensemble MCMC (Goodman & Weare 2010, parallel stretch move).

    Args:
        log_prob: vectorised log density, (W, D) -> (W,) (``-inf`` outside the support).
        start: initial walkers (W, D), W even and >= 2 D; all must have finite density.
        steps: number of ensemble updates.
        rng: random source.
        a: stretch scale (2 as in emcee).

    Returns:
        The chain, shape (steps, W, D).
    """
    walkers, dim = start.shape
    pos = start.copy()
    lp = log_prob(pos)
    half = walkers // 2
    halves = (np.arange(half), np.arange(half, walkers))
    chain = np.empty((steps, walkers, dim))
    for step in range(steps):
        for move, other in (halves, halves[::-1]):
            zz = ((a - 1.0) * rng.random(move.size) + 1.0) ** 2 / a
            partner = pos[other[rng.integers(0, other.size, move.size)]]
            proposal = partner + zz[:, None] * (pos[move] - partner)
            lq = log_prob(proposal)
            accept = np.log(rng.random(move.size)) < (dim - 1) * np.log(zz) + lq - lp[move]
            pos[move[accept]] = proposal[accept]
            lp[move[accept]] = lq[accept]
        chain[step] = pos
    return chain


def _mcmc(fits, x, z, target, lo_z, hi_z, floor, rng, steps, burn):
    k_sizes = [f.family.k for f in fits]
    offsets = np.cumsum([0, *k_sizes])
    n_fam = len(fits)
    dim = int(offsets[-1]) + n_fam + 1
    lower = np.concatenate([f.family.lower for f in fits])
    upper = np.concatenate([f.family.upper for f in fits])
    xs = np.concatenate([x, [x[0], target]])
    n = x.size
    log_floor = math.log(floor)
    log_ceiling = math.log(max(float(np.ptp(z)), 10 * floor))  # noise below the curve's range

    def log_prob(pos):
        theta = pos[:, : offsets[-1]]
        w = pos[:, offsets[-1] : offsets[-1] + n_fam]
        log_sigma = pos[:, -1]
        inside = (
            ((theta >= lower) & (theta <= upper)).all(axis=1)
            & ((w >= 0) & (w <= 1)).all(axis=1)
            & (w.sum(axis=1) > 1e-9)
            & (log_sigma >= log_floor)
            & (log_sigma <= log_ceiling)
        )
        out = np.full(pos.shape[0], -_INF)
        if not inside.any():
            return out
        curves = np.stack(
            [f.family(xs, theta[inside, offsets[i] : offsets[i + 1]]) for i, f in enumerate(fits)]
        )  # (K, W', n + 2)
        wn = w[inside] / w[inside].sum(axis=1, keepdims=True)
        comb = np.einsum("wk,kwn->wn", wn, curves)
        sigma = np.exp(log_sigma[inside])
        with np.errstate(all="ignore"):
            ll = -0.5 * (((comb[:, :n] - z) / sigma[:, None]) ** 2).sum(axis=1) - n * np.log(sigma)
        ok = (
            np.isfinite(ll)
            & (comb[:, n + 1] >= comb[:, n])
            & (comb[:, n + 1] >= lo_z)
            & (comb[:, n + 1] <= hi_z)
        )
        out[np.flatnonzero(inside)[ok]] = ll[ok]
        return out

    centre = np.concatenate(
        [
            *(f.theta for f in fits),
            np.full(n_fam, 1.0 / n_fam),
            [math.log(max(min(f.sigma(floor) for f in fits), floor))],
        ]
    )
    if not np.isfinite(log_prob(centre[None]))[0]:
        return None, None, None
    walkers = 2 * dim + 2
    scale = 1e-3 * np.maximum(np.abs(centre), 1e-3)
    start = centre + scale * rng.standard_normal((walkers, dim))
    start[:, offsets[-1] : offsets[-1] + n_fam] = np.clip(
        start[:, offsets[-1] : offsets[-1] + n_fam], 0.0, 1.0
    )
    bad = ~np.isfinite(log_prob(start))
    start[bad] = centre  # identical walkers are fine: the others pull them apart
    chain = stretch_sampler(log_prob, start, steps, rng)[burn:].reshape(-1, dim)
    theta = chain[:, : offsets[-1]]
    w = chain[:, offsets[-1] : offsets[-1] + n_fam]
    wn = w / w.sum(axis=1, keepdims=True)
    at_target = np.stack(
        [
            f.family(np.array([target]), theta[:, offsets[i] : offsets[i + 1]])[:, 0]
            for i, f in enumerate(fits)
        ],
        axis=1,
    )
    samples = np.clip((wn * at_target).sum(axis=1), lo_z, hi_z)
    noise = np.exp(chain[:, -1])
    weights = {f.family.name: round(float(wn[:, i].mean()), 4) for i, f in enumerate(fits)}
    return samples, noise, weights
