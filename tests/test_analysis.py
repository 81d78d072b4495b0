"""Analysis: tests checked against independent computations, planted effects found, the null finds nothing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import engagement as eg
from engagement.analysis.relations import associations, spearman_interval
from engagement.analysis.segments import segment_tests
from engagement.analysis.survival import kaplan_meier, logrank
from engagement.analysis.trends import change_tests, difference_test, forecast, trend_tests
from engagement.data.demo import write_demo
from engagement.data.load import default_demo_path
from engagement.measure import measure, measure_series, rfm_summary
from engagement.measure.customers import customer_summary, lifetimes


def _row(metric, value, n, se=np.nan, numerator=np.nan, denominator=np.nan, unit="fraction", method="", kind=None):
    return pd.Series({"metric": metric, "value": value, "n": n, "se": se, "numerator": numerator,
                      "denominator": denominator, "unit": unit, "method": method,
                      **({} if kind is None else {"kind": kind, "sampled": True})})


# --- independent computations ----------------------------------------------------------------


def test_two_proportion_test_worked_by_hand():
    a = _row("churn_rate", 30 / 200, 200, se=(0.15 * 0.85 / 200) ** 0.5, numerator=30, denominator=200)
    b = _row("churn_rate", 20 / 200, 200, se=(0.1 * 0.9 / 200) ** 0.5, numerator=20, denominator=200)
    res = difference_test(a, b)
    pooled = 50 / 400
    z = (0.15 - 0.10) / math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 200))  # 1.5119
    assert res["difference"] == pytest.approx(0.05)
    assert res["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert res["p_value"] == pytest.approx(0.1306, abs=1e-4)


def test_welch_from_summaries_equals_scipy_on_raw_data():
    rng = np.random.default_rng(4)
    x, y = rng.gamma(4, 15, 300), rng.gamma(4, 17, 250)
    a, b = eg.average_order_value(x), eg.average_order_value(y)
    # independent values (one order per customer, as the metric function assumes): a plain mean
    res = difference_test(_row("aov", a.value, a.n, a.se, unit="currency", kind="mean"),
                          _row("aov", b.value, b.n, b.se, unit="currency", kind="mean"))
    assert res["p_value"] == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)


def test_nps_difference_matches_the_metric_function():
    a, b = [10] * 60 + [8] * 10 + [0] * 30, [10] * 40 + [8] * 20 + [0] * 40
    ra, rb = eg.nps(a), eg.nps(b)
    res = difference_test(_row("nps", ra.value, ra.n, ra.se, unit="points"),
                          _row("nps", rb.value, rb.n, rb.se, unit="points"))
    assert res["p_value"] == pytest.approx(eg.nps_difference(a, b).details["p_value"])


def test_logrank_and_kaplan_meier_on_the_freireich_leukaemia_data():
    # Freireich et al. (1963) remission times in weeks; the log-rank chi-square is 16.79
    # (Kleinbaum & Klein, Survival Analysis, ch. 2).
    placebo = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
    drug = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
    drug_event = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    lives = pd.DataFrame({"duration": placebo + drug, "event": [1] * 21 + drug_event,
                          "segment_value": ["placebo"] * 21 + ["6-MP"] * 21})
    assert logrank(lives)["chi2"] == pytest.approx(16.79, abs=0.01)
    curves, medians = kaplan_meier(lives)
    med = medians.set_index("segment_value")["median"]
    assert med["placebo"] == 8 and med["6-MP"] == 23
    # S(6) for 6-MP by hand: 21 at risk, 3 events -> 18/21
    drug_curve = curves[curves.segment_value == "6-MP"].set_index("time")
    assert drug_curve.loc[6.0, "survival"] == pytest.approx(18 / 21)


def test_spearman_interval_by_hand():
    low, high = spearman_interval(0.5, 103)
    z, se = math.atanh(0.5), math.sqrt((1 + 0.125) / 100)
    assert (low, high) == pytest.approx((math.tanh(z - 1.959964 * se), math.tanh(z + 1.959964 * se)), abs=1e-6)


def test_weighted_trend_slope_matches_numpy():
    periods = ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    value = np.array([10.0, 12.5, 13.0, 16.0, 17.5, 20.0])
    se = np.array([1.0, 0.8, 1.2, 0.9, 1.1, 1.0])
    s = pd.DataFrame({"period": periods, "segment": "all", "segment_value": "all", "metric": "aov", "value": value,
                      "se": se, "status": "ok", "unit": "currency"})
    t = trend_tests(s).iloc[0]
    slope = np.polyfit(np.arange(6), value, 1, w=1 / se)[0]
    assert t.slope == pytest.approx(slope) and t.direction == "up"
    f = forecast(s, metric="aov", horizon=2)
    assert f.period.tolist() == ["2024Q3", "2024Q4"] and (f.ci_low < f.value).all() and (f.value < f.ci_high).all()


# --- the planted demo ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    ds = eg.load(default_demo_path())
    table = measure(ds, "2024Q4")
    return ds, table


def _sig(frame: pd.DataFrame, **where) -> pd.Series:
    m = np.ones(len(frame), dtype=bool)
    for k, v in where.items():
        m &= frame[k] == v
    rows = frame[m]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_planted_changes_in_q4_are_detected(demo):
    _, table = demo
    ch = change_tests(table)
    prev = ch[ch.comparison == "previous period"]
    churn = _sig(prev, metric="churn_rate", segment="plan", segment_value="basic")
    assert churn.significant and churn.difference > 0
    frt = _sig(prev, metric="first_response_time", segment="all", segment_value="all")
    assert frt.significant and frt.difference > 0
    csat = _sig(prev, metric="csat", segment="all", segment_value="all")
    assert csat.significant and csat.difference < 0
    nps = _sig(prev, metric="nps", segment="all", segment_value="all")
    assert nps.significant and nps.difference < 0
    # churn in the other plans did not rise significantly
    for plan in ("standard", "premium"):
        other = _sig(prev, metric="churn_rate", segment="plan", segment_value=plan)
        assert not (other.significant and other.difference > 0)


def test_planted_trends_are_detected(demo):
    ds, _ = demo
    series = measure_series(ds, "2024Q4", periods=4, segments=[])
    tr = trend_tests(series, metrics=["aov", "nps"])
    aov = _sig(tr, metric="aov")
    assert aov.direction == "up"
    nps_first_three = trend_tests(series, metrics=["nps"], periods=["2024Q1", "2024Q2", "2024Q3"])
    assert _sig(nps_first_three, metric="nps").direction == "up"


def test_planted_segment_gaps_are_detected(demo):
    _, table = demo
    seg = segment_tests(table)
    premium = _sig(seg, metric="aov", segment="plan", segment_value="premium")
    assert premium.significant and premium.difference > 0
    tenure = _sig(seg, metric="nps", segment="tenure_band", segment_value="more than 1 year")
    assert tenure.significant and tenure.difference > 0
    cac = table[(table.metric == "cac") & (table.segment == "acquisition_channel") & (table.period_role == "current")]
    cac = cac.set_index("segment_value").value
    assert cac["paid_social"] > 2 * cac.drop("paid_social").max()


def _channel_rows(metric, counts, n=200):
    return [{"metric": metric, "segment": "acquisition_channel", "segment_value": v, "period": "2024Q4",
             "period_role": "current", "status": "ok", "unit": "fraction", "method": "Wilson", "value": k / n,
             "numerator": k, "denominator": n, "n": n, "se": math.sqrt(k / n * (1 - k / n) / n)}
            for v, k in zip(("email", "referral", "search"), counts, strict=True)]


def test_comparisons_by_construction_are_left_out_before_the_correction():
    # referred customers are all in the referral channel (certain, p ~ 0); churn differs a little by channel
    table = pd.DataFrame(_channel_rows("referral_rate", (0, 200, 0)) + _channel_rows("churn_rate", (20, 34, 22)))
    seg = segment_tests(table)
    churn = seg[seg.metric == "churn_rate"].set_index("segment_value")
    assert seg[seg.metric == "referral_rate"].p_value.isna().all()
    assert seg[seg.metric == "referral_rate"].test.str.contains("by construction").all()
    # Benjamini-Hochberg by hand over the three churn tests only: q_(i) = min over j >= i of p_(j) m / j
    p = churn.p_value.sort_values()
    q = np.minimum.accumulate((p * 3 / np.arange(1, 4)).to_numpy()[::-1])[::-1]
    assert churn.q_value[p.index].to_numpy() == pytest.approx(q, rel=1e-12)
    # counted in the family, the three certain discoveries loosen every other threshold: the referral
    # channel's churn gap (p = 0.024) would pass at q = 0.036 where the honest family gives 0.072
    everything = segment_tests(table, exclude={})
    assert everything.p_value.notna().sum() == 6
    loose = everything[everything.metric == "churn_rate"].set_index("segment_value").q_value
    assert (loose <= churn.q_value).all()
    assert loose["referral"] < 0.05 <= churn.q_value["referral"]
    text = eg.analysis.corrected_family(seg)
    assert text.startswith("0 of the 3 segment comparisons tested are significant")
    assert "3 comparisons of referral rate across acquisition channel (holds by construction" in text


def test_planted_relationships_are_detected(demo):
    ds, _ = demo
    orders = ds["orders"]
    rfm = rfm_summary(orders, calibration_end="2024-12-31")
    bg, gg = eg.BGNBD.fit(rfm), eg.GammaGamma.fit(rfm)
    rfm["clv"] = eg.customer_lifetime_value(bg, gg, rfm)
    summary = customer_summary(ds, "2024Q4", clv=rfm)
    assoc = associations(summary, variables=["nps", "churned", "aov", "clv"]).set_index(["variable", "other"])
    assert assoc.loc[("nps", "clv"), "direction"] == "positive"
    assert assoc.loc[("nps", "churned"), "direction"] == "negative"
    assert assoc.loc[("aov", "clv"), "direction"] == "positive"


def test_survival_by_plan_on_demo(demo):
    ds, _ = demo
    lives = lifetimes(ds, by="plan")
    curves, medians = kaplan_meier(lives)
    assert set(medians.segment_value) == {"basic", "premium", "standard"}
    assert (curves.groupby("segment_value").survival.apply(lambda s: s.is_monotonic_decreasing)).all()
    # the log-rank statistic computed a second way, from its definition: at each event time the observed
    # minus expected events per plan and their hypergeometric covariance
    lr = logrank(lives)
    groups = sorted(lives.segment_value.unique())
    o_e, cov = np.zeros(len(groups)), np.zeros((len(groups), len(groups)))
    for t in np.unique(lives.duration[lives.event == 1]):
        at_risk = lives[lives.duration >= t]
        n_k = at_risk.groupby("segment_value").size().reindex(groups, fill_value=0).to_numpy(float)
        d_k = at_risk[(at_risk.duration == t) & (at_risk.event == 1)].groupby("segment_value").size().reindex(
            groups, fill_value=0).to_numpy(float)
        n, d = n_k.sum(), d_k.sum()
        o_e += d_k - d * n_k / n
        if n > 1:
            cov += d * (n - d) / (n - 1) * (np.diag(n_k / n) - np.outer(n_k / n, n_k / n))
    chi2 = float(o_e[:-1] @ np.linalg.solve(cov[:-1, :-1], o_e[:-1]))
    assert lr["chi2"] == pytest.approx(chi2, rel=1e-6) and lr["df"] == len(groups) - 1
    assert lr["p_value"] < 0.05  # the demo plants a higher churn in the basic plan (p = 0.029 on this seed)


# --- the null demo ---------------------------------------------------------------------------


def test_null_dataset_yields_at_most_five_percent_significant(tmp_path):
    write_demo(tmp_path, 4000, seed=11, mode="null")
    ds = eg.load(tmp_path)
    table = measure(ds, "2024Q4")
    ch, seg = change_tests(table), segment_tests(table)
    tested = pd.concat([ch[["p_value", "significant"]], seg[["p_value", "significant"]]]).dropna(subset=["p_value"])
    assert len(tested) > 200
    assert tested.significant.mean() <= 0.05
    summary = customer_summary(ds, "2024Q4")
    # churned vs activity is linked by construction (leavers stop being active), so it is not in the null test
    assoc = associations(summary, variables=["nps", "csat", "churned", "aov"])
    assert assoc.significant.mean() <= 0.05


def test_ratios_of_population_counts_are_not_tested():
    a = _row("follower_growth_rate", 0.054, 5000, numerator=270, denominator=5000)
    b = _row("follower_growth_rate", 0.037, 5000, numerator=185, denominator=5000)
    assert np.isnan(difference_test(a, b)["p_value"])


def test_seasonal_components_recover_a_known_pattern():
    from engagement.analysis import seasonal_components

    months = pd.period_range("2022-01", periods=36, freq="M").astype(str)
    season = np.tile(np.sin(np.arange(12) / 12 * 2 * np.pi), 3)
    value = 50 + 0.2 * np.arange(36) + 3 * season
    s = pd.DataFrame({"period": months, "segment": "all", "segment_value": "all", "metric": "aov", "value": value,
                      "status": "ok"})
    parts = seasonal_components(s, metric="aov")
    assert parts is not None and len(parts) == 36
    assert parts.seasonal.iloc[:12].to_numpy() == pytest.approx(3 * season[:12], abs=0.05)
    assert seasonal_components(s.iloc[:23], metric="aov") is None  # fewer than two years


def test_period_correlations_carry_a_warning():
    from engagement.analysis import period_correlations

    periods = [f"2023Q{i}" for i in range(1, 5)] + [f"2024Q{i}" for i in range(1, 5)]
    x = np.arange(8.0)
    rows = [{"period": p, "segment": "all", "segment_value": "all", "metric": m, "value": v, "status": "ok"}
            for m, vals in (("nps", x), ("csat", x**2), ("aov", -x)) for p, v in zip(periods, vals, strict=True)]
    out = period_correlations(pd.DataFrame(rows), metrics=["nps", "csat", "aov"]).set_index(["variable", "other"])
    assert out.loc[("nps", "csat"), "rho"] == pytest.approx(1.0) and out.loc[("nps", "aov"), "rho"] == -1.0
    assert (out.warning == "only 8 periods: treat as a hint, not evidence").all()


def _plan_region_churn(cells: list[tuple[str, str, int, int]]):
    """Customers of the contract's minimum (no orders, no events) with plan, region and a Q4 cancellation."""
    rows = []
    for plan, region, n, lost in cells:
        rows += [(plan, region, i < lost) for i in range(n)]
    c = pd.DataFrame(rows, columns=["plan", "region", "lost"])
    c["customer_id"] = [f"{i}.0" for i in range(len(c))]  # ids as an export writes them
    c["signup_at"] = pd.Timestamp("2023-03-01")
    c["cancelled_at"] = c.lost.map({True: pd.Timestamp("2024-11-15"), False: pd.NaT})
    ds = eg.load({"customers": c.drop(columns="lost")})
    tests = segment_tests(measure(ds, "2024Q4", segments=["plan", "region"], compare=False), metrics=["churn_rate"])
    return ds, tests


