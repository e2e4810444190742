"""Domhan et al.'s weighted-ensemble model sampled by an affine-invariant ensemble sampler.

``stretch_sampler`` is the "stretch move" of Goodman and Weare (2010), what ``emcee``
implements; ``_mcmc`` samples the ensemble started around the least-squares fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_INF = np.inf


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
