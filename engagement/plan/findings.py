"""From statistics to findings: structured, ranked, with the evidence and a sentence a manager can read.

A finding is made only from a statistically supported result (Benjamini-Hochberg
q < alpha), except for figures without sampling error (CAC per channel, which is
a ratio of totals), whose gaps are reported when they exceed a stated ratio.
Everything else is summarised as "no significant change".
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from engagement import catalog
from engagement.catalog import VARIABLE_METRIC
from engagement.present import format_delta, format_money, format_q, format_value, level_label

__all__ = ["findings", "no_change_summary", "DEFAULT_TARGETS", "FINDING_COLUMNS"]

#: What this module imports on first use (the statistics: 1.3 s), so that importing it stays light for what
#: does not need them (the planning notebook, the report's runner); the report has a notebook's kernel import
#: these ahead of the notebook's turn when the notebook imports this module (:func:`engagement.report._warm_up`).
__warm_up__ = ("engagement.analysis.segments",)

#: Default targets where a published benchmark gives one (catalogue sources); pass your own.
DEFAULT_TARGETS: dict[str, float] = {"email_open_rate": 0.21, "email_click_rate": 0.026,
                                     "unsubscribe_rate": 0.0026, "clv_cac_ratio": 3.0}
#: ``other_metric`` is the second metric of a relationship ("" for every other kind); ``composition`` says, for an
#: overall change that comes from who makes up the base, whose share of it moved ("" otherwise): nothing
#: downstream reads a finding's sentence to learn what it is about
FINDING_COLUMNS = ["rank", "metric", "other_metric", "metric_name", "kind", "period", "segment", "segment_value",
                   "direction", "change", "value", "reference", "effect", "ci_low", "ci_high", "unit", "p_value",
                   "q_value", "severity", "impact", "impact_basis", "score", "composition", "sentence"]
#: the kinds of finding that are movements (as opposed to levels, gaps and relationships)
MOVEMENTS = ("change_vs_previous", "change_vs_last_year", "trend")
#: customer-level volumes that all grow with the time a customer has been around
EXPOSURE = {"orders", "spend", "clv", "active_days"}


def _name(metric: str) -> str:
    return catalog.name(metric)


def _customer_name(metric: str) -> str:
    """A metric's name as a customer-level variable: a customer's CLV is the one the model predicts for them,
    not the simple formula of the period's averages the catalogue's ``clv`` names."""
    return "predicted customer lifetime value" if metric == "clv" else _name(metric)


def _better(metric: str, delta: float) -> str:
    hib = catalog.higher_is_better(metric)
    if hib is None or delta == 0:
        return "neutral"
    return "better" if (delta > 0) == hib else "worse"


def _scope(segment: str, value: str) -> str:
    """The segment as words: " in the basic plan", " for customers acquired through paid_social"."""
    if segment == "all":
        return ""
    phrases = {
        "plan": f" in the {value} plan",
        "acquisition_channel": f" for customers acquired through {value}",
        "region": f" in the {value} region",
        "tenure_band": " for customers new this period" if value == "new this period"
        else f" for customers of {value}'s tenure" if value == "more than 1 year"
        else f" for customers of {value} tenure",
        "new_vs_returning": f" for {value} customers",
        "value_tier": " for customers who bought nothing last year" if value == "none"
        else f" for {value}-value customers",
        "platform": f" on {value}",
    }
    return phrases.get(segment, f" for {segment.replace('_', ' ')} {value}")


def _severity(q: float, rel: float, impact: float) -> str:
    if (not math.isnan(impact) and impact >= 10_000) or (q < 0.001 and abs(rel) >= 0.10):
        return "high"
    if q < 0.01 or abs(rel) >= 0.10:
        return "medium"
    return "low"


def _segment_value_at_risk(table: pd.DataFrame, segment: str, value: str, clv: pd.DataFrame | None) -> float:
    """Mean value of a customer of this segment: predicted CLV where given (the overall predicted mean for
    segments without their own), else the simple CLV of the measure table."""
    if clv is not None and len(clv):
        hit = clv[(clv.segment == segment) & (clv.segment_value == value)]
        if not len(hit):  # one basis for every segment: the overall predicted mean, not the simple formula
            hit = clv[clv.segment == "all"]
        if len(hit):
            return float(hit.mean_clv.iloc[0])
    row = table[(table.metric == "clv") & (table.segment == segment) & (table.segment_value == value)
                & (table.period_role == "current") & (table.status == "ok")]
    return float(row.value.iloc[0]) if len(row) else math.nan


def _impact(metric: str, kind: str, r: pd.Series, table: pd.DataFrame, clv: pd.DataFrame | None) -> tuple[float, str]:
    cur = table[(table.segment == r.segment) & (table.segment_value == r.segment_value)
                & (table.period_role == "current")]

    def get(m: str, col: str = "value") -> float:
        hit = cur[cur.metric == m]
        return float(hit[col].iloc[0]) if len(hit) else math.nan

    if metric == "churn_rate" and kind.startswith("change") and r.effect > 0:
        at_start = get("churn_rate", "denominator")
        per = _segment_value_at_risk(table, r.segment, r.segment_value, clv)
        excess = r.effect * at_start
        if not math.isnan(per):
            return excess * per, f"{excess:,.0f} more customers lost than at the earlier rate x {format_money(per)} each"
    if metric == "aov" and kind.startswith("change"):
        orders = get("orders")
        if not math.isnan(orders):
            return abs(r.effect) * orders, f"{format_delta(r.effect, 'currency')} per order x {orders:,.0f} orders"
    if metric == "conversion_rate" and kind.startswith("change"):
        sessions, aov = get("website_visits"), get("aov")
        if not (math.isnan(sessions) or math.isnan(aov)):
            return abs(r.effect) * sessions * aov, "change in converting sessions x average order value"
    return math.nan, "no money estimate: ranked by its relative size and confidence"


def findings(
    table: pd.DataFrame,
    *,
    changes: pd.DataFrame,
    segments: pd.DataFrame,
    trends: pd.DataFrame,
    relations: pd.DataFrame | None = None,
    clv_by_segment: pd.DataFrame | None = None,
    targets: dict[str, float] | None = None,
    alpha: float = 0.05,
    figure_gap_ratio: float = 1.5,
    metrics: list[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Turn the analysis results into ranked findings.

    Parameters
    ----------
    table : DataFrame
        :func:`engagement.measure.measure` output (current, previous, year ago).
    changes, segments, trends : DataFrame
        :func:`~engagement.analysis.change_tests`, :func:`~engagement.analysis.segment_tests`,
        :func:`~engagement.analysis.trend_tests` outputs.
    relations : DataFrame, optional
        :func:`~engagement.analysis.associations` output (customer level).
    clv_by_segment : DataFrame, optional
        ``segment, segment_value, mean_clv``: the value at risk per lost customer.
    targets : dict, optional
        Metric id -> target value; default :data:`DEFAULT_TARGETS`. A level finding
        is made when the whole interval is on the wrong side of the target.
    alpha : float, default 0.05
        Largest q-value that makes a finding.
    figure_gap_ratio : float, default 1.5
        For figures without sampling error (CAC): a segment value more than this
        many times the median of the others is a finding.
    metrics : list of str, optional
        Restrict to these metrics (relationships are kept when they involve one).
    confidence : float, default 0.95
        The level of the intervals in ``changes``, ``segments`` and ``relations``, as the sentences state it.

    Returns
    -------
    DataFrame
        One row per finding (:data:`FINDING_COLUMNS`), ranked: deteriorations
        first, then by money impact, severity and relative size x confidence.

    Examples
    --------
    One significant rise in churn against the previous quarter:

    >>> import pandas as pd
    >>> from engagement.plan.findings import findings
    >>> changes = pd.DataFrame([{
    ...     "metric": "churn_rate", "comparison": "previous period", "period": "2024Q4", "against": "2024Q3",
    ...     "segment": "all", "segment_value": "all", "value": 0.25, "reference": 0.10, "difference": 0.15,
    ...     "ci_low": 0.05, "ci_high": 0.25, "unit": "fraction", "p_value": 0.004, "q_value": 0.004,
    ...     "significant": True}])
    >>> table = pd.DataFrame(columns=["metric", "segment", "segment_value", "period_role", "status", "value",
    ...                               "ci_low", "ci_high", "period", "unit", "denominator"])
    >>> found = findings(table, changes=changes, segments=pd.DataFrame(), trends=pd.DataFrame())
    >>> int(found.loc[0, "rank"]), found.loc[0, "kind"], found.loc[0, "direction"]
    (1, 'change_vs_previous', 'worse')
    >>> found.loc[0, "sentence"]
    'Customer churn rate rose from 10.0% to 25.0% in 2024Q4 (+15.0 points, 95% CI +5.0 points to +25.0 points, q = 0.004).'
    """
    targets = DEFAULT_TARGETS if targets is None else targets
    keep = (lambda m: True) if metrics is None else (lambda m: m in metrics)
    current = table[(table.period_role == "current") & (table.status == "ok")]
    rows = [*_changes(changes, alpha), *_gaps(segments, alpha), *_trends(trends, alpha),
            *_levels(current, targets), *_figure_gaps(current, figure_gap_ratio), *_relationships(relations, alpha)]
    rows = [r for r in rows if keep(r["metric"]) or keep(r.get("other_metric", ""))]
    if not rows:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    out = _gap_of_a_change(_explains(_one_per_effect(pd.DataFrame(rows)), segments))
    out["metric_name"] = out.metric.map(_name)
    described = [_describe(r, table, clv_by_segment, level_label(confidence)) for r in out.itertuples()]
    for col in ("sentence", "direction", "change", "impact", "impact_basis", "severity", "score", "composition"):
        out[col] = [d[col] for d in described]
    return _rank(out)


