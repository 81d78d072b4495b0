"""Measurement: every metric computed a second, independent way in plain pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import engagement as eg
from engagement.data.load import default_demo_path
from engagement.measure import measure, parse_period

PERIOD = "2024Q4"
S, E = pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in default_demo_path().glob("*.parquet")}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    ds = eg.load(default_demo_path())
    return measure(ds, PERIOD, segments=["plan", "tenure_band", "acquisition_channel"], compare=False)


def value(table: pd.DataFrame, metric: str, segment: str = "all", seg_value: str = "all") -> pd.Series:
    row = table[(table.metric == metric) & (table.segment == segment) & (table.segment_value == seg_value)]
    assert len(row) == 1, (metric, segment, seg_value, len(row))
    return row.iloc[0]


def within(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df[(df[col] >= S) & (df[col] < E)]


def test_churn_retention_counts_by_plan(raw, table):
    c = raw["customers"]
    for plan in ["basic", "standard", "premium"]:
        cp = c[c.plan == plan]
        at_start = cp[(cp.signup_at < S) & (cp.cancelled_at.isna() | (cp.cancelled_at >= S))]
        lost = at_start[at_start.cancelled_at < E]
        got = value(table, "churn_rate", "plan", plan)
        assert (got.numerator, got.denominator) == (len(lost), len(at_start))
        ref = eg.churn_rate(len(lost), len(at_start))
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx((ref.value, ref.ci_low, ref.ci_high))
        ret = value(table, "retention_rate", "plan", plan)
        assert ret.numerator == len(at_start) - len(lost)


def _ratio_interval(cluster: pd.Series, y: pd.Series) -> tuple[float, float, float]:
    """Mean of ``y`` over its rows and the ratio-estimator 95% interval over ``cluster``, from the rows."""
    per = pd.DataFrame({"k": cluster.to_numpy(), "y": y.to_numpy(dtype=float)}).groupby("k").y.agg(["sum", "size"])
    r, n = per["sum"].sum() / per["size"].sum(), len(per)
    se = np.sqrt(((per["sum"] - r * per["size"]) ** 2).sum() * n / ((n - 1) * per["size"].sum() ** 2))
    half = stats.t.ppf(0.975, n - 1) * se
    return r, r - half, r + half


def test_nps_csat_ces_by_segment(raw, table):
    sv = within(raw["survey_responses"], "responded_at").merge(raw["customers"][["customer_id", "plan"]])
    for plan in ["basic", "premium"]:
        x = sv[sv.plan == plan]
        ref = eg.nps(x[x.survey == "nps"].score)
        got = value(table, "nps", "plan", plan)
        assert (got.value, got.ci_low, got.ci_high, got.n) == pytest.approx((ref.value, ref.ci_low, ref.ci_high,
                                                                             ref.n))
    csat = eg.csat(within(raw["survey_responses"], "responded_at").query("survey == 'csat'").score)
    assert value(table, "csat").value == pytest.approx(csat.value)
    # the mean scores cluster each customer's answers: the ratio estimator over respondents, by hand
    for metric, survey in (("csat_mean", "csat"), ("ces", "ces")):
        answers = sv[sv.survey == survey]
        got = value(table, metric)
        assert answers.customer_id.duplicated().any()  # some answer more than once: clustering matters
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx(
            _ratio_interval(answers.customer_id, answers.score), rel=1e-9)
        assert got.n == answers.customer_id.nunique()


def test_nps_by_tenure_band(raw, table):
    sv = within(raw["survey_responses"], "responded_at").merge(raw["customers"][["customer_id", "signup_at"]])
    sv = sv[sv.survey == "nps"]
    old = sv[sv.signup_at < S - pd.Timedelta(days=365)]
    assert value(table, "nps", "tenure_band", "more than 1 year").value == pytest.approx(eg.nps(old.score).value)


def test_orders_aov_frequency(raw, table):
    o = within(raw["orders"], "ordered_at")
    # AOV's interval clusters the orders in their customers: the ratio estimator over customers, by hand
    per = o.groupby("customer_id").revenue.agg(["sum", "size"])
    r, n = per["sum"].sum() / per["size"].sum(), len(per)
    se = np.sqrt(((per["sum"] - r * per["size"]) ** 2).sum() * n / ((n - 1) * per["size"].sum() ** 2))
    half = stats.t.ppf(0.975, n - 1) * se
    got = value(table, "aov")
    assert (got.value, got.ci_low, got.ci_high, got.n) == pytest.approx((r, r - half, r + half, n))
    assert value(table, "revenue").value == pytest.approx(o.revenue.sum())
    premium = o.merge(raw["customers"][["customer_id", "plan"]]).query("plan == 'premium'")
    assert value(table, "aov", "plan", "premium").value == pytest.approx(premium.revenue.mean())
    c = raw["customers"]
    active = c[(c.signup_at < E) & (c.cancelled_at.isna() | (c.cancelled_at >= S))]
    assert value(table, "purchase_frequency").value == pytest.approx(len(o) / len(active))


def test_activity_dau_mau_stickiness_usage(raw, table):
    ev = within(raw["events"], "occurred_at")
    daily = ev.assign(d=ev.occurred_at.dt.floor("D")).groupby("d").customer_id.nunique()
    dau = daily.reindex(pd.date_range(S, E - pd.Timedelta(days=1)), fill_value=0).mean()
    monthly = ev.assign(m=ev.occurred_at.dt.to_period("M")).groupby("m").customer_id.nunique()
    assert value(table, "dau").value == pytest.approx(dau)
    assert value(table, "mau").value == pytest.approx(monthly.mean())
    assert value(table, "stickiness").value == pytest.approx(dau / monthly.mean())
    c = raw["customers"]
    at_start = c[(c.signup_at < S) & (c.cancelled_at.isna() | (c.cancelled_at >= S))]
    users = at_start.customer_id.isin(ev.customer_id).sum()
    got = value(table, "product_usage_rate")
    assert (got.numerator, got.denominator) == (users, len(at_start))


def test_first_week_engagement(raw, table):
    c, ev = raw["customers"], raw["events"]
    new = c[(c.signup_at >= S) & (c.signup_at < E)].copy()
    new["day0"] = new.signup_at.dt.floor("D")
    as_of = max(ev.occurred_at.max(), raw["orders"].ordered_at.max(), raw["pageviews"].viewed_at.max())
    new = new[new.day0 + pd.Timedelta(days=7) <= as_of]
    days = ev.assign(d=ev.occurred_at.dt.floor("D")).merge(new[["customer_id", "day0"]])
    days = days[(days.d >= days.day0) & (days.d < days.day0 + pd.Timedelta(days=7))]
    per = days.groupby("customer_id").d.nunique().reindex(new.customer_id, fill_value=0)
    ref = eg.first_week_engagement(per, min_active_days=2)
    got = value(table, "first_week_engagement")
    assert (got.numerator, got.denominator) == (ref.numerator, ref.denominator)


def _pandas_sessions(pv: pd.DataFrame) -> pd.DataFrame:
    pv = pv.sort_values(["visitor_id", "viewed_at"], kind="stable")
    gap = pv.groupby("visitor_id").viewed_at.diff()
    new = gap.isna() | (gap > pd.Timedelta(minutes=30))
    pv = pv.assign(sid=new.cumsum())
    return pv.groupby("sid").agg(
        visitor_id=("visitor_id", "first"), customer_id=("customer_id", "max"), start=("viewed_at", "min"),
        pages=("viewed_at", "size"), duration=("viewed_at", lambda s: (s.max() - s.min()).total_seconds()),
        converted=("converted", "max"),
    )


def _by_cluster(ss: pd.DataFrame, y: str) -> tuple[float, float, float]:
    """mean of ``y`` per session and its interval over clusters (a customer, or an anonymous visitor)."""
    return _ratio_interval(ss.customer_id.where(ss.customer_id.notna(), "visitor " + ss.visitor_id.astype(str)),
                           ss[y])


def test_web_sessions_bounce_duration_conversion(raw, table):
    # the whole history sessionised, then the sessions that start in the quarter
    ss = _pandas_sessions(raw["pageviews"])
    ss = ss[(ss.start >= S) & (ss.start < E)]
    assert value(table, "website_visits").value == len(ss)
    assert value(table, "page_views").value == ss.pages.sum()
    assert value(table, "bounce_rate").value == pytest.approx((ss.pages == 1).mean())
    got = value(table, "average_session_duration")
    assert (got.value, got.ci_low, got.ci_high) == pytest.approx(_by_cluster(ss, "duration"), rel=1e-9)
    assert value(table, "conversion_rate").value == pytest.approx(ss.converted.mean())
    got = value(table, "pages_per_session")
    assert (got.value, got.ci_low, got.ci_high) == pytest.approx(_by_cluster(ss, "pages"), rel=1e-9)
    assert got.n == ss.customer_id.nunique() + ss[ss.customer_id.isna()].visitor_id.nunique()  # clusters
    # customer segments see only their customers' sessions
    basic = raw["customers"].query("plan == 'basic'").customer_id
    assert value(table, "website_visits", "plan", "basic").value == ss.customer_id.isin(basic).sum()


def test_email_rates(raw, table):
    em = raw["email_events"]
    sent = within(em[em.event == "delivered"].groupby(["campaign_id", "customer_id"]).occurred_at.min().reset_index(),
                  "occurred_at")[["campaign_id", "customer_id"]]
    em = em.merge(sent)  # the quarter's deliveries, with everything they led to
    pairs = em.groupby("event").apply(lambda g: len(g[["campaign_id", "customer_id"]].drop_duplicates()))
    opened = len(em[em.event.isin(["open", "click"])][["campaign_id", "customer_id"]].drop_duplicates())
    assert value(table, "email_open_rate").value == pytest.approx(opened / pairs["delivered"])
    assert value(table, "email_click_rate").value == pytest.approx(pairs["click"] / pairs["delivered"])
    assert value(table, "click_to_open_rate").value == pytest.approx(pairs["click"] / opened)
    assert value(table, "unsubscribe_rate").value == pytest.approx(pairs["unsubscribe"] / pairs["delivered"])


def test_support_medians_with_order_statistic_intervals(raw, table):
    t = within(raw["support_tickets"], "opened_at")
    ref = eg.first_response_time(t.opened_at, t.first_response_at)
    got = value(table, "first_response_time")
    assert (got.value, got.ci_low, got.ci_high, got.n) == pytest.approx((ref.value, ref.ci_low, ref.ci_high, ref.n))
    ref = eg.resolution_time(t.opened_at, t.resolved_at, statistic="mean")
    assert value(table, "resolution_time_mean").value == pytest.approx(ref.value)
    # the means cluster each customer's tickets: the ratio estimator over customers, by hand
    for metric, end in (("resolution_time_mean", "resolved_at"), ("first_response_time_mean", "first_response_at")):
        done = t[t[end].notna()]
        got = value(table, metric)
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx(
            _ratio_interval(done.customer_id, (done[end] - done.opened_at).dt.total_seconds()), rel=1e-9)
        assert got.n == done.customer_id.nunique() and got.kind == "clustered_mean"
    prem = t.merge(raw["customers"][["customer_id", "plan"]]).query("plan == 'premium'")
    ref = eg.resolution_time(prem.opened_at, prem.resolved_at)
    got = value(table, "resolution_time", "plan", "premium")
    assert (got.value, got.ci_low, got.ci_high) == pytest.approx((ref.value, ref.ci_low, ref.ci_high))


def test_cac_by_channel_and_referral_rate(raw, table):
    c, ms = raw["customers"], raw["marketing_spend"]
    new = c[(c.signup_at >= S) & (c.signup_at < E)]
    spend = ms[(pd.to_datetime(ms.period_start) >= S) & (pd.to_datetime(ms.period_start) < E)]
    for ch in ["paid_social", "organic"]:
        ref = spend[spend.channel == ch].spend.sum() / (new.acquisition_channel == ch).sum()
        assert value(table, "cac", "acquisition_channel", ch).value == pytest.approx(ref)
    referred = new.customer_id.isin(raw["referrals"].referred_customer_id).sum()
    assert value(table, "referral_rate").value == pytest.approx(referred / len(new))


def test_social_engagement_rate_pooled(raw, table):
    p = within(raw["social_posts"], "posted_at")
    ref = eg.social_engagement_rate((p.likes + p.comments + p.shares).to_numpy(), p.reach.to_numpy())
    got = value(table, "social_engagement_rate")
    assert (got.value, got.ci_low, got.ci_high) == pytest.approx((ref.value, ref.ci_low, ref.ci_high))


def test_every_figure_equals_the_pandas_reference():
    # tests/reference_pandas.py is a second, complete implementation (read, filter, groupby, merge, and the
    # intervals written out); every value, count, standard error and interval bound of every metric, for all
    # and each default segment, must agree
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import reference_pandas as R

    ours = measure(eg.load(default_demo_path()), PERIOD, segments=R.SEGMENTS, compare=False)
    both = R.compare(ours, R.measure_reference(R.read_tables(default_demo_path()), PERIOD))
    # the benchmark's competent pandas peer reads only the needed columns and the period's windows, and the as-of
    # time from the Parquet statistics: the same figures
    competent, as_of = R.read_tables_competent(default_demo_path(), PERIOD)
    assert len(competent["pageviews"]) < len(R.read_tables(default_demo_path())["pageviews"]) / 4
    lean = R.compare(ours, R.measure_reference(competent, PERIOD, as_of=as_of))
    assert (lean["_merge"] == "both").all() and len(lean) == len(both)
    assert lean["rel_diff"].max() < 1e-9 and (lean["n"] == lean["n_ref"]).all()
    assert lean["rel_diff_ci_low"].max() < 1e-7 and lean["rel_diff_ci_high"].max() < 1e-7
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"][["segment", "segment_value", "metric"]]
    assert len(both) == len(ours[(ours.status == "ok") | ours.reason.str.startswith("nothing to measure")]) > 700
    assert both["rel_diff"].max() < 1e-9
    assert (both["n"] == both["n_ref"]).all()
    for col in ("rel_diff_se", "rel_diff_ci_low", "rel_diff_ci_high"):
        worst = both.loc[both[col].idxmax()]
        assert both[col].max() < 1e-7, (col, worst.metric, worst.segment, worst.segment_value)
    # and the comparison had something to compare: every sampled figure has an interval on both sides
    sampled = both.merge(ours[["segment", "segment_value", "metric", "sampled"]].drop_duplicates(),
                         on=["segment", "segment_value", "metric"])
    assert sampled.loc[sampled.sampled & (sampled.n >= 2), "se_ref"].notna().all()


def test_measure_gives_identical_numbers_on_every_run(table):
    # floats are summed exactly in the engine, so threads finishing in another order change nothing
    again = measure(eg.load(default_demo_path()), PERIOD, segments=["plan", "tenure_band", "acquisition_channel"],
                    compare=False)
    pd.testing.assert_frame_equal(table, again, check_exact=True)


@pytest.mark.parametrize("period", ["2024-11", "2024", "2024Q1"])
def test_active_days_weeks_months_for_months_and_years(raw, period):
    # active weeks and months are counted from day counts packed side by side in sums: a year spans three sums
    p = parse_period(period)
    t = measure(eg.load(default_demo_path()), period, segments=[], compare=False).set_index("metric")
    ev = raw["events"]
    ev = ev[(ev.occurred_at >= p.start) & (ev.occurred_at < p.end)]
    day = ev.occurred_at.dt.floor("D")
    monday = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    n_weeks = len(pd.date_range(p.start - pd.Timedelta(days=p.start.weekday()), p.end - pd.Timedelta(days=1),
                                freq="W-MON"))
    by = ev.customer_id
    assert t.loc["dau", "value"] == pytest.approx(day.groupby(by).nunique().sum() / p.days, rel=1e-12)
    assert t.loc["wau", "value"] == pytest.approx(monday.groupby(by).nunique().sum() / n_weeks, rel=1e-12)
    assert t.loc["mau", "value"] == pytest.approx(day.dt.to_period("M").groupby(by).nunique().sum()
                                                  / len(p.months()), rel=1e-12)


def test_exact_sum_is_exact_where_a_float_sum_is_not():
    import ibis

    from engagement.measure._engine import exact_sum

    t = ibis.memtable(pd.DataFrame({"x": [0.1] * 10 + [1e6, -1e6]}))
    got = float(t.aggregate(s=exact_sum(t.x)).to_pandas().s[0])
    assert got == 1.0 and sum([0.1] * 10) != 1.0  # 0.1 ten times is 0.9999999999999999 in floats


def test_output_shape_order_and_determinism(table):
    assert list(table.columns) == ["period", "period_role", "segment", "segment_value", "metric", "value", "ci_low",
                                   "ci_high", "se", "n", "numerator", "denominator", "unit", "kind", "sampled", "method", "status",
                                   "reason"]
    assert not table.duplicated(["period", "segment", "segment_value", "metric"]).any()
    again = measure(eg.load(default_demo_path()), PERIOD, segments=["plan", "tenure_band", "acquisition_channel"],
                    compare=False)
    pd.testing.assert_frame_equal(table, again)


def test_comparison_periods_and_missing_tables():
    c = pd.DataFrame({"customer_id": ["a", "b", "c"],
                      "signup_at": pd.to_datetime(["2023-01-05", "2023-06-01", "2024-11-01"]),
                      "cancelled_at": pd.to_datetime([None, "2024-10-15", None])})
    out = measure({"customers": c}, "2024Q4", segments=[])
    assert set(out.period_role) == {"current", "previous", "year_ago"}
    assert set(out.period) == {"2024Q4", "2024Q3", "2023Q4"}
    churn = out[(out.metric == "churn_rate") & (out.period == "2024Q4")].iloc[0]
    assert (churn.numerator, churn.denominator) == (1, 2)
    nps = out[(out.metric == "nps") & (out.period == "2024Q4")].iloc[0]
    assert nps.status == "unavailable" and "survey_responses" in nps.reason


def test_empty_segment_cells_are_nan_with_n_zero():
    c = pd.DataFrame({"customer_id": ["a", "b"], "signup_at": pd.to_datetime(["2024-11-01", "2024-11-02"]),
                      "cancelled_at": pd.to_datetime([None, None]), "plan": ["basic", "basic"]})
    out = measure({"customers": c}, "2024Q4", segments=["plan"], compare=False)  # nobody at the quarter's start
    churn = out[(out.metric == "churn_rate") & (out.segment == "plan")].iloc[0]
    assert np.isnan(churn.value) and churn.n == 0
    # and it reads unavailable, with why, never "ok" with a blank (a table filtered on status would show it)
    assert churn.status == "unavailable"
    assert churn.reason == "nothing to measure this period (lost / customers at start, Wilson interval)"
    assert not (out.value.isna() & (out.status == "ok")).any()
    new = out[(out.metric == "new_customers") & (out.segment == "plan")].iloc[0]
    assert (new.value, new.n, new.status) == (2, 2, "ok")


def test_unknown_segment_is_refused():
    c = pd.DataFrame({"customer_id": ["a"], "signup_at": pd.to_datetime(["2024-11-01"])})
    with pytest.raises(ValueError, match="Segment column 'industry'"):
        measure({"customers": c}, "2024Q4", segments=["industry"])


def test_parse_period_is_used_with_fiscal_years():
    p = parse_period("2025Q1", fiscal_start_month=4)
    assert (p.start, p.end) == (pd.Timestamp("2024-04-01"), pd.Timestamp("2024-07-01"))
    with pytest.raises(ValueError, match="2024-11"):
        parse_period("Q4 2024")


def test_wau_is_mean_calendar_week_actives(raw, table):
    ev = within(raw["events"], "occurred_at")
    weekly = ev.assign(w=ev.occurred_at.dt.to_period("W-SUN")).groupby("w").customer_id.nunique()
    assert value(table, "wau").value == pytest.approx(weekly.sum() / len(weekly))


def test_active_users_series_matches_trailing_windows(raw):
    from engagement.measure import active_users_series

    s = active_users_series(eg.load(default_demo_path()), start="2024-11-01", end="2024-12-01").set_index("day")
    ev = raw["events"].assign(day=lambda d: d.occurred_at.dt.floor("D"))
    for day in pd.to_datetime(["2024-11-01", "2024-11-17", "2024-11-30"]):
        for col, width in (("dau", 1), ("wau", 7), ("mau", 30)):
            window = ev[(ev.day > day - pd.Timedelta(days=width)) & (ev.day <= day)]
            assert s.loc[day, col] == window.customer_id.nunique(), (day, col)


def test_cohort_retention_subscription_and_activity(raw):
    from engagement.measure import cohort_retention

    ds = eg.load(default_demo_path())
    c = raw["customers"].assign(cohort=lambda d: d.signup_at.dt.to_period("M"))
    sub = cohort_retention(ds).set_index(["cohort", "month"])
    jan = c[c.cohort == pd.Period("2023-01")]
    for k in (0, 3, 11):
        end = (pd.Period("2023-01") + k + 1).start_time
        kept = (jan.cancelled_at.isna() | (jan.cancelled_at >= end)).sum()
        assert sub.loc[("2023-01", k), "retained"] == kept
    ev = raw["events"].merge(c[["customer_id", "cohort"]])
    ev = ev[ev.cohort == pd.Period("2023-01")]
    ev_k = (ev.occurred_at.dt.to_period("M") - ev.cohort).map(lambda off: off.n)
    on = cohort_retention(ds, activity="events").set_index(["cohort", "month"])
    after = cohort_retention(ds, activity="events", kind="on_or_after").set_index(["cohort", "month"])
    last = ev.assign(k=ev_k).groupby("customer_id").k.max()
    for k in (1, 6):
        assert on.loc[("2023-01", k), "retained"] == ev.assign(k=ev_k).query("k == @k").customer_id.nunique()
        assert after.loc[("2023-01", k), "retained"] == (last >= k).sum()
    # "on or after" never rises; immature cells carry no value and are flagged
    assert (after.loc["2023-01"]["share"].diff().dropna() <= 0).all()
    assert not sub.loc[("2024-12", 1), "mature"] and np.isnan(sub.loc[("2024-12", 1), "share"])


def test_data_range_is_kept_with_the_dataset_for_its_tables_as_they_are():
    from engagement.measure import data_range

    customers = pd.DataFrame({"customer_id": [1, 2, 3],
                              "signup_at": pd.to_datetime(["2023-03-05", "2023-07-01", "2024-01-02"])})
    orders = pd.DataFrame({"order_id": [1], "customer_id": [2], "revenue": [5.0],
                           "ordered_at": pd.to_datetime(["2024-02-10 08:00"])})
    ds = eg.load({"customers": customers, "orders": orders})
    assert data_range(ds) == (pd.Timestamp("2023-03-05"), pd.Timestamp("2024-02-10 08:00"))
    assert data_range(ds) == data_range(ds)
    # a table replaced (a filtered view of the data) gives its own range, not the one kept for the table before it
    c = ds.tables["customers"]
    ds.tables["customers"] = c.filter(c.signup_at > pd.Timestamp("2023-06-01"))
    ds.tables.pop("orders")
    assert data_range(ds) == (pd.Timestamp("2023-07-01"), pd.Timestamp("2024-01-02"))
