"""Every metric per period and per segment, from the validated raw tables.

How it works, so it stays fast at a million customers:

1. For a period ``[start, end)`` one **per-customer fact table** is built in the
   engine: subscription flags (at start, lost, new, at end), and for orders,
   surveys, product events, email, web sessions and referrals the additive
   quantities each metric needs (counts, sums, sums of squares).
2. A wide **segment table** holds each customer's value of every segment column;
   derived segments (tenure band, new vs returning, value tier) are computed there.
3. Every quantity is additive, so one ``GROUP BY`` over all segment columns sums
   the facts per *cell* (a combination of segment values: a few hundred rows
   however many customers), and the cells are rolled up to ``all`` and to each
   segment's values. Only these few hundred rows become pandas; the metric
   functions of :mod:`engagement.metrics` turn the sums into values and intervals
   (means from moments, proportions with Wilson, NPS with its trinomial variance).
   Float sums are exact (:func:`~engagement.measure._engine.exact_sum`), so the
   same data give the same numbers on every run, however the engine's threads add.

Medians (support times) use a second query that picks the two order statistics
bounding each segment's median interval by rank. Anonymous web sessions count in
``all`` only. Social posts and marketing spend are not customer facts: they are
aggregated per platform and per channel.

Every expression is plain Ibis; nothing here is DuckDB-specific.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from engagement import metrics as M
from engagement._result import MetricResult
from engagement.data.load import Dataset, load
from engagement.measure._engine import exact_sum as _xsum
from engagement.measure.periods import Period, parse_period
from engagement.metrics._core import (
    NAN,
    mean_from_moments,
    median_rank_bounds,
    proportion_result,
    ratio_from_moments,
)

__all__ = ["measure", "measure_series", "DEFAULT_SEGMENTS", "DERIVED_SEGMENTS", "segment_table", "sessions"]

DEFAULT_SEGMENTS = ("plan", "acquisition_channel", "region", "tenure_band", "new_vs_returning", "value_tier")
DERIVED_SEGMENTS = ("tenure_band", "new_vs_returning", "value_tier")
COLUMNS = ["period", "period_role", "segment", "segment_value", "metric", "value", "ci_low", "ci_high", "se", "n",
           "numerator", "denominator", "unit", "method", "status", "reason"]
TENURE_BANDS = ("new this period", "under 1 year", "more than 1 year")


def _ts(value: pd.Timestamp) -> ir.TimestampScalar:
    return ibis.timestamp(value.to_pydatetime())


def _f(x: ir.Value) -> ir.Value:
    return x.cast("float64")


def _i(flag: ir.BooleanValue) -> ir.Value:
    return flag.cast("int64")


# --- segments ---------------------------------------------------------------------------------


def segment_columns(ds: Dataset, period: Period, segments: Sequence[str]) -> ir.Table:
    """Wide table ``customer_id, __seg0, __seg1, ...``: each customer's value of each segment, as text.

    One row per customer who exists by ``period.end``; column ``__seg<i>`` holds
    the value of ``segments[i]`` (internal names, so that a customer attribute can
    never collide with a fact column). Missing attribute values are
    ``"(missing)"``; see :func:`segment_table` for the derived segments.
    """
    c = ds["customers"]
    c = c.filter(c.signup_at < _ts(period.end))
    start = _ts(period.start)
    year_before = _ts(period.start - pd.Timedelta(days=365))
    values: dict[str, ir.Value] = {}
    tiers = None
    for i, col in enumerate(segments):
        name = f"__seg{i}"
        if col == "tenure_band":
            values[name] = ibis.ifelse(c.signup_at >= start, TENURE_BANDS[0],
                                       ibis.ifelse(c.signup_at >= year_before, TENURE_BANDS[1], TENURE_BANDS[2]))
        elif col == "new_vs_returning":
            values[name] = ibis.ifelse(c.signup_at >= start, "new", "returning")
        elif col == "value_tier":
            if not ds.has("orders"):
                raise ValueError("Segment 'value_tier' needs the orders table, which the dataset does not have.")
            o = ds["orders"]
            o = o.filter((o.ordered_at >= year_before) & (o.ordered_at < start))
            spend = o.group_by("customer_id").aggregate(spend=_xsum(o.revenue))
            spend = spend.filter(spend.spend > 0)
            tiers = spend.select("customer_id", __tier=ibis.ntile(3).over(order_by=[spend.spend, spend.customer_id]))
            values[name] = None  # filled after the join below
        elif col in c.columns:
            values[name] = c[col].cast("string").fill_null("(missing)")
        else:
            raise ValueError(
                f"Segment column {col!r} is not a customers column nor a derived segment; customers has "
                f"{list(c.columns)}, derived: {list(DERIVED_SEGMENTS)}."
            )
    base = c.select("customer_id", **{k: v for k, v in values.items() if v is not None})
    if tiers is None:
        return base
    joined = _ljoin(base, tiers)
    label = ibis.cases((joined.__tier == 0, "low"), (joined.__tier == 1, "mid"), (joined.__tier == 2, "high"),
                       else_="none")
    return joined.select("customer_id", **{k: (label if v is None else joined[k]) for k, v in values.items()})


def segment_table(ds: Dataset, period: Period, segments: Sequence[str]) -> ir.Table:
    """Long table ``customer_id, segment, segment_value`` for customers who exist by ``period.end``.

    Includes ``segment = "all"`` for every customer. Derived segments:
    ``tenure_band`` (at the period start: new this period / under 1 year / more
    than 1 year), ``new_vs_returning`` (signed up in the period or before) and
    ``value_tier`` (tertile of revenue in the 365 days before the period among
    customers who bought: low / mid / high, else none).

    Examples
    --------
    >>> import pandas as pd
    >>> import engagement as eg
    >>> from engagement.measure import parse_period, segment_table
    >>> c = pd.DataFrame({"customer_id": ["a", "b"], "plan": ["basic", None],
    ...                   "signup_at": pd.to_datetime(["2023-01-01", "2024-11-01"])})
    >>> t = segment_table(eg.load({"customers": c}), parse_period("2024Q4"), ["plan", "tenure_band"])
    >>> t.order_by(["segment", "customer_id"]).to_pandas().values.tolist()
    [['a', 'all', 'all'], ['b', 'all', 'all'], ['a', 'plan', 'basic'], ['b', 'plan', '(missing)'], \
['a', 'tenure_band', 'more than 1 year'], ['b', 'tenure_band', 'new this period']]
    """
    segments = list(dict.fromkeys(segments))
    wide = segment_columns(ds, period, segments)
    parts = [wide.select(customer_id=wide.customer_id, segment=ibis.literal("all"), segment_value=ibis.literal("all"))]
    for i, col in enumerate(segments):
        parts.append(wide.select(customer_id=wide.customer_id, segment=ibis.literal(col),
                                 segment_value=wide[f"__seg{i}"]))
    return ibis.union(*parts)


# --- per-customer facts -----------------------------------------------------------------------


def sessions(pageviews: ir.Table, *, timeout_minutes: float = 30.0) -> ir.Table:
    """Sessionise pageviews: a visitor's views with no gap above ``timeout_minutes``.

    Returns one row per session: ``visitor_id, customer_id, session_start,
    pageviews, duration_s`` (first to last view) and ``converted``. The session
    belongs to the period of its first view.

    Examples
    --------
    >>> import pandas as pd, ibis
    >>> from engagement.measure import sessions
    >>> pv = ibis.memtable(pd.DataFrame({
    ...     "visitor_id": ["v", "v", "v"], "customer_id": [None, None, None], "page": ["/", "/a", "/"],
    ...     "viewed_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:20", "2024-01-01 11:00"])}))
    >>> out = sessions(pv).order_by("session_start").to_pandas()
    >>> out["pageviews"].tolist(), out["duration_s"].tolist()
    ([2, 1], [1200.0, 0.0])
    """
    pv = pageviews
    converted = pv.converted.fill_null(False) if "converted" in pv.columns else ibis.literal(False)
    secs = pv.viewed_at.epoch_seconds()
    w = ibis.window(group_by=pv.visitor_id, order_by=[pv.viewed_at])
    gap = secs - secs.lag().over(w)
    starts = pv.mutate(_secs=secs, _conv=converted, _new=_i(gap.isnull() | (gap > timeout_minutes * 60)))
    w2 = ibis.window(group_by=starts.visitor_id, order_by=[starts.viewed_at], rows=(None, 0))
    numbered = starts.mutate(_sid=starts._new.sum().over(w2))
    return numbered.group_by(["visitor_id", "_sid"]).aggregate(
        customer_id=numbered.customer_id.max(),
        session_start=numbered.viewed_at.min(),
        pageviews=numbered.count(),
        duration_s=_f(numbered._secs.max() - numbered._secs.min()),
        converted=numbered._conv.max(),
    ).drop("_sid")


def _customer_flags(ds: Dataset, period: Period) -> ir.Table:
    c = ds["customers"]
    s, e = _ts(period.start), _ts(period.end)
    c = c.filter(c.signup_at < e)
    cancelled = c.cancelled_at if "cancelled_at" in c.columns else ibis.null("timestamp")
    at_start = (c.signup_at < s) & (cancelled.isnull() | (cancelled >= s))
    new = c.signup_at >= s
    lost = at_start & cancelled.notnull() & (cancelled < e)
    at_end = cancelled.isnull() | (cancelled >= e)
    return c.select(
        customer_id=c.customer_id,
        signup_at=c.signup_at,
        at_start=_i(at_start),
        new=_i(new),
        lost=_i(lost),
        at_end=_i(at_end),
        retained=_i(at_start & ~lost),
        active=_i(at_start | new),
        new_lost=_i(new & cancelled.notnull() & (cancelled < e)),
    )


def _ljoin(left: ir.Table, right: ir.Table, key: str = "customer_id") -> ir.Table:
    """Left join on ``key`` keeping the left key only."""
    j = left.left_join(right, left[key] == right[key])
    return j.select(*[left[c] for c in left.columns], *[right[c] for c in right.columns if c != key])


def _window(t: ir.Table, col: str, period: Period) -> ir.Table:
    return t.filter((t[col] >= _ts(period.start)) & (t[col] < _ts(period.end)))


def _orders(ds: Dataset, period: Period) -> ir.Table:
    o = _window(ds["orders"], "ordered_at", period)
    cost = o.cost.fill_null(0.0) if "cost" in o.columns else ibis.literal(0.0)
    has_cost = _i(o.cost.notnull()) if "cost" in o.columns else ibis.literal(0)
    return o.group_by("customer_id").aggregate(
        n_orders=o.count(), revenue=_xsum(o.revenue), revenue_sq=_xsum(o.revenue * o.revenue),
        cost=_xsum(cost), n_cost=has_cost.sum(),
    )


def _surveys(ds: Dataset, period: Period) -> ir.Table:
    r = _window(ds["survey_responses"], "responded_at", period)
    nps, csat, ces = r.survey == "nps", r.survey == "csat", r.survey == "ces"
    return r.group_by("customer_id").aggregate(
        nps_pro=_i(nps & (r.score >= 9)).sum(),
        nps_pas=_i(nps & (r.score >= 7) & (r.score <= 8)).sum(),
        nps_det=_i(nps & (r.score <= 6)).sum(),
        csat_n=_i(csat).sum(), csat_top2=_i(csat & (r.score >= 4)).sum(),
        csat_sum=_xsum(ibis.ifelse(csat, r.score, 0.0)), csat_sq=_xsum(ibis.ifelse(csat, r.score * r.score, 0.0)),
        ces_n=_i(ces).sum(), ces_sum=_xsum(ibis.ifelse(ces, r.score, 0.0)),
        ces_sq=_xsum(ibis.ifelse(ces, r.score * r.score, 0.0)), ces_easy=_i(ces & (r.score >= 5)).sum(),
        responses=r.count(),
    )


def _daily(ds: Dataset, period: Period) -> ir.Table:
    """Customer-days with events, ``customer_id, day, n``, from the period start to 8 days past its end.

    Product events are the largest table; both the period's activity and the
    first week of the period's last new customers are read from this one pass.
    """
    ev = ds["events"]
    ev = ev.filter((ev.occurred_at >= _ts(period.start)) & (ev.occurred_at < _ts(period.end + pd.Timedelta(days=8))))
    return ev.group_by(["customer_id", ev.occurred_at.truncate("D").name("day")]).aggregate(n=ev.count())


def _events(daily: ir.Table, period: Period) -> ir.Table:
    # A period has few calendar weeks and months, so "active in week w" is one max() per week:
    # twice as fast as COUNT(DISTINCT) of the customer-days' weeks
    daily = daily.filter(daily.day < _ts(period.end))
    week, month = daily.day.truncate("W"), daily.day.truncate("M")
    active_weeks = sum((_i(week == _ts(w)).max() for w in _weeks(period)), ibis.literal(0))
    active_months = sum((_i(month == _ts(m)).max() for m in period.months()), ibis.literal(0))
    return daily.group_by("customer_id").aggregate(
        n_events=daily.n.sum(), active_days=daily.count(), active_weeks=active_weeks, active_months=active_months,
    )


def _weeks(period: Period) -> list[pd.Timestamp]:
    """Monday of every calendar week (Monday start) that touches the period."""
    first = period.start - pd.Timedelta(days=period.start.weekday())
    return list(pd.date_range(first, period.end - pd.Timedelta(days=1), freq="W-MON"))


def _first_week(ds: Dataset, period: Period, as_of: pd.Timestamp, daily: ir.Table) -> ir.Table:
    """Active days in days 0-6 of customers who signed up in the period and whose week is over."""
    c = ds["customers"]
    new = c.filter((c.signup_at >= _ts(period.start)) & (c.signup_at < _ts(period.end)))
    day0 = new.signup_at.truncate("D")
    new = new.select(customer_id=new.customer_id, day0=day0,
                     complete=_i(day0 + ibis.interval(days=7) <= _ts(as_of)))
    j = new.left_join(daily, (new.customer_id == daily.customer_id) & (daily.day >= new.day0)
                      & (daily.day < new.day0 + ibis.interval(days=7)))
    return j.group_by(customer_id=new.customer_id).aggregate(
        fw_complete=j.complete.max(), fw_days=j.day.count(),  # customer-days are distinct already
    )


def _email(ds: Dataset, period: Period) -> ir.Table:
    em = _window(ds["email_events"], "occurred_at", period)
    # unique per campaign: one row per (customer, campaign) with what happened, then counts per customer
    per = em.group_by(["customer_id", "campaign_id"]).aggregate(
        d=_i(em.event == "delivered").max(), o=_i(em.event.isin(["open", "click"])).max(),
        c=_i(em.event == "click").max(), u=_i(em.event == "unsubscribe").max(),
    )
    return per.group_by("customer_id").aggregate(
        delivered=per.d.sum(), opened=per.o.sum(), clicked=per.c.sum(), unsubscribed=per.u.sum(),
    )


def _web(ds: Dataset, period: Period, timeout: float) -> ir.Table:
    pv = _window(ds["pageviews"], "viewed_at", period)
    ss = sessions(pv, timeout_minutes=timeout)
    facts = ss.group_by("customer_id").aggregate(
        n_sessions=ss.count(), n_pageviews=ss.pageviews.sum(), pv_sq=(ss.pageviews * ss.pageviews).sum(),
        bounces=_i(ss.pageviews == 1).sum(), dur_sum=_xsum(ss.duration_s),
        dur_sq=_xsum(ss.duration_s * ss.duration_s), converting=_i(ss.converted).sum(),
    ).cache()  # used twice: customers' sessions and anonymous ones; the caller releases it
    return facts


def _referred(ds: Dataset, period: Period) -> ir.Table:
    r = ds["referrals"]
    return r.group_by(customer_id=r.referred_customer_id).aggregate(referred=r.count())


def _tickets(ds: Dataset, period: Period) -> ir.Table:
    t = _window(ds["support_tickets"], "opened_at", period)
    return t.group_by("customer_id").aggregate(tickets=t.count())


FACT_SOURCES: dict[str, tuple[str, ...]] = {
    "orders": ("orders",), "surveys": ("survey_responses",), "events": ("events",),
    "first_week": ("events",), "email": ("email_events",), "web": ("pageviews",), "referred": ("referrals",),
    "tickets": ("support_tickets",),
}


def _facts(
    ds: Dataset, period: Period, as_of: pd.Timestamp, timeout: float
) -> tuple[ir.Table, ir.Table | None, list[ir.Table]]:
    """Per-customer facts (an expression), anonymous web sessions' facts, and the caches to release."""
    facts = _customer_flags(ds, period)
    anonymous = None
    caches: list[ir.Table] = []
    daily = _daily(ds, period).cache() if ds.has("events") else None  # read twice below
    if daily is not None:
        caches.append(daily)
    builders = {
        "orders": lambda: _orders(ds, period), "surveys": lambda: _surveys(ds, period),
        "events": lambda: _events(daily, period), "first_week": lambda: _first_week(ds, period, as_of, daily),
        "email": lambda: _email(ds, period), "referred": lambda: _referred(ds, period),
        "tickets": lambda: _tickets(ds, period),
    }
    for name, build in builders.items():
        if all(ds.has(t) for t in FACT_SOURCES[name]):
            facts = _ljoin(facts, build())
    if ds.has("pageviews"):
        web = _web(ds, period, timeout)
        caches.append(web)
        anonymous = web.filter(web.customer_id.isnull())
        facts = _ljoin(facts, web.filter(web.customer_id.notnull()))
    fill = {c: 0 for c, t in facts.schema().items() if c not in ("customer_id", "signup_at") and t.is_numeric()}
    # not cached: the cells query reads it once, and materialising 1M x 50 columns cost 1.3 s
    return facts.fill_null(fill), anonymous, caches


