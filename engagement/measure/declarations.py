"""One declaration per measured metric: what it needs, what kind of figure it is, how it comes from the sums.

A :class:`Measured` declaration says, for one metric id of the measure table:

* ``needs``: the contract tables beyond ``customers`` it reads, and optional
  columns as ``table.column`` (absent: the metric is ``unavailable`` with that
  reason); ``needs_any``: at least one of these tables;
* ``kind``: what sort of figure it is (:data:`KINDS`), which decides its interval,
  the test that compares two of them (:func:`engagement.analysis.difference_test`)
  and whether segment values can be pooled (:func:`engagement.analysis.segment_tests`);
  ``sampled`` follows from it;
* ``unit`` and ``level``: where the figure is computed (``segment``: from each
  segment value's summed customer facts; ``channel``: marketing spend per
  acquisition channel; ``ticket``: support tickets; ``platform``: social posts);
* ``sums`` and ``compute``: for segment-level metrics, the facts it sums
  (columns of :func:`engagement.measure.facts.segment_sums`) and the function that
  turns them into a :class:`~engagement.MetricResult` with the public metric
  functions of :mod:`engagement.metrics`.

``measure``, the unavailability reasons, the choice of test and the catalogue's
list of measured metrics all follow from :data:`DECLARATIONS`. Adding a metric
that is computed from existing facts is two edits: its declaration here and its
entry in :mod:`engagement.catalog` (a test checks that they agree).

Examples
--------
>>> from engagement.measure.declarations import DECLARATIONS
>>> d = DECLARATIONS["aov"]
>>> d.kind, d.sampled, d.needs, d.unit
('clustered_mean', True, ('orders',), 'currency')
>>> DECLARATIONS["stickiness"].sampled
False
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engagement import metrics as M
from engagement._result import MetricResult
from engagement.data.schema import SURVEY_SCALES
from engagement.intervals import (
    NAN,
    NONNEGATIVE,
    clustered_share_result,
    design_effect,
    proportion_result,
    ratio_from_moments,
)
from engagement.measure.facts import calendar_weeks
from engagement.measure.periods import Period

__all__ = ["KINDS", "SAMPLED_KINDS", "Measured", "Sums", "DECLARATIONS", "declaration", "unavailable_reason"]

#: What kind of figure a metric is, and what follows from it.
KINDS: dict[str, str] = {
    "proportion": "a share of counted units: Wilson interval; two-proportion z-test",
    "net_score": "a difference of two shares of one trinomial (NPS): adjusted-Wald interval; z-test, its variance",
    "mean": "a mean of independent units: t interval; Welch's t-test",
    "clustered_mean": "a mean over units clustered in customers or visitors: ratio estimator over the clusters; z-test",
    "median": "a median: order-statistic interval; z-test with the standard error it implies (approximate)",
    "ratio": "a ratio of two sums over units (ratio estimator): delta-method interval; z-test",
    "count": "a count of the period's population: no sampling error, no test",
    "population_figure": "a total, or a ratio of population totals: no sampling error, no test",
}
#: kinds that are sample estimates: they have a standard error and can be tested
SAMPLED_KINDS = frozenset({"proportion", "net_score", "mean", "clustered_mean", "median", "ratio"})
LEVELS = ("segment", "channel", "ticket", "platform")


class Sums:
    """One segment value's summed facts, as ``s("revenue")`` (0 where absent), with the options of the run."""

    def __init__(self, row: Mapping[str, Any], *, confidence: float, period: Period | None = None,
                 first_week_min_days: int = 2, inactivity_days: int = 365):
        self.row = row
        self.confidence = confidence
        self.period = period
        self.first_week_min_days = first_week_min_days
        self.inactivity_days = inactivity_days

    def __call__(self, key: str) -> Any:
        v = self.row.get(key, 0)
        return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else v

    def has(self, key: str) -> bool:
        """Whether the fact was computed (its table exists) for this run."""
        return key in self.row