def test_a_gap_that_another_segments_mix_explains_is_not_its_own_and_a_real_one_stays():
    from engagement.analysis.segments import explained_gaps
    from engagement.plan.findings import findings

    # plan drives churn (30% against 10%); the south holds 3/4 of the basic customers: 25% against 15% raw
    mix = [("basic", "south", 300, 90), ("basic", "north", 100, 30),
           ("premium", "south", 100, 10), ("premium", "north", 300, 30)]
    ds, tests = _plan_region_churn(mix)
    south = tests[(tests.segment == "region") & (tests.segment_value == "south")].iloc[0]
    assert south.significant and math.isclose(south.difference, 100 / 400 - 60 / 400)
    out = explained_gaps(ds, "2024Q4", tests)
    by = out.set_index(["segment", "segment_value"])
    assert by.loc[("region", "south"), "explained_by"] == "plan" and by.loc[("region", "north"), "explained_by"] == "plan"
    assert math.isclose(by.loc[("region", "south"), "within_difference"], 0.0, abs_tol=1e-12)
    assert by.loc[("plan", "basic"), "explained_by"] == ""  # the explaining segment is not explained away in turn
    found = findings(pd.DataFrame(columns=["metric", "segment", "segment_value", "period_role", "status", "value",
                                           "ci_low", "ci_high", "period", "unit", "denominator"]),
                     changes=pd.DataFrame(), segments=out, trends=pd.DataFrame())
    assert found.segment.tolist() == ["plan"]
    assert "it accounts for the gap of region north" in found.sentence.iloc[0]

    # the south churns 10 points more within both plans: weights 300/400 and 100/400 of the south's customers
    own = [("basic", "south", 300, 120), ("basic", "north", 100, 30),
           ("premium", "south", 100, 20), ("premium", "north", 300, 30)]
    ds, tests = _plan_region_churn(own)
    out = explained_gaps(ds, "2024Q4", tests).set_index(["segment", "segment_value"])
    south = out.loc[("region", "south")]
    assert south.explained_by == "" and math.isclose(south.within_difference, 0.75 * 0.1 + 0.25 * 0.1)
    # its variance by hand: Agresti-Caffo shares of the four cells, the strata weighted by the south's customers
    def var(k, n):
        p = (k + 1) / (n + 2)
        return p * (1 - p) / (n + 2)
    v = 0.75**2 * (var(120, 300) + var(30, 100)) + 0.25**2 * (var(20, 100) + var(30, 300))
    assert math.isclose(south.within_p, 2 * stats.norm.sf(0.1 / math.sqrt(v)), rel_tol=1e-9)