def _changes(changes: pd.DataFrame, alpha: float) -> list[dict]:
    """Significant changes; a segment's only when it changed apart from the rest of the customers (its own
    difference-in-differences test, ``apart`` of :func:`~engagement.analysis.change_tests`): otherwise it is the
    overall change seen in that segment's customers."""
    rows = []
    for r in changes[changes.significant & (changes.q_value < alpha)].itertuples() if len(changes) else []:
        apart = getattr(r, "apart", True)
        if r.segment != "all" and not (isinstance(apart, bool | np.bool_) and bool(apart)):
            continue
        kind = "change_vs_previous" if r.comparison == "previous period" else "change_vs_last_year"
        rows.append({"metric": r.metric, "kind": kind, "period": r.period, "segment": r.segment,
                     "segment_value": r.segment_value, "value": r.value, "reference": r.reference,
                     "effect": r.difference, "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": r.unit,
                     "p_value": r.p_value, "q_value": r.q_value, "against": r.against,
                     "rest_change": getattr(r, "rest_change", math.nan)})
    return rows


def _gaps(segments: pd.DataFrame, alpha: float) -> list[dict]:
    """Significant segment gaps, but for those another segment explains (``explained_by`` of
    :func:`~engagement.analysis.explained_gaps`): they are that segment's gap seen through its mix."""
    rows = []
    explained = segments.explained_by.fillna("") != "" if "explained_by" in segments else False
    for r in segments[segments.significant & (segments.q_value < alpha) & ~explained].itertuples() \
            if len(segments) else []:
        rows.append({"metric": r.metric, "kind": "segment_gap", "period": r.period, "segment": r.segment,
                     "segment_value": r.segment_value, "value": r.value, "reference": r.rest,
                     "effect": r.difference, "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": r.unit,
                     "p_value": r.p_value, "q_value": r.q_value})
    return rows