@dataclass(frozen=True)
class Measured:
    """The declaration of one measured metric (see the module docstring)."""

    id: str
    kind: str
    unit: str
    needs: tuple[str, ...] = ()
    level: str = "segment"
    needs_any: tuple[str, ...] = ()
    #: ``table.column`` whose presence rules the metric out (inactivity churn where cancellations define churn)
    unless: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()
    compute: Callable[[Sums], MetricResult] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind {self.kind!r} is not one of {sorted(KINDS)}.")
        if self.level not in LEVELS:
            raise ValueError(f"{self.id}: level {self.level!r} is not one of {list(LEVELS)}.")
        if (self.level == "segment") != (self.compute is not None):
            raise ValueError(f"{self.id}: segment-level metrics, and only they, declare `compute`.")

    @property
    def sampled(self) -> bool:
        """Whether the figure is a sample estimate with a standard error (else a population figure)."""
        return self.kind in SAMPLED_KINDS


def _clustered(res: MetricResult, s: Sums, clusters: str, yy: str, xx: str, xy: str, *,
               of: str = "customer") -> MetricResult:
    """A share whose items cluster in ``of``, at its effective sample size (clustered_share_result)."""
    return clustered_share_result(res, s(clusters), s(yy), s(xx), s(xy), of=of)


def _nps(s: Sums) -> MetricResult:
    """NPS with its interval at the effective sample size: a customer's answers to several surveys are alike."""
    pro, pas, det = int(s("nps_pro")), int(s("nps_pas")), int(s("nps_det"))
    n = pro + pas + det
    p, d = (pro / n, det / n) if n else (0.0, 0.0)
    deff = design_effect(s("nps_people"), pro - det, n, s("nps_z_sq"), s("nps_n_sq"), s("nps_n_z"),
                         p + d - (p - d) ** 2)
    return M.nps_from_counts(pro, pas, det, confidence=s.confidence, design_effect=deff)


def _method(res: MetricResult, method: str) -> MetricResult:
    return dataclasses.replace(res, method=method)


def _count(metric: str, value: int, method: str) -> MetricResult:
    return MetricResult(metric=metric, value=float(value), ci_low=NAN, ci_high=NAN, n=int(value), method=method,
                        unit="count")


def _figure(metric: str, value: float, method: str, unit: str, n: int) -> MetricResult:
    return MetricResult(metric=metric, value=float(value), ci_low=NAN, ci_high=NAN, n=int(n), method=method,
                        unit=unit)


def _nan(metric: str, unit: str, why: str = "empty population") -> MetricResult:
    return MetricResult(metric=metric, value=NAN, ci_low=NAN, ci_high=NAN, n=0, method=why, unit=unit)


def _share(metric: str, k: int, n: int, s: Sums, note: str) -> MetricResult:
    return proportion_result(metric, k, n, successes_name="successes", trials_name="trials",
                             confidence=s.confidence, method_note=note)


# --- subscription ------------------------------------------------------------------------------


def _retention(s: Sums) -> MetricResult:
    at_start, new = int(s("at_start")), int(s("new"))
    res = M.retention_rate(None, None, at_start, retained=int(s("retained")), confidence=s.confidence)
    ena = (s("at_end") - new) / at_start if at_start else NAN
    return dataclasses.replace(res, details={"ena_value": ena, "new_lost_in_period": int(s("new_lost"))})


def clv_from_sums(s: Sums) -> MetricResult:
    """Simple CLV of a segment: AOV x orders per active customer per period x 1/churn periods x margin."""
    at_start, lost, n_orders, active = int(s("at_start")), int(s("lost")), int(s("n_orders")), int(s("active"))
    if not (at_start and lost and n_orders and active):
        return _nan("clv", "currency", "needs orders, customers at start and churned customers in the period")
    aov = s("revenue") / n_orders
    margin = 1.0 - s("cost") / s("revenue") if s("n_cost") == n_orders and s("revenue") > 0 else 1.0
    return M.clv_from_churn(aov, n_orders / active, lost / at_start, min(max(margin, 0.0), 1.0))


# --- product events ------------------------------------------------------------------------------


def _period(s: Sums) -> Period:
    if s.period is None:
        raise ValueError("This metric needs the period its sums cover.")
    return s.period


