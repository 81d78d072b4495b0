"""Data unlike the demo: only customers and orders, no cancellations, a short history, optional columns left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import engagement as eg
from engagement.measure import data_range, measure, measure_series

DATES = pd.to_datetime


def _shop() -> dict[str, pd.DataFrame]:
    """Five customers of a shop (no cancellations), orders from November 2023 to March 2024."""
    customers = pd.DataFrame({"customer_id": list("abcde"), "signup_at": DATES(["2023-11-01"] * 5)})
    orders = pd.DataFrame({
        "order_id": range(9), "customer_id": list("abbcdd") + ["e", "a", "b"],
        "ordered_at": DATES(["2024-02-10", "2024-02-15", "2024-03-20", "2024-03-10", "2024-02-20", "2024-03-01",
                             "2023-12-01", "2023-11-02", "2023-11-03"]),
        "revenue": [10.0, 20.0, 30.0, 15.0, 5.0, 25.0, 40.0, 8.0, 12.0]})
    return {"customers": customers, "orders": orders}


def _row(t: pd.DataFrame, metric: str, role: str = "current") -> pd.Series:
    hit = t[(t.metric == metric) & (t.segment == "all") & (t.period_role == role)]
    assert len(hit) == 1, (metric, role)
    return hit.iloc[0]


def test_without_cancellations_churn_is_unavailable_and_inactivity_churn_is_measured():
    t = measure(_shop(), "2024-03", segments=[], inactivity_days=30)
    for metric in ("churn_rate", "retention_rate", "clv"):
        r = _row(t, metric)
        assert r.status == "unavailable" and r.reason.startswith("needs customers.cancelled_at"), metric
    # by hand: ordered in the 30 days before March (from 2024-01-31): a, b, d; of them no order in the 30 days
    # before April (from 2024-03-02): a (last order 02-10) and d (last order 03-01); b ordered on 03-20
    r = _row(t, "inactivity_churn_rate")
    assert (r.numerator, r.denominator, r.value) == (2, 3, pytest.approx(2 / 3))
    assert r.kind == "proportion" and "30 days" in r.method


def test_the_business_model_can_be_overridden():
    data = _shop()
    data["customers"] = data["customers"].assign(cancelled_at=DATES([None, "2024-03-15", None, None, None]))
    sub = measure(data, "2024-03", segments=[], compare=False)
    assert _row(sub, "churn_rate").value == pytest.approx(1 / 5)
    shop = measure(data, "2024-03", segments=[], compare=False, business_model="non_contractual")
    assert _row(shop, "churn_rate").status == "unavailable"
    with pytest.raises(ValueError, match="needs customers.cancelled_at"):
        measure(_shop(), "2024-03", business_model="subscription")
    with pytest.raises(ValueError, match="business_model"):
        measure(_shop(), "2024-03", business_model="saas")


def test_comparisons_before_the_data_are_no_comparison_not_zeros():
    t = measure(_shop(), "2024Q1", segments=[])
    year_ago = t[t.period_role == "year_ago"]
    assert (year_ago.status == "unavailable").all() and year_ago.value.isna().all()
    assert year_ago.reason.iloc[0] == "no comparison: 2023Q1 ends before the data starts (2023-11-01)"
    # the previous quarter overlaps the data: measured (revenue of the orders from November and December)
    assert _row(t, "revenue", "previous").value == pytest.approx(40.0 + 8.0 + 12.0)
    # a window that reaches back before the data: unavailable with the reason, not a measured 0%
    r = _row(t, "inactivity_churn_rate")
    assert r.status == "unavailable" and r.reason == "needs 365 days of orders before 2024Q1; the data starts on 2023-11-01"


def test_a_period_outside_the_data_is_refused_with_the_datas_range():
    assert [str(d.date()) for d in data_range(_shop())] == ["2023-11-01", "2024-03-20"]
    with pytest.raises(ValueError, match="outside the data, which runs from 2023-11-01 to 2024-03-20"):
        measure(_shop(), "2022Q4")


def test_a_short_history_gives_a_shorter_series():
    s = measure_series(_shop(), "2024-03", periods=8, segments=[])
    assert sorted(s.period.unique()) == ["2023-11", "2023-12", "2024-01", "2024-02", "2024-03"]


def test_default_segments_are_those_the_data_has():
    t = measure(_shop(), "2024Q1")  # the default segments name plan, region, ...: this customers table has none
    assert set(t.segment) == {"all", "tenure_band", "new_vs_returning", "value_tier"}
    with pytest.raises(ValueError, match="'plan' is not a customers column"):
        measure(_shop(), "2024Q1", segments=["plan"])  # named by the analyst: it must exist


def test_pageviews_without_customer_ids_are_anonymous_sessions():
    data = _shop()
    data["pageviews"] = pd.DataFrame({"visitor_id": ["v1", "v1", "v2"], "page": ["/", "/a", "/"],
                                      "viewed_at": DATES(["2024-03-01 10:00", "2024-03-01 10:05", "2024-03-02 09:00"])})
    t = measure(data, "2024-03", segments=["tenure_band"], compare=False)
    visits = t[t.metric == "website_visits"]
    assert visits[visits.segment == "all"].value.item() == 2 and (visits[visits.segment != "all"].value == 0).all()
    assert _row(t, "bounce_rate").value == pytest.approx(0.5)


def test_columns_with_no_value_at_all_load_as_missing_values_of_their_type():
    """Nobody has cancelled yet, and no pageview is logged in: ``cancelled_at`` and ``customer_id`` hold only None.
    The engine cannot type such a column (DuckDB refused the table); they load as missing timestamps and ids."""
    data = _shop()
    data["customers"] = data["customers"].assign(cancelled_at=[None] * 5)
    data["pageviews"] = pd.DataFrame({"visitor_id": ["v1", "v1", "v2"], "customer_id": [None] * 3,
                                      "page": ["/", "/a", "/"],
                                      "viewed_at": DATES(["2024-03-01 10:00", "2024-03-01 10:05", "2024-03-02 09:00"])})
    ds = eg.load(data)
    assert ds["customers"].schema()["cancelled_at"].is_timestamp()
    t = measure(ds, "2024-03", segments=[], compare=False)
    # five subscribers at the start of March, none lost: churn 0 of 5, measured (the column is there, empty)
    assert (_row(t, "churn_rate").value, _row(t, "churn_rate").n) == (0.0, 5)
    assert _row(t, "website_visits").value == 2 and _row(t, "bounce_rate").value == pytest.approx(0.5)


def test_validate_reports_quality_without_rendering(tmp_path, capsys):
    import json

    from engagement.cli import main

    data = _shop()
    data["orders"].loc[0, "revenue"] = -5.0  # impossible: rejected with its reason
    for name, frame in data.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    assert main(["validate", str(tmp_path), "--json"]) == 1  # rows were rejected
    report = json.loads(capsys.readouterr().out)
    assert {t["table"]: t["rows_rejected"] for t in report["tables"]} == {"customers": 0, "orders": 1}
    assert report["problems"][0]["rule"] == "negative_revenue" and report["business_model"] == "non_contractual"
    assert report["data_range"] == ["2023-11-01", "2024-03-20"]
    assert "inactivity_churn_rate" in report["metrics_supported"]
    assert report["metrics_unavailable"]["churn_rate"].startswith("needs customers.cancelled_at")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", str(empty)]) == 2  # unusable: no customers table
    assert "the data cannot be used" in capsys.readouterr().err


def test_headline_reads_unavailable_for_an_empty_population_and_a_missing_period():
    from engagement.present import headline

    t = measure(_shop(), "2023-11", segments=[])  # everyone signed up in November: nobody was there at its start
    h = headline(t, ["engagement_rate", "inactivity_churn_rate", "aov"]).set_index("metric")
    assert h.loc["Customer engagement rate", "this period"] == "unavailable"
    assert h.loc["Customer engagement rate", "95% interval"].startswith("nothing to measure this period")
    assert h.loc["Inactivity churn rate", "95% interval"].startswith("needs 365 days of orders before 2023-11")
    assert h.loc["Average order value (ATV)", "this period"] == "$10.00"  # one order of $8 and one of $12


def _series(metric: str, values: list[float]) -> pd.DataFrame:
    periods = [f"{2020 + i // 4}Q{i % 4 + 1}" for i in range(len(values))]
    return pd.DataFrame({"metric": metric, "segment": "all", "segment_value": "all", "status": "ok",
                         "period": periods, "value": values, "se": float("nan"), "unit": "count"})


def test_forecasts_of_quantities_that_cannot_be_negative_stay_in_range():
    from engagement.analysis.trends import forecast

    falling = _series("orders", [400.0, 300, 220, 150, 100, 60, 30, 12])
    raw = forecast(falling, metric="orders", horizon=4, limits=(None, None))
    assert (raw["ci_low"] < 0).any()  # a damped linear trend on the raw scale predicts negative orders
    bounded = forecast(falling, metric="orders", horizon=4)
    assert (bounded[["value", "ci_low", "ci_high"]] > 0).all().all()
    assert bounded["method"].str.endswith("on the log scale").all()
    # a share close to 1 stays below 1, with its interval, on the logit scale
    share = forecast(_series("csat", [0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.993]), metric="csat", horizon=3)
    assert ((share[["ci_low", "value", "ci_high"]] > 0) & (share[["ci_low", "value", "ci_high"]] < 1)).all().all()
    # a zero in the series: modelled as it is and clipped at 0, never below
    zeros = forecast(_series("referral_rate", [0.02, 0.01, 0.0, 0.004, 0.001, 0.0, 0.0, 0.0]), metric="referral_rate",
                     horizon=2)
    assert (zeros["ci_low"] >= 0).all() and zeros["method"].str.endswith("clipped to the range").all()
    # a growth rate can be negative and is not bounded
    growth = forecast(_series("follower_growth_rate", [0.02, 0.01, 0.0, -0.01, -0.02, -0.03, -0.04, -0.05]),
                      metric="follower_growth_rate")
    assert growth["value"].iloc[0] < 0


def test_too_short_a_history_says_what_a_trend_and_a_forecast_need():
    from engagement.analysis.trends import short_history, trend_tests

    series = pd.concat([_series("orders", [5.0, 6.0]), _series("revenue", [1.0, 2.0, 3.0]),
                        _series("aov", [1.0, 2.0, 3.0, 4.0])])
    assert short_history(series, ["orders", "revenue", "aov"]).splitlines() == [
        "No trend or forecast for Orders: 2 periods with figures, and a trend needs 3 (a forecast 4).",
        "No forecast for Revenue: 3 periods with figures, and a forecast needs 4."]
    assert sorted(trend_tests(series).metric) == ["aov", "revenue"]
    # a metric unavailable in every period has no figures at all
    gone = _series("churn_rate", [float("nan")] * 3).assign(status="unavailable")
    assert short_history(gone, ["churn_rate"]).startswith("No trend or forecast for Customer churn rate: 0 periods")


def test_an_email_campaign_belongs_to_the_period_it_was_delivered_in():
    """Three customers, no other tables: a September campaign opened in October, a repeat open in October of a
    campaign opened in September, and an October campaign opened twice and clicked in January. The September
    campaign is delivered to ``a`` again in October: it still belongs to September. ``b`` clicks September's
    campaign in December: a click of September's campaign, and December's activity."""
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "signup_at": pd.to_datetime(["2024-01-01"] * 3)})
    rows = [
        ("m1", "a", "2024-09-28", "delivered"), ("m1", "a", "2024-10-02", "open"), ("m1", "a", "2024-10-15", "delivered"),
        ("m2", "b", "2024-09-10", "delivered"), ("m2", "b", "2024-09-11", "open"), ("m2", "b", "2024-10-20", "open"),
        ("m2", "b", "2024-12-01", "click"),
        ("m3", "c", "2024-10-05", "delivered"), ("m3", "c", "2024-10-06", "open"), ("m3", "c", "2024-11-06", "open"),
        ("m3", "c", "2025-01-03", "click"),
        ("m4", "a", "2024-11-01", "delivered"),
    ]
    em = pd.DataFrame(rows, columns=["campaign_id", "customer_id", "occurred_at", "event"])
    em["occurred_at"] = pd.to_datetime(em["occurred_at"])
    table = measure(eg.load({"customers": customers, "email_events": em}), "2024Q4", segments=[])
    cur = table[table.period_role == "current"].set_index("metric")
    prev = table[table.period_role == "previous"].set_index("metric")
    # Q4 delivered m3 to c and m4 to a: one opened (c, twice, one unique open) and clicked, in January
    assert cur.loc["email_open_rate", ["numerator", "denominator"]].tolist() == [1, 2]
    assert cur.loc["click_to_open_rate", ["numerator", "denominator"]].tolist() == [1, 1]
    # Q3 delivered m1 and m2, both opened (a's in October, b's in September and again in October)
    assert prev.loc["email_open_rate", ["numerator", "denominator"]].tolist() == [2, 2]
    assert prev.loc["email_click_rate", ["numerator", "denominator"]].tolist() == [1, 2]
    # the quarter's activity is its clicks, of any campaign: b's in December; c's click is in January
    assert cur.loc["engagement_rate", ["numerator", "denominator"]].tolist() == [1, 3]
    assert prev.loc["engagement_rate", ["numerator", "denominator"]].tolist() == [0, 3]


def test_a_median_of_too_few_tickets_has_no_interval_rather_than_a_made_up_one():
    """Three tickets in one plan, eight in the other: scipy's order-statistic interval needs more than three values
    at 95% (worked by hand: with n = 3 even the widest pair of ranks covers 75%), so that plan's median has NaN
    bounds, never the largest value; the other plan's bounds are order statistics of its own values."""
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(11)],
                              "signup_at": pd.to_datetime(["2024-01-01"] * 11),
                              "plan": ["basic"] * 3 + ["pro"] * 8})
    hours = [1, 2, 30] + [1, 2, 3, 4, 5, 6, 7, 8]
    opened = pd.Timestamp("2024-10-10")
    tickets = pd.DataFrame({"ticket_id": range(11), "customer_id": customers.customer_id,
                            "opened_at": [opened] * 11,
                            "first_response_at": [opened + pd.Timedelta(hours=h) for h in hours],
                            "resolved_at": [opened + pd.Timedelta(hours=h + 1) for h in hours]})
    table = measure(eg.load({"customers": customers, "support_tickets": tickets}), "2024Q4", segments=["plan"],
                    compare=False)
    frt = table[table.metric == "first_response_time"].set_index("segment_value")
    assert frt.loc["basic", "value"] == 2 * 3600 and frt.loc["basic", ["ci_low", "ci_high"]].isna().all()
    pro = pd.Series([h * 3600.0 for h in hours[3:]])
    assert frt.loc["pro", "value"] == pro.median()
    assert frt.loc["pro", "ci_low"] in set(pro) and frt.loc["pro", "ci_high"] in set(pro)
    assert frt.loc["pro", "ci_low"] < pro.median() < frt.loc["pro", "ci_high"]


