"""Predictive CLV: RFM summary, BG/NBD and Gamma-Gamma against the published CDNOW results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engagement.analysis.clv import (
    BGNBD,
    GammaGamma,
    ModelFitError,
    cumulative_repeat_transactions,
    customer_lifetime_value,
    holdout_by_frequency,
)
from engagement.data import load_cdnow
from engagement.measure import calibration_holdout_summary, purchase_day_counts, rfm_summary

REF = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"
LOCAL_REF = Path(__file__).resolve().parent / "reference" / "cdnow"
ROUNDING = 0.005 + 1e-9  # the reference files print two decimals


def _reference(name: str) -> pd.DataFrame:
    for folder in (LOCAL_REF, REF):
        if (folder / name).exists():
            return pd.read_csv(folder / name)
    pytest.fail(f"reference file {name} not found")


@pytest.fixture(scope="module")
def sample_rfm() -> pd.DataFrame:
    return rfm_summary(load_cdnow("sample").orders, calibration_end="1997-09-30", time_unit="W")


@pytest.fixture(scope="module")
def bgnbd(sample_rfm) -> BGNBD:
    return BGNBD.fit(sample_rfm)


def test_cdnow_master_has_69659_rows_and_23570_customers():
    d = load_cdnow("master")
    assert len(d.orders) == 69_659
    assert d.orders["customer_id"].nunique() == 23_570 == len(d.customers)
    assert d.orders["ordered_at"].min() == pd.Timestamp("1997-01-01")
    assert d.orders["ordered_at"].max() == pd.Timestamp("1998-06-30")


def test_rfm_summary_equals_the_published_summary_for_all_2357_customers(sample_rfm):
    ref = _reference("cdnow_customers_summary_with_transactions.csv")
    m = sample_rfm.merge(ref, left_on="customer_id", right_on="ID", how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == 2357
    assert (m["frequency"] == m["x"]).all()
    assert np.abs(m["recency"] - m["t_x"]).max() <= ROUNDING
    assert np.abs(m["T_x"] - m["T_y"]).max() <= ROUNDING
    assert np.abs(m["monetary_value"] - m["zbar"]).max() <= ROUNDING


def test_rfm_summary_equals_the_frequency_recency_file(sample_rfm):
    ref = _reference("cdnow_customers_summary.csv")
    m = sample_rfm.merge(ref, left_on="customer_id", right_on="ID")
    assert len(m) == 2357
    assert (m["frequency_x"] == m["frequency_y"]).all()
    assert np.abs(m["recency_x"] - m["recency_y"]).max() <= ROUNDING


def test_bgnbd_reproduces_fader_hardie_lee_2005(bgnbd):
    p = bgnbd.params
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (
        0.243, 4.414, 0.793, 2.426,
    )
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    se = bgnbd.summary()["se"]
    assert np.all(np.isfinite(se)) and np.all(se > 0)


def test_gamma_gamma_reproduces_the_published_estimates(sample_rfm):
    gg = GammaGamma.fit(sample_rfm)
    assert gg.n_customers == 946
    p = gg.params
    assert (round(p["p"], 2), round(p["q"], 2), round(p["gamma"], 2)) == (6.25, 3.74, 15.44)


def test_population_expectation_matches_a_simulation_of_the_model(bgnbd):
    # Second method: simulate the generative story. While alive a customer buys as
    # Poisson(lambda t); they drop out right after their K-th purchase, K ~ Geometric(p).
    r, alpha, a, b = (bgnbd.params[k] for k in ("r", "alpha", "a", "b"))
    rng = np.random.default_rng(7)
    n, t = 400_000, 39.0
    lam = rng.gamma(r, 1 / alpha, n)
    k = rng.geometric(rng.beta(a, b, n))
    simulated = np.minimum(rng.poisson(lam * t), k).mean()
    assert bgnbd.expected_purchases_population(t) == pytest.approx(simulated, rel=0.02)


def test_conditional_expectation_of_a_brand_new_customer_is_the_population_one(bgnbd):
    new = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    assert bgnbd.expected_purchases(20.0, new)[0] == pytest.approx(bgnbd.expected_purchases_population(20.0))


def test_probability_alive_properties(bgnbd, sample_rfm):
    p = bgnbd.probability_alive(sample_rfm)
    assert np.all((p > 0) & (p <= 1))
    assert np.all(p[sample_rfm["frequency"].to_numpy() == 0] == 1)
    # Longer silence since the last purchase -> less likely alive.
    grid = pd.DataFrame({"frequency": [3] * 4, "recency": [20.0] * 4, "T": [20.0, 30.0, 40.0, 60.0]})
    assert np.all(np.diff(bgnbd.probability_alive(grid)) < 0)


def test_clv_is_finite_non_negative_and_behaves(bgnbd, sample_rfm):
    gg = GammaGamma.fit(sample_rfm)
    clv = customer_lifetime_value(bgnbd, gg, sample_rfm, horizon=12)
    assert np.all(np.isfinite(clv)) and np.all(clv >= 0)
    longer = customer_lifetime_value(bgnbd, gg, sample_rfm, horizon=24)
    assert np.all(longer >= clv)
    half = customer_lifetime_value(bgnbd, gg, sample_rfm, horizon=12, margin=0.5)
    assert half == pytest.approx(clv / 2)
    undiscounted = customer_lifetime_value(bgnbd, gg, sample_rfm, horizon=12, discount_rate=0.0)
    spend = gg.expected_average_spend(sample_rfm)
    assert undiscounted == pytest.approx(bgnbd.expected_purchases(12 * 52 / 12, sample_rfm) * spend)


def test_holdout_validation_on_cdnow():
    orders = load_cdnow("sample").orders
    ch = calibration_holdout_summary(orders, calibration_end="1997-09-30", observation_end="1998-06-30")
    assert ch["duration_holdout"].iloc[0] == pytest.approx(39.0)
    # Independent count of repeat occasions in the holdout from the raw orders:
    days = orders.assign(day=orders["ordered_at"].dt.normalize())[["customer_id", "day"]].drop_duplicates()
    in_holdout = (days["day"] > "1997-09-30") & (days["day"] <= "1998-06-30")
    assert ch["frequency_holdout"].sum() == in_holdout.sum() == 1882
    table = holdout_by_frequency(BGNBD.fit(ch), ch)
    assert table["customers"].sum() == 2357 and table["frequency"].tolist()[-1] == "7+"
    # predicted and actual agree in total to within 15% (FHL report a close fit)
    total_pred = (table["predicted"] * table["customers"]).sum()
    assert total_pred == pytest.approx(1882, rel=0.15)
    # and increase with calibration frequency, as in FHL's figure
    assert np.all(np.diff(table["predicted"]) > 0)


def test_cumulative_repeat_transactions(bgnbd):
    orders = load_cdnow("sample").orders
    occ = orders.assign(day=orders["ordered_at"].dt.normalize())[["customer_id", "day"]].drop_duplicates()
    first = occ.groupby("customer_id")["day"].min()
    repeats = occ[occ["day"] > occ["customer_id"].map(first)]["day"]
    counts = purchase_day_counts(orders)
    assert counts["first_purchases"].sum() == 2357 and counts["repeat_occasions"].sum() == len(repeats)
    cum = cumulative_repeat_transactions(bgnbd, counts, start="1997-01-01", end="1997-09-30")
    assert cum["actual"].is_monotonic_increasing and cum["predicted"].is_monotonic_increasing
    calib_repeats = int((repeats <= "1997-09-30").sum())
    assert cum["actual"].iloc[-1] == calib_repeats
    # In the calibration period the fitted model tracks the actual curve closely.
    assert cum["predicted"].iloc[-1] == pytest.approx(calib_repeats, rel=0.05)


def test_no_repeat_buyers_is_a_clear_error():
    rfm = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0, 0], "T": [10.0, 20, 30]})
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        BGNBD.fit(rfm)


def test_bad_rfm_input_is_refused():
    with pytest.raises(ValueError, match=r"recency > T"):
        BGNBD.fit(pd.DataFrame({"frequency": [1], "recency": [5.0], "T": [3.0]}))
    with pytest.raises(ValueError, match=r"1 of 2 values are missing"):
        BGNBD.fit(pd.DataFrame({"frequency": [1, 2], "recency": [1.0, np.nan], "T": [3.0, 4]}))


def test_single_purchase_customers_get_population_spend(sample_rfm):
    gg = GammaGamma.fit(sample_rfm)
    one = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [30.0], "monetary_value": [0.0]})
    p, q, g = gg.params["p"], gg.params["q"], gg.params["gamma"]
    assert gg.expected_average_spend(one)[0] == pytest.approx(g * p / (q - 1))


def test_repeat_buyers_with_zero_mean_spend_are_left_out_and_counted(sample_rfm):
    positive = GammaGamma.fit(sample_rfm)
    zeros = pd.DataFrame({"frequency": [2, 5], "recency": [3.0, 10.0], "T": [20.0, 30.0], "monetary_value": 0.0})
    with_zeros = GammaGamma.fit(pd.concat([sample_rfm, zeros], ignore_index=True))
    assert with_zeros.n_excluded == 2 and with_zeros.n_customers == positive.n_customers == 946
    assert with_zeros.params == positive.params


def _numeric_derivatives(f, theta, eps=1e-6):
    """Central differences of f's value and gradient: the second method for the analytic ones."""
    k = len(theta)
    grad = np.array([(f(theta + eps * np.eye(k)[i])[0] - f(theta - eps * np.eye(k)[i])[0]) / (2 * eps)
                     for i in range(k)])
    hess = np.array([(f(theta + eps * np.eye(k)[i])[1] - f(theta - eps * np.eye(k)[i])[1]) / (2 * eps)
                     for i in range(k)])
    return grad, hess


