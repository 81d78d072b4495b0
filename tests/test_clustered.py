"""Per-order averages cluster in customers: AOV's interval is the ratio estimator over customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import engagement as eg
from engagement.analysis import change_tests, segment_tests
from engagement.intervals import mean_from_moments, ratio_from_moments
from engagement.measure import measure


def test_clustered_aov_interval_covers_the_truth_and_the_per_order_one_does_not():
    """300 customers; each one's mean spend ~ Gamma(2, 40) (so the true AOV is 80), 1 + Poisson(2) orders of
    Gamma(4, mean / 4) each. 2,000 simulated quarters."""
    rng = np.random.default_rng(2024)
    covered = {"clustered": 0, "per order": 0}
    reps = 2000
    for _ in range(reps):
        mu = rng.gamma(2.0, 40.0, 300)
        x = 1 + rng.poisson(2.0, 300)
        orders = [rng.gamma(4.0, m / 4.0, k) for m, k in zip(mu, x, strict=True)]
        y = np.array([o.sum() for o in orders])
        flat = np.concatenate(orders)
        c = ratio_from_moments("aov", 300, y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (x * y).sum(),
                               confidence=0.95, unit="currency", method="")
        i = mean_from_moments("aov", len(flat), flat.sum(), (flat**2).sum(), confidence=0.95, unit="currency",
                              method="")
        covered["clustered"] += c.ci_low <= 80 <= c.ci_high
        covered["per order"] += i.ci_low <= 80 <= i.ci_high
    assert 0.93 <= covered["clustered"] / reps <= 0.97
    assert covered["per order"] / reps < 0.88  # orders treated as independent: too narrow


@pytest.fixture(scope="module")
def demo():
    ds = eg.load()
    return ds, measure(ds, "2024Q4", segments=["plan"])


def test_measured_aov_is_the_ratio_estimator_over_customers(demo):
    ds, table = demo
    o = ds["orders"].to_pandas()
    o = o[(o.ordered_at >= "2024-10-01") & (o.ordered_at < "2025-01-01")]
    per = o.groupby("customer_id").agg(y=("revenue", "sum"), x=("revenue", "size"))
    r = per.y.sum() / per.x.sum()
    n = len(per)
    se = np.sqrt(((per.y - r * per.x) ** 2).sum() * n / ((n - 1) * per.x.sum() ** 2))  # by hand, on the rows
    got = table[(table.metric == "aov") & (table.segment == "all") & (table.period_role == "current")].iloc[0]
    assert got.value == pytest.approx(r, rel=1e-12)
    assert got.se == pytest.approx(se, rel=1e-9)
    assert got.n == n and got.denominator == len(o) and got.kind == "clustered_mean"


def test_segment_and_change_tests_use_the_clustered_aov(demo):
    ds, table = demo
    gaps = segment_tests(table, metrics=["aov"]).set_index("segment_value")
    cur = table[(table.metric == "aov") & (table.segment == "plan") & (table.period_role == "current")]
    others = cur[cur.segment_value != "premium"]
    # the rest of premium is basic and standard pooled: their revenue over their orders, exactly
    assert gaps.loc["premium", "rest"] == pytest.approx(others.numerator.sum() / others.denominator.sum())
    assert gaps.loc["premium", "test"] == "z-test, cluster-robust SE"
    ch = change_tests(table, metrics=["aov"])
    overall = ch[(ch.segment == "all") & (ch.comparison == "previous period")].iloc[0]
    now, before = (table[(table.metric == "aov") & (table.segment == "all") & (table.period_role == r)].iloc[0]
                   for r in ("current", "previous"))
    assert overall.ci_high - overall.ci_low == pytest.approx(2 * 1.959964 * np.hypot(now.se, before.se), rel=1e-5)


def test_clustered_pages_per_session_interval_covers_the_truth():
    """200 visitors whose own pages per session differ (1 + Gamma(1.5, 1) pages on average, so 2.5 overall),
    1 + Poisson(3) sessions each of 1 + Poisson(mean - 1) pages. 2,000 simulated quarters."""
    rng = np.random.default_rng(17)
    covered = {"clustered": 0, "per session": 0}
    reps = 2000
    for _ in range(reps):
        mu = 1 + rng.gamma(1.5, 1.0, 200)
        x = 1 + rng.poisson(3.0, 200)
        pages = [1 + rng.poisson(m - 1, k) for m, k in zip(mu, x, strict=True)]
        y = np.array([p.sum() for p in pages], dtype=float)
        flat = np.concatenate(pages).astype(float)
        c = ratio_from_moments("pages_per_session", 200, y.sum(), x.sum(), (y * y).sum(), (x * x).sum(),
                               (x * y).sum(), confidence=0.95, unit="ratio", method="")
        i = mean_from_moments("pages_per_session", len(flat), flat.sum(), (flat**2).sum(), confidence=0.95,
                              unit="ratio", method="")
        covered["clustered"] += c.ci_low <= 2.5 <= c.ci_high
        covered["per session"] += i.ci_low <= 2.5 <= i.ci_high
    assert 0.93 <= covered["clustered"] / reps <= 0.97
    assert covered["per session"] / reps < 0.80  # 74%: sessions treated as independent


def _web_only() -> dict[str, pd.DataFrame]:
    """Two customers and two anonymous visitors; a session that starts before the quarter and runs into it."""
    customers = pd.DataFrame({"customer_id": ["a", "b"], "signup_at": pd.to_datetime(["2024-01-05", "2024-02-01"])})
    t = pd.to_datetime
    rows = [
        # a: two sessions in the quarter, 3 and 1 pages
        ("va", "a", "2024-10-02 10:00"), ("va", "a", "2024-10-02 10:10"), ("va", "a", "2024-10-02 10:20"),
        ("va", "a", "2024-11-02 09:00"),
        # b: one session from 23:50 on the quarter's eve to 00:20 (the previous quarter's), one of 5 pages
        ("vb", "b", "2024-09-30 23:50"), ("vb", "b", "2024-10-01 00:05"), ("vb", "b", "2024-10-01 00:20"),
        *[("vb", "b", f"2024-12-01 12:0{k}") for k in range(5)],
        # anonymous: x has two 1-page sessions, y one 2-page session that runs past the quarter's end
        ("x", None, "2024-10-05 08:00"), ("x", None, "2024-10-09 08:00"),
        ("y", None, "2024-12-31 23:55"), ("y", None, "2025-01-01 00:10"),
    ]
    pv = pd.DataFrame(rows, columns=["visitor_id", "customer_id", "viewed_at"])
    pv["viewed_at"] = t(pv["viewed_at"])
    pv["page"] = "/"
    return {"customers": customers, "pageviews": pv}


def test_sessions_belong_to_the_period_they_start_in_and_cluster_in_their_visitor():
    table = measure(eg.load(_web_only()), "2024Q4", segments=[])
    cur = table[table.period_role == "current"].set_index("metric")
    # sessions starting in the quarter: a 3 + 1, b 5, x 1 + 1, y 2 (the eve's session is Q3's; y's keeps its
    # view after midnight)
    assert cur.loc["website_visits", "value"] == 6 and cur.loc["page_views", "value"] == 13
    # clusters: a (2 sessions, 4 pages), b (1, 5), x (2, 2), y (1, 2)
    y, x = np.array([4.0, 5, 2, 2]), np.array([2.0, 1, 2, 1])
    r = y.sum() / x.sum()
    se = np.sqrt(((y - r * x) ** 2).sum() * 4 / (3 * x.sum() ** 2))
    pps = cur.loc["pages_per_session"]
    assert pps.value == pytest.approx(13 / 6) and pps.n == 4 and pps.kind == "clustered_mean"
    assert pps.se == pytest.approx(se, rel=1e-12)
    assert pps.ci_high - pps.value == pytest.approx(stats.t.ppf(0.975, 3) * se, rel=1e-9)
    prev = table[(table.period_role == "previous") & (table.metric == "website_visits")].iloc[0]
    assert prev.value == 1  # b's session across midnight, once, in the quarter it started
    dur = cur.loc["average_session_duration"]
    # durations: a 1200 and 0, b 240, x 0 and 0, y 900
    assert dur.value == pytest.approx((1200 + 240 + 900) / 6)


def test_visits_of_a_customer_who_signs_up_later_count_for_all_customers_only():
    data = _web_only()
    late = pd.DataFrame({"customer_id": ["z"], "signup_at": pd.to_datetime(["2025-02-01"])})
    data["customers"] = pd.concat([data["customers"], late], ignore_index=True)
    # z browsed logged in (an id stitched on later) in November: one 3-page session
    z = pd.DataFrame({"visitor_id": "vz", "customer_id": "z", "page": "/",
                      "viewed_at": pd.to_datetime(["2024-11-10 10:00", "2024-11-10 10:01", "2024-11-10 10:02"])})
    data["pageviews"] = pd.concat([data["pageviews"], z], ignore_index=True)
    table = measure(eg.load(data), "2024Q4", segments=[])
    cur = table[table.period_role == "current"].set_index("metric")
    assert cur.loc["website_visits", "value"] == 7 and cur.loc["page_views", "value"] == 16
    assert cur.loc["pages_per_session", "n"] == 5  # z is a cluster of its own
