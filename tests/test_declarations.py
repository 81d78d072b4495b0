"""The metric declarations: one source for measure, unavailability, the choice of test and the catalogue."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import engagement as eg
from engagement import catalog
from engagement.analysis import difference_test, segment_tests
from engagement.data.load import default_demo_path
from engagement.measure import measure, parse_period
from engagement.measure.declarations import DECLARATIONS, KINDS, SAMPLED_KINDS, Measured
from engagement.measure.facts import FLAG_COLUMNS, customer_facts, segment_sums
from engagement.measure.segments import segment_columns


@pytest.fixture(scope="module")
def demo() -> eg.Dataset:
    return eg.load(default_demo_path())


@pytest.fixture(scope="module")
def table(demo) -> pd.DataFrame:
    return measure(demo, "2024Q4", segments=["plan"], compare=True)


def _customers(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                         "signup_at": pd.to_datetime(["2023-06-01"] * n),
                         "cancelled_at": pd.to_datetime(["2024-11-15"] + [None] * (n - 1))})


def test_every_declared_metric_has_a_catalogue_entry_that_agrees():
    for d in DECLARATIONS.values():
        spec = catalog.get(d.id)
        assert spec.unit == d.unit, d.id
        # the catalogue's tables are the declaration's (customers is always there)
        needs = {n.split(".")[0] for n in d.needs} - {"customers"}
        assert set(spec.tables) - {"customers"} == needs | set(d.needs_any[:1]), d.id
    not_measured = set(catalog.CATALOG) - set(DECLARATIONS)
    assert not_measured == {"review_rating", "engagement_score"}  # computed by their functions only


def test_every_declared_sum_is_a_fact_the_engine_sums(demo):
    p = parse_period("2024Q4")
    facts = customer_facts(demo, p, pd.Timestamp("2025-01-10"), 30.0)
    base = segment_columns(demo, p, [], customers=facts.flags, keep=FLAG_COLUMNS)
    sums = segment_sums(base, facts, [], 2)
    for c in facts.caches:
        c.release()
    for d in DECLARATIONS.values():
        missing = set(d.sums) - set(sums.columns)
        assert not missing, (d.id, missing)
        if d.level == "segment":
            assert d.sums, d.id  # a segment-level metric says which facts it sums


def test_measure_table_carries_each_declarations_kind_and_sampling(table):
    got = table[["metric", "kind", "sampled"]].drop_duplicates()
    assert not got.metric.duplicated().any()  # one kind per metric, every period and segment
    for r in got.itertuples():
        assert r.kind == DECLARATIONS[r.metric].kind and r.sampled == (r.kind in SAMPLED_KINDS)
    # sampled figures have a standard error wherever they have two or more observations; population figures never
    ok = table[(table.status == "ok") & (table.n >= 2) & table.value.notna()]
    assert ok.loc[ok.sampled, "se"].notna().all()
    assert ok.loc[~ok.sampled, "se"].isna().all()


def test_retention_rate_has_its_binomial_standard_error(table):
    r = table[(table.metric == "retention_rate") & (table.segment == "all")].iloc[0]
    p, n = r.numerator / r.denominator, r.denominator
    assert r.se == pytest.approx(math.sqrt(p * (1 - p) / n), rel=1e-12)


def test_unavailable_reasons_and_units_come_from_the_declarations():
    t = measure({"customers": _customers()}, "2024Q4", segments=[], compare=False)
    un = t[t.status == "unavailable"].set_index("metric")
    assert un.loc["aov", "reason"] == "the dataset has no orders table" and un.loc["aov", "unit"] == "currency"
    assert un.loc["clv_cac_ratio", "reason"] == "the dataset has no marketing_spend and no orders tables"
    # without any activity table an engagement rate would read 0%: it is unavailable instead
    assert un.loc["engagement_rate", "reason"].startswith("the dataset has no activity table")
    assert set(un.index) | set(t.loc[t.status == "ok", "metric"]) == set(DECLARATIONS)
    assert (t.loc[t.status == "ok", "metric"].unique().tolist()
            == ["active_customers", "churn_rate", "new_customers", "retention_rate"])


def test_a_declaration_checks_itself():
    with pytest.raises(ValueError, match="kind"):
        Measured("x", "average", "ratio", level="channel")
    with pytest.raises(ValueError, match="compute"):
        Measured("x", "mean", "ratio")  # segment level without a compute
    assert set(KINDS) >= SAMPLED_KINDS


def test_adding_a_metric_is_its_declaration_and_its_catalogue_entry(monkeypatch):
    """The two edits, made here at run time: measure, unavailability and the tests' choice follow."""
    spec = catalog.MetricSpec("orders_per_buyer", "Orders per buyer", "value", "Orders per customer who bought.",
                              "orders / buyers", r"n/b", "ratio", True, ("orders.order_id",), "purchase_frequency",
                              "", "", "loyalty")
    decl = Measured("orders_per_buyer", "population_figure", "ratio", needs=("orders",), sums=("n_orders", "buyers"),
                    compute=lambda s: eg.purchase_frequency(int(s("n_orders")), int(s("buyers"))))
    monkeypatch.setitem(catalog.CATALOG, spec.id, spec)
    monkeypatch.setitem(DECLARATIONS, decl.id, decl)
    orders = pd.DataFrame({"order_id": [1, 2, 3], "customer_id": ["c0", "c1", "c1"], "revenue": [5.0, 7.0, 9.0],
                           "ordered_at": pd.to_datetime(["2024-10-02", "2024-10-03", "2024-12-30"])})
    t = measure({"customers": _customers(), "orders": orders}, "2024Q4", segments=[], compare=False).set_index("metric")
    assert t.loc["orders_per_buyer", "value"] == 1.5 and t.loc["orders_per_buyer", "kind"] == "population_figure"
    bare = measure({"customers": _customers()}, "2024Q4", segments=[], compare=False).set_index("metric")
    assert bare.loc["orders_per_buyer", "reason"] == "the dataset has no orders table"
    assert difference_test(t.loc["orders_per_buyer"].to_dict() | {"metric": "orders_per_buyer"},
                           t.loc["orders_per_buyer"].to_dict() | {"metric": "orders_per_buyer"})["test"] \
        == "none (figure without sampling error)"


