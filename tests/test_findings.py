"""Findings and the action plan: planted effects found, the null says nothing moved, plans and progress."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import engagement as eg
from engagement import catalog
from engagement.analysis import (
    associations,
    change_tests,
    customer_summary,
    explained_gaps,
    segment_tests,
    trend_tests,
)
from engagement.data.demo import write_demo
from engagement.data.load import default_demo_path
from engagement.measure import measure, measure_series, rfm_summary
from engagement.plan import action_plan, findings, load_playbook, no_change_summary, progress
from engagement.plan.findings import _customer_name


def _pipeline(ds):
    table = measure(ds, "2024Q4")
    series = measure_series(ds, "2024Q4", periods=8, segments=[])
    rfm = rfm_summary(ds["orders"], calibration_end="2024-12-31")
    bg, gg = eg.BGNBD.fit(rfm), eg.GammaGamma.fit(rfm)
    rfm["clv"] = eg.customer_lifetime_value(bg, gg, rfm)
    relations = associations(customer_summary(ds, "2024Q4", clv=rfm))
    segments = explained_gaps(ds, "2024Q4", segment_tests(table))
    found = findings(table, changes=change_tests(table), segments=segments, trends=trend_tests(series),
                     relations=relations)
    return table, found


def matches(found: pd.DataFrame, effect: dict) -> pd.DataFrame:
    """The findings that state a ground-truth effect: same metric, kind, scope and direction."""
    if effect["kind"] == "relationship":  # one finding per metric: the pair, or the metric's partners named in it
        rel = found[found.kind == "relationship"]
        names = [_customer_name(effect["metric"]), _customer_name(effect["with"])]
        hit = rel[rel.sentence.str.contains(names[0], regex=False) & rel.sentence.str.contains(names[1], regex=False)]
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


# --- one finding per effect, at its true scope ---------------------------------------------------


def _churn_table(now: dict[str, tuple[int, int]], before: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """A measure table of churn by plan: {plan: (lost, at start)} now and the quarter before, plus the total."""
    rows = []
    for role, period, counts in (("current", "2024Q4", now), ("previous", "2024Q3", before)):
        total = (sum(k for k, _ in counts.values()), sum(d for _, d in counts.values()))
        for seg, value, (k, d) in [("all", "all", total)] + [("plan", v, c) for v, c in counts.items()]:
            p = k / d
            rows.append({"period": period, "period_role": role, "segment": seg, "segment_value": value,
                         "metric": "churn_rate", "value": p, "ci_low": p - 0.01, "ci_high": p + 0.01,
                         "se": (p * (1 - p) / d) ** 0.5, "n": d, "numerator": k, "denominator": d,
                         "unit": "fraction", "kind": "proportion", "sampled": True, "method": "", "status": "ok",
                         "reason": ""})
    return pd.DataFrame(rows)


def test_a_segment_change_stands_only_when_it_moved_apart_from_the_rest():
    # basic 40/400 -> 120/400; premium 40/400 -> 44/400: basic moved apart, premium moved with nothing
    table = _churn_table({"basic": (120, 400), "premium": (44, 400)}, {"basic": (40, 400), "premium": (40, 400)})
    ch = change_tests(table).set_index(["segment_value", "comparison"])
    basic = ch.loc[("basic", "previous period")]
    assert basic.rest_change == pytest.approx(0.01)  # premium, the rest of basic, 10% -> 11%
    # by hand: (0.30 - 0.10) - (0.11 - 0.10), each share's variance with one success and one failure added
    var = sum(((k + 1) / (d + 2)) * (1 - (k + 1) / (d + 2)) / (d + 2) for k, d in ((120, 400), (40, 400),
                                                                                   (44, 400), (40, 400)))
    assert basic.vs_rest == pytest.approx(0.19)
    from scipy import stats

    assert basic.vs_rest_p == pytest.approx(2 * stats.norm.sf(0.19 / var**0.5))
    assert bool(basic.apart) is True
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    assert sorted(found[["segment", "segment_value"]].values.tolist()) == [["all", "all"], ["plan", "basic"]]
    overall = found[found.segment == "all"].sentence.iloc[0]
    # shift-share: basic holds half the base and 0.10 of the 0.105 rise (0.5 x 0.20)
    assert "most of it in the basic plan (+10.0 points of the +10.5 points: +10.0 points from its own rate" in overall
    assert "while the rest of the customers moved +1.0 points" in found[found.segment == "plan"].sentence.iloc[0]


def test_a_change_every_segment_shares_is_one_finding_for_all_customers():
    # both plans double their churn: the overall change is real, neither plan moved apart from the other
    table = _churn_table({"basic": (80, 400), "premium": (80, 400)}, {"basic": (40, 400), "premium": (40, 400)})
    ch = change_tests(table)
    assert ch[ch.segment == "plan"].significant.all() and not ch[ch.segment == "plan"].apart.any()
    found = findings(table, changes=ch, segments=pd.DataFrame(), trends=pd.DataFrame())
    assert found.segment.tolist() == ["all"]
    assert "most of it" not in found.sentence.iloc[0]  # no segment holds more of it than its share


def test_a_change_of_composition_is_not_named_as_a_driver_and_says_it_is_one():
    # "young" customers become "old" ones: young's weight collapses; the overall fall is the mix, not a rate.
    # By hand: 100/400 = 25% -> 44/400 = 11%; young churns 30% both times, old 10% both times, so no rate moved
    # and the whole -14 points is the base's mix, young going from 300/400 = 75% of it to 20/400 = 5%
    table = _churn_table({"young": (6, 20), "old": (38, 380)}, {"young": (90, 300), "old": (10, 100)})
    ch = change_tests(table)
    found = findings(table, changes=ch, segments=pd.DataFrame(), trends=pd.DataFrame())
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")]
    assert len(overall) and "most of it" not in overall.sentence.iloc[0]
    assert ('all of it comes from who makes up the base, not from any plan\'s own rate: '
            '"young" was 75% of it in 2024Q3 and 5% in 2024Q4.') in overall.sentence.iloc[0]


def test_a_mix_larger_than_the_change_is_all_of_it_with_what_the_rates_did():
    # as above, but old churns 40/380 in 2024Q4. By hand (midpoint shift-share): the change is 46/400 - 100/400 =
    # -13.5 points; mix: young 0.30 x (0.05 - 0.75) = -0.21, old (40/380 + 0.10)/2 x (0.95 - 0.25) = +0.0718, so
    # -13.8 points; rates: old (0.95 + 0.25)/2 x (40/380 - 0.10) = +0.3 points, young none
    table = _churn_table({"young": (6, 20), "old": (40, 380)}, {"young": (90, 300), "old": (10, 100)})
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")]
    assert "-13.5 points" in overall.sentence.iloc[0]
    assert ('all of it comes from who makes up the base, not from any plan\'s own rate (together those moved '
            '+0.3 points): "young" was 75% of it in 2024Q3 and 5% in 2024Q4.') in overall.sentence.iloc[0]


def test_a_change_mostly_of_rates_is_not_called_one_of_composition():
    # basic 40/400 -> 120/400 (its own rate), premium steady: the mix moved nothing, so nothing is said of it
    table = _churn_table({"basic": (120, 400), "premium": (44, 400)}, {"basic": (40, 400), "premium": (40, 400)})
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    assert "who makes up the base" not in " ".join(found.sentence)


def test_a_mix_and_rates_that_pull_apart_are_not_called_a_change_of_composition():
    # by hand: 480/1600 = 30% -> 384/1600 = 24%. Both plans' rates rose 10 points (a 10% -> 20%, b 50% -> 60%):
    # +10 points of rate; a's weight went from 50% to 90%: -16 points of mix. Neither is the -6 points
    table = _churn_table({"a": (288, 1440), "b": (96, 160)}, {"a": (80, 800), "b": (400, 800)})
    from engagement.analysis.segments import shift_share

    parts = shift_share(table, metric="churn_rate", segment="plan")
    assert parts.rate.sum() == pytest.approx(0.10) and parts.mix.sum() == pytest.approx(-0.16)
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    assert len(found) and "who makes up the base" not in " ".join(found.sentence)


def test_a_rate_compared_across_bases_of_different_customers_says_so():
    # 800 customers at the start of 2024Q3, 400 at the start of 2024Q4: at least half of the first are not in the
    # second (400 / 800 = 50%), so the rise from 10% to 30% compares different customers; with bases alike
    # (800 both times, the test above) nothing of the sort is said
    table = _churn_table({"a": (60, 200), "b": (60, 200)}, {"a": (40, 400), "b": (40, 400)})
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")].sentence.iloc[0]
    assert ("; its base was 400 customers against 800 in 2024Q3: at least 50% of the 2024Q3 customers are not "
            "among 2024Q4's, so the two rates are of different customers.") in overall
    alike = _churn_table({"basic": (80, 400), "premium": (80, 400)}, {"basic": (40, 400), "premium": (40, 400)})
    found = findings(alike, changes=change_tests(alike), segments=pd.DataFrame(), trends=pd.DataFrame())
    assert "its base was" not in " ".join(found.sentence)


def test_shift_share_parts_sum_to_the_overall_change():
    rng = np.random.default_rng(3)
    for _ in range(20):
        now = {v: (int(rng.integers(0, 50)), int(rng.integers(60, 500))) for v in "abcd"}
        before = {v: (int(rng.integers(0, 50)), int(rng.integers(60, 500))) for v in "abcd"}
        table = _churn_table(now, before)
        from engagement.analysis.segments import shift_share

        parts = shift_share(table, metric="churn_rate", segment="plan")
        total = table[table.segment == "all"].set_index("period_role").value
        assert parts.contribution.sum() == pytest.approx(total["current"] - total["previous"], abs=1e-12)
        assert (parts.rate + parts.mix).to_numpy() == pytest.approx(parts.contribution.to_numpy())


def test_comparisons_merge_gaps_collapse_and_levels_carry_no_q_value():
    table = _churn_table({"basic": (120, 400), "premium": (44, 400)}, {"basic": (40, 400), "premium": (40, 400)})
    year_ago = table[table.period_role == "previous"].assign(period_role="year_ago", period="2023Q4")
    table = pd.concat([table, year_ago], ignore_index=True)
    segments = pd.DataFrame([
        {"segment": "plan", "segment_value": v, "metric": "churn_rate", "unit": "fraction", "period": "2024Q4",
         "value": x, "rest": r, "difference": x - r, "ci_low": x - r - 0.02, "ci_high": x - r + 0.02,
         "p_value": 1e-6, "q_value": 1e-6, "significant": True, "n": 400, "n_rest": 400}
        for v, x, r in (("basic", 0.30, 0.11), ("premium", 0.11, 0.30))])
    current = table[(table.period_role == "current") & (table.segment == "all")]
    found = findings(table, changes=change_tests(table), segments=segments, trends=pd.DataFrame(),
                     targets={"churn_rate": 0.05})
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")]
    assert len(overall) == 1 and "against a year earlier (2023Q4): 10.0% to 20.5%" in overall.sentence.iloc[0]
    # basic's churn rose apart from the rest and now stands above it: one finding, the change, with the gap
    assert found[found.kind == "segment_gap"].empty
    basic = found[(found.segment_value == "basic") & found.kind.str.startswith("change")]
    assert len(basic) == 1 and "it is now higher than for the rest of the customers: 30.0% vs 11.0%" in \
        basic.sentence.iloc[0] and "also different from the rest: premium" in basic.sentence.iloc[0]
    level = found[found.kind == "level_vs_target"]
    assert len(level) == 1 and level.q_value.isna().all() and current.value.iloc[0] > 0.05


def test_relationships_one_per_metric_above_a_size_floor():
    relations = pd.DataFrame([
        {"variable": a, "other": b, "rho": rho, "ci_low": rho - 0.03, "ci_high": rho + 0.03, "p_value": 1e-9,
         "q_value": 1e-9, "significant": True, "n": 2000}
        for a, b, rho in (("nps", "csat", 0.30), ("nps", "clv", 0.15), ("csat", "clv", 0.12), ("nps", "aov", 0.05))])
    found = findings(pd.DataFrame(columns=["metric", "segment", "segment_value", "period_role", "status"]),
                     changes=pd.DataFrame(), segments=pd.DataFrame(), trends=pd.DataFrame(), relations=relations)
    rel = found[found.kind == "relationship"]
    # nps-csat, then clv (not yet covered) with nps; csat-clv has both covered; nps-aov is below the floor
    assert rel[["metric", "other_metric"]].values.tolist() == [["nps", "csat"], ["clv", "nps"]]
    assert "it also moves with" in rel.sentence.iloc[0] and "Average order value" not in " ".join(rel.sentence)


@pytest.mark.slow
@pytest.mark.parametrize("seed, mode", [(7, "planted"), (13, "planted"), (11, "null"), (23, "null")])
def test_findings_on_other_seeds_find_the_planted_effects_and_little_else(tmp_path, seed, mode):
    write_demo(tmp_path, 4000, seed=seed, mode=mode)
    _, found = _pipeline(eg.load(tmp_path, cache=False))
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    if mode == "planted":
        assert [e["id"] for e in truth["effects"] if matches(found, e).empty] == []
        assert len(found) <= 30, found.sentence.tolist()
    else:
        # a benchmark target aside, at most one finding: AOV and CLV correlate by construction (CLV is predicted
        # from each customer's mean spend), whatever the generator plants
        rest = found[found.kind != "level_vs_target"]
        assert len(rest) <= 1, rest.sentence.tolist()


def _report(folder, period: str, values: dict, plan: list[tuple] | None = None) -> None:
    """A rendered report's metrics.csv ({(metric, segment, value): figure}) and action_plan.csv."""
    folder.mkdir()
    pd.DataFrame([{"period": period, "period_role": "current", "segment": seg, "segment_value": val,
                   "metric": metric, "value": v} for (metric, seg, val), v in values.items()]).to_csv(
        folder / "metrics.csv", index=False)
    if plan is not None:
        pd.DataFrame(plan, columns=["metric", "segment", "segment_value", "target_value"]).to_csv(
            folder / "action_plan.csv", index=False)


