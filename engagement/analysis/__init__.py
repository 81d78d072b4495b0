"""Analysis: trends, segments, relationships, survival and predictive CLV.

Analysis works on what :mod:`engagement.measure` returns (the measure table, per-customer facts), never on raw
tables; ``customer_summary`` and ``lifetimes`` are measure's, re-exported here for convenience.
"""

from engagement.analysis.clv import (
    BGNBD,
    GammaGamma,
    ModelFitError,
    cumulative_repeat_transactions,
    customer_lifetime_value,
    holdout_by_frequency,
)
from engagement.analysis.relations import associations, period_correlations
from engagement.analysis.segments import corrected_family, explained_gaps, explained_summary, segment_tests
from engagement.analysis.survival import kaplan_meier, logrank
from engagement.analysis.trends import (
    change_tests,
    difference_test,
    figure_kind,
    forecast,
    seasonal_components,
    short_history,
    trend_tests,
)
from engagement.measure.customers import customer_summary, lifetimes  # the facts they analyse, from measure

__all__ = [
    "BGNBD",
    "GammaGamma",
    "ModelFitError",
    "associations",
    "change_tests",
    "cumulative_repeat_transactions",
    "customer_lifetime_value",
    "customer_summary",
    "difference_test",
    "figure_kind",
    "forecast",
    "holdout_by_frequency",
    "kaplan_meier",
    "lifetimes",
    "logrank",
    "period_correlations",
    "seasonal_components",
    "segment_tests",
    "corrected_family",
    "explained_gaps",
    "explained_summary",
    "short_history",
    "trend_tests",
]