def _days(s: Sums) -> int:
    return max(_period(s).days, 1)


def _dau(s: Sums) -> float:
    return s("active_days") / _days(s)


def _mau(s: Sums) -> float:
    return s("active_months") / max(len(_period(s).months()), 1)


def _stickiness(s: Sums) -> MetricResult:
    dau, mau = _dau(s), _mau(s)
    return MetricResult(metric="stickiness", value=dau / mau if mau else NAN, ci_low=NAN, ci_high=NAN,
                        n=int(round(mau)), method="mean DAU / mean calendar-month MAU", numerator=dau,
                        denominator=mau, unit="fraction")


def _wau(s: Sums) -> MetricResult:
    weeks = max(len(calendar_weeks(_period(s))), 1)
    return _figure("wau", s("active_weeks") / weeks,
                   "mean weekly active customers over the calendar weeks (Monday start) touching the period",
                   "count", weeks)


def _first_week(s: Sums) -> MetricResult:
    if not s.has("fw_n"):
        return _nan("first_week_engagement", "fraction")
    return _share("first_week_engagement", int(s("fw_engaged")), int(s("fw_n")), s,
                  f"new customers active on >= {s.first_week_min_days} of days 0-6 (complete weeks only)")


def _d(id: str, kind: str, unit: str, needs: tuple[str, ...], sums: tuple[str, ...],
       compute: Callable[[Sums], MetricResult]) -> Measured:
    return Measured(id=id, kind=kind, unit=unit, needs=needs, sums=sums, compute=compute)


_ORDERS, _SURVEYS, _EVENTS, _WEB, _EMAIL = ("orders",), ("survey_responses",), ("events",), ("pageviews",), \
    ("email_events",)
#: subscription churn needs the cancellations; without them the business is non-contractual
_CANCELLED = ("customers.cancelled_at",)


def _inactivity_churn(s: Sums) -> MetricResult:
    days = s.inactivity_days
    return _share("inactivity_churn_rate", int(s("inact_lost")), int(s("inact_at_start")), s,
                  f"customers who ordered in the {days} days before the period and not in the {days} days before "
                  "its end / customers who ordered in the days before it")