def test_progress_judges_segment_targets_and_any_metric_and_never_a_period_against_itself(tmp_path):
    _report(tmp_path / "2024Q3", "2024Q3", {("churn_rate", "all", "all"): 0.06},
            plan=[("churn_rate", "plan", "basic", 0.07), ("aov", "all", "all", 90.0), ("nps", "all", "all", None)])
    # an earlier render of this very period (re-rendered with --force) and a later one: neither is history
    _report(tmp_path / "2024Q4", "2024Q4", {("churn_rate", "all", "all"): 0.01}, plan=[("aov", "all", "all", 1e6)])
    _report(tmp_path / "2025Q1", "2025Q1", {("churn_rate", "all", "all"): 0.02}, plan=[("aov", "all", "all", 1e6)])
    current = pd.DataFrame({"period": "2024Q4", "period_role": "current",
                            "segment": ["all", "plan", "plan", "all"], "segment_value": ["all", "basic", "premium", "all"],
                            "metric": ["churn_rate", "churn_rate", "churn_rate", "aov"],
                            "value": [0.05, 0.08, 0.02, 92.5]})
    p = progress(tmp_path, ["churn_rate"], current=current)
    assert set(p.period) == {"2024Q3", "2024Q4"}
    now = p[p.period == "2024Q4"].set_index(["metric", "segment", "segment_value"])
    # basic's churn 8% missed its 7% target (lower is better); AOV $92.50 met $90 though not a selected metric
    assert bool(now.loc[("churn_rate", "plan", "basic"), "met"]) is False
    assert bool(now.loc[("aov", "all", "all"), "met"]) is True and now.loc[("aov", "all", "all"), "target"] == 90.0
    assert np.isnan(now.loc[("churn_rate", "all", "all"), "target"])  # no target was set for all customers
    assert len(now) == 3  # the NPS line had no target: nothing to judge


