"""Per-customer facts of a period, summed per segment in the engine.

For a period ``[start, end)`` each customer has the subscription flags (at start,
lost, new, at end) and, per source table, the additive quantities the metrics need
(counts, sums, sums of squares): one **fact table per source**, with a row for each
customer that source has (:class:`CustomerFacts`). Every quantity is additive, so
each source's facts, joined to the customers' segment columns, are summed per *cell*
(a combination of segment values: a few hundred rows however many customers) in one
``GROUP BY``, and the cells are rolled up to ``all`` and to each segment's values
(:func:`segment_sums`). Only these few hundred rows become pandas.

Support-ticket medians, social posts and marketing spend are not additive
customer facts: :func:`ticket_medians`, :func:`social_totals` and
:func:`spend_by_channel` aggregate them on their own.

Which table feeds which facts is :data:`FACT_SOURCES`; the metric declarations
(:mod:`engagement.measure.declarations`) say which facts each metric sums.

Several periods (a trend series, a period and its comparisons) are one set of
queries (:class:`Periods`): every fact then carries the period's index ``__p``.
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from engagement.data.load import Dataset
from engagement.intervals import median_rank_bounds
from engagement.measure._engine import EXACT
from engagement.measure._engine import exact_sum as _xsum
from engagement.measure._engine import exact_value as _exact
from engagement.measure._engine import f64 as _f
from engagement.measure._engine import flag as _i
from engagement.measure._engine import ts as _ts
from engagement.measure.periods import Period
from engagement.measure.sessions import sessions

__all__ = ["FACT_SOURCES", "FLAGS", "FLAG_COLUMNS", "CustomerFacts", "Periods", "customer_facts", "segment_sums",
           "ticket_medians", "social_totals", "spend_by_channel", "calendar_weeks"]


#: the subscription flags of each customer in a period (0/1), summed per segment under these names
FLAGS = ("at_start", "new", "lost", "at_end", "retained", "active", "new_lost")


def _flag_column(name: str) -> str:
    """The column of flag ``name`` beside the customers' own (``__new``: a customer attribute may well be called
    ``active``)."""
    return f"__{name}"


#: the flags' columns
FLAG_COLUMNS = tuple(_flag_column(f) for f in FLAGS)


def _flag(t: ir.Table, name: str) -> ir.Value:
    return t[_flag_column(name)]


class Periods:
    """The periods measured together, as the queries read them.

    One period's bounds are literals: the queries are that period's alone. With several, each source row is
    repeated once per period (``__p``, the period's index, from an array of indices unnested) and kept where the
    period's window holds it (an order in two periods' inactivity windows counts in both); each period's bounds
    are a ``CASE`` on ``__p``, and ``__p`` is among the keys of every group-by (:attr:`key`). Ibis then builds and
    compiles the queries once for all the periods: at demo size that, not the engine, is most of a period's time.
    No table of periods: Spark cannot cache an expression that reads an in-memory table.
    """

    def __init__(self, periods: Period | list[Period], inactivity_days: int = 365):
        self.periods = [periods] if isinstance(periods, Period) else list(periods)
        if not self.periods:
            raise ValueError("No period to measure.")
        window, year = pd.Timedelta(days=inactivity_days), pd.Timedelta(days=365)
        ps = self.periods
        #: per period: its bounds, and the other instants and numbers its windows start or end at
        self.values = pd.DataFrame({
            "__s": [p.start for p in ps], "__e": [p.end for p in ps],
            "__s_year": [p.start - year for p in ps],  # tenure band and value tier
            "__s_inact": [p.start - window for p in ps], "__e_inact": [p.end - window for p in ps],
            "__s_orders": [p.start - max(window, year) for p in ps],  # the orders read: both windows before
            "__e_week": [p.end + pd.Timedelta(days=8) for p in ps],  # the first week of its last new customers
            "__s_web": [p.start - SESSION_MARGIN for p in ps], "__e_web": [p.end + SESSION_MARGIN for p in ps],
            "__monday": [int(calendar_weeks(p)[0].timestamp()) for p in ps],
            "__month0": [p.start.year * 12 + p.start.month for p in ps],
            "__s_day": [p.start.date() for p in ps], "__e_day": [p.end.date() for p in ps],  # marketing spend
        })
        #: the period's index among the group-by keys: none for one period
        self.key: list[str] = ["__p"] if len(ps) > 1 else []

    def __len__(self) -> int:
        return len(self.periods)

    def within(self, t: ir.Table, col: str, lo: str | None, hi: str) -> ir.Table:
        """The rows of ``t`` with ``lo <= t[col] < hi`` of a period (``lo`` None: no lower bound), once for each
        such period, with its index ``__p`` when there are several."""
        if self.key:
            # the span of all the windows first, as literals: the scan skips what no period reads
            first = _literal(self.values[lo].min()) if lo else None
            t = t.filter(_inside(t[col], first, _literal(self.values[hi].max())))
            # INT, as Spark reads it back from a cache
            t = t.mutate(__p=ibis.literal(list(range(len(self))), type="array<int32>").unnest())
        return t.filter(_inside(t[col], self.value(t, lo) if lo else None, self.value(t, hi)))

    def value(self, t: ir.Table, name: str) -> ir.Value:
        """A value of each row's period (``t`` has ``__p`` when there are several): a literal for one period."""
        if not self.key:
            return _literal(self.values[name].iloc[0])
        return ibis.cases(*[(t["__p"] == i, _literal(v)) for i, v in enumerate(self.values[name])])


def _inside(x: ir.Value, lo: ir.Value | None, hi: ir.Value) -> ir.BooleanValue:
    """``lo <= x < hi`` (``lo`` None: ``x < hi``)."""
    return (x < hi) & (x >= lo) if lo is not None else x < hi


