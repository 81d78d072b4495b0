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


def test_clustered_share_intervals_cover_the_truth_and_the_per_item_ones_do_not():
    """Emails cluster in their customer: 300 customers, each with an open propensity ~ Beta(1, 3) (the true open
    rate is 25%) and 1 + Poisson(4) emails. NPS answers cluster in their respondent: 400 customers of a type
    (promoter, passive, detractor with chances 0.5, 0.3, 0.2) answer 1 + Poisson(1.5) times, each answer their
    type with chance 0.8 and any of the three otherwise (true NPS 100 x (0.4667 - 0.2267) = 24). 2,000 simulated
    quarters each."""
    from engagement.intervals import clustered_share_result

    rng = np.random.default_rng(31)
    covered = {"emails clustered": 0, "emails independent": 0, "nps clustered": 0, "nps independent": 0}
    reps = 2000
    for _ in range(reps):
        p = rng.beta(1.0, 3.0, 300)
        x = 1 + rng.poisson(4.0, 300)
        y = rng.binomial(x, p).astype(float)
        flat = eg.email_open_rate(int(y.sum()), int(x.sum()))
        c = clustered_share_result(flat, 300, (y * y).sum(), (x * x).sum(), (x * y).sum())
        covered["emails clustered"] += c.ci_low <= 0.25 <= c.ci_high
        covered["emails independent"] += flat.ci_low <= 0.25 <= flat.ci_high
        kind = rng.choice(3, 400, p=[0.5, 0.3, 0.2])
        times = 1 + rng.poisson(1.5, 400)
        who = np.repeat(np.arange(400), times)
        answer = np.where(rng.random(len(who)) < 0.8, kind[who], rng.choice(3, len(who)))
        scores = np.array([10, 8, 3])[answer]
        for label, r in (("clustered", eg.nps(scores, respondents=who)), ("independent", eg.nps(scores))):
            covered[f"nps {label}"] += r.ci_low <= 24.0 <= r.ci_high
    rates = {k: v / reps for k, v in covered.items()}
    assert 0.93 <= rates["emails clustered"] <= 0.97 and rates["emails independent"] < 0.85, rates
    assert 0.93 <= rates["nps clustered"] <= 0.97 and rates["nps independent"] < 0.91, rates


def _email_only() -> dict[str, pd.DataFrame]:
    """Three customers with email only: a opens all 6 of their campaigns, b none of 6, c one of 2."""
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "signup_at": pd.Timestamp("2024-01-05")})
    rows = []
    for who, n, opened in (("a", 6, 6), ("b", 6, 0), ("c", 2, 1)):
        for i in range(n):
            at = pd.Timestamp("2024-10-02") + pd.Timedelta(days=7 * i)
            rows.append((who, f"k{i}", "delivered", at))
            if i < opened:
                rows.append((who, f"k{i}", "open", at + pd.Timedelta(hours=2)))
    email = pd.DataFrame(rows, columns=["customer_id", "campaign_id", "event", "occurred_at"])
    return {"customers": customers, "email_events": email}


def test_measured_open_rate_is_at_its_effective_sample_size_and_the_tests_read_it():
    from engagement.analysis.trends import difference_test

    table = measure(_email_only(), "2024Q4", segments=[], compare=False)
    got = table[table.metric == "email_open_rate"].iloc[0]
    # by hand: 7 of 14; per customer (y, x) = (6, 6), (0, 6), (1, 2); R = 1/2
    ss = (6 - 3) ** 2 + (0 - 3) ** 2 + (1 - 1) ** 2  # sum (y - R x)^2 = 18
    clustered = ss * 3 / (2 * 14**2)
    deff = clustered / (0.25 / 13)
    assert got.value == 0.5 and got.numerator == 7 and got.denominator == 14
    # the share's variance at its effective size: p (1 - p) / (14 / deff)
    assert got.n == round(14 / deff) == 2 and got.se == pytest.approx(np.sqrt(0.25 * deff / 14), rel=1e-12)
    low, high = sm_wilson(7 / deff, 14 / deff)
    assert (got.ci_low, got.ci_high) == (pytest.approx(low), pytest.approx(high))
    # a share at an effective size of a quarter of its items is tested as its counts divided by four
    a = {"metric": "email_open_rate", "value": 0.3, "numerator": 300, "denominator": 1000, "n": 250}
    b = {"metric": "email_open_rate", "value": 0.24, "numerator": 240, "denominator": 1000, "n": 250}
    same = difference_test({**a, "numerator": 75, "denominator": 250}, {**b, "numerator": 60, "denominator": 250})
    assert difference_test(a, b)["p_value"] == pytest.approx(same["p_value"], rel=1e-12)
    assert difference_test({**a, "n": 1000}, {**b, "n": 1000})["p_value"] < same["p_value"] / 10


def sm_wilson(k: float, n: float) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def test_answers_without_their_respondent_are_refused_not_dropped():
    with pytest.raises(ValueError, match=r"`respondents` must name one per value of `ratings`: 1 for 2 values"):
        eg.csat([4, 5], respondents=["a"])
    with pytest.raises(ValueError, match=r"`respondents`: 1 of 3 are missing \(e.g. at position 1\)"):
        eg.nps([10, 9, 3], respondents=["a", None, "b"])
    # a missing answer is excluded with its respondent, and counted
    r = eg.csat([4, None, 5, 2], respondents=["a", "b", "a", "c"])
    assert r.n_missing == 1 and r.denominator == 3 and r.details["clusters"] == 2
