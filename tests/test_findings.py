"""Findings and the action plan: planted effects found, the null says nothing moved, plans and progress."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import engagement as eg
from engagement import catalog
from engagement.analysis import associations, change_tests, customer_summary, segment_tests, trend_tests
from engagement.data.demo import write_demo
from engagement.data.load import default_demo_path
from engagement.measure import measure, measure_series, rfm_summary
from engagement.plan import action_plan, findings, load_playbook, no_change_summary, progress


def _pipeline(ds):
    table = measure(ds, "2024Q4")
    series = measure_series(ds, "2024Q4", periods=8, segments=[])
    rfm = rfm_summary(ds["orders"], calibration_end="2024-12-31")
    bg, gg = eg.BGNBD.fit(rfm), eg.GammaGamma.fit(rfm)
    rfm["clv"] = eg.customer_lifetime_value(bg, gg, rfm)
    relations = associations(customer_summary(ds, "2024Q4", clv=rfm))
    found = findings(table, changes=change_tests(table), segments=segment_tests(table), trends=trend_tests(series),
                     relations=relations)
    return table, found


def matches(found: pd.DataFrame, effect: dict) -> pd.DataFrame:
    """The findings that state a ground-truth effect: same metric, kind, scope and direction."""
    if effect["kind"] == "relationship":
        other = catalog.get(effect["with"]).name
        name = catalog.get(effect["metric"]).name
        rel = found[found.kind == "relationship"]
        hit = rel[rel.sentence.str.contains(name, regex=False) & rel.sentence.str.contains(other, regex=False)]
        return hit[hit.change == effect["direction"]]
    hit = found[(found.metric == effect["metric"]) & (found.kind == effect["kind"])
                & (found.segment == effect.get("segment", "all"))
                & (found.segment_value == effect.get("segment_value", "all"))]
    return hit[hit.change == effect["direction"]]


@pytest.fixture(scope="module")
def planted():
    return _pipeline(eg.load(default_demo_path()))


def test_every_planted_effect_is_among_the_findings(planted):
    _, found = planted
    truth = json.loads((default_demo_path() / "ground_truth.json").read_text())["effects"]
    assert len(truth) == 12
    missing = [e["id"] for e in truth if matches(found, e).empty]
    assert missing == []


def test_finding_sentence_carries_the_numbers(planted):
    _, found = planted
    churn = found[(found.metric == "churn_rate") & (found.segment_value == "basic")
                  & (found.kind == "change_vs_previous")].iloc[0]
    s = churn.sentence
    assert s.startswith("Customer churn rate in the basic plan rose from ")
    assert "95% CI +" in s and "points" in s and "q < 0.001" in s and "of lifetime value is at risk" in s
    assert churn.direction == "worse" and churn.impact > 0
    assert (found["rank"] == np.arange(1, len(found) + 1)).all()
    assert (found.direction.iloc[: (found.direction == "worse").sum()] == "worse").all()  # worse first


def test_action_plan_one_action_per_metric_with_targets(planted):
    table, found = planted
    plan = action_plan(found, table=table)
    actions = plan[plan.owner != "Analytics"]
    assert actions.metric.map(catalog.family).is_unique  # one action per effect
    churn = plan[plan.metric == "churn_rate"].iloc[0]
    assert churn.segment == "all" and "basic" in churn.also_in
    cur = table.query("metric == 'churn_rate' and segment == 'all' and period_role == 'current'").value.iloc[0]
    prev = table.query("metric == 'churn_rate' and segment == 'all' and period_role == 'previous'").value.iloc[0]
    assert churn.target_value == pytest.approx(cur + 0.5 * (prev - cur))
    assert {"Customer success", "Customer support", "Marketing"} <= set(plan.owner)


def test_playbook_covers_the_seeds_action_tables():
    pb = load_playbook()
    seed_rows = {"csat", "nps", "bounce_rate", "churn_rate", "social_engagement_rate", "resolution_time",
                 "first_response_time", "aov", "clv", "product_usage_rate", "referral_rate", "cac",
                 "email_open_rate", "email_click_rate", "average_session_duration"}
    assert seed_rows <= set(pb.metric)
    strategies = {"personalisation", "omnichannel", "support", "loyalty and referral programmes", "content",
                  "automation", "feedback loops"}
    assert strategies <= set(pb.strategy)


def test_null_dataset_says_nothing_moved(tmp_path):
    write_demo(tmp_path, 4000, seed=11, mode="null")
    table, found = _pipeline(eg.load(tmp_path))
    movements = found[found.kind.isin(["change_vs_previous", "change_vs_last_year", "trend"])]
    assert movements.empty, movements.sentence.tolist()[:3]
    gaps = found[found.kind == "segment_gap"]
    assert gaps.empty, gaps.sentence.tolist()[:3]
    assert no_change_summary(table, found, ["nps", "churn_rate"]).startswith("Nothing moved significantly")


def test_progress_judges_earlier_targets(tmp_path):
    earlier = tmp_path / "2024Q3"
    earlier.mkdir()
    pd.DataFrame({"period": ["2024Q3"] * 2, "period_role": "current", "segment": "all", "segment_value": "all",
                  "metric": ["churn_rate", "nps"], "value": [0.06, 40.0]}).to_csv(earlier / "metrics.csv", index=False)
    pd.DataFrame({"metric": ["churn_rate", "nps"], "segment": "all", "target_value": [0.05, 45.0]}).to_csv(
        earlier / "action_plan.csv", index=False)
    current = pd.DataFrame({"period": ["2024Q4"] * 2, "period_role": "current", "segment": "all",
                            "segment_value": "all", "metric": ["churn_rate", "nps"], "value": [0.045, 42.0]})
    p = progress(tmp_path, ["churn_rate", "nps"], current=current).set_index(["period", "metric"])
    # churn 0.045 reached the target 0.05 (lower is better); NPS 42 fell short of 45
    assert bool(p.loc[("2024Q4", "churn_rate"), "met"]) is True
    assert bool(p.loc[("2024Q4", "nps"), "met"]) is False
    assert p.loc[("2024Q4", "churn_rate"), "target"] == 0.05