def _aggregate(facts: ir.Table, wide: ir.Table, segments: list[str], fw_min: int) -> pd.DataFrame:
    """Sums per segment value, for ``all`` and each segment column: one row per (segment, segment_value).

    Every quantity is additive, so the engine sums the facts once per *cell* (each
    combination of segment values, a few hundred rows however many customers)
    and the cells are rolled up to each segment's values. This equals a GROUP BY
    over a long (customer, segment) table at a fraction of its cost.
    """
    keys = [f"__seg{i}" for i in range(len(segments))]
    j = facts.join(wide, "customer_id")
    numeric = [c for c, t in facts.schema().items() if t.is_numeric() and c != "customer_id"]
    aggs: dict[str, Any] = {c: _xsum(j[c]) for c in numeric if c != "fw_complete" and c != "fw_days"}
    aggs["customers"] = j.count()
    if "n_orders" in facts.columns:
        aggs["buyers"] = _i(j.n_orders > 0).sum()
    if "n_events" in facts.columns:
        aggs["users_at_start"] = _i((j.n_events > 0) & (j.at_start == 1)).sum()
    engaged = ibis.literal(False)
    for c in ("n_events", "n_orders", "clicked", "responses", "n_sessions"):
        if c in facts.columns:
            engaged = engaged | (j[c] > 0)
    # customers present all period from its start: new customers' shorter exposure would bias the rate
    aggs["engaged"] = _i(engaged & (j.at_start == 1)).sum()
    if "fw_complete" in facts.columns:
        eligible = (j.new == 1) & (j.fw_complete == 1)
        aggs["fw_n"] = _i(eligible).sum()
        aggs["fw_engaged"] = _i(eligible & (j.fw_days >= fw_min)).sum()
        aggs["fw_days_sum"] = ibis.ifelse(eligible, j.fw_days, 0).sum()
    cells = (j.group_by(keys) if keys else j).aggregate(**aggs).cache()  # small: read once per segment
    names = list(aggs)
    total = cells.aggregate(**{n: _xsum(cells[n]) for n in names})
    rollups = [total.select(*names, segment=ibis.literal("all"), segment_value=ibis.literal("all"))]
    for key, col in zip(keys, segments, strict=True):
        g = cells.group_by(segment_value=cells[key]).aggregate(**{n: _xsum(cells[n]) for n in names})
        rollups.append(g.select(*names, segment=ibis.literal(col), segment_value=g.segment_value))
    out = ibis.union(*rollups).order_by(["segment", "segment_value"]).to_pandas()
    cells.release()
    return out