def test_support_times_of_a_segment_whose_tickets_are_all_unanswered_are_unavailable():
    """Two plans: ``basic``'s two tickets were answered after 1 and 4 hours (median 2.5 h, mean 2.5 h by hand),
    ``pro``'s three tickets never were. ``pro`` has no time to report, neither median nor mean: n = 0, NaN."""
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "signup_at": DATES(["2024-01-01"] * 4),
                              "plan": ["basic", "basic", "pro", "pro"]})
    opened = pd.Timestamp("2024-10-10")
    tickets = pd.DataFrame({"ticket_id": range(5), "customer_id": ["a", "b", "c", "c", "d"], "opened_at": [opened] * 5,
                            "first_response_at": [opened + pd.Timedelta(hours=1), opened + pd.Timedelta(hours=4),
                                                  None, None, None]})
    tickets["resolved_at"] = tickets["first_response_at"]
    table = measure(eg.load({"customers": customers, "support_tickets": tickets}), "2024Q4", segments=["plan"],
                    compare=False)
    frt = table[table.metric == "first_response_time"].set_index("segment_value")
    mean = table[table.metric == "first_response_time_mean"].set_index("segment_value")
    assert frt.loc["basic", "value"] == 2.5 * 3600 and mean.loc["basic", "value"] == pytest.approx(2.5 * 3600)
    assert frt.loc["pro", "n"] == 0 and np.isnan(frt.loc["pro", "value"])
    assert mean.loc["pro", "n"] == 0 and np.isnan(mean.loc["pro", "value"])
    assert frt.loc["all", "value"] == 2.5 * 3600 and frt.loc["all", "n"] == 2


