"""Learning-curve extrapolation: parametric families, their fits and a predictive distribution.

The pieces live in ``curve_families`` (the eleven families), ``curve_fit`` (least squares),
``curve_prediction`` (``predict``, the bootstrap mixture, completed-curve weights) and
``curve_mcmc`` (the ensemble sampler); this module gathers their public names.

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

from raynas.estimators.curve_families import (
    BOOTSTRAP_ITERS,
    FAMILIES,
    FIT_ITERS,
    MIN_WEIGHT,
    Family,
    check_families,
    names,
)
from raynas.estimators.curve_fit import (
    Fit,
    fit,
    levenberg_marquardt,
)
from raynas.estimators.curve_mcmc import (
    stretch_sampler,
)
from raynas.estimators.curve_prediction import (
    Mixture,
    Prediction,
    combined_prediction,
    completed_weights,
    orient,
    point_predictions,
    predict,
)

__all__ = [
    "BOOTSTRAP_ITERS",
    "check_families",
    "combined_prediction",
    "completed_weights",
    "FAMILIES",
    "Family",
    "Fit",
    "fit",
    "FIT_ITERS",
    "levenberg_marquardt",
    "MIN_WEIGHT",
    "Mixture",
    "names",
    "orient",
    "point_predictions",
    "predict",
    "Prediction",
    "stretch_sampler",
]