def _ticket_medians(ds: Dataset, period: Period, wide: ir.Table, segments: list[str],
                    confidence: float) -> pd.DataFrame:
    """Median and its order-statistic interval of response and resolution times, per segment."""
    t = _window(ds["support_tickets"], "opened_at", period)
    base = t.select(
        customer_id=t.customer_id,
        first_response_time=_f(t.first_response_at.epoch_seconds() - t.opened_at.epoch_seconds()),
        resolution_time=_f(t.resolved_at.epoch_seconds() - t.opened_at.epoch_seconds()),
    )
    j = wide.join(base, "customer_id").cache()  # the period's tickets: small, read once per segment and bound
    labels = [(ibis.literal("all"), ibis.literal("all"))]
    labels += [(ibis.literal(col), j[f"__seg{i}"]) for i, col in enumerate(segments)]
    long = ibis.union(*[
        j.select(segment=seg, segment_value=value, metric=ibis.literal(metric), v=j[metric])
        for seg, value in labels for metric in ("first_response_time", "resolution_time")
    ])
    stats_ = long.group_by(["segment", "segment_value", "metric"]).aggregate(
        n=long.v.count(), n_missing=_i(long.v.isnull()).sum(), median=long.v.median(),
        total=_xsum(long.v), total_sq=_xsum(long.v * long.v),
    ).to_pandas()
    if stats_.empty:
        j.release()
        return stats_
    rows = []
    for r in stats_.itertuples(index=False):
        lo, hi = median_rank_bounds(int(r.n), confidence)
        rows += [(r.segment, r.segment_value, r.metric, "lo", lo), (r.segment, r.segment_value, r.metric, "hi", hi)]
    wanted = ibis.memtable(pd.DataFrame(rows, columns=["segment", "segment_value", "metric", "bound", "rank"]))
    ranked = long.filter(long.v.notnull())
    ranked = ranked.mutate(rank=ibis.row_number().over(group_by=["segment", "segment_value", "metric"],
                                                       order_by=ranked.v) + 1)
    picked = ranked.join(wanted, ["segment", "segment_value", "metric", "rank"]).select(
        "segment", "segment_value", "metric", "bound", "v").to_pandas()
    bounds = picked.pivot_table(index=["segment", "segment_value", "metric"], columns="bound", values="v",
                                aggfunc="first").reset_index()
    j.release()
    out = stats_.merge(bounds, on=["segment", "segment_value", "metric"], how="left")
    for col in ("lo", "hi"):
        if col not in out.columns:
            out[col] = np.nan
    return out