_LIST: list[Measured] = [
    # subscription (customers only)
    _d("churn_rate", "proportion", "fraction", _CANCELLED, ("lost", "at_start"),
       lambda s: M.churn_rate(int(s("lost")), int(s("at_start")), confidence=s.confidence)),
    _d("retention_rate", "proportion", "fraction", _CANCELLED, ("retained", "at_start", "at_end", "new", "new_lost"),
       _retention),
    _d("new_customers", "count", "count", (), ("new",),
       lambda s: _count("new_customers", int(s("new")), "customers who signed up in the period")),
    _d("active_customers", "count", "count", (), ("active",),
       lambda s: _count("active_customers", int(s("active")), "customers subscribed at some point in the period")),
    # orders
    _d("orders", "count", "count", _ORDERS, ("n_orders",),
       lambda s: _count("orders", int(s("n_orders")), "orders placed in the period")),
    _d("revenue", "population_figure", "currency", _ORDERS, ("revenue", "n_orders"),
       lambda s: _figure("revenue", float(s("revenue")), "sum of order revenue", "currency", int(s("n_orders")))),
    # orders cluster in customers (a big spender places many big orders): the ratio estimator over customers
    _d("aov", "clustered_mean", "currency", _ORDERS,
       ("revenue", "n_orders", "buyers", "cust_rev_sq", "cust_orders_sq", "cust_orders_rev"),
       lambda s: ratio_from_moments("aov", int(s("buyers")), s("revenue"), s("n_orders"), s("cust_rev_sq"),
                                    s("cust_orders_sq"), s("cust_orders_rev"), confidence=s.confidence,
                                    unit="currency", method="mean revenue per order, clustered by customer",
                                    bounds=NONNEGATIVE)),
    _d("purchase_frequency", "population_figure", "ratio", _ORDERS, ("n_orders", "active"),
       lambda s: M.purchase_frequency(int(s("n_orders")), int(s("active"))) if s("active")
       else _nan("purchase_frequency", "ratio")),
    Measured("inactivity_churn_rate", "proportion", "fraction", needs=_ORDERS, sums=("inact_lost", "inact_at_start"),
             compute=_inactivity_churn, unless=_CANCELLED),
    _d("clv", "population_figure", "currency", _ORDERS + _CANCELLED,
       ("at_start", "lost", "n_orders", "active", "revenue", "cost", "n_cost"), clv_from_sums),
    # surveys
    # shares of answers, emails and sessions whose items cluster (one customer's answers, emails, sessions are
    # alike): the interval at the effective sample size, items / design effect (clustered_share_result)
    _d("nps", "net_score", "points", _SURVEYS, ("nps_pro", "nps_pas", "nps_det", "nps_people", "nps_z_sq",
                                                "nps_n_sq", "nps_n_z"), _nps),
    _d("csat", "proportion", "fraction", _SURVEYS, ("csat_top2", "csat_n", "csat_people", "csat_t_sq", "csat_n_sq",
                                                    "csat_n_t"),
       lambda s: _clustered(_share("csat", int(s("csat_top2")), int(s("csat_n")), s,
                                   "share answering 4-5 on 1-5 (top2box)"), s, "csat_people", "csat_t_sq",
                            "csat_n_sq", "csat_n_t")),
    # a customer's answers cluster in the customer: the ratio estimator over respondents
    _d("csat_mean", "clustered_mean", "score", _SURVEYS,
       ("csat_people", "csat_sum", "csat_n", "csat_cust_sq", "csat_n_sq", "csat_n_sum"),
       lambda s: ratio_from_moments("csat_mean", int(s("csat_people")), s("csat_sum"), s("csat_n"),
                                    s("csat_cust_sq"), s("csat_n_sq"), s("csat_n_sum"), confidence=s.confidence,
                                    unit="score", method="mean rating on 1-5, clustered by customer",
                                    bounds=SURVEY_SCALES["csat"])),
    _d("ces", "clustered_mean", "score", _SURVEYS,
       ("ces_people", "ces_sum", "ces_n", "ces_cust_sq", "ces_n_sq", "ces_n_sum"),
       lambda s: ratio_from_moments("ces", int(s("ces_people")), s("ces_sum"), s("ces_n"), s("ces_cust_sq"),
                                    s("ces_n_sq"), s("ces_n_sum"), confidence=s.confidence, unit="score",
                                    method="mean answer on 1-7 (higher is easier), clustered by customer",
                                    bounds=SURVEY_SCALES["ces"])),
    # product events
    _d("dau", "population_figure", "count", _EVENTS, ("active_days",),
       lambda s: _figure("dau", _dau(s), "mean daily active customers over the period's days", "count", _days(s))),
    _d("wau", "population_figure", "count", _EVENTS, ("active_weeks",), _wau),
    _d("mau", "population_figure", "count", _EVENTS, ("active_months",),
       lambda s: _figure("mau", _mau(s), "mean monthly active customers over the period's calendar months", "count",
                         max(len(_period(s).months()), 1))),
    _d("stickiness", "population_figure", "fraction", _EVENTS, ("active_days", "active_months"), _stickiness),
    _d("product_usage_rate", "proportion", "fraction", _EVENTS, ("users_at_start", "at_start"),
       lambda s: M.product_usage_rate(int(s("users_at_start")), int(s("at_start")), confidence=s.confidence)
       if s("at_start") else _nan("product_usage_rate", "fraction")),
    _d("first_week_engagement", "proportion", "fraction", _EVENTS, ("fw_engaged", "fw_n"), _first_week),
    # any channel: customers present all period who did anything (see segment_sums)
    Measured("engagement_rate", "proportion", "fraction", sums=("engaged", "at_start"),
             needs_any=("events", "orders", "email_events", "survey_responses", "pageviews"),
             compute=lambda s: M.engagement_rate(int(s("engaged")), int(s("at_start")), confidence=s.confidence)
             if s("at_start") else _nan("engagement_rate", "fraction")),
    # web sessions (anonymous sessions count in "all" only)
    _d("website_visits", "count", "count", _WEB, ("n_sessions",),
       lambda s: _count("website_visits", int(s("n_sessions")), "sessions (30-minute inactivity timeout)")),
    _d("page_views", "count", "count", _WEB, ("n_pageviews",),
       lambda s: _count("page_views", int(s("n_pageviews")), "pageviews")),
    # sessions cluster in visitors (a reader reads many pages every visit): the ratio estimator over visitors
    _d("pages_per_session", "clustered_mean", "ratio", _WEB,
       ("web_clusters", "n_pageviews", "n_sessions", "web_pv_sq", "web_s_sq", "web_s_pv"),
       lambda s: ratio_from_moments("pages_per_session", int(s("web_clusters")), s("n_pageviews"), s("n_sessions"),
                                    s("web_pv_sq"), s("web_s_sq"), s("web_s_pv"), confidence=s.confidence,
                                    unit="ratio", method="mean pageviews per session, clustered by visitor",
                                    bounds=(1, math.inf))),
    _d("bounce_rate", "proportion", "fraction", _WEB, ("bounces", "n_sessions", "web_clusters", "web_b_sq",
                                                       "web_s_sq", "web_s_b"),
       lambda s: _clustered(_method(M.bounce_rate(int(s("bounces")), int(s("n_sessions")), confidence=s.confidence),
                                    "single-page sessions / sessions, Wilson interval"), s, "web_clusters",
                            "web_b_sq", "web_s_sq", "web_s_b", of="visitor")),
    _d("average_session_duration", "clustered_mean", "seconds", _WEB,
       ("web_clusters", "dur_sum", "n_sessions", "web_dur_sq", "web_s_sq", "web_s_dur"),
       lambda s: ratio_from_moments("average_session_duration", int(s("web_clusters")), s("dur_sum"),
                                    s("n_sessions"), s("web_dur_sq"), s("web_s_sq"), s("web_s_dur"),
                                    confidence=s.confidence, unit="seconds",
                                    method="mean first-to-last view time per session, clustered by visitor",
                                    bounds=NONNEGATIVE)),
    _d("conversion_rate", "proportion", "fraction", _WEB, ("converting", "n_sessions", "web_clusters", "web_c_sq",
                                                           "web_s_sq", "web_s_c"),
       lambda s: _clustered(_method(M.conversion_rate(int(s("converting")), int(s("n_sessions")),
                                                      confidence=s.confidence),
                                    "sessions with a conversion / sessions, Wilson interval"), s, "web_clusters",
                            "web_c_sq", "web_s_sq", "web_s_c", of="visitor")),
    # email (unique per campaign and customer)
    _d("email_open_rate", "proportion", "fraction", _EMAIL, ("opened", "delivered", "em_people", "em_oo", "em_dd",
                                                              "em_do"),
       lambda s: _clustered(M.email_open_rate(int(s("opened")), int(s("delivered")), confidence=s.confidence), s,
                            "em_people", "em_oo", "em_dd", "em_do")),
    _d("email_click_rate", "proportion", "fraction", _EMAIL, ("clicked", "delivered", "em_people", "em_cc", "em_dd",
                                                               "em_dc"),
       lambda s: _clustered(M.email_click_rate(int(s("clicked")), int(s("delivered")), confidence=s.confidence), s,
                            "em_people", "em_cc", "em_dd", "em_dc")),
    _d("click_to_open_rate", "proportion", "fraction", _EMAIL, ("clicked", "opened", "em_openers", "em_cc", "em_oo",
                                                                 "em_oc"),
       lambda s: _clustered(M.click_to_open_rate(int(s("clicked")), int(s("opened")), confidence=s.confidence), s,
                            "em_openers", "em_cc", "em_oo", "em_oc")),
    _d("unsubscribe_rate", "proportion", "fraction", _EMAIL, ("unsubscribed", "delivered", "em_people", "em_uu",
                                                              "em_dd", "em_du"),
       lambda s: _clustered(M.unsubscribe_rate(min(int(s("unsubscribed")), int(s("delivered"))), int(s("delivered")),
                                               confidence=s.confidence), s, "em_people", "em_uu", "em_dd", "em_du")),
    # referrals
    _d("referral_rate", "proportion", "fraction", ("referrals",), ("referred_new", "new"),
       lambda s: _method(M.referral_rate(int(s("referred_new")), int(s("new")), confidence=s.confidence),
                         "referred new customers / new customers, Wilson interval")),
    # not additive customer facts: computed per channel, ticket and platform (engagement.measure.results)
    Measured("cac", "population_figure", "currency", ("marketing_spend",), level="channel"),
    Measured("clv_cac_ratio", "population_figure", "ratio", ("marketing_spend", "orders", *_CANCELLED), level="channel"),
    Measured("click_through_rate", "proportion", "fraction", ("marketing_spend",), level="channel"),
    Measured("first_response_time", "median", "seconds", ("support_tickets",), level="ticket"),
    Measured("first_response_time_mean", "clustered_mean", "seconds", ("support_tickets",), level="ticket"),
    Measured("resolution_time", "median", "seconds", ("support_tickets",), level="ticket"),
    Measured("resolution_time_mean", "clustered_mean", "seconds", ("support_tickets",), level="ticket"),
    Measured("social_engagement_rate", "ratio", "fraction", ("social_posts",), level="platform"),
    Measured("follower_growth_rate", "population_figure", "fraction", ("social_posts",), level="platform"),
]