def test_a_mean_of_two_customers_has_no_interval_below_what_anyone_can_have():
    """Two customers: one ticket answered after 100 s, one after 20,000 s; their CSAT answers 5 and 4, 5, 5.

    Worked by hand (the clustered ratio estimator, t on one degree of freedom, 12.706): the mean response time is
    10,050 s with standard error 9,950 s, so the symmetric interval would run from -116,377 s; no mean time is
    below 0. The CSAT mean is 19 / 4 = 4.75 (customer totals 5 over 1 answer and 14 over 3): residuals
    5 - 4.75 = 0.25 and 14 - 14.25 = -0.25, variance 0.125 / (2 * 1 * 2^2), standard error 0.125, so the symmetric
    interval would end at 4.75 + 12.706 * 0.125 = 6.34, above the scale's 5. Both are cut where the values end;
    the estimates and standard errors stay as they are."""
    customers = pd.DataFrame({"customer_id": ["a", "b"], "signup_at": DATES(["2024-01-01"] * 2)})
    opened = pd.Timestamp("2024-10-10")
    tickets = pd.DataFrame({"ticket_id": [1, 2], "customer_id": ["a", "b"], "opened_at": [opened] * 2,
                            "first_response_at": [opened + pd.Timedelta(seconds=100),
                                                  opened + pd.Timedelta(seconds=20_000)]})
    tickets["resolved_at"] = tickets["first_response_at"]
    answers = pd.DataFrame({"customer_id": ["a", "b", "b", "b"],
                            "responded_at": [opened + pd.Timedelta(days=d) for d in range(4)],
                            "survey": ["csat"] * 4, "score": [5.0, 4.0, 5.0, 5.0]})
    table = measure(eg.load({"customers": customers, "support_tickets": tickets, "survey_responses": answers}),
                    "2024Q4", segments=[], compare=False)
    frt = _row(table, "first_response_time_mean")
    assert frt.value == pytest.approx(10_050) and frt.se == pytest.approx(9_950)
    assert frt.ci_low == 0 and frt.ci_high == pytest.approx(10_050 + 12.7062047 * 9_950)
    csat = _row(table, "csat_mean")
    assert csat.value == pytest.approx(4.75) and csat.se == pytest.approx(0.125)
    assert csat.ci_high == 5 and csat.ci_low == pytest.approx(4.75 - 12.7062047 * 0.125)


