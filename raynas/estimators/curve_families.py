"""The eleven parametric learning-curve families of Domhan et al. (IJCAI 2015).

Each ``Family`` holds its curve ``f(x, theta)`` (batched over parameter rows), its bounds and
its starting points (a grid over the nonlinear parameters, the linear ones in closed form).
``FAMILIES`` maps names to families; ``names()`` lists them.
See ``raynas.estimators.learning_curves``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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
