"""Measurement: the only layer that touches raw event-level data (as Ibis expressions)."""

from engagement.measure.rfm import calibration_holdout_summary, rfm_summary, unit_days

__all__ = ["calibration_holdout_summary", "rfm_summary", "unit_days"]