def test_progress_matches_a_segment_whose_label_was_neutralised_in_the_csv(tmp_path):
    from engagement.present import write_csv

    label = "=HYPERLINK(\"http://x\",\"click\")"
    folder = tmp_path / "2024Q3"
    folder.mkdir()
    write_csv(pd.DataFrame({"period": "2024Q3", "period_role": "current", "segment": "region",
                            "segment_value": [label, "'north"], "metric": "churn_rate", "value": [0.09, 0.05]}),
              folder / "metrics.csv")
    write_csv(pd.DataFrame({"metric": ["churn_rate", "churn_rate"], "segment": "region",
                            "segment_value": [label, "'north"], "target_value": [0.08, 0.04]}),
              folder / "action_plan.csv")
    assert (folder / "action_plan.csv").read_text().count("'=HYPERLINK") == 1  # written neutralised
    current = pd.DataFrame({"period": "2024Q4", "period_role": "current", "segment": "region",
                            "segment_value": [label, "'north"], "metric": "churn_rate", "value": [0.07, 0.045]})
    p = progress(tmp_path, ["churn_rate"], current=current)
    now = p[p.period == "2024Q4"].set_index("segment_value")
    assert bool(now.loc[label, "met"]) is True and now.loc[label, "target"] == 0.08
    assert bool(now.loc["'north", "met"]) is False  # a label that starts with an apostrophe keeps it


