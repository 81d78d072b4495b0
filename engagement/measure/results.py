"""From summed facts to rows of the measure table, at each level the declarations name.

* ``segment``: each segment value's summed customer facts through each
  declaration's ``compute``;
* ``channel``: CAC, CLV:CAC and ad click-through per acquisition channel (and
  for all customers) from marketing spend and the channel's new customers;
* ``ticket``: medians (with their order-statistic interval) and means of support
  response and resolution times;
* ``platform``: the pooled social engagement rate and follower growth per platform.

Every row carries the declaration's ``kind`` and ``sampled``, so nothing
downstream guesses what a figure is from its name or unit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

from engagement import metrics as M
from engagement._result import MetricResult, nothing_to_measure
from engagement.intervals import NAN, NONNEGATIVE, proportion_result, ratio_from_moments, se_from_interval
from engagement.measure.declarations import DECLARATIONS, Sums, clv_from_sums, unavailable_reason
from engagement.measure.periods import Period

__all__ = ["COLUMNS", "segment_results", "channel_results", "ticket_results", "platform_results", "to_row",
           "unavailable_rows"]

COLUMNS = ["period", "period_role", "segment", "segment_value", "metric", "value", "ci_low", "ci_high", "se", "n",
           "numerator", "denominator", "unit", "kind", "sampled", "method", "status", "reason"]

Result = tuple[str, str, MetricResult]


def _num(v: Any) -> float:
    return NAN if v is None else float(v)


def to_row(period: Period, role: str, segment: str, value: str, res: MetricResult) -> dict[str, Any]:
    """One measure-table row for ``res``, with its declaration's kind and sampling."""
    d = DECLARATIONS[res.metric]
    # no value (an empty group: NaN with n = 0) reads unavailable, with why, so that no table filtered on its
    # status shows a blank as if it were a figure
    missing = math.isnan(res.value)
    why = "" if not missing else (nothing_to_measure(res.method) if res.n == 0
                                  else f"no estimate from {res.n} observations ({res.method})")
    return {"period": period.label, "period_role": role, "segment": segment, "segment_value": value,
            "metric": res.metric, "value": res.value, "ci_low": res.ci_low, "ci_high": res.ci_high,
            "se": float(res.se), "n": res.n, "numerator": _num(res.numerator), "denominator": _num(res.denominator),
            "unit": res.unit, "kind": d.kind, "sampled": d.sampled, "method": res.method,
            "status": "unavailable" if missing else "ok", "reason": why}