def test_metric_functions_keep_their_intervals_within_the_values_that_are_possible():
    """The same cut in the metric functions: two response times of 100 s and 20,000 s (mean 10,050 s, standard
    error 9,950 s by hand, as above), and two CES answers of 7 (no spread: the interval is the point)."""
    opened = pd.to_datetime(["2024-10-10", "2024-10-10"])
    r = eg.first_response_time(opened, opened + pd.to_timedelta([100, 20_000], unit="s"), statistic="mean")
    assert r.value == pytest.approx(10_050) and r.ci_low == 0
    assert r.ci_high == pytest.approx(10_050 + 12.7062047 * 9_950)
    stars = eg.csat([5, 4, 5, 5], method="mean", respondents=["a", "b", "b", "b"])
    assert stars.ci_high == 5 and stars.value == pytest.approx(4.75)
    assert eg.ces([7, 7], method="mean").ci_high == 7


def test_a_customer_attribute_named_like_a_flag_is_still_the_customers_own():
    """The customers carry an attribute ``active`` ("yes"/"no"), a name the measurement uses for a flag of its
    own. As a segment it is the customers' value: churn among the two "yes" customers is 1 of 2 (b cancels in
    November), among the two "no" customers 0 of 2."""
    customers = pd.DataFrame({"customer_id": list("abcd"), "signup_at": DATES(["2023-01-01"] * 4),
                              "cancelled_at": DATES([None, "2024-11-15", None, None]),
                              "active": ["yes", "yes", "no", "no"]})
    t = measure(eg.load({"customers": customers}), "2024Q4", segments=["active"], compare=False)
    churn = t[(t.metric == "churn_rate") & (t.segment == "active")].set_index("segment_value")
    assert sorted(churn.index) == ["no", "yes"]
    assert (churn.loc["yes", "value"], churn.loc["yes", "n"]) == (0.5, 2)
    assert (churn.loc["no", "value"], churn.loc["no", "n"]) == (0.0, 2)