def _literal(v: Any) -> ir.Value:
    """A value of :attr:`Periods.values` as a literal: a timestamp, a date or a whole number."""
    if isinstance(v, pd.Timestamp):
        return _ts(v)
    return ibis.date(v) if isinstance(v, datetime.date) else ibis.literal(int(v), "int64")


def _as_periods(period: Period | Periods, inactivity_days: int = 365) -> Periods:
    return period if isinstance(period, Periods) else Periods(period, inactivity_days)


def _customer_flags(ds: Dataset, P: Periods) -> ir.Table:
    """The customers who exist by the period's end, every column of theirs, and their :data:`FLAGS`
    (:data:`FLAG_COLUMNS`); with several periods, a row per customer and period (``__p``)."""
    c = P.within(ds["customers"], "signup_at", None, "__e")
    s, e = P.value(c, "__s"), P.value(c, "__e")
    cancelled = c.cancelled_at if "cancelled_at" in c.columns else ibis.null("timestamp")
    at_start = (c.signup_at < s) & (cancelled.isnull() | (cancelled >= s))
    new = c.signup_at >= s
    lost = at_start & cancelled.notnull() & (cancelled < e)
    at_end = cancelled.isnull() | (cancelled >= e)
    flags = {"at_start": at_start, "new": new, "lost": lost, "at_end": at_end, "retained": at_start & ~lost,
             "active": at_start | new, "new_lost": new & cancelled.notnull() & (cancelled < e)}
    return c.mutate(**{_flag_column(name): _i(flag) for name, flag in flags.items()})


def _orders(ds: Dataset, P: Periods) -> ir.Table:
    """The period's order facts, the non-contractual churn facts and each customer's spend in the year before
    the period, from one pass over the orders of the period and of the ``inactivity_days`` (and the 365 days)
    before it (two passes and two per-cell queries took 1.0-1.3 s at a million customers, one 1.0 s).

    Inactivity churn: a customer who ordered in the ``inactivity_days`` before the period was active at its
    start; of those, one with no order in the ``inactivity_days`` before its end has lapsed by its end. A
    customer who ordered only before the period has a row with no order in it (``n_orders`` 0).
    ``__spend_year`` is the revenue of the 365 days before the period, the value tier's
    (:func:`~engagement.measure.segments.segment_columns`); a sum of no orders is null.
    """
    o = P.within(ds["orders"], "ordered_at", "__s_orders", "__e")
    now = o.ordered_at >= P.value(o, "__s")
    sums: dict[str, Any] = {"n_orders": _i(now).sum(), "revenue": _xsum(o.revenue, where=now),
                            "revenue_sq": _xsum(o.revenue * o.revenue, where=now)}
    if "cost" in o.columns:  # optional: without it margin CLV is revenue CLV (n_cost = 0 says so)
        sums.update(cost=_xsum(o.cost.fill_null(0.0), where=now), n_cost=_i(now & o.cost.notnull()).sum())
    inactive_window = ~now & (o.ordered_at >= P.value(o, "__s_inact"))
    year = ~now & (o.ordered_at >= P.value(o, "__s_year"))
    per = o.group_by(["customer_id", *P.key]).aggregate(
        **sums, __b=_i(inactive_window).max(), __r=_i(o.ordered_at >= P.value(o, "__e_inact")).max(),
        __y=_xsum(o.revenue, where=year))
    return per.select(*sums, "customer_id", *P.key, inact_at_start=per.__b,
                      inact_lost=_i((per.__b == 1) & (per.__r == 0)), __spend_year=per.__y)


def _surveys(ds: Dataset, P: Periods) -> ir.Table:
    r = P.within(ds["survey_responses"], "responded_at", "__s", "__e")
    nps, csat, ces = r.survey == "nps", r.survey == "csat", r.survey == "ces"
    per = r.group_by(["customer_id", *P.key]).aggregate(
        nps_pro=_i(nps & (r.score >= 9)).sum(),
        nps_pas=_i(nps & (r.score >= 7) & (r.score <= 8)).sum(),
        nps_det=_i(nps & (r.score <= 6)).sum(),
        csat_n=_i(csat).sum(), csat_top2=_i(csat & (r.score >= 4)).sum(),
        csat_sum=_xsum(ibis.ifelse(csat, r.score, 0.0)),
        ces_n=_i(ces).sum(), ces_sum=_xsum(ibis.ifelse(ces, r.score, 0.0)), ces_easy=_i(ces & (r.score >= 5)).sum(),
        responses=r.count(),
    )
    return per


def _daily(ds: Dataset, P: Periods) -> ir.Table:
    """Customer-days with events, ``customer_id, day, n``, from the period start to 8 days past its end.

    Product events are the largest table; both the period's activity and the
    first week of the period's last new customers are read from this one pass.
    """
    ev = P.within(ds["events"], "occurred_at", "__s", "__e_week")
    return ev.group_by(["customer_id", *P.key, ev.occurred_at.truncate("D").name("day")]).aggregate(n=ev.count())