def _social(ds: Dataset, period: Period, confidence: float) -> list[tuple[str, str, MetricResult]]:
    p = _window(ds["social_posts"], "posted_at", period)
    eng = _f(p.likes + p.comments + p.shares)
    reach = _f(p.reach)
    per_platform = p.group_by("platform").aggregate(
        n=p.count(), sy=eng.sum(), sx=reach.sum(), syy=(eng * eng).sum(), sxx=(reach * reach).sum(),
        sxy=(eng * reach).sum(), f0=p.followers.argmin(p.posted_at), f1=p.followers.argmax(p.posted_at),
    ).order_by("platform").to_pandas()
    out = []
    method = "pooled (likes + comments + shares) / reach over posts"
    for r in per_platform.itertuples(index=False):
        out.append(("platform", r.platform, ratio_from_moments(
            "social_engagement_rate", r.n, r.sy, r.sx, r.syy, r.sxx, r.sxy, confidence=confidence,
            unit="fraction", method=method)))
        out.append(("platform", r.platform, M.follower_growth_rate(int(r.f0), int(r.f1))))
    tot = per_platform[["n", "sy", "sx", "syy", "sxx", "sxy", "f0", "f1"]].sum() if len(per_platform) else None
    if tot is not None:
        out.append(("all", "all", ratio_from_moments(
            "social_engagement_rate", int(tot.n), tot.sy, tot.sx, tot.syy, tot.sxx, tot.sxy,
            confidence=confidence, unit="fraction", method=method)))
        out.append(("all", "all", M.follower_growth_rate(int(tot.f0), int(tot.f1))))
    return out