def unavailable_rows(period: Period, role: str, available: Mapping[str, Iterable[str]],
                     why_all: str = "", why: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One ``unavailable`` row (segment all) per declared metric the data cannot support, with the reason
    (``why_all``: every metric, e.g. for a period before the data starts; ``why``: reasons of this period for
    some metrics, e.g. a window that reaches back before the data)."""
    rows = []
    for d in DECLARATIONS.values():
        reason = why_all or unavailable_reason(d, available) or (why or {}).get(d.id, "")
        if reason:
            rows.append({"period": period.label, "period_role": role, "segment": "all", "segment_value": "all",
                         "metric": d.id, "value": NAN, "ci_low": NAN, "ci_high": NAN, "se": NAN, "n": 0,
                         "numerator": NAN, "denominator": NAN, "unit": d.unit, "kind": d.kind, "sampled": d.sampled,
                         "method": "", "status": "unavailable", "reason": reason})
    return rows


def segment_results(sums: pd.DataFrame, available: Mapping[str, Iterable[str]], *, confidence: float,
                    period: Period, first_week_min_days: int, inactivity_days: int = 365) -> Iterator[Result]:
    """Every segment-level declaration the data supports, for every row of ``sums``."""
    wanted = [d for d in DECLARATIONS.values() if d.level == "segment" and not unavailable_reason(d, available)]
    for r in sums.to_dict("records"):
        s = Sums(r, confidence=confidence, period=period, first_week_min_days=first_week_min_days,
                 inactivity_days=inactivity_days)
        for d in wanted:
            assert d.compute is not None  # segment level: checked by Measured
            res = d.compute(s)
            # a public metric function names its own metric; the row is the declaration's
            yield r["segment"], r["segment_value"], res if res.metric == d.id else dataclasses.replace(res, metric=d.id)


def _ctr(clicks: float, impressions: float, confidence: float) -> MetricResult:
    return proportion_result("click_through_rate", int(clicks), int(impressions), successes_name="clicks",
                             trials_name="impressions", confidence=confidence, method_note="ad clicks / ad impressions")


def _channel(segment: str, value: str, spend: float, sums: dict[str, Any] | None, ad: pd.DataFrame | None,
             confidence: float, subscription: bool) -> Iterator[Result]:
    new = int(Sums(sums, confidence=confidence)("new")) if sums is not None else 0
    cac = M.cac(spend, new)
    yield segment, value, cac
    if sums is not None and "n_orders" in sums and subscription:  # simple CLV needs the churn of cancellations
        clv = clv_from_sums(Sums(sums, confidence=confidence))
        if not (math.isnan(clv.value) or math.isnan(cac.value) or cac.value == 0):
            yield segment, value, M.clv_cac_ratio(clv.value, cac.value)
    if ad is not None and len(ad) and float(ad["impressions"].sum()) > 0:
        yield segment, value, _ctr(ad["clicks"].sum(), ad["impressions"].sum(), confidence)


def channel_results(sums: pd.DataFrame, spend: pd.DataFrame, *, confidence: float,
                    subscription: bool = True) -> Iterator[Result]:
    """CAC, CLV:CAC and click-through for all customers and, where the channel segment was measured, per channel.

    ``spend`` is :func:`engagement.measure.facts.spend_by_channel` output; a
    channel's new customers come from the ``acquisition_channel`` rows of ``sums``.
    """
    ads = "impressions" in spend.columns
    by_channel = sums[sums["segment"] == "acquisition_channel"].set_index("segment_value")
    if len(by_channel):
        for channel in sorted(set(spend["channel"]) | set(by_channel.index)):
            row = spend[spend["channel"] == channel]
            s = float(row["spend"].sum()) if len(row) else 0.0
            facts = by_channel.loc[channel].to_dict() if channel in by_channel.index else None
            yield from _channel("acquisition_channel", channel, s, facts, row if ads else None, confidence,
                                subscription)
    all_row = sums[sums["segment"] == "all"]
    facts = all_row.iloc[0].to_dict() if len(all_row) else None
    yield from _channel("all", "all", float(spend["spend"].sum()), facts, spend if ads else None, confidence,
                        subscription)


def ticket_results(medians: pd.DataFrame, *, confidence: float,
                   groups: Iterable[tuple[str, str]] = ()) -> Iterator[Result]:
    """Median and mean first-response and resolution times from :func:`~engagement.measure.facts.ticket_medians`.

    ``groups``: the ``(segment, segment_value)`` pairs measured (``all`` and each segment's values); one whose
    customers opened no ticket in the period has both times with n = 0 and no value, as every other metric of a
    group with nobody in it (a period without tickets is then ``all`` with n = 0, not a missing metric).
    """
    known = set(zip(medians["segment"], medians["segment_value"], strict=True))
    empty = [{"segment": seg, "segment_value": value, "metric": metric, "n": 0, "n_missing": 0, "total": 0.0,
              "clusters": NAN, "c_yy": NAN, "c_xx": NAN, "c_xy": NAN, "median": NAN, "lo": NAN, "hi": NAN}
             for seg, value in dict.fromkeys(groups) if (seg, value) not in known
             for metric in ("first_response_time", "resolution_time")]
    if empty:
        medians = pd.concat([medians, pd.DataFrame(empty)], ignore_index=True) if len(medians) else pd.DataFrame(empty)
    for r in medians.itertuples(index=False):
        n = int(r.n)
        lo = float(r.lo) if n and not pd.isna(r.lo) else NAN
        hi = float(r.hi) if n and not pd.isna(r.hi) else NAN
        yield r.segment, r.segment_value, MetricResult(
            metric=r.metric, value=float(r.median) if n else NAN, ci_low=lo, ci_high=hi, n=n,
            n_missing=int(r.n_missing), confidence=confidence, unit="seconds", se=se_from_interval(lo, hi, confidence),
            method="median, order-statistic interval (not yet answered/resolved excluded)")
        yield r.segment, r.segment_value, ratio_from_moments(
            f"{r.metric}_mean", 0 if pd.isna(r.clusters) else int(r.clusters), float(r.total or 0), n,
            float(r.c_yy or 0), float(r.c_xx or 0), float(r.c_xy or 0), confidence=confidence, unit="seconds",
            method="mean (not yet answered excluded), clustered by customer", bounds=NONNEGATIVE)


def platform_results(totals: pd.DataFrame, *, confidence: float) -> Iterator[Result]:
    """Social engagement rate (pooled ratio) and follower growth from :func:`~engagement.measure.facts.social_totals`."""
    method = "pooled (likes + comments + shares) / reach over posts"
    for r in totals.itertuples(index=False):
        yield r.segment, r.segment_value, ratio_from_moments(
            "social_engagement_rate", int(r.n), r.sy, r.sx, r.syy, r.sxx, r.sxy, confidence=confidence,
            unit="fraction", method=method, bounds=NONNEGATIVE)
        if int(r.n):
            yield r.segment, r.segment_value, M.follower_growth_rate(int(r.f0), int(r.f1))
        else:  # no post in the period: no follower count to start or end from
            yield r.segment, r.segment_value, MetricResult(
                metric="follower_growth_rate", value=NAN, ci_low=NAN, ci_high=NAN, n=0,
                method="(followers at end - at start) / at start", unit="fraction")
