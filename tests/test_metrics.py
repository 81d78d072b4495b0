"""Metric functions: the seeds' worked examples (corrected), hand-worked intervals,
refusals of impossible input, missing and empty input, and input flavours."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import engagement as eg

Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


# --- the seeds' worked examples ------------------------------------------------------------


def test_seed_csat_example_mean_is_4_2_not_4():
    # seed 000: "(4+5+3+4+5)/5 = 4" is an arithmetic error: the sum is 21.
    r = eg.csat([4, 5, 3, 4, 5], method="mean")
    assert r.value == pytest.approx(4.2)
    # t interval by hand: sd = sqrt(0.7), t(0.975, 4) = 2.776445 (table value)
    half = 2.776445 * math.sqrt(0.7) / math.sqrt(5)
    assert r.ci_low == pytest.approx(4.2 - half, abs=1e-5)
    # 4.2 + half is 5.24, above the scale's top: no mean rating can be, so the interval ends at 5
    assert 4.2 + half > 5 and r.ci_high == 5


def test_seed_csat_example_as_top2box_is_80_percent():
    r = eg.csat([4, 5, 3, 4, 5])
    assert r.value == pytest.approx(0.8)
    assert (r.numerator, r.denominator) == (4, 5)
    low, high = wilson_by_hand(4, 5)
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_seed_nps_example_is_40():
    # seed 000: (50/100)*100 - (10/100)*100 = 40; seed 003: 60% - 20% = 40.
    assert eg.nps([9] * 50 + [7] * 40 + [6] * 10).value == pytest.approx(40.0)
    assert eg.nps([10] * 60 + [8] * 20 + [0] * 20).value == pytest.approx(40.0)


def test_nps_is_over_respondents_not_customer_base():
    # seed 004 divides by "your overall customer base". With 100 respondents of
    # 1,000 customers, that would give 4 instead of 40; we have no such argument.
    r = eg.nps([10] * 50 + [8] * 40 + [3] * 10)
    assert r.denominator == 100 and r.value == pytest.approx(40.0)


def test_nps_zero_is_a_detractor_and_ten_a_promoter():
    # seed 001 says answers run 1-10; a 0 must still be a valid detractor answer.
    r = eg.nps([0, 10])
    assert r.details["detractors"] == 1 and r.details["promoters"] == 1 and r.value == 0.0


def test_seed_churn_example():
    r = eg.churn_rate(100, 1000)
    assert r.value == pytest.approx(0.10)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson_by_hand(100, 1000), abs=1e-12)


def test_churn_does_not_net_out_new_customers():
    # seed 001's "(end - start) / start": 1,000 at start, 100 lost, 100 new -> 0.
    # The real churn is 10%.
    start, lost, new = 1000, 100, 100
    end = start - lost + new
    assert eg.churn_rate(lost, start).value == pytest.approx(0.10)
    # with no new customer lost, the practitioner retention (E - N) / S is exactly 1 - churn
    assert eg.retention_rate(end, new, start).value == pytest.approx(1 - eg.churn_rate(lost, start).value)


def test_seed_retention_example_and_the_bias_of_e_minus_n():
    assert eg.retention_rate(1100, 200, 1000).value == pytest.approx(0.90)
    # 1,000 starters, 920 of them retained; 200 acquired of whom 50 already left:
    # E = 920 + 150 = 1070, N = 200 -> (E - N) / S = 0.87, but true retention is 0.92.
    r = eg.retention_rate(1070, 200, 1000, retained=920)
    assert r.value == pytest.approx(0.92)
    assert r.details["ena_value"] == pytest.approx(0.87)


def test_seed_clv_example():
    assert eg.clv(100, 5, 3).value == pytest.approx(1500.0)
    assert eg.clv(100, 5, 3, margin=0.25).value == pytest.approx(375.0)


def test_seed_bounce_example():
    assert eg.bounce_rate(400, 500).value == pytest.approx(0.8)


def test_seed_conversion_and_ctr():
    assert eg.conversion_rate(30, 1200).value == pytest.approx(0.025)
    assert eg.click_through_rate(45, 1500).value == pytest.approx(0.03)


# --- intervals worked independently --------------------------------------------------------


def test_nps_adjusted_wald_by_hand():
    # 30 promoters, 50 passives, 20 detractors; adjusted counts 30.75, 20.75 of 103.
    r = eg.nps([10] * 30 + [7] * 50 + [2] * 20)
    p, d, n = 30.75 / 103, 20.75 / 103, 103
    centre = p - d
    se = math.sqrt((p + d - centre**2) / n)
    assert r.value == pytest.approx(10.0)
    assert r.ci_low == pytest.approx(100 * (centre - Z95 * se), abs=1e-9)
    assert r.ci_high == pytest.approx(100 * (centre + Z95 * se), abs=1e-9)


def test_nps_wald_by_hand():
    r = eg.nps([10] * 30 + [7] * 50 + [2] * 20, method="wald")
    var = 0.3 + 0.2 - 0.1**2
    half = 100 * Z95 * math.sqrt(var / 100)
    assert (r.ci_low, r.ci_high) == pytest.approx((10 - half, 10 + half), abs=1e-9)


def test_nps_bootstrap_is_close_to_wald_for_large_n():
    rng = np.random.default_rng(1)
    scores = rng.choice([10, 8, 3], size=800, p=[0.5, 0.3, 0.2])
    boot = eg.nps(scores, method="bootstrap", seed=3)
    wald = eg.nps(scores, method="wald")
    assert boot.value == wald.value
    assert boot.ci_low == pytest.approx(wald.ci_low, abs=1.0)
    assert boot.ci_high == pytest.approx(wald.ci_high, abs=1.0)
    assert eg.nps(scores, method="bootstrap", seed=3).ci_low == boot.ci_low  # seeded


def test_nps_difference_z_by_hand():
    a = [10] * 60 + [8] * 10 + [0] * 30
    b = [10] * 40 + [8] * 20 + [0] * 40
    d = eg.nps_difference(a, b)
    va = (0.6 + 0.3 - 0.3**2) / 100
    vb = (0.4 + 0.4 - 0.0**2) / 100
    z = 0.3 / math.sqrt(va + vb)
    assert d.value == pytest.approx(30.0)
    assert d.details["z"] == pytest.approx(z)
    from scipy.stats import norm

    assert d.details["p_value"] == pytest.approx(2 * norm.sf(z))


def test_median_interval_order_statistics():
    # n = 10: the 95% distribution-free interval for the median is [x(2), x(9)]
    # (binomial(10, 0.5): P(1 < K < 9) = 0.9785 >= 0.95, the narrowest symmetric one).
    x = np.arange(1, 11) * 60.0
    r = eg.first_response_time(x)
    assert r.value == pytest.approx(330.0)
    assert (r.ci_low, r.ci_high) == (120.0, 540.0)


def test_pooled_social_rate_ratio_interval_by_hand():
    e = np.array([10.0, 30.0, 20.0, 40.0])
    b = np.array([100.0, 200.0, 300.0, 400.0])
    r = eg.social_engagement_rate(e, b)
    R = 100 / 1000
    resid = e - R * b
    var = (resid**2).sum() / (4 * 3 * b.mean() ** 2)
    half = 3.182446 * math.sqrt(var)  # t(0.975, 3)
    assert r.value == pytest.approx(0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx((R - half, R + half), abs=1e-6)


# --- impossible input is refused with name, count and example ------------------------------


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: eg.nps([3, 11, 12, 9]), ["`scores`", "2 of 4", "11"]),
        (lambda: eg.nps([7.5, 9]), ["`scores`", "1 of 2", "7.5", "whole"]),
        (lambda: eg.nps(["a", 9]), ["`scores`", "not numbers", "'a'"]),
        (lambda: eg.csat([0, 5]), ["`ratings`", "1 of 2", "0"]),
        (lambda: eg.churn_rate(-1, 10), ["`lost`", "negative"]),
        (lambda: eg.churn_rate(11, 10), ["`lost`", "`at_start`", "11", "10"]),
        (lambda: eg.click_through_rate(120, 100), ["`clicks`", "`impressions`"]),
        (lambda: eg.churn_rate(2.5, 10), ["`lost`", "whole"]),
        (lambda: eg.retention_rate(100, 150, 120), ["negative", "retained"]),
        (lambda: eg.clv(10, 2, 3, margin=1.5), ["`margin`"]),
        (lambda: eg.stickiness([10, 2000], 1000), ["`dau`", "1 of 2", "2000"]),
        (lambda: eg.first_week_engagement([0, 8]), ["`active_days`", "8"]),
        (lambda: eg.ces([1, 2], scale=6), ["`scale`", "odd"]),
        (lambda: eg.csat([4], method="median"), ["`method`", "top2box"]),
        (lambda: eg.nps([9], confidence=95), ["`confidence`"]),
        (lambda: eg.average_order_value([10, -5]), ["`revenue`", "1 of 2", "-5"]),
    ],
)
def test_impossible_input_is_refused(call, fragments):
    with pytest.raises(ValueError) as err:
        call()
    for fragment in fragments:
        assert fragment in str(err.value)


def test_response_before_open_is_refused():
    opened = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:00"])
    replied = pd.to_datetime(["2024-01-01 09:00", "2024-01-01 11:00"])
    with pytest.raises(ValueError, match=r"1 of 2 tickets end before"):
        eg.first_response_time(opened, replied)


# --- missing and empty ---------------------------------------------------------------------


def test_missing_values_are_counted_not_dropped_silently():
    r = eg.nps([10, None, 0, np.nan, 8])
    assert r.n == 3 and r.n_missing == 2 and r.value == pytest.approx(0.0)
    r = eg.csat(pd.Series([5, pd.NA, 4], dtype="Int64"))
    assert r.n == 2 and r.n_missing == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: eg.nps([]),
        lambda: eg.csat([]),
        lambda: eg.csat([], method="mean"),
        lambda: eg.ces([]),
        lambda: eg.churn_rate(0, 0),
        lambda: eg.retention_rate(0, 0, 0),
        lambda: eg.average_order_value(0, 0),
        lambda: eg.average_order_value([]),
        lambda: eg.cac(100, 0),
        lambda: eg.bounce_rate(0, 0),
        lambda: eg.email_open_rate(0, 0),
        lambda: eg.first_response_time([]),
        lambda: eg.social_engagement_rate(0, 0),
        lambda: eg.stickiness(0, 0),
    ],
)
def test_empty_population_gives_nan_with_n_zero(call):
    r = call()
    assert math.isnan(r.value) and r.n == 0


# --- input flavours ------------------------------------------------------------------------

SCORES = [10, 9, 8, 7, 6, 0, 10, 3]


@pytest.mark.parametrize(
    "flavour",
    [
        list,
        np.array,
        pd.Series,
        lambda v: pd.Series(v, dtype="Int64"),
        lambda v: pd.Series(v, dtype="float64[pyarrow]"),
        lambda v: pd.Series(v, index=range(100, 100 + len(v))),
    ],
)
def test_input_flavours_agree(flavour):
    base = eg.nps(SCORES)
    r = eg.nps(flavour(SCORES))
    assert (r.value, r.ci_low, r.ci_high, r.n) == (base.value, base.ci_low, base.ci_high, base.n)


def test_durations_accept_timedeltas_and_seconds():
    td = pd.to_timedelta([60, 180, 300], unit="s")
    assert eg.average_session_duration(td).value == eg.average_session_duration([60, 180, 300]).value == 180.0


# --- the result type -----------------------------------------------------------------------


def test_result_is_immutable_and_converts():
    r = eg.nps([10, 9, 0])
    with pytest.raises(AttributeError):
        r.value = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.details["promoters"] = 0  # type: ignore[index]
    row = r.to_frame()
    assert list(row.columns[:5]) == ["metric", "value", "ci_low", "ci_high", "n"]
    assert row.shape == (1, 12)
    # promoters 2/3, detractors 1/3 of 3: SE = 100 sqrt((p + d - (p - d)^2) / n) = 100 sqrt((8/9) / 3)
    assert row["se"].item() == pytest.approx(100 * (8 / 27) ** 0.5)
    assert "nps = +33.3" in str(r) and "95% CI" in str(r)
    assert "<table" in r._repr_html_()


def test_ces_directions():
    seven = eg.ces([7, 6, 5, 4, 2], method="low_effort_share")
    five = eg.ces([1, 2, 3, 4, 5], scale=5, method="low_effort_share")
    assert seven.value == pytest.approx(0.6) and five.value == pytest.approx(0.4)
    assert five.details["higher_is_better"] is False
    net = eg.ces([7, 6, 5, 4, 2], method="net")
    assert net.value == pytest.approx(40.0)


def test_compound_churn():
    assert eg.compound_churn_rate(0.05, 12) == pytest.approx(1 - 0.95**12)


def test_engagement_score_weights_and_p90():
    df = pd.DataFrame({"a": [0, 1, 2, 3, 4, 5, 6, 7, 8, 10], "b": [0] * 10})
    raw = eg.engagement_scores(df, {"a": 2.0, "b": 1.0})
    assert raw.tolist() == [2.0 * v for v in df["a"]]
    scaled = eg.engagement_scores(df, {"a": 1.0}, normalize="p90")
    p90 = np.quantile(df["a"], 0.9)
    assert scaled.iloc[5] == pytest.approx(100 * 5 / p90) and scaled.max() == 100
    with pytest.raises(ValueError, match="not in `activity`"):
        eg.engagement_scores(df, {"c": 1})


def test_referral_definitions():
    assert eg.referral_rate(30, 200).details["definition"] == "referred_share_of_new"
    r = eg.referral_rate(12, 400, definition="referrer_participation")
    assert r.value == pytest.approx(0.03) and r.denominator == 400