def _spend(ds: Dataset, period: Period) -> pd.DataFrame:
    m = ds["marketing_spend"]
    m = m.filter((m.period_start >= period.start.date()) & (m.period_start < period.end.date()))
    aggs: dict[str, Any] = {"spend": m.spend.sum()}
    if "impressions" in m.columns and "clicks" in m.columns:
        both = m.impressions.notnull() & m.clicks.notnull()
        aggs["impressions"] = ibis.ifelse(both, m.impressions, 0).sum()
        aggs["clicks"] = ibis.ifelse(both, m.clicks, 0).sum()
    return m.group_by("channel").aggregate(**aggs).order_by("channel").to_pandas()


# --- from sums to metric results ---------------------------------------------------------------


def _getter(r: Mapping[str, Any]) -> Any:
    def g(k: str) -> float:
        v = r.get(k, 0)
        return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else v

    return g


def _clv(g: Any, conf: float) -> MetricResult:
    """Simple CLV of a segment: AOV x orders per active customer per period x 1/churn periods x margin."""
    at_start, lost, n_orders, active = int(g("at_start")), int(g("lost")), int(g("n_orders")), int(g("active"))
    if not (at_start and lost and n_orders and active):
        return _nan("clv", "currency", "needs orders, customers at start and churned customers in the period")
    aov = g("revenue") / n_orders
    margin = 1.0 - g("cost") / g("revenue") if g("n_cost") == n_orders and g("revenue") > 0 else 1.0
    return M.clv_from_churn(aov, n_orders / active, lost / at_start, min(max(margin, 0.0), 1.0))