def test_views_at_the_same_instant_stay_in_one_session():
    """Two views of a visitor at the same second just after a gap: both open the new session, whichever order the
    engine sorts them in (3,000 visitors, so that the engine's threads see many such ties)."""
    from engagement.measure import sessions

    times = DATES(["2024-03-01 10:00", "2024-03-01 10:40", "2024-03-01 10:40", "2024-03-01 10:45",
                   "2024-03-01 12:00", "2024-03-01 12:00"])
    n = 3000
    pv = pd.DataFrame({"visitor_id": np.repeat([f"v{i}" for i in range(n)], len(times)),
                       "customer_id": None, "page": np.tile(["/", "/a", "/b", "/c", "/d", "/e"], n),
                       "viewed_at": np.tile(times, n)})  # different pages: an exact copy of a row is rejected
    out = sessions(eg.load({"customers": _shop()["customers"], "pageviews": pv})["pageviews"]).to_pandas()
    # by hand, per visitor: 10:00 alone; 10:40, 10:40 and 10:45 (5 minutes); 12:00 twice (0 seconds)
    got = out.sort_values(["visitor_id", "session_start"])
    assert len(got) == 3 * n
    assert got.pageviews.tolist() == [1, 3, 2] * n
    assert got.duration_s.tolist() == [0.0, 300.0, 0.0] * n