def test_a_mix_that_is_most_of_the_change_says_how_much():
    # young churns 4/20 in 2024Q4. By hand: the change is 42/400 - 100/400 = -14.5 points; mix: young
    # (0.20 + 0.30)/2 x (0.05 - 0.75) = -0.175, old 0.10 x 0.70 = +0.07, so -10.5 points; young's own rate
    # (0.05 + 0.75)/2 x (0.20 - 0.30) = -4.0 points
    table = _churn_table({"young": (4, 20), "old": (38, 380)}, {"young": (90, 300), "old": (10, 100)})
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")]
    assert ('-10.5 points of the -14.5 points comes from who makes up the base, not from any plan\'s own rate: '
            '"young" was 75% of it in 2024Q3 and 5% in 2024Q4.') in overall.sentence.iloc[0]


def test_a_deterioration_from_the_base_s_mix_gets_an_action_on_that_mix():
    # the first example reversed: young (churning 30%) goes from 20/400 = 5% of the base to 300/400 = 75%, so churn
    # rises 11% -> 25% with no plan's own rate moving; the plan acts on who makes up the base, not on churn itself
    table = _churn_table({"young": (90, 300), "old": (10, 100)}, {"young": (6, 20), "old": (38, 380)})
    found = findings(table, changes=change_tests(table), segments=pd.DataFrame(), trends=pd.DataFrame())
    overall = found[(found.segment == "all") & found.kind.str.startswith("change")].iloc[0]
    assert overall.composition == 'plan "young" was 5% of it in 2024Q3 and 75% in 2024Q4'
    assert (found.composition[found.index != overall.name] == "").all()
    plan = action_plan(found, table=table)
    first = plan.iloc[0]
    assert first.metric == "churn_rate" and first.strategy == "personalisation"
    assert first.action.startswith('Find out why the base changed (plan "young" was 5% of it in 2024Q3 and 75% in '
                                   '2024Q4)')
    assert first.target == "18.0% (recover half the change)"  # 25% + (11% - 25%) / 2