def _row_metrics(r: Mapping[str, Any], have: set[str], conf: float, period: Period,
                 fw_min_days: int) -> list[MetricResult]:
    out: list[MetricResult] = []
    g = _getter(r)
    at_start, new, active = int(g("at_start")), int(g("new")), int(g("active"))
    out.append(M.churn_rate(int(g("lost")), at_start, confidence=conf))
    retention = M.retention_rate(None, None, at_start, retained=int(g("retained")), confidence=conf)
    ena = (g("at_end") - new) / at_start if at_start else NAN
    out.append(MetricResult(**{**retention.to_dict(), "details": {"ena_value": ena,
                                                                   "new_lost_in_period": int(g("new_lost"))}}))
    out.append(_count("new_customers", new, "customers who signed up in the period"))
    out.append(_count("active_customers", active, "customers subscribed at some point in the period"))
    if "orders" in have:
        n_orders = int(g("n_orders"))
        out.append(_count("orders", n_orders, "orders placed in the period"))
        out.append(_figure("revenue", float(g("revenue")), "sum of order revenue", "currency", n_orders))
        out.append(mean_from_moments("aov", n_orders, g("revenue"), g("revenue_sq"), confidence=conf,
                                     unit="currency", method="mean revenue per order"))
        out.append(M.purchase_frequency(n_orders, active) if active else _nan("purchase_frequency", "ratio"))
        out.append(_clv(g, conf))
    if "survey_responses" in have:
        out.append(M.nps_from_counts(int(g("nps_pro")), int(g("nps_pas")), int(g("nps_det")), confidence=conf))
        csat_n = int(g("csat_n"))
        out.append(_proportion("csat", int(g("csat_top2")), csat_n, conf, "share answering 4-5 on 1-5 (top2box)"))
        out.append(mean_from_moments("csat_mean", csat_n, g("csat_sum"), g("csat_sq"), confidence=conf,
                                     unit="score", method="mean rating on 1-5"))
        out.append(mean_from_moments("ces", int(g("ces_n")), g("ces_sum"), g("ces_sq"), confidence=conf,
                                     unit="score", method="mean answer on 1-7 (higher is easier)"))
    if "events" in have:
        days = max(period.days, 1)
        months = max(len(period.months()), 1)
        dau = g("active_days") / days
        mau = g("active_months") / months
        weeks = max(len(_weeks(period)), 1)
        out.append(_figure("dau", dau, "mean daily active customers over the period's days", "count", days))
        out.append(_figure("wau", g("active_weeks") / weeks,
                           "mean weekly active customers over the calendar weeks (Monday start) touching the period",
                           "count", weeks))
        out.append(_figure("mau", mau, "mean monthly active customers over the period's calendar months", "count",
                           months))
        out.append(MetricResult(metric="stickiness", value=dau / mau if mau else NAN, ci_low=NAN, ci_high=NAN,
                                n=int(round(mau)), method="mean DAU / mean calendar-month MAU", numerator=dau,
                                denominator=mau, unit="fraction"))
        out.append(M.product_usage_rate(int(g("users_at_start")), at_start, confidence=conf) if at_start
                   else _nan("product_usage_rate", "fraction"))
        if "fw_n" in r:
            out.append(_proportion("first_week_engagement", int(g("fw_engaged")), int(g("fw_n")), conf,
                                   f"new customers active on >= {fw_min_days} of days 0-6 (complete weeks only)"))
    out.append(M.engagement_rate(int(g("engaged")), at_start, confidence=conf) if at_start
               else _nan("engagement_rate", "fraction"))
    if "pageviews" in have:
        out.extend(_web_metrics(g, conf))
    if "email_events" in have:
        delivered, opened, clicked = int(g("delivered")), int(g("opened")), int(g("clicked"))
        out.append(_proportion("email_open_rate", opened, delivered, conf, "unique opens / delivered"))
        out.append(_proportion("email_click_rate", clicked, delivered, conf, "unique clickers / delivered"))
        out.append(_proportion("click_to_open_rate", clicked, opened, conf, "unique clickers / unique openers"))
        out.append(_proportion("unsubscribe_rate", min(int(g("unsubscribed")), delivered), delivered, conf,
                               "unsubscribes / delivered"))
    if "referrals" in have:
        out.append(_proportion("referral_rate", int(g("referred_new")), new, conf,
                               "referred new customers / new customers"))
    return out


def _web_metrics(g: Any, conf: float) -> list[MetricResult]:
    n_s = int(g("n_sessions"))
    return [
        _count("website_visits", n_s, "sessions (30-minute inactivity timeout)"),
        _count("page_views", int(g("n_pageviews")), "pageviews"),
        mean_from_moments("pages_per_session", n_s, g("n_pageviews"), g("pv_sq"), confidence=conf, unit="ratio",
                          method="mean pageviews per session"),
        _proportion("bounce_rate", int(g("bounces")), n_s, conf, "single-page sessions / sessions"),
        mean_from_moments("average_session_duration", n_s, g("dur_sum"), g("dur_sq"), confidence=conf,
                          unit="seconds", method="mean first-to-last view time per session"),
        _proportion("conversion_rate", int(g("converting")), n_s, conf, "sessions with a conversion / sessions"),
    ]


def _proportion(metric: str, k: int, n: int, conf: float, note: str) -> MetricResult:
    return proportion_result(metric, k, n, successes_name="successes", trials_name="trials", confidence=conf,
                             method_note=note)


def _count(metric: str, value: int, method: str) -> MetricResult:
    return MetricResult(metric=metric, value=float(value), ci_low=NAN, ci_high=NAN, n=int(value), method=method,
                        unit="count")


def _figure(metric: str, value: float, method: str, unit: str, n: int) -> MetricResult:
    return MetricResult(metric=metric, value=float(value), ci_low=NAN, ci_high=NAN, n=int(n), method=method,
                        unit=unit)


def _nan(metric: str, unit: str, why: str = "empty population") -> MetricResult:
    return MetricResult(metric=metric, value=NAN, ci_low=NAN, ci_high=NAN, n=0, method=why, unit=unit)


# --- the public entry point --------------------------------------------------------------------


def _as_of(ds: Dataset) -> pd.Timestamp:
    candidates = []
    for table, col in (("events", "occurred_at"), ("orders", "ordered_at"), ("pageviews", "viewed_at"),
                       ("customers", "signup_at")):
        if ds.has(table):
            candidates.append(ds[table][col].max())
    values = [pd.Timestamp(c.to_pandas()) for c in candidates]
    values = [v for v in values if not pd.isna(v)]
    return max(values) if values else pd.Timestamp.max