def test_social_engagement_rate_is_tested_as_a_ratio_not_as_shares_of_reach():
    """Engagements per reach are not Bernoulli trials (one person likes and comments): the ratio estimator's SE
    decides, computed here by hand from two platforms' posts."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(2):
        reach = rng.integers(500, 1500, size=40).astype(float)
        eng = rng.poisson(reach * (0.05 + 0.01 * k) * rng.gamma(2.0, 0.5, size=40))
        rows.append((eng, reach))
    res = []
    for eng, reach in rows:
        r = eng.sum() / reach.sum()
        n = len(eng)
        se = math.sqrt(((eng - r * reach) ** 2).sum() / (n * (n - 1) * reach.mean() ** 2))
        res.append({"metric": "social_engagement_rate", "value": r, "n": n, "se": se, "numerator": eng.sum(),
                    "denominator": reach.sum(), "unit": "fraction", "kind": "ratio", "sampled": True})
    out = difference_test(res[1], res[0])
    z = (res[1]["value"] - res[0]["value"]) / math.hypot(res[0]["se"], res[1]["se"])
    assert out["test"] == "z-test, ratio-estimator SE"
    assert out["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)


def test_segment_tests_pool_by_kind_and_skip_what_cannot_be_pooled(table):
    seg = segment_tests(table)
    tested = seg[seg.p_value.notna()]
    kinds = set(tested.metric.map(lambda m: DECLARATIONS[m].kind))
    assert kinds <= {"proportion", "net_score", "mean", "clustered_mean"}  # AOV: pooled totals over customers
    # medians (support times) are measured per plan but not poolable from their summaries
    med = seg[seg.metric == "first_response_time"]
    assert len(med) and med.p_value.isna().all() and med.test.str.startswith("none (a median, ratio or total").all()


def test_orders_without_the_optional_cost_column_give_revenue_clv():
    orders = pd.DataFrame({"order_id": [1, 2, 3], "customer_id": ["c0", "c1", "c1"], "revenue": [5.0, 7.0, 9.0],
                           "ordered_at": pd.to_datetime(["2024-10-02", "2024-10-03", "2024-12-30"])})
    t = measure({"customers": _customers(), "orders": orders}, "2024Q4", segments=[], compare=False).set_index("metric")
    # AOV 21 / 3 = 7, 3 orders / 6 active customers = 0.5 a quarter, churn 1 / 6: 7 x 0.5 x 6 quarters, margin 1
    assert t.loc["aov", "value"] == 7.0 and t.loc["purchase_frequency", "value"] == 0.5
    assert t.loc["clv", "value"] == pytest.approx(21.0)