def _events(daily: ir.Table, P: Periods) -> ir.Table:
    # A customer's days are distinct, so a calendar week holds at most 7 of them and a month 31: each week's count
    # of active days fits in 3 bits and each month's in 5. Summing 1 << (3 * week) over a customer's days packs
    # every week's count side by side (21 weeks to a 64-bit integer; one sum for a quarter), and the active weeks
    # and months are the non-zero counts. With a max() per week and per month (18 aggregates a quarter) the events'
    # per-cell query took 1.1 s at a million customers (COUNT(DISTINCT) twice as long), with these sums 0.7 s.
    # Plain SUMs and shifts run on every engine (Spark has no BIT_OR in Ibis).
    daily = daily.filter(daily.day < P.value(daily, "__e"))
    # the longest period's weeks and months: a shorter period's last counts are 0, never counted
    weeks = max(len(calendar_weeks(p)) for p in P.periods)
    months = max(len(p.months()) for p in P.periods)
    if months > 12:  # 5 bits a month: twelve fill 60 of the 64 bits
        raise ValueError(f"A period of {months} months is longer than the year the active months are counted in.")
    week = (daily.day.epoch_seconds() - P.value(daily, "__monday")) // (7 * 86400)
    month = daily.day.year() * 12 + daily.day.month() - P.value(daily, "__month0")
    packed = {f"__w{c}": ibis.ifelse((week >= c) & (week < c + 21), _power_of_two((week - c) * 3), 0).sum()
              for c in range(0, weeks, 21)}
    per = daily.group_by(["customer_id", *P.key]).aggregate(
        n_events=daily.n.sum(), active_days=daily.count(), __m=_power_of_two(month * 5).sum(), **packed)
    active_weeks = sum((_counted(per[f"__w{c}"], min(21, weeks - c), 3) for c in range(21, weeks, 21)),
                       _counted(per.__w0, min(21, weeks), 3))
    return per.select("customer_id", *P.key, "n_events", "active_days", active_weeks=active_weeks,
                      active_months=_counted(per.__m, months, 5))


def _power_of_two(exponent: ir.IntegerValue) -> ir.IntegerValue:
    """``2 ** exponent`` as a 64-bit integer on every engine: Spark shifts a literal ``1`` as a 32-bit integer,
    which wraps past bit 31, so the one shifted is a 64-bit value of the column's own."""
    return (exponent * 0 + 1).cast("int64") << exponent


def _counted(packed: ir.IntegerValue, slots: int, bits: int) -> ir.IntegerValue:
    """How many of the ``slots`` counts of ``bits`` bits each, side by side in ``packed``, are not zero."""
    field = 2 ** bits - 1
    return sum((_i(((packed >> (bits * i)) & field) > 0) for i in range(1, slots)), _i((packed & field) > 0))


def calendar_weeks(period: Period) -> list[pd.Timestamp]:
    """Monday of every calendar week (Monday start) that touches the period."""
    first = period.start - pd.Timedelta(days=period.start.weekday())
    return list(pd.date_range(first, period.end - pd.Timedelta(days=1), freq="W-MON"))


def _first_week(ds: Dataset, P: Periods, as_of: pd.Timestamp, daily: ir.Table) -> ir.Table:
    """Active days in days 0-6 of customers who signed up in the period and whose week is over."""
    new = P.within(ds["customers"], "signup_at", "__s", "__e")
    day0 = new.signup_at.truncate("D")
    new = new.select("customer_id", *P.key, day0=day0, complete=_i(day0 + ibis.interval(days=7) <= _ts(as_of)))
    on = ((new.customer_id == daily.customer_id) & (daily.day >= new.day0)
          & (daily.day < new.day0 + ibis.interval(days=7)))
    j = new.left_join(daily, on & (new.__p == daily.__p) if P.key else on)
    return j.group_by(customer_id=new.customer_id, **{k: new[k] for k in P.key}).aggregate(
        fw_complete=j.complete.max(), fw_days=j.day.count(),  # customer-days are distinct already
    )


def _email(ds: Dataset, P: Periods) -> ir.Table:
    """Email facts per customer: the campaigns delivered to them in the period, and what those led to.

    A campaign belongs to the period it was delivered in (its first ``delivered`` event), with every open, click
    and unsubscribe of that customer for that campaign to date, whenever it came: counting the events that fall
    in the period instead counts an open of September's campaign in October as an October open without its
    delivery, and a repeat open in a later period as a new unique open. ``email_clicks`` (clicks that happened in
    the period, any campaign) is the period's activity, for the engagement rate.
    """
    em = ds["email_events"]
    now = P.within(em, "occurred_at", "__s", "__e")  # the period's events
    # Each (customer, campaign) pair of the campaigns delivered in the period, over all their events (few: a
    # campaign is sent to many), belongs to the period of its first delivery; the period's clicks are counted on
    # their own. Three passes (the period's deliveries, those before it to exclude, then the pairs' events by a
    # semi-join) took 2.1 s at a million customers, this 1.3 s (as long as one pass with the clicks in it, which
    # could not say which of several periods a click is in).
    campaigns = now.filter(now.event == "delivered").select("campaign_id").distinct()
    ev = em.filter(em.campaign_id.isin(campaigns.campaign_id))
    pairs = ev.group_by(["customer_id", "campaign_id"]).aggregate(
        first=ev.occurred_at.min(where=ev.event == "delivered"),
        o=_i(ev.event.isin(["open", "click"])).max(), c=_i(ev.event == "click").max(),
        u=_i(ev.event == "unsubscribe").max(),
    )
    sent = P.within(pairs, "first", "__s", "__e")
    out = sent.group_by(["customer_id", *P.key]).aggregate(
        delivered=sent.count(), opened=sent.o.sum(), clicked=sent.c.sum(), unsubscribed=sent.u.sum())
    clicks = now.filter(now.event == "click")
    clicks = clicks.group_by(["customer_id", *P.key]).aggregate(email_clicks=clicks.count())
    both = out.outer_join(clicks, [out[k] == clicks[k] for k in ["customer_id", *P.key]])
    return both.select(**{k: both[k].fill_null(both[f"{k}_right"]) for k in ["customer_id", *P.key]},
                       **{c: both[c].fill_null(0) for c in ("delivered", "opened", "clicked", "unsubscribed",
                                                             "email_clicks")})