def test_a_series_wholly_before_the_data_is_refused_with_the_datas_range():
    with pytest.raises(ValueError, match=r"2022-11 to 2023-06 ends before the data starts \(2023-11-01\)"):
        measure_series(_shop(), "2023-06", periods=8, segments=[])


def test_a_period_without_support_tickets_has_its_times_with_nobody_in_them():
    """Tickets begin in January: December's times are n = 0 and no value (without segments the engine's sums were
    one row of nulls, and the series failed on it; with segments the times were missing from the table)."""
    data = _shop()
    data["support_tickets"] = pd.DataFrame({
        "ticket_id": [1, 2], "customer_id": ["a", "b"], "opened_at": DATES(["2024-01-05", "2024-01-06"]),
        "first_response_at": DATES(["2024-01-05 01:00", "2024-01-06 02:00"]), "resolved_at": DATES(["2024-01-07", None])})
    times = ["first_response_time", "first_response_time_mean", "resolution_time", "resolution_time_mean"]
    for segments in ([], ["tenure_band"]):
        t = measure(data, "2023-12", segments=segments, compare=False)
        empty = t[t.metric.isin(times)]
        groups = 1 + len(segments)  # all, and the one tenure band of December's customers ("under 1 year")
        assert len(empty) == 4 * groups and (empty.n == 0).all() and empty.value.isna().all(), segments
        assert (empty.status == "unavailable").all() and empty.reason.str.startswith("nothing to measure").all()
    s = measure_series(data, "2024-01", periods=3, segments=[])
    first = s[s.metric == "first_response_time"].set_index("period")
    assert first.n.tolist() == [0, 0, 2]
    # by hand: answered after one and two hours; resolved after two days, the other not yet
    assert first.value["2024-01"] == 5400.0
    resolved = s[(s.metric == "resolution_time") & (s.period == "2024-01")].iloc[0]
    assert (resolved.value, resolved.n) == (172800.0, 1)


def test_a_period_without_social_posts_has_the_social_metrics_with_nobody_in_them():
    data = _shop()
    data["social_posts"] = pd.DataFrame({
        "post_id": [1, 2], "platform": ["x", "x"], "posted_at": DATES(["2024-01-05", "2024-01-20"]), "likes": [1, 2],
        "comments": [0, 1], "shares": [0, 0], "reach": [100, 200], "impressions": [150, 300],
        "followers": [1000, 1100]})
    s = measure_series(data, "2024-01", periods=2, segments=[])
    social = s[s.metric.isin(["social_engagement_rate", "follower_growth_rate"]) & (s.segment == "all")]
    december, january = social[social.period == "2023-12"], social[social.period == "2024-01"].set_index("metric")
    assert len(december) == 2 and (december.n == 0).all() and december.value.isna().all()
    assert (december.status == "unavailable").all()
    # by hand: (1 + 0 + 0 + 2 + 1 + 0) / (100 + 200); followers 1,000 to 1,100
    assert january.value["social_engagement_rate"] == pytest.approx(4 / 300)
    assert january.value["follower_growth_rate"] == pytest.approx(0.1)


