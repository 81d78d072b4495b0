"""Analysis: trends, segments, relationships, survival and predictive CLV."""

from engagement.analysis.clv import (
    BGNBD,
    GammaGamma,
    ModelFitError,
    cumulative_repeat_transactions,
    customer_lifetime_value,
    holdout_by_frequency,
)

__all__ = [
    "BGNBD",
    "GammaGamma",
    "ModelFitError",
    "cumulative_repeat_transactions",
    "customer_lifetime_value",
    "holdout_by_frequency",
]