def _trends(trends: pd.DataFrame, alpha: float) -> list[dict]:
    rows = []
    for r in trends[trends.significant & (trends.q_value < alpha)].itertuples() if len(trends) else []:
        # scale figures (counts, totals) grow with the business and carry no sampling error: charts, not findings
        if r.method != "OLS":
            rows.append({"metric": r.metric, "kind": "trend", "period": f"{r.first_period}-{r.last_period}",
                         "segment": r.segment, "segment_value": r.segment_value, "value": r.slope,
                         "reference": 0.0, "effect": r.slope, "ci_low": r.ci_low, "ci_high": r.ci_high,
                         "unit": r.unit, "p_value": r.p_value, "q_value": r.q_value, "periods": r.periods})
    return rows


def _levels(current: pd.DataFrame, targets: dict[str, float]) -> list[dict]:
    rows = []
    for metric, target in targets.items():
        hit = current[(current.metric == metric) & (current.segment == "all")]
        if not len(hit):
            continue
        r = hit.iloc[0]
        if any(math.isnan(v) for v in (r.ci_low, r.ci_high)):
            continue
        if r.ci_high < target or r.ci_low > target:  # the whole interval on one side of the target
            rows.append({"metric": metric, "kind": "level_vs_target", "period": r.period, "segment": "all",
                         "segment_value": "all", "value": r.value, "reference": target, "effect": r.value - target,
                         "ci_low": r.ci_low - target, "ci_high": r.ci_high - target, "unit": r.unit,
                         "p_value": math.nan, "q_value": math.nan})
    return rows


