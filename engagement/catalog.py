"""The metric catalogue: one registry that every notebook and report renders from.

Each :class:`MetricSpec` says what a metric is, how it is computed, which way is
better, what data it needs, the pros and cons the source articles list, where a
popular formula misleads, and a published benchmark where one exists (with its
source). Nothing here is written twice: notebook 01 renders the definitions,
notebook 02 the selection, the findings read ``higher_is_better``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["MetricSpec", "CATALOG", "OBJECTIVES", "get", "name", "family", "higher_is_better", "catalog_frame",
           "available_metrics", "CUSTOMER_VARIABLE", "VARIABLE_METRIC"]


@dataclass(frozen=True)
class MetricSpec:
    """The description of one metric."""

    id: str
    name: str
    category: str
    definition: str
    formula: str
    latex: str
    unit: str
    higher_is_better: bool | None
    needs: tuple[str, ...]
    function: str
    pros: str
    cons: str
    journey_stage: str
    pitfall: str = ""
    benchmark: str = ""
    benchmark_source: str = ""
    variants: tuple[str, ...] = field(default_factory=tuple)
    #: the metric this one is a variant of (a mean beside a median or a top-2-box share, retention beside
    #: churn): the same effect, so one finding and one action serve both
    variant_of: str = ""

    @property
    def tables(self) -> tuple[str, ...]:
        """The contract tables this metric needs."""
        return tuple(dict.fromkeys(n.split(".")[0] for n in self.needs))


_SPECS: list[MetricSpec] = [
    MetricSpec(
        "nps", "Net Promoter Score", "survey",
        "Share of respondents who would recommend (9-10 on 0-10) minus the share who would not (0-6).",
        "100 x (promoters - detractors) / respondents", r"\mathrm{NPS}=100\,\frac{P-D}{n}",
        "points", True, ("survey_responses.score", "survey_responses.survey"), "nps",
        "One comparable loyalty number; simple to collect.", "One question; sensitive to who answers; says nothing of why.",
        "advocacy",
        "Computed over respondents, never the customer base; scores run 0-10, not 1-10.",
        variants=("adjusted-Wald / Wald / bootstrap interval", "per segment and period"),
    ),
    MetricSpec(
        "csat", "Customer Satisfaction (CSAT)", "survey",
        "Share of respondents satisfied with an interaction (top two points of the scale).",
        "satisfied (4-5 on 1-5) / respondents", r"\mathrm{CSAT}=\frac{\#\{r\ge s-1\}}{n}",
        "fraction", True, ("survey_responses.score", "survey_responses.survey"), "csat",
        "Direct reading of satisfaction at a touchpoint.", "Time-consuming to collect; answers skew to extremes.",
        "post-purchase and support",
        "The mean rating is not CSAT%: (4+5+3+4+5)/5 = 4.2 (a seed says 4), and the CSAT of those answers is 80%.",
        variants=("top-2-box (default)", "top-box", "mean rating"),
    ),
    MetricSpec(
        "ces", "Customer Effort Score", "survey",
        "How easy customers found it to get something done (CES 2.0: agreement 1-7 that it was easy).",
        "mean answer on 1-7 (or share answering 5-7)", r"\mathrm{CES}=\bar r",
        "score", True, ("survey_responses.score", "survey_responses.survey"), "ces",
        "Predicts repurchase after service contacts.", "Two incompatible scales share the name.",
        "support",
        "The original 5-point effort question is lower-is-better; the 7-point CES 2.0 is higher-is-better.",
        variants=("mean", "low-effort share", "net effort"),
    ),
    MetricSpec(
        "review_rating", "Review rating", "survey",
        "Average star rating of customer reviews.",
        "sum of stars / reviews", r"\bar r", "score", True, ("reviews.rating",), "review_rating",
        "Public and visible to prospects.", "Can be influenced by external factors or individual experiences.",
        "advocacy", "Needs a review-site export (a 'reviews' table), which the data contract does not cover yet.",
    ),
    MetricSpec(
        "churn_rate", "Customer churn rate", "retention",
        "Share of the customers at the start of a period who left during it.",
        "customers lost / customers at start", r"c=\frac{L}{S}",
        "fraction", False, ("customers.signup_at", "customers.cancelled_at"), "churn_rate",
        "Direct measure of lost relationships; easy to explain.", "Needs a churn event; new customers are invisible to it.",
        "retention",
        "End minus start over start is not churn: it nets new customers against lost ones.",
        variants=("start-of-period base", "cohort churn", "monthly to yearly via 1-(1-c)^k"),
    ),
    MetricSpec(
        "inactivity_churn_rate", "Inactivity churn rate", "retention",
        "Share of the customers who ordered in the window before the period (365 days by default) who have not "
        "ordered in the same window before its end: churn where customers never cancel.",
        "lapsed active customers / customers active at the start", r"c_{inact}=\frac{L_w}{A_w}",
        "fraction", False, ("orders.customer_id", "orders.ordered_at"), "churn_rate",
        "Works without a cancellation event: the standard churn of shops and marketplaces.",
        "The window is a choice; customers who buy rarely look churned in a short one.", "retention",
        "Without cancellations, 'customers lost / customers at start' reads 0% every period: it is not churn, "
        "it is the absence of the data. Name the window with the figure.",
        variants=("inactivity window 90 / 180 / 365 days", "expected active customers from BG/NBD P(alive)"),
        variant_of="churn_rate",
    ),
    MetricSpec(
        "retention_rate", "Customer retention rate", "retention",
        "Share of the customers at the start of a period still customers at its end.",
        "retained starters / customers at start (practitioner form: (E - N) / S)",
        r"\mathrm{CRR}=\frac{|S\cap E|}{|S|}\;\left(\approx\frac{E-N}{S}\right)",
        "fraction", True, ("customers.signup_at", "customers.cancelled_at"), "retention_rate",
        "Complement of churn; tracks loyalty.", "The (E - N)/S shortcut is biased low when new customers leave.",
        "retention",
        "(E - N)/S counts new customers who already left as lost starters.",
        variant_of="churn_rate",
    ),
    MetricSpec(
        "clv", "Customer lifetime value (simple)", "value",
        "Revenue (or margin) a customer brings over the relationship.",
        "avg purchase value x purchase frequency x lifespan (x margin)", r"\mathrm{CLV}=\bar v\,f\,L\,m",
        "currency", True, ("orders.revenue", "orders.ordered_at", "customers.cancelled_at"), "clv",
        "Measures long-term value; guides acquisition spend.", "Requires forecasting; averages hide heterogeneity.",
        "loyalty",
        "Undiscounted and homogeneous; in non-subscription businesses use the predictive BG/NBD + Gamma-Gamma model.",
        variants=("revenue", "margin (profit) CLV", "predictive BG/NBD + Gamma-Gamma"),
    ),
    MetricSpec(
        "aov", "Average order value (ATV)", "value",
        "Average revenue per order (transaction).",
        "revenue / orders", r"\mathrm{AOV}=\frac{\sum v}{n_{orders}}",
        "currency", True, ("orders.revenue",), "average_order_value",
        "Shows upsell and cross-sell room.", "Mixes products and customers; outliers move it.",
        "purchase",
        "Include or exclude tax, shipping and refunds consistently (Shopify excludes them).",
    ),
    MetricSpec(
        "purchase_frequency", "Purchase frequency", "value",
        "Orders per customer in the period.", "orders / customers", r"f=\frac{n_{orders}}{n_{customers}}",
        "ratio", True, ("orders.customer_id",), "purchase_frequency",
        "Input to CLV; shows habit.", "Depends on the period length.", "loyalty",
    ),
    MetricSpec(
        "cac", "Customer acquisition cost", "value",
        "Acquisition spend per new customer.", "spend / new customers", r"\mathrm{CAC}=\frac{\text{spend}}{N}",
        "currency", False, ("marketing_spend.spend", "customers.acquisition_channel"), "cac",
        "Evaluates marketing efficiency by channel.", "Attribution and spend lag distort it.", "acquisition",
        "Free sign-ups are not customers; media-only and fully-loaded CAC differ.",
    ),
    MetricSpec(
        "clv_cac_ratio", "CLV:CAC ratio", "value",
        "How many times a customer's lifetime value repays its acquisition cost.",
        "CLV / CAC", r"\frac{\mathrm{CLV}}{\mathrm{CAC}}", "ratio", True,
        ("orders.revenue", "marketing_spend.spend"), "clv_cac_ratio",
        "One number for unit economics.", "Inherits the errors of both parts.", "acquisition",
        "Use margin CLV, not revenue CLV.",
        benchmark="about 3 or more", benchmark_source="David Skok, 'SaaS Metrics 2.0' (forEntrepreneurs), rule of thumb",
    ),
    MetricSpec(
        "dau", "Daily active users", "activity",
        "Distinct customers with a value event on a day.", "distinct active customers per day",
        r"\mathrm{DAU}_d=|\{u: e_u\in d\}|", "count", True, ("events.customer_id", "events.occurred_at"),
        "active_users", "Broad view of daily use.", "Counts, not depth; partial days read low.", "usage",
        "'Active' must be a declared value event, not an app open.",
    ),
    MetricSpec(
        "wau", "Weekly active users", "activity",
        "Distinct customers with a value event in a week (trailing 7 days, or calendar week).",
        "distinct active customers in 7 days", r"\mathrm{WAU}_d=|\{u: e_u\in(d-7,d]\}|", "count", True,
        ("events.customer_id", "events.occurred_at"), "active_users",
        "Smooths weekday patterns.", "Windows overlap with DAU and MAU: never add them.", "usage",
    ),
    MetricSpec(
        "mau", "Monthly active users", "activity",
        "Distinct customers with a value event in the trailing 30 days (or calendar month).",
        "distinct active customers in 30 days", r"\mathrm{MAU}_d=|\{u: e_u\in(d-30,d]\}|", "count", True,
        ("events.customer_id", "events.occurred_at"), "active_users",
        "Size of the engaged base.", "Windows (28, 30, calendar) differ: say which.", "usage",
    ),
    MetricSpec(
        "stickiness", "Stickiness (DAU/MAU)", "activity",
        "How often the month's users come back: mean daily actives over monthly actives.",
        "mean DAU / MAU", r"\frac{\overline{\mathrm{DAU}}}{\mathrm{MAU}}", "fraction", True,
        ("events.customer_id", "events.occurred_at"), "stickiness",
        "Measures habit independent of size.", "Biased on partial months; hides the distribution.", "usage",
        "One day's DAU over MAU depends on the day picked; use the month's mean DAU.",
    ),
    MetricSpec(
        "product_usage_rate", "Product usage rate", "activity",
        "Share of the customers present from the period's start who used the product in it.",
        "customers at start with a value event / customers at start",
        r"\frac{A}{C}", "fraction", True, ("events.customer_id", "customers.customer_id"), "product_usage_rate",
        "Insight into customer behaviour with the product.", "Needs product tracking.", "usage",
    ),
    MetricSpec(
        "engagement_rate", "Customer engagement rate", "activity",
        "Share of the customers present from the period's start who engaged on any channel (product, email "
        "click, purchase, survey, web visit) in it.",
        "engaged customers at start / customers at start", r"\frac{E}{C}", "fraction", True,
        ("events.customer_id", "customers.customer_id"), "engagement_rate",
        "Frequency of interaction across channels.", "'Engaged' is a declared rule; change it and the number moves.",
        "usage",
    ),
    MetricSpec(
        "engagement_score", "Customer engagement score", "activity",
        "Weighted sum of each customer's activities; weights are parameters.",
        "sum_k weight_k x count_k", r"s_u=\sum_k w_k x_{uk}", "score", True,
        ("events.customer_id",), "engagement_score",
        "Depth as well as breadth; ideal for SaaS with many trials.",
        "Weights are a choice; normalised scores are not comparable across periods unless the reference is frozen.",
        "usage",
    ),
    MetricSpec(
        "first_week_engagement", "First-week engagement", "activity",
        "Share of new customers active on at least k of their first 7 days.",
        "new customers active >= k days in days 0-6 / new customers with a complete first week",
        r"\frac{\#\{u: d_u\ge k\}}{N}", "fraction", True,
        ("events.customer_id", "events.occurred_at", "customers.signup_at"), "first_week_engagement",
        "Early signal of the onboarding's success.", "Needs a declared value event and threshold.", "onboarding",
        "Customers whose first week is not over must be left out, not counted as not engaged.",
    ),
    MetricSpec(
        "website_visits", "Website visits (sessions)", "web",
        "Sessions: a visitor's pageviews with no gap over 30 minutes.", "count of sessions",
        r"\#\text{sessions}", "count", True, ("pageviews.visitor_id", "pageviews.viewed_at"), "pages_per_session",
        "Easy to track, readily available.", "Doesn't capture depth; external factors move it.", "awareness",
        "Session rules differ (UA splits at midnight and campaign change; GA4 does not).",
    ),
    MetricSpec(
        "page_views", "Page views", "web",
        "Pages viewed in the period.", "count of pageviews", r"\#\text{pageviews}", "count", True,
        ("pageviews.viewed_at",), "pages_per_session",
        "Volume of content consumed.", "Reloads and bots inflate it.", "awareness",
    ),
    MetricSpec(
        "pages_per_session", "Pages per session", "web",
        "Average pageviews per session.", "pageviews / sessions", r"\frac{PV}{S}", "ratio", True,
        ("pageviews.visitor_id", "pageviews.viewed_at"), "pages_per_session",
        "Depth of a visit.", "High can also mean visitors cannot find what they want.", "consideration",
    ),
    MetricSpec(
        "average_session_duration", "Average session duration", "web",
        "Mean time from first to last pageview of a session.", "sum of session durations / sessions",
        r"\bar d", "seconds", True, ("pageviews.visitor_id", "pageviews.viewed_at"), "average_session_duration",
        "Attention given to the site.", "Last page's time is never counted; bounces count 0 s.", "consideration",
        "Skewed: report the median too.",
    ),
    MetricSpec(
        "bounce_rate", "Bounce rate", "web",
        "Share of sessions that viewed a single page.", "single-page sessions / sessions", r"\frac{B}{S}",
        "fraction", False, ("pageviews.visitor_id", "pageviews.viewed_at"), "bounce_rate",
        "Flags pages that fail to hold visitors.", "Definitions differ (UA, GA4, PostHog).", "consideration",
        "GA4's bounce rate is 1 - engagement rate, not single-page sessions.",
    ),
    MetricSpec(
        "conversion_rate", "Conversion rate", "web",
        "Share of visitors who completed the desired action.", "converting visitors / visitors",
        r"\frac{C}{V}", "fraction", True, ("pageviews.visitor_id", "pageviews.converted"), "conversion_rate",
        "Closest to business outcomes.", "Base (visitors vs sessions) must be stated.", "conversion",
        "Count a visitor once however often it converts.",
    ),
    MetricSpec(
        "click_through_rate", "Click-through rate", "web",
        "Share of impressions of a link, ad or call to action that were clicked.", "clicks / impressions",
        r"\frac{\text{clicks}}{\text{impressions}}", "fraction", True,
        ("marketing_spend.clicks", "marketing_spend.impressions"), "click_through_rate",
        "Relevance of a message to its audience.", "Bot clicks inflate it.", "awareness",
    ),
    MetricSpec(
        "email_open_rate", "Email open rate", "email",
        "Share of delivered emails opened (unique opens).", "unique opens / delivered",
        r"\frac{O}{\text{sent}-\text{bounced}}", "fraction", True,
        ("email_events.event", "email_events.campaign_id"), "email_open_rate",
        "Tests subject lines and sender reputation.", "Apple Mail Privacy Protection inflates opens.", "engagement",
        benchmark="about 21% (all industries)", benchmark_source="Mailchimp, Email Marketing Benchmarks (data as of October 2019)",
    ),
    MetricSpec(
        "email_click_rate", "Email click rate", "email",
        "Share of delivered emails whose recipient clicked a link.", "unique clickers / delivered",
        r"\frac{K}{\text{delivered}}", "fraction", True, ("email_events.event",), "email_click_rate",
        "Tests content and calls to action.", "Security scanners auto-click.", "engagement",
        benchmark="about 2.6% (all industries)", benchmark_source="Mailchimp, Email Marketing Benchmarks (data as of October 2019)",
    ),
    MetricSpec(
        "click_to_open_rate", "Click-to-open rate", "email",
        "Share of openers who clicked.", "unique clickers / unique openers", r"\frac{K}{O}", "fraction", True,
        ("email_events.event",), "click_to_open_rate",
        "Isolates content from subject line.", "Inflated opens push it down.", "engagement",
    ),
    MetricSpec(
        "unsubscribe_rate", "Unsubscribe rate", "email",
        "Share of delivered emails followed by an unsubscribe.", "unsubscribes / delivered",
        r"\frac{U}{\text{delivered}}", "fraction", False, ("email_events.event",), "unsubscribe_rate",
        "Early warning of list fatigue.", "Spam complaints are counted apart.", "engagement",
        benchmark="about 0.26% (all industries)", benchmark_source="Mailchimp, Email Marketing Benchmarks (data as of October 2019)",
    ),
    MetricSpec(
        "social_engagement_rate", "Social media engagement rate", "social",
        "Engagements (likes, comments, shares) per person reached.", "engagements / reach",
        r"\frac{\sum e}{\sum \text{reach}}", "fraction", True,
        ("social_posts.likes", "social_posts.comments", "social_posts.shares", "social_posts.reach"),
        "social_engagement_rate",
        "Insight into brand sentiment and community.", "No standard denominator; needs monitoring.", "awareness",
        "By reach, impressions and followers give different numbers; mean of post rates differs from pooled.",
        variants=("by reach", "by impressions", "by followers", "pooled vs mean of posts"),
    ),
    MetricSpec(
        "follower_growth_rate", "Follower growth", "social",
        "Relative change in followers over the period.", "(followers end - start) / start",
        r"\frac{F_1-F_0}{F_0}", "fraction", True, ("social_posts.followers", "social_posts.posted_at"),
        "follower_growth_rate", "Reach of the brand's audience.", "Bought or bot followers inflate it.", "awareness",
    ),
    MetricSpec(
        "first_response_time", "First response time", "support",
        "Time from a ticket's opening to the first agent reply (median).", "median(first reply - opened)",
        r"\mathrm{median}(t_{reply}-t_{open})", "seconds", False,
        ("support_tickets.opened_at", "support_tickets.first_response_at"), "first_response_time",
        "Responsiveness customers feel directly.", "Unanswered tickets are censored; bots distort it.", "support",
        "Leaving unanswered tickets out without counting them flatters the figure.",
    ),
    MetricSpec(
        "resolution_time", "Resolution time", "support",
        "Time from a ticket's opening to its resolution (median).", "median(resolved - opened)",
        r"\mathrm{median}(t_{solved}-t_{open})", "seconds", False,
        ("support_tickets.opened_at", "support_tickets.resolved_at"), "resolution_time",
        "Reveals customer needs and pain points.", "May not reflect overall engagement; reopens complicate it.",
        "support",
    ),
    MetricSpec(
        "referral_rate", "Referral rate", "advocacy",
        "Share of new customers who came through a referral.", "referred new customers / new customers",
        r"\frac{R}{N}", "fraction", True, ("referrals.referred_customer_id", "customers.signup_at"), "referral_rate",
        "Strong indicator of loyalty and trust.", "Needs referral attribution; definitions differ.", "advocacy",
        "Two definitions circulate: referred share of new customers, and share of customers who refer.",
        variants=("referred_share_of_new", "referrer_participation"),
    ),
    MetricSpec(
        "revenue", "Revenue", "value",
        "Order revenue in the period.", "sum of order revenue", r"\sum v", "currency", True,
        ("orders.revenue",), "average_order_value",
        "The outcome engagement should move.", "Lags engagement.", "purchase",
    ),
    MetricSpec(
        "csat_mean", "Mean satisfaction rating", "survey",
        "Mean answer to the satisfaction question on its 1-5 scale.", "sum of ratings / respondents",
        r"\bar r", "score", True, ("survey_responses.score", "survey_responses.survey"), "csat",
        "Uses every point of the scale.", "Not comparable with CSAT%; assumes equal spacing of the points.",
        "post-purchase and support",
        "Reported beside CSAT%, never in its place: a mean of 4.2 and a CSAT of 80% describe the same answers.",
        variant_of="csat",
    ),
    MetricSpec(
        "orders", "Orders", "value",
        "Orders placed in the period.", "count of orders", r"n_{orders}", "count", True,
        ("orders.order_id", "orders.ordered_at"), "purchase_frequency",
        "The volume behind AOV and revenue.", "Grows with the customer base: a scale figure, not a rate.",
        "purchase",
    ),
    MetricSpec(
        "new_customers", "New customers", "acquisition",
        "Customers who signed up in the period.", "count of sign-ups", r"N", "count", True,
        ("customers.signup_at",), "active_users",
        "The denominator of CAC and first-week engagement.", "Says nothing of their quality.", "acquisition",
    ),
    MetricSpec(
        "active_customers", "Active customers", "retention",
        "Customers subscribed at some point in the period.", "customers at start + new customers",
        r"S + N", "count", True, ("customers.signup_at", "customers.cancelled_at"), "active_users",
        "The base of purchase frequency.", "A scale figure: it grows with acquisition, not engagement.",
        "retention",
    ),
    MetricSpec(
        "first_response_time_mean", "First response time (mean)", "support",
        "Mean time from a ticket's opening to the first agent reply.", "mean(first reply - opened)",
        r"\overline{t_{reply}-t_{open}}", "seconds", False,
        ("support_tickets.opened_at", "support_tickets.first_response_at"), "first_response_time",
        "Adds up: total waiting time is mean x tickets.", "A few very slow tickets move it; the median does not.",
        "support",
        variant_of="first_response_time",
    ),
    MetricSpec(
        "resolution_time_mean", "Resolution time (mean)", "support",
        "Mean time from a ticket's opening to its resolution.", "mean(resolved - opened)",
        r"\overline{t_{solved}-t_{open}}", "seconds", False,
        ("support_tickets.opened_at", "support_tickets.resolved_at"), "resolution_time",
        "Adds up to the total time customers wait.", "Long-tailed: read it beside the median.", "support",
        variant_of="resolution_time",
    ),
]

CATALOG: dict[str, MetricSpec] = {spec.id: spec for spec in _SPECS}


def get(metric_id: str) -> MetricSpec:
    """Return the spec of ``metric_id`` or raise with the known ids.

    Examples
    --------
    >>> from engagement import catalog
    >>> catalog.get("nps").unit
    'points'
    """
    try:
        return CATALOG[metric_id]
    except KeyError:
        raise ValueError(f"Unknown metric {metric_id!r}; known: {sorted(CATALOG)}.") from None


def name(metric_id: str) -> str:
    """The metric's display name; an id the catalogue does not hold reads as its words ("net_margin" -> "net margin").

    Examples
    --------
    >>> from engagement import catalog
    >>> catalog.name("aov"), catalog.name("net_margin")
    ('Average order value (ATV)', 'net margin')
    """
    spec = CATALOG.get(metric_id)
    return spec.name if spec is not None else metric_id.replace("_", " ")


def family(metric_id: str) -> str:
    """The metric a variant belongs to (``csat_mean`` -> ``csat``); a metric is its own family.

    Examples
    --------
    >>> from engagement import catalog
    >>> catalog.family("csat_mean"), catalog.family("nps")
    ('csat', 'nps')
    """
    spec = CATALOG.get(metric_id)
    return spec.variant_of if spec is not None and spec.variant_of else metric_id


def higher_is_better(metric_id: str) -> bool | None:
    """Whether a higher value of the metric is better (None: neither, or not in the catalogue).

    Examples
    --------
    >>> from engagement import catalog
    >>> catalog.higher_is_better("churn_rate"), catalog.higher_is_better("unknown")
    (False, None)
    """
    spec = CATALOG.get(metric_id)
    return spec.higher_is_better if spec is not None else None


def catalog_frame() -> pd.DataFrame:
    """The catalogue as a DataFrame (one row per metric, in catalogue order).

    Examples
    --------
    >>> from engagement import catalog
    >>> df = catalog.catalog_frame()
    >>> df.loc[df["id"] == "churn_rate", "higher_is_better"].item()
    False
    """
    rows = []
    for s in _SPECS:
        rows.append(
            {
                "id": s.id, "name": s.name, "category": s.category, "definition": s.definition,
                "formula": s.formula, "unit": s.unit, "higher_is_better": s.higher_is_better,
                "data_needed": ", ".join(s.needs), "tables": ", ".join(s.tables), "pros": s.pros, "cons": s.cons,
                "journey_stage": s.journey_stage, "pitfall": s.pitfall, "benchmark": s.benchmark,
                "benchmark_source": s.benchmark_source, "function": s.function,
            }
        )
    return pd.DataFrame(rows)


def available_metrics(tables: Mapping[str, Iterable[str]] | Iterable[str]) -> pd.DataFrame:
    """Which metrics ``measure`` can report for a dataset with ``tables``, and why not where not.

    ``tables`` maps each table to its columns (``available_columns(ds)``), so a
    missing optional column counts; a plain collection of table names checks
    tables only. Measured metrics give their declaration's reason
    (:func:`engagement.measure.declarations.unavailable_reason`), the same text
    as the ``reason`` column of the measure table; the catalogue's other entries
    (review rating, engagement score) need the tables they name and are computed
    with their metric functions.

    Examples
    --------
    >>> from engagement import catalog
    >>> av = catalog.available_metrics({"customers", "orders"})
    >>> bool(av.set_index("id").loc["aov", "available"])
    True
    """
    from engagement.measure.declarations import DECLARATIONS, unavailable_reason

    have = set(tables)
    available = tables if isinstance(tables, Mapping) else have
    rows = []
    for s in _SPECS:
        if s.id in DECLARATIONS:  # measured: the declaration's own reason, the one the measure table gives
            reason = unavailable_reason(DECLARATIONS[s.id], available)
        else:  # computed by its metric function from the analyst's own extract, not by `measure`
            missing = [t for t in s.tables if t not in have]
            reason = "needs table(s): " + ", ".join(missing) if missing else ""
        rows.append({"id": s.id, "name": s.name, "available": not reason, "reason": reason})
    return pd.DataFrame(rows)


#: The metrics relevant to each business objective (what :func:`engagement.plan.select_metrics` weighs); here,
#: beside the catalog, so that checking a report's parameters does not import the planning and its statistics.
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "retention": ("churn_rate", "retention_rate", "clv", "stickiness", "product_usage_rate",
                  "first_week_engagement", "nps", "inactivity_churn_rate"),
    "satisfaction": ("csat", "nps", "ces", "review_rating", "first_response_time", "resolution_time"),
    "revenue": ("aov", "clv", "purchase_frequency", "revenue", "conversion_rate", "clv_cac_ratio"),
    "acquisition": ("cac", "conversion_rate", "referral_rate", "website_visits", "click_through_rate",
                    "clv_cac_ratio"),
    "engagement": ("engagement_rate", "engagement_score", "dau", "mau", "stickiness", "product_usage_rate",
                   "email_open_rate", "email_click_rate", "social_engagement_rate", "pages_per_session",
                   "average_session_duration", "bounce_rate"),
    "advocacy": ("nps", "referral_rate", "social_engagement_rate", "review_rating", "follower_growth_rate"),
}

#: The ``customer_summary`` column that stands for a metric in customer-level relationships
CUSTOMER_VARIABLE = {"nps": "nps", "csat": "csat", "aov": "aov", "churn_rate": "churned", "retention_rate": "churned",
                     "clv": "clv", "product_usage_rate": "active_days", "stickiness": "active_days",
                     "engagement_rate": "active_days", "purchase_frequency": "orders", "revenue": "spend"}
#: and back: the metric a customer-level variable speaks for (its first metric above)
VARIABLE_METRIC: dict[str, str] = {v: m for m, v in reversed(CUSTOMER_VARIABLE.items())}