#: how far before and after the period pageviews are read to sessionise its edges: a session that starts
#: before the period belongs to the period before, one that starts in it keeps its views after its end.
#: Exact for any session shorter than this (a chain of views each within the timeout for a whole day is not a
#: visit).
SESSION_MARGIN = pd.Timedelta(days=1)


def _web(ds: Dataset, P: Periods, timeout: float) -> tuple[ir.Table, ir.Table]:
    """Per-customer session facts, anonymous sessions in the row with a null ``customer_id``; and the table
    cached for them, to release.

    A session belongs to the period of its first view (``sessions``). Sessions cluster in whoever makes them (one
    visitor's sessions are alike), so beside the sums each row carries the moments of its clusters' totals for
    the ratio estimator of pages per session and session duration: a customer is one cluster, and each anonymous
    visitor is one.
    """
    pv = P.within(ds["pageviews"], "viewed_at", "__s_web", "__e_web")  # each period's views and its margins
    ss = sessions(pv, timeout_minutes=timeout, by=P.key)
    ss = ss.filter((ss.session_start >= P.value(ss, "__s")) & (ss.session_start < P.value(ss, "__e")))
    # the cluster: the customer when logged in (null key), else the visitor
    ss = ss.mutate(_visitor=ibis.ifelse(ss.customer_id.isnull(), ss.visitor_id.cast("string"),
                                        ibis.null("string")))
    # cached: the customers' rows and the anonymous ones below both read it, and so do the per-cell sums and the
    # engaged customers; the caller releases it
    per = ss.group_by(["customer_id", "_visitor", *P.key]).aggregate(
        s=ss.count(), pv=ss.pageviews.sum(), bounces=_i(ss.pageviews == 1).sum(), dur=_xsum(ss.duration_s),
        converting=_i(ss.converted).sum(),
    ).cache()

    def cluster(x: ir.Table) -> dict[str, ir.Value]:  # one cluster's totals and their squares and products
        return {
            "n_sessions": x.s, "n_pageviews": x.pv, "bounces": x.bounces, "dur_sum": x.dur, "converting": x.converting,
            "web_s_sq": x.s * x.s, "web_pv_sq": x.pv * x.pv,
            "web_s_pv": x.s * x.pv, "web_dur_sq": x.dur * x.dur, "web_s_dur": x.s * x.dur,
            # bounce and conversion rates are shares of sessions: their design effects need the same moments
            "web_b_sq": x.bounces * x.bounces, "web_s_b": x.s * x.bounces,
            "web_c_sq": x.converting * x.converting, "web_s_c": x.s * x.converting,
        }

    # a customer is one cluster: their row is their cluster's, no grouping needed (as exact as a sum of one value);
    # the anonymous visitors' clusters are summed into the one row with a null customer_id
    known = per.filter(per.customer_id.notnull())
    known = known.select("customer_id", *P.key, web_clusters=ibis.literal(1, "int64"),
                         **{k: _exact(v) for k, v in cluster(known).items()})
    anonymous = per.filter(per.customer_id.isnull())
    anonymous = (anonymous.group_by(P.key) if P.key else anonymous).aggregate(
        web_clusters=anonymous.count(), **{k: _xsum(v) for k, v in cluster(anonymous).items()})
    anonymous = anonymous.filter(anonymous.web_clusters > 0).mutate(customer_id=ibis.null(known.customer_id.type()))
    anonymous = anonymous.select(*known.columns)
    # grouping the customers' clusters by customer again cost 0.8 s of 3.6 s at a million customers. The union is
    # not cached itself: Spark Connect does not cache a union (Ibis's cache() then fails its own check)
    return ibis.union(known, anonymous), per


def _referred(ds: Dataset) -> ir.Table:
    """Referrals of each referred customer, whenever they were made (no period: read with each period's new
    customers)."""
    r = ds["referrals"]
    return r.group_by(customer_id=r.referred_customer_id).aggregate(referred=r.count())


def _tickets(ds: Dataset, P: Periods) -> ir.Table:
    t = P.within(ds["support_tickets"], "opened_at", "__s", "__e")
    return t.group_by(["customer_id", *P.key]).aggregate(tickets=t.count())


FACT_SOURCES: dict[str, tuple[str, ...]] = {
    "orders": ("orders",), "surveys": ("survey_responses",), "events": ("events",),
    "first_week": ("events",), "email": ("email_events",), "web": ("pageviews",), "referred": ("referrals",),
    "tickets": ("support_tickets",),
}


class CustomerFacts(NamedTuple):
    """A period's per-customer facts, as expressions: what :func:`segment_sums` sums."""

    #: one row per customer who exists by the period's end: every column of theirs and the :data:`FLAG_COLUMNS`
    flags: ir.Table
    #: per source (the keys of :data:`FACT_SOURCES`, and ``web``), one row per customer with facts from it
    parts: dict[str, ir.Table]
    #: ``customer_id`` of everyone who did something in the period (used the product, ordered, clicked an email,
    #: answered a survey, visited the website), each once (with ``__p``: once a period); None when the data has
    #: none of those tables
    active: ir.Table | None
    #: the web facts of no customer of the period (the anonymous visitors' row, and customers who sign up after
    #: it, whose visits were stitched to their id later); None without pageviews
    anonymous: ir.Table | None
    #: tables cached in the engine, to release when the period is measured
    caches: list[ir.Table]
    #: how many periods are measured together
    periods: int

    @property
    def key(self) -> list[str]:
        """The period's index among the keys (``["__p"]``) when several periods are measured together, else empty."""
        return ["__p"] if self.periods > 1 else []


