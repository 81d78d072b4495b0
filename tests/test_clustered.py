"""Per-order averages cluster in customers: AOV's interval is the ratio estimator over customers."""

from __future__ import annotations

import numpy as np
import pytest

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