def _unavailable(have: set[str]) -> list[tuple[str, str]]:
    needs = {
        "aov": "orders", "orders": "orders", "revenue": "orders", "purchase_frequency": "orders", "clv": "orders",
        "nps": "survey_responses", "csat": "survey_responses", "csat_mean": "survey_responses",
        "ces": "survey_responses", "dau": "events", "wau": "events", "mau": "events", "stickiness": "events",
        "product_usage_rate": "events", "first_week_engagement": "events", "website_visits": "pageviews",
        "page_views": "pageviews", "pages_per_session": "pageviews", "bounce_rate": "pageviews",
        "average_session_duration": "pageviews", "conversion_rate": "pageviews",
        "email_open_rate": "email_events", "email_click_rate": "email_events",
        "click_to_open_rate": "email_events", "unsubscribe_rate": "email_events",
        "social_engagement_rate": "social_posts", "follower_growth_rate": "social_posts",
        "first_response_time": "support_tickets", "first_response_time_mean": "support_tickets",
        "resolution_time": "support_tickets", "resolution_time_mean": "support_tickets",
        "cac": "marketing_spend", "clv_cac_ratio": "marketing_spend", "click_through_rate": "marketing_spend",
        "referral_rate": "referrals",
    }
    return [(m, t) for m, t in needs.items() if t not in have]


def measure(
    data: Dataset | Mapping[str, pd.DataFrame] | str,
    period: str | Period,
    *,
    segments: Iterable[str] = DEFAULT_SEGMENTS,
    compare: bool = True,
    confidence: float = 0.95,
    fiscal_start_month: int = 1,
    first_week_min_days: int = 2,
    session_timeout_minutes: float = 30.0,
    as_of: Any = None,
) -> pd.DataFrame:
    """Measure every available metric for ``period`` (and its comparisons) per segment.

    Parameters
    ----------
    data : Dataset, mapping of DataFrames, or path
        A loaded :class:`~engagement.data.Dataset`; DataFrames or a path are
        loaded (and validated) first.
    period : str or Period
        ``"2024Q4"``, ``"2024-11"`` or ``"2024"``.
    segments : iterable of str
        Customer attribute columns and derived segments (``tenure_band``,
        ``new_vs_returning``, ``value_tier``); ``all`` is always included.
    compare : bool, default True
        Also measure the previous period and the same period a year earlier.
    confidence : float, default 0.95
    fiscal_start_month : int, default 1
    first_week_min_days : int, default 2
        Active days in days 0-6 that make a new customer "engaged in week one".
    session_timeout_minutes : float, default 30
    as_of : date-like, optional
        When the data ends (for first-week completeness); default the latest
        event, order, pageview or sign-up.

    Returns
    -------
    DataFrame
        ``period, period_role, segment, segment_value, metric, value, ci_low,
        ci_high, n, numerator, denominator, unit, method, status, reason``,
        sorted deterministically; metrics whose table is missing have status
        ``unavailable`` and a reason.
    """
    ds = data if isinstance(data, Dataset) else load(data)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fiscal_start_month)
    segments = list(dict.fromkeys(segments))
    if "value_tier" in segments and not ds.has("orders"):
        segments.remove("value_tier")  # a default segment; without orders there is no value to tier
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else _as_of(ds)
    roles = [("current", p)] + ([("previous", p.previous()), ("year_ago", p.year_ago())] if compare else [])
    have = set(ds.tables)
    rows: list[dict[str, Any]] = []
    for role, per in roles:
        rows.extend(_measure_one(ds, per, role, segments, have, confidence, as_of_ts, first_week_min_days,
                                 session_timeout_minutes))
    for role, per in roles:
        for metric, table in _unavailable(have):
            rows.append({"period": per.label, "period_role": role, "segment": "all", "segment_value": "all",
                         "metric": metric, "value": NAN, "ci_low": NAN, "ci_high": NAN, "se": NAN, "n": 0,
                         "numerator": NAN,
                         "denominator": NAN, "unit": "", "method": "", "status": "unavailable",
                         "reason": f"the dataset has no {table} table"})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    role_order = {"current": 0, "previous": 1, "year_ago": 2}
    frame["_r"] = frame["period_role"].map(role_order)
    frame["_s"] = (frame["segment"] != "all").astype(int)
    frame = frame.sort_values(["_r", "_s", "segment", "segment_value", "metric"], kind="stable")
    frame = frame.drop(columns=["_r", "_s"]).reset_index(drop=True)
    for col in ("value", "ci_low", "ci_high", "se", "numerator", "denominator"):
        frame[col] = frame[col].astype("float64")
    frame["n"] = frame["n"].astype("int64")
    return frame