def _figure_gaps(current: pd.DataFrame, ratio: float) -> list[dict]:
    """CAC per channel has no sampling error: a channel above ``ratio`` x the others' median is a gap."""
    rows: list[dict] = []
    cac = current[(current.metric == "cac") & (current.segment == "acquisition_channel")]
    if len(cac) < 3:
        return rows
    for r in cac.itertuples():
        others = cac[cac.segment_value != r.segment_value].value.median()
        if others and r.value > ratio * others:
            rows.append({"metric": "cac", "kind": "segment_gap", "period": r.period, "segment": r.segment,
                         "segment_value": r.segment_value, "value": r.value, "reference": others,
                         "effect": r.value - others, "ci_low": math.nan, "ci_high": math.nan, "unit": r.unit,
                         "p_value": math.nan, "q_value": math.nan})
    return rows


#: the smallest rank correlation that is a finding: below it a relationship explains under 1% of the variation,
#: however significant a large sample makes it
MIN_RHO = 0.1


def _relationships(relations: pd.DataFrame | None, alpha: float) -> list[dict]:
    """Significant customer-level relationships of at least :data:`MIN_RHO`, one finding per metric: its
    strongest partner not yet covered, with its other partners named (one latent effect shows as many
    correlations: satisfied customers answer, use and buy more)."""
    rows: list[dict] = []
    if relations is None or not len(relations):
        return rows
    pairs = []
    for r in relations[relations.significant & (relations.q_value < alpha)].itertuples():
        m1, m2 = VARIABLE_METRIC.get(r.variable), VARIABLE_METRIC.get(r.other)
        if m1 is None or m2 is None or abs(r.rho) < MIN_RHO:
            continue
        if {r.variable, r.other} <= EXPOSURE or {r.variable, r.other} in ({"active_days", "churned"},
                                                                          {"spend", "aov"}):
            continue  # by construction: volumes grow with tenure, leavers stop, spend sums the orders AOV averages
        pairs.append((abs(r.rho), m1, m2, r))
    covered: set[str] = set()
    for _size, m1, m2, r in sorted(pairs, key=lambda x: (-x[0], x[1], x[2])):
        if m1 in covered and m2 in covered:
            continue
        first, second = (m1, m2) if m1 not in covered else (m2, m1)
        also = [b if a == first else a for _s, a, b, _r in sorted(pairs, key=lambda x: (-x[0], x[1], x[2]))
                if first in (a, b) and {a, b} != {m1, m2}]
        covered |= {m1, m2}
        rows.append({"metric": first, "kind": "relationship", "period": "", "segment": "all",
                     "segment_value": "all", "value": r.rho, "reference": 0.0, "effect": r.rho,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": "rho", "p_value": r.p_value,
                     "q_value": r.q_value, "other_metric": second, "n": r.n,
                     "also": ("; it also moves with " + ", ".join(_customer_name(m) for m in also)) if also else ""})
    return rows


def _one_per_effect(out: pd.DataFrame) -> pd.DataFrame:
    """Drop findings that repeat another: a variant's (retention beside churn, a mean beside its median or share)
    about the same scope and comparison, and a segment's that holds the same customers as the whole base."""
    out["other_metric"] = out["other_metric"].fillna("") if "other_metric" in out.columns else ""
    family = out.metric.map(catalog.family)
    out = out.assign(_family=family, _other=out.other_metric.map(lambda m: catalog.family(m) if m else ""),
                     _variant=(out.metric != family).astype(int)).sort_values("_variant", kind="stable")
    out = out.drop_duplicates(["_family", "_other", "kind", "period", "segment", "segment_value"]).sort_index()
    out = out.drop(columns=["_family", "_other", "_variant"]).reset_index(drop=True)
    sig = out.assign(_v=out.value.round(9), _r=out.reference.round(9))
    base_keys = set(map(tuple, sig.loc[sig.segment == "all", ["metric", "kind", "_v", "_r"]].to_numpy().tolist()))
    same_as_base = np.array([tuple(k) in base_keys for k in sig[["metric", "kind", "_v", "_r"]].to_numpy().tolist()],
                            dtype=bool)
    repeat = (sig.segment != "all").to_numpy() & same_as_base
    out = out[~repeat].reset_index(drop=True)
    return _one_gap_per_dimension(_merge_comparisons(out))