def test_analytic_gradient_and_hessian_equal_finite_differences(sample_rfm):
    x, tx, T, m = (sample_rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
    w = np.ones(len(x))
    for theta in (np.array([0.3, 5.0, 0.9, 2.0]), np.array([1.7, 0.8, 3.0, 0.6])):
        def f(th):
            return BGNBD._loglik_derivatives(th, x, tx, T, w)
        value, grad, hess = f(theta)
        assert value == pytest.approx(BGNBD._loglik(theta, x, tx, T).sum(), rel=1e-12)
        num_grad, num_hess = _numeric_derivatives(f, theta)
        np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(hess, num_hess, rtol=1e-6, atol=1e-3)
    rep = x > 0
    for theta in (np.array([5.0, 3.0, 12.0]), np.array([1.2, 7.0, 40.0])):
        def g(th):
            return GammaGamma._loglik_derivatives(th, x[rep], m[rep], w[rep])
        value, grad, hess = g(theta)
        assert value == pytest.approx(GammaGamma._loglik(theta, x[rep], m[rep]).sum(), rel=1e-12)
        num_grad, num_hess = _numeric_derivatives(g, theta)
        np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(hess, num_hess, rtol=1e-6, atol=1e-3)


def test_estimates_equal_an_independent_derivative_free_fit_to_six_digits(sample_rfm, bgnbd):
    from scipy import optimize

    x, tx, T = (sample_rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    res = optimize.minimize(lambda u: -BGNBD._loglik(np.exp(u), x, tx, T).sum(), np.zeros(4), method="Nelder-Mead",
                            options={"maxiter": 40_000, "xatol": 1e-11, "fatol": 1e-12})
    np.testing.assert_allclose([bgnbd.params[k] for k in ("r", "alpha", "a", "b")], np.exp(res.x), rtol=1e-6)
    gg = GammaGamma.fit(sample_rfm)
    rep = x > 0
    m = sample_rfm["monetary_value"].to_numpy(dtype=float)[rep]
    res = optimize.minimize(lambda u: -GammaGamma._loglik(np.exp(u), x[rep], m).sum(), np.log([1.0, 1.0, 30.0]),
                            method="Nelder-Mead", options={"maxiter": 40_000, "xatol": 1e-11, "fatol": 1e-12})
    np.testing.assert_allclose([gg.params[k] for k in ("p", "q", "gamma")], np.exp(res.x), rtol=1e-6)


def test_standard_errors_equal_the_numerical_hessians(sample_rfm, bgnbd):
    from statsmodels.tools.numdiff import approx_hess3

    x, tx, T = (sample_rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    est = np.array([bgnbd.params[k] for k in ("r", "alpha", "a", "b")])
    hess = approx_hess3(est, lambda th: BGNBD._loglik(th, x, tx, T).sum())
    np.testing.assert_allclose(bgnbd.summary()["se"], np.sqrt(np.diag(np.linalg.inv(-hess))), rtol=1e-4)


def test_the_fit_does_not_depend_on_row_order_and_stops_at_a_zero_gradient(sample_rfm, bgnbd):
    shuffled = sample_rfm.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = BGNBD.fit(shuffled)
    assert again.params == bgnbd.params and again.standard_errors == bgnbd.standard_errors
    x, tx, T = (sample_rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    est = np.array([bgnbd.params[k] for k in ("r", "alpha", "a", "b")])
    _, grad, _ = BGNBD._loglik_derivatives(est, x, tx, T, np.ones(len(x)))
    assert np.max(np.abs(grad * est)) < 1e-8