def test_crossed_segments_split_back_whatever_the_labels_hold():
    from engagement.measure.segments import crossed, split_crossed

    awkward = [("a*b:", ":x", 200, 60), ("a*b:", "1:y", 200, 60), ("<b>", ":x", 200, 20), ("<b>", "1:y", 200, 20)]
    ds, _ = _plan_region_churn(awkward)
    t = measure(ds, "2024Q4", segments=[crossed("plan", "region")], compare=False)
    churn = t[(t.metric == "churn_rate") & (t.segment == "plan*region")]
    got = {split_crossed(v): (int(k), int(d)) for v, k, d in zip(churn.segment_value, churn.numerator,
                                                                  churn.denominator, strict=True)}
    assert got == {(p, r): (lost, n) for p, r, n, lost in awkward}


def test_changes_within_re_cut_value_tiers_are_left_out_before_the_correction():
    rows = []
    for role, period, k_tier, k_all in (("current", "2024Q4", 60, 50), ("previous", "2024Q3", 20, 40)):
        rows += [{"metric": "churn_rate", "segment": seg, "segment_value": v, "period": period, "period_role": role,
                  "status": "ok", "unit": "fraction", "method": "Wilson", "value": k / 400, "numerator": k,
                  "denominator": 400, "n": 400, "se": None}
                 for seg, v, k in (("all", "all", k_all), ("value_tier", "low", k_tier))]
    out = change_tests(pd.DataFrame(rows))
    tier = out[out.segment == "value_tier"].iloc[0]
    assert np.isnan(tier.p_value) and tier.test.startswith("none (value tiers are re-cut every period")
    assert tier.difference == pytest.approx(0.1) and not tier.significant
    overall = out[out.segment == "all"].iloc[0]
    # a family of one: the overall test's q is its own p
    assert overall.q_value == pytest.approx(overall.p_value)