def _merge_comparisons(out: pd.DataFrame) -> pd.DataFrame:
    """A change against the previous period and against a year earlier of the same metric and scope are one
    finding: the previous-period one (or the year's, when only it is significant) with the other as evidence."""
    out = out.copy()
    out["also"] = out["also"].fillna("") if "also" in out.columns else ""
    change = out.kind.isin(["change_vs_previous", "change_vs_last_year"])
    drop = []
    for _key, g in out[change].groupby([out.metric.map(catalog.family), "segment", "segment_value"], sort=True):
        if len(g) < 2:
            continue
        g = g.sort_values("kind", key=lambda k: k.map({"change_vs_previous": 0, "change_vs_last_year": 1}))
        first, other = g.index[0], g.index[1:]
        for i in other:
            o = out.loc[i]
            out.loc[first, "also"] += (f"; against a year earlier ({o.against}): {format_value(o.reference, o.unit)} "
                                       f"to {format_value(o.value, o.unit)} ({format_q(o.q_value)})"
                                       if o.kind == "change_vs_last_year" else
                                       f"; against the previous period ({o.against}): "
                                       f"{format_value(o.reference, o.unit)} to {format_value(o.value, o.unit)} "
                                       f"({format_q(o.q_value)})")
        drop.extend(other)
    return out.drop(index=drop).reset_index(drop=True)


def _one_gap_per_dimension(out: pd.DataFrame) -> pd.DataFrame:
    """One segment gap per metric and segment column (premium above and basic below the rest are one fact: the
    metric differs by plan), the largest, naming the other values that differ; and a gap of the same customers
    under two names (new customers and tenure "new this period") once."""
    gaps = out[out.kind == "segment_gap"]
    if gaps.empty:
        return out
    drop = []
    for _key, g in gaps.groupby([gaps.metric.map(catalog.family), "segment"], sort=True):
        g = g.assign(_size=(g.effect / g.reference.abs().where(g.reference != 0)).abs().fillna(g.effect.abs()))
        g = g.sort_values(["_size", "segment_value"], ascending=[False, True], kind="stable")
        first = g.index[0]
        others = [f"{v} ({format_value(x, u)})" for v, x, u in zip(g.segment_value.iloc[1:], g.value.iloc[1:],
                                                                     g.unit.iloc[1:], strict=True)]
        if others:
            out.loc[first, "also"] += "; also different from the rest: " + ", ".join(others)
        drop.extend(g.index[1:])
    return _twins(out.drop(index=drop))