def _edges() -> dict[str, pd.DataFrame]:
    """Months whose facts straddle their edges: a session across midnight of January's last day, a first week
    that ends in February, an email delivered in January and opened in February, orders in several periods'
    inactivity windows, a customer who signs up in March, a cancellation, markup in a plan's label."""
    customers = pd.DataFrame({
        "customer_id": list("abcdef"),
        "signup_at": DATES(format="ISO8601", arg=["2023-11-01", "2023-11-20", "2023-12-15", "2024-01-30 22:00", "2024-02-10", "2024-03-05"]),
        "plan": ["<b>basic</b>", "pro & co", "<b>basic</b>", None, "pro & co", "<b>basic</b>"],
        "cancelled_at": DATES(format="ISO8601", arg=[None, "2024-02-20", None, None, None, None])})
    orders = pd.DataFrame({
        "order_id": range(8), "customer_id": list("aabcdeaf"),
        "ordered_at": DATES(format="ISO8601", arg=["2023-11-05", "2024-01-31 23:59:59", "2023-12-01", "2024-02-01", "2024-02-02",
                             "2024-03-01", "2024-03-31 12:00", "2024-03-06"]),
        "revenue": [10.0, 20.5, 7.25, 30.0, 12.0, 8.0, 0.1, 44.0]})
    events = pd.DataFrame({
        "customer_id": list("ddddaab"), "event": "use",
        "occurred_at": DATES(format="ISO8601", arg=["2024-01-30 23:00", "2024-02-01 08:00", "2024-02-02 09:00", "2024-02-06 10:00",
                              "2024-01-31 23:30", "2024-02-01 00:30", "2024-03-15"])})
    pageviews = pd.DataFrame({
        "visitor_id": ["v1", "v1", "v1", "v2", "v2", "v3"], "customer_id": ["a", "a", "a", None, None, "d"],
        "viewed_at": DATES(format="ISO8601", arg=["2024-01-31 23:50", "2024-02-01 00:10", "2024-02-01 00:20", "2024-02-29 23:59",
                            "2024-03-01 00:05", "2024-03-10"]),
        "page": ["/", "/a", "/b", "/", "/c", "/"]})
    email_events = pd.DataFrame({
        "campaign_id": ["c1", "c1", "c1", "c1", "c2", "c2", "c1"], "customer_id": list("aaabbca"),
        "occurred_at": DATES(format="ISO8601", arg=["2024-01-28", "2024-02-02", "2024-02-02 00:01", "2024-01-28", "2024-02-15",
                              "2024-02-15", "2024-03-03"]),
        "event": ["delivered", "open", "click", "delivered", "delivered", "delivered", "click"]})
    return {"customers": customers, "orders": orders, "events": events, "pageviews": pageviews,
            "email_events": email_events}


