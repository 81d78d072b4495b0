"""Measurement: the only layer that touches raw event-level data (as Ibis expressions)."""

from engagement.measure.cohorts import active_users_series, cohort_retention
from engagement.measure.compute import (
    DEFAULT_SEGMENTS,
    available_columns,
    data_range,
    measure,
    measure_series,
    resolve_business_model,
    segment_table,
    sessions,
)
from engagement.measure.customers import customer_summary, lifetimes
from engagement.measure.periods import Period, parse_period
from engagement.measure.rfm import calibration_holdout_summary, purchase_day_counts, rfm_summary, unit_days

__all__ = [
    "DEFAULT_SEGMENTS",
    "active_users_series",
    "available_columns",
    "cohort_retention",
    "data_range",
    "customer_summary",
    "lifetimes",
    "Period",
    "calibration_holdout_summary",
    "measure",
    "measure_series",
    "parse_period",
    "purchase_day_counts",
    "resolve_business_model",
    "rfm_summary",
    "segment_table",
    "sessions",
    "unit_days",
]
