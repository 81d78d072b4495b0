"""Pure metric formulas with intervals: no I/O, no engine, one result type."""

from engagement.metrics.activity import (
    active_users,
    engagement_rate,
    engagement_score,
    engagement_scores,
    first_week_engagement,
    product_usage_rate,
    referral_rate,
    stickiness,
)
from engagement.metrics.email import (
    click_to_open_rate,
    email_click_rate,
    email_open_rate,
    unsubscribe_rate,
)
from engagement.metrics.retention import churn_rate, compound_churn_rate, retention_rate
from engagement.metrics.social import follower_growth_rate, social_engagement_rate
from engagement.metrics.support import first_response_time, resolution_time
from engagement.metrics.survey import ces, csat, nps, nps_difference, nps_from_counts, review_rating
from engagement.metrics.value import (
    average_order_value,
    cac,
    clv,
    clv_cac_ratio,
    clv_from_churn,
    purchase_frequency,
)
from engagement.metrics.web import (
    average_session_duration,
    bounce_rate,
    click_through_rate,
    conversion_rate,
    pages_per_session,
)

__all__ = [
    "active_users",
    "average_order_value",
    "average_session_duration",
    "bounce_rate",
    "cac",
    "ces",
    "churn_rate",
    "click_through_rate",
    "click_to_open_rate",
    "clv",
    "clv_cac_ratio",
    "clv_from_churn",
    "compound_churn_rate",
    "conversion_rate",
    "csat",
    "email_click_rate",
    "email_open_rate",
    "engagement_rate",
    "engagement_score",
    "engagement_scores",
    "first_response_time",
    "first_week_engagement",
    "follower_growth_rate",
    "nps",
    "nps_difference",
    "nps_from_counts",
    "pages_per_session",
    "product_usage_rate",
    "purchase_frequency",
    "referral_rate",
    "resolution_time",
    "retention_rate",
    "review_rating",
    "social_engagement_rate",
    "stickiness",
    "unsubscribe_rate",
]
