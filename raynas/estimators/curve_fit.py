"""Least-squares fits of a learning-curve family: a batched, box-projected Levenberg-Marquardt."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from raynas.estimators.curve_families import _INF, FAMILIES, FIT_ITERS, Family


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