def test_periods_measured_together_are_each_as_measured_alone():
    """The trend series and the comparisons measure their periods in one set of queries, each source joined to
    the periods whose window holds its rows. Each period's figures must be those it has alone: on months whose
    sessions, first weeks, emails and inactivity windows straddle their edges, with segments and without."""
    ds = eg.load(_edges())
    segments = ["plan", "tenure_band", "value_tier", "new_vs_returning"]
    for segs in (segments, []):
        series = measure_series(ds, "2024-03", periods=5, segments=segs, inactivity_days=30)
        assert sorted(series.period.unique()) == ["2023-11", "2023-12", "2024-01", "2024-02", "2024-03"]
        for label, got in series.groupby("period", sort=True):
            alone = measure(ds, label, segments=segs, compare=False, inactivity_days=30)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), alone.assign(period_role="series"))
    # the comparisons: each as measured alone, under its own role
    t = measure(ds, "2024-02", segments=segments, inactivity_days=30)
    for role, label in (("previous", "2024-01"), ("year_ago", "2023-02")):
        alone = measure(ds, label, segments=segments, compare=False, inactivity_days=30) if role == "previous" else None
        got = t[t.period_role == role].reset_index(drop=True)
        if alone is None:  # before the data: no comparison
            assert (got.status == "unavailable").all() and got.reason.str.startswith("no comparison").all()
        else:
            pd.testing.assert_frame_equal(got, alone.assign(period_role=role))
    # and some of them by hand: January's session of visitor v1 starts at 23:50 and runs past midnight (3 views);
    # d signed up on January 30th and used the product on three of its first seven days (30th, 1st, 2nd)
    jan = series[(series.period == "2024-01") & (series.segment == "all")].set_index("metric")
    assert jan.value["website_visits"] == 1 and jan.value["pages_per_session"] == 3
    # c1 went to a and b in January; a opened it (in February): January's open rate is 1 of 2
    assert (jan.numerator["email_open_rate"], jan.denominator["email_open_rate"]) == (1, 2)
    feb = series[(series.period == "2024-02") & (series.segment == "all")].set_index("metric")
    assert (feb.numerator["email_open_rate"], feb.denominator["email_open_rate"]) == (0, 2)


def test_large_data_measures_its_periods_in_batches_with_the_same_figures(monkeypatch):
    """Above BATCH_ROWS rows x periods the periods are measured a few at a time (memory, not compilation, is then
    what counts): the figures are the same however many go together."""
    import engagement.measure.compute as compute

    ds = eg.load(_edges())
    together = measure_series(ds, "2024-03", periods=5, segments=["plan"], inactivity_days=30)
    rows = int(ds.report.rows_used.sum())
    for size in (1, 2):
        monkeypatch.setattr(compute, "BATCH_ROWS", size * rows)
        pd.testing.assert_frame_equal(measure_series(ds, "2024-03", periods=5, segments=["plan"], inactivity_days=30),
                                      together)


@pytest.mark.parametrize("inactivity_days", [30, 365, 400])
def test_value_tiers_rank_the_year_before_whatever_the_inactivity_window(inactivity_days):
    """The value tiers come from the orders' facts (one read of the orders for both), which read the inactivity
    window and the year before the period together: the tiers are the year's whichever window is longer.
    By hand, March 2024 (the year before: from 2023-03-02): spend a 10, b 50, c 5 (its 500 on 2023-03-01 is a day
    too early), e 30; d ordered only in March, f only in February 2023. Tertiles of four: c, a low; e mid; b high."""
    from engagement.measure import parse_period
    from engagement.measure.facts import FLAG_COLUMNS, Periods, customer_facts
    from engagement.measure.segments import segment_columns

    customers = pd.DataFrame({"customer_id": list("abcdef"), "signup_at": DATES(["2022-01-01"] * 6)})
    orders = pd.DataFrame({
        "order_id": range(8), "customer_id": list("aabccdef"),
        "ordered_at": DATES(["2024-02-10", "2024-03-05", "2023-06-01", "2023-03-01", "2023-12-01", "2024-03-10",
                             "2023-04-01", "2023-02-10"]),
        "revenue": [10.0, 100.0, 50.0, 500.0, 5.0, 60.0, 30.0, 70.0]})
    ds = eg.load({"customers": customers, "orders": orders})
    period = parse_period("2024-03")
    facts = customer_facts(ds, Periods(period, inactivity_days), pd.Timestamp("2024-06-01"), 30.0, inactivity_days)
    by_facts = segment_columns(ds, period, ["value_tier"], customers=facts.flags, keep=FLAG_COLUMNS,
                               orders=facts.parts["orders"]).to_pandas()
    direct = segment_columns(ds, period, ["value_tier"]).to_pandas()
    expected = {"a": "low", "b": "high", "c": "low", "d": "none", "e": "mid", "f": "none"}
    assert dict(zip(by_facts.customer_id, by_facts.__seg0, strict=True)) == expected
    assert dict(zip(direct.customer_id, direct.__seg0, strict=True)) == expected
    for cached in facts.caches:
        cached.release()
