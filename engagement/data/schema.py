"""The engagement data contract, declared as data.

One :class:`TableSpec` per source table: its columns (name, kind, required,
nullable), its unique key, the tables its ids must point into, and its row
rules. A row rule is an Ibis predicate that is true for a good row; the
validator evaluates all of a table's rules in one pass in the engine and
quarantines every row for which any rule is false, with the rule names as the
reason. Nothing here touches pandas or a particular backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

__all__ = ["Col", "Rule", "TableSpec", "CONTRACT", "SURVEY_SCALES", "EMAIL_EVENTS", "KINDS"]

KINDS = ("id", "str", "timestamp", "date", "float", "int", "bool")

#: Answer ranges of each survey type (inclusive).
SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
EMAIL_EVENTS = ("sent", "delivered", "open", "click", "unsubscribe", "bounce")


@dataclass(frozen=True)
class Col:
    """A contract column: ``kind`` is one of :data:`KINDS`."""

    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    description: str = ""


@dataclass(frozen=True)
class Rule:
    """A row rule: ``check(table)`` is an Ibis boolean, true for a good row (NULL counts as good)."""

    name: str
    column: str
    description: str
    check: Callable[[ir.Table], ir.BooleanValue]
    uses: tuple[str, ...] = ()  # every column the check reads; skipped when one is absent


@dataclass(frozen=True)
class TableSpec:
    """One source table of the contract."""

    name: str
    description: str
    columns: tuple[Col, ...]
    key: str | None = None
    references: tuple[tuple[str, str, str], ...] = ()  # (column, table, column)
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    segments: bool = False  # extra columns usable as segments

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Col | None:
        return next((c for c in self.columns if c.name == name), None)


def _ge(later: str, earlier: str) -> Callable[[ir.Table], ir.BooleanValue]:
    return lambda t: t[later] >= t[earlier]


def _nonneg(col: str) -> Callable[[ir.Table], ir.BooleanValue]:
    return lambda t: t[col] >= 0


def _score_in_scale(t: ir.Table) -> ir.BooleanValue:
    case = ibis.cases(
        *[((t.survey == s) & t.score.between(lo, hi), True) for s, (lo, hi) in SURVEY_SCALES.items()],
        else_=False,
    )
    return case & (t.score == t.score.floor())


CONTRACT: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "customers", "CRM: one row per customer; extra columns are attributes usable as segments.",
            (
                Col("customer_id", "id"),
                Col("signup_at", "timestamp", description="when the customer relationship started"),
                Col("plan", "str", required=False, nullable=True),
                Col("acquisition_channel", "str", required=False, nullable=True),
                Col("region", "str", required=False, nullable=True),
                Col("cancelled_at", "timestamp", required=False, nullable=True,
                    description="subscription end; empty while active"),
            ),
            key="customer_id",
            rules=(Rule("cancelled_before_signup", "cancelled_at", "cancelled_at is before signup_at",
                        _ge("cancelled_at", "signup_at"), ("cancelled_at", "signup_at")),),
            segments=True,
        ),
        TableSpec(
            "orders", "Orders (transactions): one row per order.",
            (
                Col("order_id", "id"),
                Col("customer_id", "id"),
                Col("ordered_at", "timestamp"),
                Col("revenue", "float", description="order revenue excluding tax, shipping and refunds"),
                Col("cost", "float", required=False, nullable=True),
            ),
            key="order_id",
            references=(("customer_id", "customers", "customer_id"),),
            rules=(Rule("negative_revenue", "revenue", "revenue is negative", _nonneg("revenue")),
                   Rule("negative_cost", "cost", "cost is negative", _nonneg("cost"))),
        ),
        TableSpec(
            "events", "Product or app usage events: one row per event.",
            (
                Col("customer_id", "id"),
                Col("occurred_at", "timestamp"),
                Col("event", "str"),
                Col("feature", "str", required=False, nullable=True),
            ),
            references=(("customer_id", "customers", "customer_id"),),
        ),
        TableSpec(
            "pageviews", "Web analytics: one row per pageview; customer_id empty for anonymous visitors.",
            (
                Col("visitor_id", "id"),
                Col("customer_id", "id", nullable=True, required=False),
                Col("viewed_at", "timestamp"),
                Col("page", "str"),
                Col("converted", "bool", required=False, nullable=True,
                    description="a conversion (key event) happened on this pageview"),
            ),
            references=(("customer_id", "customers", "customer_id"),),
        ),
        TableSpec(
            "survey_responses", "Survey answers: one row per answer (survey is nps, csat or ces).",
            (
                Col("customer_id", "id"),
                Col("responded_at", "timestamp"),
                Col("survey", "str"),
                Col("score", "float"),
                Col("touchpoint", "str", required=False, nullable=True),
            ),
            references=(("customer_id", "customers", "customer_id"),),
            rules=(Rule("score_outside_scale", "score",
                        "survey is not nps/csat/ces or the score is not a whole number on its scale "
                        "(nps 0-10, csat 1-5, ces 1-7)", _score_in_scale, ("score", "survey")),),
        ),
        TableSpec(
            "email_events", "Email events: sent, delivered, open, click, unsubscribe, bounce.",
            (
                Col("campaign_id", "id"),
                Col("customer_id", "id"),
                Col("occurred_at", "timestamp"),
                Col("event", "str"),
            ),
            references=(("customer_id", "customers", "customer_id"),),
            rules=(Rule("unknown_email_event", "event", f"event is not one of {', '.join(EMAIL_EVENTS)}",
                        lambda t: t.event.isin(EMAIL_EVENTS)),),
        ),
        TableSpec(
            "social_posts", "Social media posts with their counts at collection time.",
            (
                Col("post_id", "id"),
                Col("platform", "str"),
                Col("posted_at", "timestamp"),
                Col("impressions", "int"),
                Col("reach", "int"),
                Col("likes", "int"),
                Col("comments", "int"),
                Col("shares", "int"),
                Col("followers", "int", description="followers at post time"),
            ),
            key="post_id",
            rules=(
                Rule("negative_count", "impressions", "a count is negative",
                     lambda t: (t.impressions >= 0) & (t.reach >= 0) & (t.likes >= 0) & (t.comments >= 0)
                     & (t.shares >= 0) & (t.followers >= 0),
                     ("impressions", "reach", "likes", "comments", "shares", "followers")),
                Rule("reach_above_impressions", "reach", "reach exceeds impressions", _ge("impressions", "reach"),
                     ("reach", "impressions")),
            ),
        ),
        TableSpec(
            "support_tickets", "Support tickets: one row per ticket.",
            (
                Col("ticket_id", "id"),
                Col("customer_id", "id"),
                Col("opened_at", "timestamp"),
                Col("first_response_at", "timestamp", nullable=True),
                Col("resolved_at", "timestamp", nullable=True),
                Col("channel", "str", required=False, nullable=True),
            ),
            key="ticket_id",
            references=(("customer_id", "customers", "customer_id"),),
            rules=(
                Rule("response_before_open", "first_response_at", "first_response_at is before opened_at",
                     _ge("first_response_at", "opened_at"), ("first_response_at", "opened_at")),
                Rule("resolved_before_open", "resolved_at", "resolved_at is before opened_at",
                     _ge("resolved_at", "opened_at"), ("resolved_at", "opened_at")),
            ),
        ),
        TableSpec(
            "marketing_spend", "Acquisition spend per period and channel.",
            (
                Col("period_start", "date"),
                Col("channel", "str"),
                Col("spend", "float"),
                Col("impressions", "int", required=False, nullable=True),
                Col("clicks", "int", required=False, nullable=True),
            ),
            rules=(
                Rule("negative_spend", "spend", "spend is negative", _nonneg("spend")),
                Rule("clicks_above_impressions", "clicks", "clicks exceed impressions",
                     _ge("impressions", "clicks"), ("clicks", "impressions")),
            ),
        ),
        TableSpec(
            "referrals", "Referrals: who referred whom, and when.",
            (
                Col("referrer_id", "id"),
                Col("referred_customer_id", "id"),
                Col("referred_at", "timestamp"),
            ),
            references=(("referrer_id", "customers", "customer_id"),
                        ("referred_customer_id", "customers", "customer_id")),
            rules=(Rule("self_referral", "referrer_id", "a customer referred themself",
                        lambda t: t.referrer_id != t.referred_customer_id,
                        ("referrer_id", "referred_customer_id")),),
        ),
    ]
}