def customer_facts(
    ds: Dataset, period: Period | Periods, as_of: pd.Timestamp, timeout: float, inactivity_days: int = 365
) -> CustomerFacts:
    """The period's per-customer facts: the flags, the facts of each source table, anonymous web sessions' facts.

    Several periods (:class:`Periods`): the same, a row per customer and period, the period's index ``__p``."""
    P = _as_periods(period, inactivity_days)
    flags = _customer_flags(ds, P)
    caches: list[ir.Table] = []
    web = None
    if ds.has("pageviews"):  # first: sessionising is the measurement's peak of memory, best before more is cached
        web, cached = _web(ds, P, timeout)
        caches.append(cached)
    daily = _daily(ds, P).cache() if ds.has("events") else None  # read twice below
    if daily is not None:
        caches.append(daily)
    builders = {
        "orders": lambda: _orders(ds, P), "surveys": lambda: _surveys(ds, P),
        "events": lambda: _events(daily, P), "first_week": lambda: _first_week(ds, P, as_of, daily),
        "email": lambda: _email(ds, P), "referred": lambda: _referred(ds), "tickets": lambda: _tickets(ds, P),
    }
    parts = {name: build() for name, build in builders.items() if all(ds.has(t) for t in FACT_SOURCES[name])}
    # read twice: their per-cell sums, and who did anything below (the orders' also the value tiers of the
    # segment table); cached, the second read is of a few hundred thousand rows, not of the source again (at a
    # million customers the period's surveys 0.18 s, its email clicks among 11.5 million email events 0.25 s).
    # Their moments are worked out where they are summed (:func:`_source_sums`: cached with them, the survey and
    # email facts added 0.15 GB to the peak at a million customers)
    for name in ("orders", "surveys", "email"):
        if name in parts:
            parts[name] = parts[name].cache()
            caches.append(parts[name])
    # who did anything: the rows behind n_events, n_orders, email_clicks, responses and n_sessions, from the
    # cached facts (the events' from the daily table)
    who = ["customer_id", *P.key]
    active = []
    if daily is not None:
        active.append(daily.filter(daily.day < P.value(daily, "__e")).select(*who))
    if "orders" in parts:
        active.append(parts["orders"].filter(parts["orders"].n_orders > 0).select(*who))
    if "surveys" in parts:  # a row per customer with a response in the period
        active.append(parts["surveys"].select(*who))
    if "email" in parts:
        active.append(parts["email"].filter(parts["email"].email_clicks > 0).select(*who))
    anonymous = None
    if web is not None:
        # sessions of no customer of the period (anonymous, or a customer who signs up after it: their visits
        # were stitched to their id later) are visits all the same: they count for all customers, in no segment
        anonymous = web.anti_join(flags.select(*who), who)
        parts["web"] = web.filter(web.customer_id.notnull())
        active.append(parts["web"].select(*who))  # every row has a session
    # each once: the flags' query looks each customer up in it, and a lookup table built on every customer-day,
    # order, answer, click and session held 0.23 GB at a million customers (distinct, 0.04 GB)
    return CustomerFacts(flags, parts, ibis.union(*active, distinct=True) if active else None, anonymous, caches,
                         len(P))


def segment_sums(base: ir.Table, facts: CustomerFacts, segments: list[str], fw_min: int) -> pd.DataFrame:
    """Sums per segment value, for ``all`` and each segment column: one row per (segment, segment_value).

    ``base`` is one row per customer with the segment columns (:func:`~engagement.measure.segments.segment_columns`)
    and the flags (:attr:`CustomerFacts.flags`). Every quantity is additive, so the engine sums each source's
    facts once per *cell* (each combination of segment values, a few hundred rows however many customers), over
    only the customers that source has, and the cells are rolled up to each segment's values. This equals a
    GROUP BY over a long (customer, segment) table at a fraction of its cost, and joining every source to every
    customer before summing (a chain of left joins carrying all the facts of a million customers) took 8-9 s of
    a quarter's 18 s at a million customers, against about 5 s this way.

    With several periods (``facts.key`` is ``["__p"]``) each period's cells are its own. The rows carry the
    period's index ``__p`` (0 for one period), as :func:`ticket_medians`, :func:`social_totals` and
    :func:`spend_by_channel` do.
    """
    pk, seg = facts.key, _segment_keys(segments)
    keys = [*pk, *seg]
    fb, did = base, None
    if facts.active is not None and pk:  # whether the customer did anything in that period
        act = facts.active.mutate(__act=ibis.literal(1, "int64"))
        fb = base.left_join(act, ["customer_id", *pk])
        fb = fb.select(*[base[c] for c in base.columns], __act=act.__act)
        did = fb.__act.notnull()
    elif facts.active is not None:
        did = base.customer_id.isin(facts.active.customer_id)
    flags = {c: _flag(fb, c).sum() for c in FLAGS}
    if did is not None:
        # customers present all period from its start who did anything: new customers' shorter exposure would
        # bias the rate
        flags["engaged"] = _i((_flag(fb, "at_start") == 1) & did).sum()
    queries = [(fb.group_by(keys) if keys else fb).aggregate(customers=fb.count(), **flags)]
    for name, part in facts.parts.items():
        j = base.join(part, [k for k in ("customer_id", *pk) if k in part.columns])  # referrals have no period
        queries.append((j.group_by(keys) if keys else j).aggregate(**_source_sums(name, j, part, fw_min, pk)))
    # each source's sums on their own: one query joining every source's cells took Ibis longer to compile than
    # the parts to run (0.33-0.48 s against 0.15 s on the demo data), for every measured period
    frames = []
    for q in queries:
        sums = [n for n in q.columns if n not in keys]
        if not seg:  # no segments: one cell, all customers, already summed (over no rows: nulls, that is 0)
            integers = {n: "int64" for n in sums if q.schema()[n].is_integer()}
            got = q.to_pandas().fillna(0).astype(integers).assign(segment="all", segment_value="all")
            frames.append(got.set_index([*pk, "segment", "segment_value"]))
        elif all(q.schema()[n].is_integer() for n in sums):  # integers add up exactly anywhere: here, unrolled
            frames.append(_rolled_up(q.to_pandas(), seg, segments, sums, pk))
        else:  # float sums roll up in the engine, exactly (decimal)
            x, by = _each_segment(q, segments)
            got = x.group_by(**{k: x[k] for k in pk}, **by).aggregate(**{n: _xsum(x[n]) for n in sums}).to_pandas()
            frames.append(got.set_index([*pk, "segment", "segment_value"]))
    # the first (the flags) has every segment value; a value with no customer in a source sums to 0 there
    out = pd.concat(frames, axis=1, join="outer")
    kinds = {c: kind for f in frames for c, kind in f.dtypes.items()}
    if pk:  # a period with no customer yet: its all row, of zeros, as one period alone has
        every = pd.MultiIndex.from_tuples([(p, "all", "all") for p in range(facts.periods)], names=out.index.names)
        out = out.reindex(out.index.union(every))
    out = out.fillna(0).astype(kinds)
    if facts.active is None:
        out["engaged"] = 0
    out = out.sort_index().reset_index()
    return out if pk else out.assign(__p=0)