def _explains(out: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """A gap finding names the gaps of other segments it explains (their mix of its values)."""
    if "explained_by" not in segments or out.empty:
        return out
    explained = segments[segments.explained_by.fillna("") != ""]
    for (metric, by), g in explained.groupby(["metric", "explained_by"], sort=True):
        hit = out.index[(out.kind == "segment_gap") & (out.metric == metric) & (out.segment == by)]
        if not len(hit):
            continue
        what = ", ".join(f"{str(r.segment).replace('_', ' ')} {r.segment_value} ({format_delta(r.difference, r.unit)}"
                         f" against the rest, {format_delta(r.within_difference, r.unit)} within each "
                         f"{str(by).replace('_', ' ')})" for r in g.itertuples())
        out.loc[hit[0], "also"] = out.loc[hit[0], "also"] + f"; it accounts for the gap of {what}"
    return out


def _gap_of_a_change(out: pd.DataFrame) -> pd.DataFrame:
    """A segment whose figure moved apart from the rest's and now stands apart from it in the same direction
    (basic-plan churn rose more than the others' and is now above theirs) is one fact: the change, with the gap
    it left as evidence. A gap against the direction of the change (still higher after a fall) stays its own."""
    gaps = out.index[(out.kind == "segment_gap") & out.q_value.notna()]
    change = out.kind.isin(["change_vs_previous", "change_vs_last_year"]) & (out.segment != "all")
    family = out.metric.map(catalog.family)
    drop = []
    for i in gaps:
        g = out.loc[i]
        same = out.index[change & (family == family[i]) & (out.segment == g.segment)
                         & (out.segment_value == g.segment_value) & (np.sign(out.effect) == np.sign(g.effect))]
        if not len(same):
            continue
        rel = "higher" if g.effect > 0 else "lower"
        out.loc[same[0], "also"] = (out.loc[same[0], "also"] + f"; it is now {rel} than for the rest of the "
                                    f"customers: {format_value(g.value, g.unit)} vs {format_value(g.reference, g.unit)}"
                                    f" ({format_q(g.q_value)}){g.also}")
        drop.append(i)
    return out.drop(index=drop).reset_index(drop=True)


def _twins(out: pd.DataFrame) -> pd.DataFrame:
    """The same customers under two segment names (new customers, and tenure "new this period"; returning
    customers and the rest of the tenure bands) give the same figures, or mirrored ones: keep the first."""
    seg = out.segment != "all"
    pair = [tuple(sorted((round(float(v), 9), round(float(r), 9)))) for v, r in zip(out.value, out.reference,
                                                                                     strict=True)]
    key = pd.DataFrame({"metric": out.metric.to_numpy(), "kind": out.kind.to_numpy(), "pair": pair},
                       index=out.index)
    twin = seg & key.duplicated(["metric", "kind", "pair"])
    return out[~twin].reset_index(drop=True)


def _describe(r: Any, table: pd.DataFrame, clv: pd.DataFrame | None, level: str = "95%") -> dict[str, Any]:
    """A finding's sentence, direction, money impact, severity and ranking score."""
    sentence, direction, change = _sentence(r, level)
    composition = ""
    if r.kind in ("change_vs_previous", "change_vs_last_year"):
        if r.segment != "all" and not pd.isna(getattr(r, "rest_change", math.nan)):
            sentence += f", while the rest of the customers moved {format_delta(r.rest_change, r.unit)}"
        elif r.segment == "all":
            splits = _splits(table, r)  # computed once for the driver and the composition
            driver = _drivers(r, splits)
            if driver:
                sentence += driver
            else:
                line, composition = _composition(table, r, splits)
                sentence += line
            sentence += _other_customers(table, r)
    sentence += getattr(r, "also", "") if isinstance(getattr(r, "also", ""), str) else ""
    impact, basis = _impact(r.metric, r.kind, r, table, clv) if r.kind != "relationship" \
        else (math.nan, "a relationship, not a movement")
    if not math.isnan(impact) and direction == "worse":
        at_stake = "lifetime value is at risk" if r.metric == "churn_rate" else "revenue is affected"
        sentence += f"; about {format_money(impact)} of {at_stake}."
    else:
        sentence += "."
    rel = r.effect / abs(r.reference) if r.reference not in (0, 0.0) and not pd.isna(r.reference) else \
        (r.effect if r.kind == "relationship" else 0.0)
    q = 0.0 if pd.isna(r.q_value) else r.q_value
    return {"sentence": sentence, "direction": direction, "change": change, "impact": impact, "impact_basis": basis,
            "composition": composition, "severity": _severity(q, rel, impact),
            "score": abs(rel) * (1 - min(q, 1)) * (1.5 if direction == "worse" else 1.0)}


#: a segment value is named as the driver of an overall change when its share of the change exceeds its share
#: of the base by this much (a value holding 30% of the customers and 80% of the change)
DRIVER_EXCESS = 0.2


def _against(r: Any) -> str:
    """The ``period_role`` a change finding compares with."""
    return "previous" if r.kind == "change_vs_previous" else "year_ago"


def _splits(table: pd.DataFrame, r: Any) -> dict[str, pd.DataFrame]:
    """The shift-share of an overall change by each segment column whose values partition its base (by name)."""
    from engagement.analysis.segments import shift_share

    if not len(table) or r.effect == 0 or "segment" not in table.columns:
        return {}
    out = {}
    for segment in sorted(set(table.segment) - {"all"}):
        parts = shift_share(table, metric=r.metric, segment=segment, against=_against(r))
        # the values partition the base (and the figure is decomposable) when their parts add up to the change
        if not parts.empty and abs(parts.contribution.sum() - r.effect) <= 0.05 * abs(r.effect):
            out[segment] = parts
    return out


def _drivers(r: Any, splits: dict[str, pd.DataFrame]) -> str:
    """Where an overall change of a share or a mean comes from (shift-share by each segment column): the segment
    value whose part of the change most exceeds its part of the base, with its rate and mix parts."""
    best = None
    for segment, parts in splits.items():
        top = parts.iloc[0]
        share = top.contribution / r.effect
        # a driver moved in its own rate, in the change's direction, and holds no more than the change: a value
        # whose weight moved by construction (customers ageing out of a tenure band) is composition, not a driver
        if not (0 < share <= 1 + DRIVER_EXCESS) or abs(top.rate) < abs(top.mix):
            continue
        excess = share - top.weight
        if excess >= DRIVER_EXCESS and (best is None or excess > best[0]):
            best = (excess, segment, top)
    if best is None:
        return ""
    _, segment, top = best
    return (f"; most of it{_scope(segment, str(top.segment_value))} ({format_delta(top.contribution, r.unit)} of the "
            f"{format_delta(r.effect, r.unit)}: {format_delta(top.rate, r.unit)} from its own rate, "
            f"{format_delta(top.mix, r.unit)} from its share of the base)")


#: an overall change is said to come from who makes up the base when the base's mix by one segment column accounts
#: for at least this share of it (and its values' own figures for at most the rest)
COMPOSITION_SHARE = 0.5

#: segments whose values a customer moves through with the calendar, whatever they do: their mix shifts by
#: construction (the same customers a quarter older), so it says nothing of who makes up the base
TIME_DRIVEN = ("tenure_band", "new_vs_returning")


def _composition(table: pd.DataFrame, r: Any, splits: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """When an overall change of a share or a mean is mostly the base's mix by some segment column (shift-share):
    who makes up the base changed, not any value's own figure. CDNOW's average order fell $2.24 while the value
    tiers' own averages, weighted, added 3 cents: high-value customers placed 76% of the orders before and 58%
    now. Segments a customer moves through with the calendar (:data:`TIME_DRIVEN`) are left out.

    The segment column of ``splits`` (:func:`_splits`) whose mix part is the largest share of the change, at least
    :data:`COMPOSITION_SHARE`, while its values' own figures account for at most the rest; with the value whose
    weight moved most. Returns the sentence's line and whose share moved (for the action plan); empty when none is.
    """
    best = None
    for segment, parts in splits.items():
        if segment in TIME_DRIVEN:
            continue
        mix, rate = parts.mix.sum(), parts.rate.sum()
        share = mix / r.effect
        # the mix at least half of the change and the rates at most half: mix and rates that pull apart (a fall of
        # 2 points from -13 of mix and +11 of rates) are both real, and neither is the change
        if (share >= COMPOSITION_SHARE and abs(rate) <= (1 - COMPOSITION_SHARE) * abs(r.effect)
                and (best is None or share > best[0])):
            moved = parts.loc[(parts.weight - parts.reference_weight).abs().idxmax()]
            best = (share, segment, mix, moved)
    if best is None:
        return "", ""
    _, segment, mix, moved = best
    before = table.loc[table.period_role == _against(r), "period"]
    then = f" in {before.iloc[0]}" if len(before) else " before"
    own = "rate" if r.unit == "fraction" else "figure"
    label = segment.replace("_", " ")
    # a mix as large as the change, or larger (the values' own figures moved a little the other way), is all of it:
    # "-$2.27 of the -$2.24" read as a slip
    whole = abs(mix) >= abs(r.effect) or format_delta(mix, r.unit) == format_delta(r.effect, r.unit)
    rest = format_delta(r.effect - mix, r.unit)
    aside = f" (together those moved {rest})" if whole and re.search(r"[1-9]", rest) else ""
    part = "all of it" if whole else f"{format_delta(mix, r.unit)} of the {format_delta(r.effect, r.unit)}"
    who = (f"\"{moved.segment_value}\" was {moved.reference_weight:.0%} of it{then} and {moved.weight:.0%} in "
           f"{r.period}")
    return (f"; {part} comes from who makes up the base, not from any {label}'s own {own}{aside}: {who}",
            f"{label} {who}")


def _other_customers(table: pd.DataFrame, r: Any) -> str:
    """When a rate of the customers present at the period's start (churn, retention, engagement, product usage)
    is compared across two bases of which at least half the customers must differ, how many at least.

    A base of 9,526 customers against 23,570 a quarter before leaves at least 1 - 9,526 / 23,570 = 59.6% of the
    earlier customers out of the later rate (said as "at least 59%", rounded down): the two rates describe
    different customers, whatever each did (a single cohort whose one-time buyers age out of a 365-day window
    changes its inactivity churn with nobody lapsing less). Rates of events (sessions, emails, answers) are not
    said to be: their base is new every period."""
    from engagement.measure.declarations import DECLARATIONS

    d = DECLARATIONS.get(r.metric)
    if d is None or len(d.sums) < 2 or not d.sums[1].endswith("at_start") or "n" not in table.columns:
        return ""
    base = table[(table.metric == r.metric) & (table.segment == "all") & (table.status == "ok")]
    now, then = base[base.period_role == "current"], base[base.period_role == _against(r)]
    if not len(now) or not len(then):
        return ""
    n1, n0 = int(now.n.iloc[0]), int(then.n.iloc[0])
    if min(n0, n1) == 0 or max(n0, n1) < 2 * min(n0, n1):
        return ""
    # rounded down: "at least" must hold (1 - 9,526 / 23,570 is 59.6%: at least 59%)
    apart, before = math.floor(100 * (1 - min(n0, n1) / max(n0, n1)) + 1e-9), then.period.iloc[0]
    which = (f"of the {before} customers are not among {r.period}'s" if n1 < n0
             else f"of the {r.period} customers were not among {before}'s")
    return (f"; its base was {n1:,} customers against {n0:,} in {before}: at least {apart}% {which}, so the two "
            "rates are of different customers")


def _rank(out: pd.DataFrame) -> pd.DataFrame:
    """Deteriorations first (they need action), then money at stake, severity, size x confidence."""
    order = {"high": 0, "medium": 1, "low": 2}
    out["_money"] = out.impact.fillna(-1)
    out["_sev"] = out.severity.map(order)
    out["_worse"] = (out.direction != "worse").astype(int)
    out = out.sort_values(["_worse", "_money", "_sev", "score", "metric", "segment", "segment_value"],
                          ascending=[True, False, True, False, True, True, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out[FINDING_COLUMNS].reset_index(drop=True)


def _sentence(r: pd.Series, level: str = "95%") -> tuple[str, str, str]:
    name, scope, unit = _name(r.metric), _scope(r.segment, r.segment_value), r.unit
    ci = "" if pd.isna(r.ci_low) else f", {level} CI {format_delta(r.ci_low, unit)} to {format_delta(r.ci_high, unit)}"
    if r.kind in ("change_vs_previous", "change_vs_last_year"):
        verb = "rose" if r.effect > 0 else "fell"
        direction = _better(r.metric, r.effect)
        when = f"in {r.period}" + (" against a year earlier" if r.kind == "change_vs_last_year" else "")
        text = (f"{name}{scope} {verb} from {format_value(r.reference, unit)} to {format_value(r.value, unit)} "
                f"{when} ({format_delta(r.effect, unit)}{ci}, {format_q(r.q_value)})")
        return text, direction, "up" if r.effect > 0 else "down"
    if r.kind == "segment_gap":
        direction = _better(r.metric, r.effect)
        rel = "higher" if r.effect > 0 else "lower"
        rest = "the other channels' median" if pd.isna(r.q_value) else "the rest of the customers"
        text = (f"{name}{scope} is {rel} than for {rest}: {format_value(r.value, unit)} vs "
                f"{format_value(r.reference, unit)} in {r.period} ({format_delta(r.effect, unit)}{ci}, {format_q(r.q_value)})")
        return text, direction, rel
    if r.kind == "trend":
        direction = _better(r.metric, r.effect)
        verb = "rising" if r.effect > 0 else "falling"
        # a slope of a rate is in percentage points per period, not a percentage
        text = (f"{name}{scope} has been {verb} by {format_delta(abs(r.effect), unit).lstrip('+')} per period over "
                f"{r.period} ({format_q(r.q_value)})")
        return text, direction, "up" if r.effect > 0 else "down"
    if r.kind == "level_vs_target":
        direction = _better(r.metric, r.effect)
        side = "above" if r.effect > 0 else "below"
        text = (f"{name} is {format_value(r.value, unit)} in {r.period}, {side} its target of "
                f"{format_value(r.reference, unit)} (the whole {level} interval is {side} it)")
        return text, direction, side
    kind = "positive" if r.effect > 0 else "negative"
    name = _customer_name(r.metric)
    text = (f"Customers' {name} and {_customer_name(r.other_metric)} move together ({kind} rank correlation rho {r.effect:+.2f}, "
            f"{level} CI {r.ci_low:+.2f} to {r.ci_high:+.2f}, n = {int(r.n):,}, {format_q(r.q_value)})")
    return text, "neutral", kind


def no_change_summary(table: pd.DataFrame, found: pd.DataFrame, metrics: list[str]) -> str:
    """The plain sentence for the metrics that did not move significantly.

    Movements are changes against earlier periods and trends; levels, segment
    gaps and relationships describe structure. With no movement at all the
    sentence says plainly that nothing moved.
    """
    movements = found[found.kind.isin(MOVEMENTS)] if len(found) else found
    moved = set(movements.metric) if len(movements) else set()
    still = [_name(m) for m in metrics if m not in moved and
             ((table.metric == m) & (table.status == "ok")).any()]
    if not moved:
        return ("Nothing moved significantly: no change against the previous period or a year earlier and no "
                "trend passed the corrected significance test.")
    if not still:
        return ""
    return "No significant change in: " + ", ".join(still) + "."