#: Every metric the measure table can hold, by id, in a stable order.
DECLARATIONS: dict[str, Measured] = {d.id: d for d in _LIST}
if len(DECLARATIONS) != len(_LIST):  # pragma: no cover - a guard against a duplicated declaration
    raise RuntimeError("A metric is declared twice in engagement.measure.declarations.")


def declaration(metric: str) -> Measured:
    """The declaration of ``metric``, or a ValueError naming the declared ids."""
    try:
        return DECLARATIONS[metric]
    except KeyError:
        raise ValueError(f"{metric!r} is not a measured metric; declared: {sorted(DECLARATIONS)}.") from None


def unavailable_reason(d: Measured, available: Mapping[str, Iterable[str]] | Iterable[str]) -> str:
    """Why ``d`` cannot be measured ("" when it can).

    ``available`` maps each table the dataset has to its columns (or to the
    table itself, as ``Dataset.tables`` does); a plain collection of table names
    checks tables only (columns are then assumed).

    Examples
    --------
    >>> from engagement.measure.declarations import DECLARATIONS, unavailable_reason
    >>> unavailable_reason(DECLARATIONS["churn_rate"], {"customers": ["customer_id", "signup_at"]})
    'needs customers.cancelled_at: without cancellations the business is non-contractual (see inactivity churn)'
    """
    columns: dict[str, set[str] | None] = (
        {t: set(getattr(c, "columns", c)) for t, c in available.items()}  # columns, or Dataset.tables' tables
        if isinstance(available, Mapping) else {t: None for t in available})
    tables = set(columns)
    missing = [t for t in d.needs if "." not in t and t not in tables]
    if d.needs_any and not set(d.needs_any) & tables:
        return "the dataset has no activity table (" + ", ".join(d.needs_any[:-1]) + f" or {d.needs_any[-1]})"
    if missing:
        return "the dataset has no " + " and no ".join(missing) + " table" + ("s" if len(missing) > 1 else "")
    for rule in d.unless:
        table, column = rule.split(".", 1)
        have = columns.get(table)
        if have is None or column in have:
            return (f"a subscription business ({rule} is present): churn is measured from cancellations "
                    "(business_model='non_contractual' measures inactivity churn instead)")
    for need in (n for n in d.needs if "." in n):
        table, column = need.split(".", 1)
        have = columns.get(table)
        if table not in tables or (have is not None and column not in have):
            if need == "customers.cancelled_at":
                return ("needs customers.cancelled_at: without cancellations the business is non-contractual "
                        "(see inactivity churn)")
            return f"needs {need}"
    return ""