def _measure_one(ds: Dataset, per: Period, role: str, segments: list[str], have: set[str], conf: float,
                 as_of: pd.Timestamp, fw_min: int, timeout: float) -> list[dict[str, Any]]:
    wide = segment_columns(ds, per, segments).cache()
    facts, anonymous, caches = _facts(ds, per, as_of, timeout)
    if "referred" in facts.columns:
        facts = facts.mutate(referred_new=_i((facts.referred > 0) & (facts.new == 1)))
    sums = _aggregate(facts, wide, segments, fw_min)
    if anonymous is not None:
        anon = anonymous.aggregate(**{c: _xsum(anonymous[c]) for c in anonymous.columns if c != "customer_id"})
        anon_row = anon.to_pandas().iloc[0].fillna(0)
        mask = sums["segment"] == "all"
        for c in anon_row.index:
            sums.loc[mask, c] = sums.loc[mask, c] + anon_row[c]
    out: list[dict[str, Any]] = []

    def emit(segment: str, value: str, res: MetricResult, status: str = "ok", reason: str = "") -> None:
        out.append({"period": per.label, "period_role": role, "segment": segment, "segment_value": value,
                    "metric": res.metric, "value": res.value, "ci_low": res.ci_low, "ci_high": res.ci_high,
                    "se": float(res.details.get("se", NAN)), "n": res.n, "numerator": _num(res.numerator), "denominator": _num(res.denominator),
                    "unit": res.unit, "method": res.method, "status": status, "reason": reason})

    spend = _spend(ds, per) if ds.has("marketing_spend") else None
    for r in sums.to_dict("records"):
        for res in _row_metrics(r, have, conf, per, fw_min):
            emit(r["segment"], r["segment_value"], res)
    if spend is not None and "acquisition_channel" in ds["customers"].columns:
        _cac_rows(sums, spend, conf, emit)
    if ds.has("support_tickets"):
        med = _ticket_medians(ds, per, wide, segments, conf)
        for r in med.itertuples(index=False):
            median = MetricResult(
                metric=r.metric, value=float(r.median) if r.n else NAN,
                ci_low=float(r.lo) if r.n and not pd.isna(r.lo) else NAN,
                ci_high=float(r.hi) if r.n and not pd.isna(r.hi) else NAN, n=int(r.n), n_missing=int(r.n_missing),
                method="median, order-statistic interval (not yet answered/resolved excluded)", unit="seconds",
                details={"se": (float(r.hi) - float(r.lo)) / (2 * 1.959963984540054)
                         if r.n and not (pd.isna(r.lo) or pd.isna(r.hi)) else NAN})
            emit(r.segment, r.segment_value, median)
            mean = mean_from_moments(f"{r.metric}_mean", int(r.n), float(r.total or 0), float(r.total_sq or 0),
                                     confidence=conf, unit="seconds", method="mean (not yet answered excluded)")
            emit(r.segment, r.segment_value, mean)
    if ds.has("social_posts"):
        for segment, value, res in _social(ds, per, conf):
            emit(segment, value, res)
    for cached in (wide, *caches):
        cached.release()
    return out


def _cac_rows(sums: pd.DataFrame, spend: pd.DataFrame, conf: float, emit: Any) -> None:
    by_channel = sums[sums["segment"] == "acquisition_channel"].set_index("segment_value")
    total_spend = float(spend["spend"].sum())
    for channel in sorted(set(spend["channel"]) | set(by_channel.index)):
        row = spend[spend["channel"] == channel]
        s = float(row["spend"].sum()) if len(row) else 0.0
        new = int(by_channel.loc[channel, "new"]) if channel in by_channel.index else 0
        cac = M.cac(s, new)
        emit("acquisition_channel", channel, cac)
        if channel in by_channel.index and "n_orders" in by_channel.columns:
            clv = _clv(_getter(by_channel.loc[channel].to_dict()), conf)
            if not (math.isnan(clv.value) or math.isnan(cac.value) or cac.value == 0):
                emit("acquisition_channel", channel, M.clv_cac_ratio(clv.value, cac.value))
        if "impressions" in spend.columns and len(row) and float(row["impressions"].sum()) > 0:
            emit("acquisition_channel", channel, _proportion(
                "click_through_rate", int(row["clicks"].sum()), int(row["impressions"].sum()), conf,
                "ad clicks / ad impressions"))
    all_row = sums[sums["segment"] == "all"]
    new_all = int(all_row["new"].iloc[0]) if len(all_row) else 0
    cac_all = M.cac(total_spend, new_all)
    emit("all", "all", cac_all)
    if len(all_row) and "n_orders" in all_row.columns:
        clv = _clv(_getter(all_row.iloc[0].to_dict()), conf)
        if not (math.isnan(clv.value) or math.isnan(cac_all.value) or cac_all.value == 0):
            emit("all", "all", M.clv_cac_ratio(clv.value, cac_all.value))
    if "impressions" in spend.columns and float(spend["impressions"].sum()) > 0:
        emit("all", "all", _proportion("click_through_rate", int(spend["clicks"].sum()),
                                       int(spend["impressions"].sum()), conf, "ad clicks / ad impressions"))


def _num(v: Any) -> float:
    return NAN if v is None else float(v)


def measure_series(
    data: Dataset | Mapping[str, pd.DataFrame] | str,
    period: str | Period,
    *,
    periods: int = 8,
    segments: Iterable[str] = (),
    confidence: float = 0.95,
    fiscal_start_month: int = 1,
    known: pd.DataFrame | None = None,
    **options: Any,
) -> pd.DataFrame:
    """The measure table for the ``periods`` periods ending with ``period`` (oldest first).

    Same columns as :func:`measure`; ``period_role`` is ``"series"``. Used for
    trend charts and trend tests. Periods already measured in ``known`` (a
    :func:`measure` table with the same options) are taken from it.
    """
    ds = data if isinstance(data, Dataset) else load(data)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fiscal_start_month)
    if not isinstance(periods, int) or periods < 1:
        raise ValueError(f"`periods` must be a whole number >= 1, got {periods!r}.")
    segments = list(segments)
    frames = []
    for k in range(periods - 1, -1, -1):
        label = p.shift(-k).label
        if known is not None and (known.period == label).any():
            reuse = known[(known.period == label) & (known.segment.isin(["all", *segments]))]
            frames.append(reuse.assign(period_role="series"))
            continue
        t = measure(ds, p.shift(-k), segments=segments, compare=False, confidence=confidence, **options)
        frames.append(t.assign(period_role="series"))
    return pd.concat(frames, ignore_index=True)
