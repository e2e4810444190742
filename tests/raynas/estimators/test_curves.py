"""Learning-curve families and the predictive distribution (raynas.estimators.learning_curves)."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.estimators import learning_curves as curves

# One accuracy-like curve per family: rising over 20 epochs, still moving at epoch 20.
TRUE_PARAMS = {
    "pow3": [0.9, 0.6, 0.7],
    "pow4": [0.9, 0.8, 0.5, 0.8],
    "log_log_linear": [0.8, 1.3],
    "hill3": [0.92, 1.5, 4.0],
    "log_power": [0.92, np.log(4.0), -1.5],
    "mmf": [0.92, 0.2, 0.25, 1.5],
    "exp4": [0.9, 0.3, -0.5, 0.8],
    "janoschek": [0.92, 0.2, 0.15, 0.9],
    "weibull": [0.92, 0.2, 0.15, 0.9],
    "ilog2": [0.95, 0.3],
    "vapor_pressure": [-0.2, -0.5, 0.05],
}
X = np.arange(1, 21, dtype=float)
TARGET = 60.0


def test_families_are_domhans_eleven():
    assert set(curves.names()) == set(TRUE_PARAMS)


@pytest.mark.parametrize("name", sorted(TRUE_PARAMS))
def test_family_fit_recovers_its_own_curve_at_max_t(name):
    family = curves.FAMILIES[name]
    y = family(X, TRUE_PARAMS[name])
    truth = float(family([TARGET], TRUE_PARAMS[name])[0])
    fit = curves.fit(family, X, y)
    assert fit is not None
    assert float(family([TARGET], fit.theta)[0]) == pytest.approx(truth, abs=2e-3)


@pytest.mark.parametrize("name", sorted(TRUE_PARAMS))
def test_family_prediction_with_noise_brackets_the_truth(name):
    family = curves.FAMILIES[name]
    rng = np.random.default_rng(0)
    y = family(X, TRUE_PARAMS[name]) + 0.002 * rng.standard_normal(X.size)
    truth = float(family([TARGET], TRUE_PARAMS[name])[0])
    pred = curves.predict(X, y, TARGET, truth, families=[name], rng=rng)
    assert pred is not None
    assert abs(pred.mean - truth) < max(3 * pred.sd, 0.01)
    assert 0.02 < pred.p_beat < 0.98  # the truth is inside the predictive distribution


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown curve family 'pow5'; choose from: pow3"):
        curves.check_families(["pow3", "pow5"])


def test_fit_needs_more_points_than_parameters():
    assert curves.fit("pow4", X[:4], curves.FAMILIES["pow4"](X[:4], TRUE_PARAMS["pow4"])) is None


def _hopeless_and_better():
    rng = np.random.default_rng(1)
    x = np.arange(1, 9, dtype=float)
    hopeless = 0.5 - 0.3 * np.exp(-0.5 * x) + 0.003 * rng.standard_normal(x.size)
    better = 0.97 - 0.3 * x**-0.7 + 0.003 * rng.standard_normal(x.size)
    return x, hopeless, better


@pytest.mark.parametrize("method", ["fast", "mcmc"])
def test_predict_separates_hopeless_from_better_curve(method):
    x, hopeless, better = _hopeless_and_better()
    kw = {"method": method, "mcmc_steps": 200, "mcmc_burn": 100}
    low = curves.predict(x, hopeless, 30, 0.9, rng=np.random.default_rng(0), **kw)
    high = curves.predict(x, better, 30, 0.9, rng=np.random.default_rng(0), **kw)
    assert low.p_beat < 0.05 < high.p_beat
    assert low.mean < 0.6 and high.mean > 0.9


def test_mode_min_mirrors_mode_max():
    x, _, better = _hopeless_and_better()
    up = curves.predict(x, better, 30, 0.94, rng=np.random.default_rng(3))
    down = curves.predict(x, -better, 30, -0.94, mode="min", rng=np.random.default_rng(3))
    assert down.p_beat == pytest.approx(up.p_beat)
    assert down.mean == pytest.approx(-up.mean)


def test_loss_curve_with_mode_min():
    x = np.arange(1, 11, dtype=float)
    loss = 0.3 + 2.0 * x**-0.8
    pred = curves.predict(x, loss, 50, 0.2, mode="min", rng=np.random.default_rng(0))
    assert pred.p_beat < 0.05  # cannot get below 0.3 + 2 * 50**-0.8 = 0.39
    assert pred.mean == pytest.approx(0.3 + 2.0 * 50**-0.8, abs=0.05)


def test_one_sided_bounds_in_mode_min_bound_the_right_side():
    # A loss is bounded below: bounds (0, None) must leave a prediction of 0.39 alone (they
    # once clipped every mode-min prediction up to the bound, so a loss was predicted to reach
    # 0 and LCE on a loss never stopped anything); a bound the curve would cross clips it.
    x = np.arange(1, 11, dtype=float)
    loss = 0.3 + 2.0 * x**-0.8
    free = curves.predict(x, loss, 50, 0.2, mode="min", rng=np.random.default_rng(0))
    floor = curves.predict(
        x, loss, 50, 0.2, mode="min", bounds=(0, None), rng=np.random.default_rng(0)
    )
    assert floor.mean == pytest.approx(free.mean) and floor.p_beat == pytest.approx(free.p_beat)
    points = curves.point_predictions(x, loss, 50, mode="min", bounds=(0, None))
    assert points["pow3"] == pytest.approx(0.3 + 2.0 * 50**-0.8, abs=0.01)
    clipped = curves.predict(
        x, loss, 50, 0.45, mode="min", bounds=(0.5, None), rng=np.random.default_rng(0)
    )
    assert clipped.mean >= 0.5 - 1e-9 and clipped.p_beat == 0.0
    # mode max: an open low end still clips at the high one.
    x, _, better = _hopeless_and_better()
    pred = curves.predict(x, better, 300, 0.99, bounds=(None, 0.95), rng=np.random.default_rng(0))
    assert pred.p_beat == 0.0 and pred.mean <= 0.95


def test_prediction_depends_only_on_the_generator():
    x, _, better = _hopeless_and_better()
    a = curves.predict(x, better, 30, 0.95, rng=np.random.default_rng(7))
    b = curves.predict(x, better, 30, 0.95, rng=np.random.default_rng(7))
    assert a == b


def test_bounds_clip_predictions():
    x, _, better = _hopeless_and_better()
    pred = curves.predict(x, better, 300, 0.99, bounds=(0, 0.95), rng=np.random.default_rng(0))
    assert pred.p_beat == 0.0 and pred.mean <= 0.95


def test_falling_curve_is_not_predicted_to_recover():
    x = np.arange(1, 11, dtype=float)
    y = 0.9 - 0.02 * x
    pred = curves.predict(x, y, 30, 0.9, rng=np.random.default_rng(0))
    assert pred is None or pred.mean <= y[0]


def test_stretch_sampler_samples_a_correlated_gaussian():
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    prec = np.linalg.inv(cov)

    def log_prob(p):
        return -0.5 * np.einsum("wi,ij,wj->w", p, prec, p)

    rng = np.random.default_rng(0)
    chain = curves.stretch_sampler(log_prob, 0.1 * rng.standard_normal((32, 2)), 1500, rng)
    samples = chain[500:].reshape(-1, 2)
    assert np.allclose(samples.mean(axis=0), 0, atol=0.15)
    assert np.allclose(np.cov(samples.T), cov, atol=0.2)


# --- family weights learnt from completed curves ---------------------------------------------


def test_completed_weights_favour_the_family_that_predicted_the_finals():
    finals = [0.80, 0.70, 0.75, 0.90]
    good = [f + e for f, e in zip(finals, [0.01, -0.01, 0.01, -0.01], strict=True)]
    bad = [f + e for f, e in zip(finals, [0.02, -0.02, 0.02, -0.02], strict=True)]  # 4x the mse
    predictions = [{"pow3": g, "mmf": b} for g, b in zip(good, bad, strict=True)]
    w = curves.completed_weights(predictions, finals)
    assert sum(w.values()) == pytest.approx(1.0)
    # w_k ~ exp(-n * mse_k / (2 * min mse)): the ratio is exp(-4 * (4 - 1) / 2)
    assert w["mmf"] / w["pow3"] == pytest.approx(np.exp(-6.0))


def test_completed_weights_drop_a_family_missing_for_most_curves():
    predictions = [{"pow3": 0.8, "ilog2": 0.8}, {"pow3": 0.7}, {"pow3": 0.75}]
    w = curves.completed_weights(predictions, [0.8, 0.7, 0.75])
    assert set(w) == {"pow3"}
    with pytest.raises(ValueError, match="one prediction dict per final"):
        curves.completed_weights([{"pow3": 0.8}], [0.8, 0.7])
    with pytest.raises(ValueError, match="one prediction dict per final"):
        curves.completed_weights([], [])


def test_point_predictions_extrapolate_each_family():
    y = curves.FAMILIES["pow3"](X, TRUE_PARAMS["pow3"])
    truth = float(curves.FAMILIES["pow3"]([TARGET], TRUE_PARAMS["pow3"])[0])
    points = curves.point_predictions(X, y, TARGET, bounds=(0, 1))
    assert points["pow3"] == pytest.approx(truth, abs=2e-3)
    assert set(points) <= set(curves.names()) and all(0 <= v <= 1 for v in points.values())
    down = curves.point_predictions(X, 1 - y, TARGET, mode="min", families=["pow3"])
    assert down["pow3"] == pytest.approx(1 - truth, abs=2e-3)


def test_prediction_reweighted_by_learnt_family_weights():
    rng = np.random.default_rng(0)
    y = curves.FAMILIES["pow3"](X, TRUE_PARAMS["pow3"]) + 0.002 * rng.standard_normal(X.size)
    every = {k: 1.0 for k in curves.names()}
    pred = curves.predict(X, y, TARGET, 0.85, rng=rng, family_weights=every)
    assert pred is not None and len(pred.weights) > 1  # every fitting family bootstrapped
    only = pred.reweighted({"pow3": 1.0}, 0.85)
    assert only.weights == {"pow3": 1.0}
    assert only.p_beat == pytest.approx(float(only.p_beats(0.85)))
    assert pred.reweighted({"no_such_family": 1.0}, 0.85) is None
    direct = curves.predict(
        X, y, TARGET, 0.85, rng=np.random.default_rng(1), family_weights={"pow3": 1.0}
    )
    assert direct.weights == {"pow3": 1.0}
    assert abs(direct.mean - only.mean) < 0.01  # the same family, other bootstrap draws
    mcmc = curves.predict(
        X,
        y,
        TARGET,
        0.85,
        method="mcmc",
        rng=rng,
        families=["pow3"],
        mcmc_steps=40,
        mcmc_burn=20,
    )
    with pytest.raises(ValueError, match="only a fast-method prediction"):
        mcmc.reweighted({"pow3": 1.0}, 0.85)


def test_p_beats_matches_p_beat_and_is_monotone():
    rng = np.random.default_rng(0)
    y = curves.FAMILIES["ilog2"](X, TRUE_PARAMS["ilog2"]) + 0.01 * rng.standard_normal(X.size)
    pred = curves.predict(X, y, TARGET, 0.8, rng=rng, bounds=(0, 1))
    assert pred.p_beats(0.8) == pytest.approx(pred.p_beat)
    p = pred.p_beats(np.array([0.5, 0.8, 0.9, 1.0]))
    assert list(p) == sorted(p, reverse=True) and p[-1] == 0.0  # nothing beats the bound