def _rolled_up(cells: pd.DataFrame, keys: list[str], segments: list[str], sums: list[str],
               by: list[str] | None = None) -> pd.DataFrame:
    """Integer sums of cells rolled up to ``all`` and each segment's values, in pandas (indexed by segment and
    value): the cells are a few hundred rows, and the engine's roll-up cost a compilation per source for every
    measured period. ``by``: ``["__p"]``, each period's cells on their own (indexed by it first)."""
    if by:
        parts = {p: _rolled_up(g, keys, segments, sums) for p, g in cells.groupby(by[0], sort=True)}
        if not parts:  # no period has any: no rows (the flags' frame gives each period its all row)
            index = pd.MultiIndex.from_tuples([], names=[*by, "segment", "segment_value"])
            return pd.DataFrame(np.zeros((0, len(sums)), dtype="int64"), index=index, columns=sums)
        return pd.concat(parts, names=by)
    values = cells[sums].fillna(0).to_numpy(dtype="int64")  # a cell with nothing to add sums to 0
    labels, rows = [("all", "all")], [values.sum(axis=0)]
    for key, segment in zip(keys, segments, strict=False):  # no segments: keys is the one cell's label
        codes, uniques = pd.factorize(cells[key], sort=True)
        totals = np.zeros((len(uniques), len(sums)), dtype="int64")
        np.add.at(totals, codes, values)
        labels += [(segment, u) for u in uniques]
        rows += list(totals)
    index = pd.MultiIndex.from_tuples(labels, names=["segment", "segment_value"])
    return pd.DataFrame(np.array(rows).reshape(len(labels), len(sums)), index=index, columns=sums)


def _source_sums(name: str, j: ir.Table, part: ir.Table, fw_min: int, key: list[str]) -> dict[str, Any]:
    """The sums of one source's facts per cell (``j``: the customers with that source's facts, and their flags),
    with the moments that need more than one of its columns or a flag."""
    if name == "first_week":
        eligible = (_flag(j, "new") == 1) & (j.fw_complete == 1)
        return {"fw_n": _i(eligible).sum(), "fw_engaged": _i(eligible & (j.fw_days >= fw_min)).sum(),
                "fw_days_sum": ibis.ifelse(eligible, j.fw_days, 0).sum()}
    # a column named __... is read elsewhere, not summed (the orders' spend of the year before: the value tier)
    aggs: dict[str, Any] = {c: _xsum(j[c]) for c in part.columns
                            if c not in ("customer_id", *key) and not c.startswith("__")}
    if name == "orders":
        aggs["buyers"] = _i(j.n_orders > 0).sum()
        # customer-level moments of orders and revenue: AOV's interval clusters the orders in their customers
        aggs["cust_rev_sq"] = _xsum(j.revenue * j.revenue)
        aggs["cust_orders_sq"] = _xsum(j.n_orders * j.n_orders)
        aggs["cust_orders_rev"] = _xsum(j.n_orders * j.revenue)
    elif name == "surveys":
        # one respondent's answers are alike: the moments of the NPS and CSAT shares' design effects
        net, n_nps = j.nps_pro - j.nps_det, j.nps_pro + j.nps_pas + j.nps_det
        aggs.update(nps_people=_i(n_nps > 0).sum(), nps_z_sq=(net * net).sum(), nps_n_sq=(n_nps * n_nps).sum(),
                    nps_n_z=(n_nps * net).sum(), csat_t_sq=(j.csat_top2 * j.csat_top2).sum(),
                    csat_n_t=(j.csat_n * j.csat_top2).sum())
        for q in ("csat", "ces"):
            # one customer's answers are alike: the mean score's interval clusters them in their customer
            n_q, sum_q = j[f"{q}_n"], j[f"{q}_sum"]
            aggs[f"{q}_people"] = _i(n_q > 0).sum()
            aggs[f"{q}_cust_sq"] = _xsum(sum_q * sum_q)
            aggs[f"{q}_n_sq"] = (n_q * n_q).sum()
            aggs[f"{q}_n_sum"] = _xsum(n_q * sum_q)
    elif name == "email":
        # a customer's emails are alike (some open everything, others nothing): the rates' design effects need
        # each customer's moments
        d_, o_, c_, u_ = j.delivered, j.opened, j.clicked, j.unsubscribed
        aggs.update(em_people=_i(d_ > 0).sum(), em_openers=_i(o_ > 0).sum(), em_dd=(d_ * d_).sum(),
                    em_oo=(o_ * o_).sum(), em_cc=(c_ * c_).sum(), em_uu=(u_ * u_).sum(), em_do=(d_ * o_).sum(),
                    em_dc=(d_ * c_).sum(), em_oc=(o_ * c_).sum(), em_du=(d_ * u_).sum())
    elif name == "events":
        aggs["users_at_start"] = _i((j.n_events > 0) & (_flag(j, "at_start") == 1)).sum()
    elif name == "referred":
        aggs["referred_new"] = _i((j.referred > 0) & (_flag(j, "new") == 1)).sum()
    return aggs


