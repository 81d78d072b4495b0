"""Analysis: trends, segments, relationships, survival and predictive CLV."""

from engagement.analysis.clv import (
    BGNBD,
    GammaGamma,
    ModelFitError,
    cumulative_repeat_transactions,
    customer_lifetime_value,
    holdout_by_frequency,
)
from engagement.analysis.relations import associations, customer_summary, period_correlations
from engagement.analysis.segments import segment_tests
from engagement.analysis.survival import kaplan_meier, lifetimes, logrank
from engagement.analysis.trends import change_tests, forecast, seasonal_components, trend_tests

__all__ = [
    "BGNBD",
    "GammaGamma",
    "ModelFitError",
    "associations",
    "change_tests",
    "cumulative_repeat_transactions",
    "customer_lifetime_value",
    "customer_summary",
    "forecast",
    "holdout_by_frequency",
    "kaplan_meier",
    "lifetimes",
    "logrank",
    "period_correlations",
    "seasonal_components",
    "segment_tests",
    "trend_tests",
]
