"""The one result type every metric function returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

__all__ = ["MetricResult", "nothing_to_measure"]

_UNIT_FORMATS = {
    "fraction": lambda v: f"{100 * v:.1f}%",
    "points": lambda v: f"{v:+.1f}",
    "seconds": lambda v: f"{v:,.1f} s",
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    formatter = _UNIT_FORMATS.get(unit)
    if formatter is not None:
        return formatter(value)
    return f"{value:,.4g}"


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric figure with its uncertainty and the counts behind it.

    Attributes
    ----------
    metric : str
        Catalogue id of the metric (``"nps"``, ``"churn_rate"``, ...).
    value : float
        The estimate. Rates are fractions in [0, 1], NPS is in points (-100..100),
        durations are seconds, money is in the input's unit. NaN when the population
        is empty (``n == 0``).
    ci_low, ci_high : float
        Bounds of the ``confidence`` interval; NaN where the figure is not a sample
        estimate (a ratio of two totals) or cannot be estimated.
    n : int
        Number of observations the estimate rests on (respondents, customers at
        start, sessions, ...).
    n_missing : int
        Observations excluded because they were missing (never silently dropped).
    method : str
        How the value and interval were computed, e.g. ``"top2box, Wilson"``.
    numerator, denominator : float or None
        The counts behind a rate, where they exist.
    confidence : float
        Confidence level of the interval.
    unit : str
        ``"fraction"``, ``"points"``, ``"seconds"``, ``"currency"``, ``"ratio"``,
        ``"count"`` or ``"score"``.
    se : float
        Standard error of the estimate; NaN where the figure has no sampling
        error (a count, a total, a ratio of population totals) or too few
        observations. For medians it is the one their order-statistic interval
        implies.
    details : Mapping
        Read-only extras (e.g. promoter/passive/detractor counts for NPS).

    Examples
    --------
    >>> import engagement as eg
    >>> r = eg.churn_rate(100, 1000)
    >>> r.value
    0.1
    >>> r.to_dict()["n"]
    1000
    """

    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    n_missing: int = 0
    method: str = ""
    numerator: float | None = None
    denominator: float | None = None
    confidence: float = 0.95
    unit: str = "ratio"
    se: float = math.nan
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        ci = ""
        if not (math.isnan(self.ci_low) or math.isnan(self.ci_high)):
            level = f"{100 * self.confidence:g}%"
            ci = f" ({level} CI {_fmt(self.ci_low, self.unit)} to {_fmt(self.ci_high, self.unit)})"
        missing = f", {self.n_missing} missing" if self.n_missing else ""
        return (
            f"{self.metric} = {_fmt(self.value, self.unit)}{ci}; "
            f"n = {self.n:,}{missing}; method: {self.method}"
        )

    def __repr__(self) -> str:
        return f"<MetricResult {self}>"

    def _repr_html_(self) -> str:
        row = self.to_frame()
        return row.to_html(index=False, na_rep="NaN")

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a plain ``dict`` (``details`` as a plain dict too)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["details"] = dict(self.details)
        return out

    def to_frame(self) -> pd.DataFrame:
        """Return a one-row DataFrame with flat columns (``details`` left out)."""
        row = self.to_dict()
        row.pop("details")
        return pd.DataFrame([row])


def nothing_to_measure(method: str) -> str:
    """Why a figure measured over nobody (NaN, ``n == 0``) has no value: its ``reason`` in the measure table, and
    what the report says of it.

    Examples
    --------
    >>> from engagement._result import nothing_to_measure
    >>> nothing_to_measure("lost / customers at start, Wilson interval")
    'nothing to measure this period (lost / customers at start, Wilson interval)'
    """
    return f"nothing to measure this period ({method})"