def _segment_keys(segments: list[str]) -> list[str]:
    """The segment columns of :func:`~engagement.measure.segments.segment_columns`, in the order of ``segments``."""
    return [f"__seg{i}" for i in range(len(segments))]


def _each_segment(cells: ir.Table, segments: list[str]) -> tuple[ir.Table, dict[str, ir.Value]]:
    """Each cell (a row per combination of the segment columns ``__seg0, __seg1, ...``) once for ``all`` and once
    per segment, and the ``segment, segment_value`` to group it by: grouped, the cells roll up to every segment's
    values in one query. A union of one GROUP BY per segment says the same with every sum written out once per
    segment: Ibis took longer to compile it than DuckDB to run it."""
    keys = _segment_keys(segments)
    which = ibis.memtable(pd.DataFrame({"segment": ["all", *segments], "__k": np.arange(len(segments) + 1)}))
    x = cells.cross_join(which)
    value = ibis.cases(*[(x.__k == i + 1, x[key]) for i, key in enumerate(keys)], else_=ibis.literal("all")) \
        if keys else ibis.literal("all")
    return x, {"segment": x.segment, "segment_value": value}


def ticket_medians(ds: Dataset, period: Period | Periods, wide: ir.Table, segments: list[str],
                    confidence: float) -> pd.DataFrame:
    """Median and its order-statistic interval of response and resolution times, per segment, with the counts,
    total and clustered moments of :func:`_ticket_sums`; the period's index in column ``__p`` (0 for one)."""
    P = _as_periods(period)
    t = P.within(ds["support_tickets"], "opened_at", "__s", "__e")
    base = t.select(
        "customer_id", *P.key,
        first_response_time=_f(t.first_response_at.epoch_seconds() - t.opened_at.epoch_seconds()),
        resolution_time=_f(t.resolved_at.epoch_seconds() - t.opened_at.epoch_seconds()),
    )
    # the period's tickets: small, read once per segment and bound
    j = wide.join(base, ["customer_id", *P.key]).cache()
    group = [*P.key, "segment", "segment_value", "metric"]
    stats_ = _ticket_sums(j, segments, P.key)
    out = stats_.assign(median=np.nan, lo=np.nan, hi=np.nan)
    # the ranks to pick from each group's sorted values: the median's one or two middle values and, when there
    # are enough values for it at this confidence, the interval's two order statistics
    rows = []
    for r in stats_.to_dict("records"):
        g, n = tuple(r[c] for c in group), int(r["n"])
        if n:
            rows += [(*g, "m1", (n + 1) // 2), (*g, "m2", n // 2 + 1)]
        lo, hi = median_rank_bounds(n, confidence)
        if lo >= 1:  # (0, 0): too few values for an interval at this confidence, which stays NaN
            rows += [(*g, "lo", lo), (*g, "hi", hi)]
    if rows:
        labels = [(ibis.literal("all"), ibis.literal("all"))]
        labels += [(ibis.literal(col), j[key]) for col, key in zip(segments, _segment_keys(segments), strict=True)]
        answered = ibis.union(*[
            j.filter(j[metric].notnull()).select(*P.key, segment=seg, segment_value=value,
                                                 metric=ibis.literal(metric), v=j[metric])
            for seg, value in labels for metric in ("first_response_time", "resolution_time")
        ])
        wanted = ibis.memtable(pd.DataFrame(rows, columns=[*group, "bound", "rank"]))
        # each group's values sorted into one array, and the ranks picked from it: a third of the time of a
        # ROW_NUMBER over the union of every segment's copy of the tickets (only the picks leave the engine)
        ordered = answered.group_by(group).aggregate(values=answered.v.collect().sort())
        index = (wanted["rank"] - 1).cast("int32")  # 0-based; Spark's element_at takes an INT
        picked = ordered.join(wanted, group).select(*group, "bound", v=ordered["values"][index]).to_pandas()
        picks = picked.pivot_table(index=group, columns="bound", values="v", aggfunc="first")
        picks = picks.reindex(columns=["m1", "m2", "lo", "hi"]).reset_index()
        # the middle value, or the mean of the two middle values (as the engines' median: (a + b) / 2)
        picks["median"] = (picks["m1"] + picks["m2"]) / 2
        out = stats_.merge(picks[[*group, "median", "lo", "hi"]], on=group, how="left")
    j.release()
    return out if P.key else out.assign(__p=0)


def _ticket_sums(tickets: ir.Table, segments: list[str], pk: list[str]) -> pd.DataFrame:
    """Per segment value and metric (both times): tickets answered ``n`` and not yet ``n_missing``, the
    ``total`` time, and the moments of the customers' totals for the mean time's interval.

    A customer's tickets are alike (one slow account, one hard product), so the mean's interval clusters them:
    ``clusters`` customers with an answered ticket, and the sums over them of ``y^2``, ``x^2`` and ``x*y``
    (``y`` a customer's total time, ``x`` their answered tickets); NaN where nobody has one. A customer is in
    one value of every segment, so all of these are summed per cell of segment values and rolled up, exactly
    (decimal sums): a group-by of each segment's copy of the tickets took 0.9 s of the 1.9 s of the support
    times at a million customers, and a median over them another 0.3 s. Rows: the segment values with tickets
    (none in a period without any); ``pk``: ``["__p"]``, each period's on its own.
    """
    keys = [*pk, *_segment_keys(segments)]
    metrics = {"first_response_time": "f", "resolution_time": "r"}
    # totals, and sums of products, as decimals: sums of sums stay exact until the last cast
    per = tickets.group_by(["customer_id", *keys]).aggregate(**{
        name: agg for m, k in metrics.items()
        for name, agg in ((f"y_{k}", _xsum(tickets[m])), (f"t_{k}", tickets[m].cast(EXACT).sum()),
                          (f"x_{k}", tickets[m].count()), (f"m_{k}", _i(tickets[m].isnull()).sum()))})
    cells = (per.group_by(keys) if keys else per).aggregate(**{
        name: agg for k in metrics.values()
        for name, agg in ((f"n_{k}", per[f"x_{k}"].sum()), (f"n_missing_{k}", per[f"m_{k}"].sum()),
                          (f"total_{k}", per[f"t_{k}"].sum()),
                          (f"clusters_{k}", _i(per[f"x_{k}"] > 0).sum()),
                          (f"c_yy_{k}", (per[f"y_{k}"] * per[f"y_{k}"]).cast(EXACT).sum()),
                          (f"c_xx_{k}", (per[f"x_{k}"] * per[f"x_{k}"]).sum()),
                          (f"c_xy_{k}", (per[f"x_{k}"] * per[f"y_{k}"]).cast(EXACT).sum()))})
    x, by = _each_segment(cells, segments)
    exact_sums = ("total", "c_yy", "c_xy")
    wide = x.group_by(**{k: x[k] for k in pk}, **by).aggregate(**{
        c: (x[c].sum().cast("float64") if c.startswith(exact_sums) else x[c].sum())
        for c in cells.columns if c not in keys}).to_pandas()
    columns = ("n", "n_missing", "total", "clusters", "c_yy", "c_xx", "c_xy")
    long = pd.concat([
        wide[[*pk, "segment", "segment_value"]].assign(metric=m, **{c: wide[f"{c}_{k}"] for c in columns})
        for m, k in metrics.items()], ignore_index=True)
    # without segments the sums are one aggregate, which over no tickets is one row of nulls: no segment value
    # with tickets, like a group-by over none
    long = long[long["n"].notna()].reset_index(drop=True)
    nobody = long["clusters"] == 0  # no answered ticket: no clusters to speak of
    if nobody.any():
        moments = ["clusters", "c_yy", "c_xx", "c_xy"]
        long[moments] = long[moments].astype("float64").mask(nobody, np.nan)
    return long


def social_totals(ds: Dataset, period: Period | Periods) -> pd.DataFrame:
    """Per platform and for ``all``: posts ``n``, the sums and cross-products of engagements ``y`` and reach ``x``,
    and followers at the first (``f0``) and last (``f1``) post of the period.

    Columns ``__p`` (the period's index, 0 for one), ``segment, segment_value, n, sy, sx, syy, sxx, sxy, f0, f1``;
    a platform without posts in the period has no row, and without any post ``all`` has n = 0 (and no followers).
    """
    P = _as_periods(period)
    p = P.within(ds["social_posts"], "posted_at", "__s", "__e")
    eng = _f(p.likes + p.comments + p.shares)
    reach = _f(p.reach)
    per_platform = p.group_by([*P.key, "platform"]).aggregate(
        n=p.count(), sy=eng.sum(), sx=reach.sum(), syy=(eng * eng).sum(), sxx=(reach * reach).sum(),
        sxy=(eng * reach).sum(), f0=p.followers.argmin(p.posted_at), f1=p.followers.argmax(p.posted_at),
    ).order_by([*P.key, "platform"]).to_pandas()
    if not P.key:
        per_platform["__p"] = 0
    cols = ["n", "sy", "sx", "syy", "sxx", "sxy", "f0", "f1"]
    out = per_platform.rename(columns={"platform": "segment_value"}).assign(segment="platform")
    total = per_platform.groupby("__p")[cols].sum().reindex(range(len(P)))  # a period without posts: NaN
    total[cols[:6]] = total[cols[:6]].fillna(0)
    total = total.astype({"n": "int64"}).rename_axis("__p").reset_index().assign(segment="all", segment_value="all")
    return pd.concat([out, total], ignore_index=True)[["__p", "segment", "segment_value", *cols]]


def spend_by_channel(ds: Dataset, period: Period | Periods) -> pd.DataFrame:
    """Marketing spend per channel (and its impressions and clicks where both are known); the period's index in
    column ``__p`` (0 for one)."""
    P = _as_periods(period)
    m = P.within(ds["marketing_spend"], "period_start", "__s_day", "__e_day")
    aggs: dict[str, Any] = {"spend": m.spend.sum()}
    if "impressions" in m.columns and "clicks" in m.columns:
        both = m.impressions.notnull() & m.clicks.notnull()
        aggs["impressions"] = ibis.ifelse(both, m.impressions, 0).sum()
        aggs["clicks"] = ibis.ifelse(both, m.clicks, 0).sum()
    out = m.group_by([*P.key, "channel"]).aggregate(**aggs).order_by([*P.key, "channel"]).to_pandas()
    return out if P.key else out.assign(__p=0)
