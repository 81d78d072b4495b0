"""Formatting measured figures for people: units, intervals, comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from engagement import catalog

__all__ = ["format_value", "format_interval", "format_q", "headline"]


def _unit(metric: str, unit: str | None) -> str:
    if unit:
        return unit
    try:
        return catalog.get(metric.removesuffix("_mean")).unit
    except ValueError:
        return ""


def format_value(value: float, unit: str) -> str:
    """A figure as a reader expects it: 12.3% for fractions, +35.2 for NPS points, 2.1 h for durations.

    Examples
    --------
    >>> from engagement.present import format_value
    >>> format_value(0.1234, "fraction"), format_value(35.21, "points"), format_value(7560, "seconds")
    ('12.3%', '+35.2', '2.1 h')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "points":
        return f"{value:+.1f}"
    if unit == "seconds":
        return f"{value / 3600:.1f} h" if abs(value) >= 3600 else f"{value / 60:.1f} min" if abs(value) >= 60 \
            else f"{value:.0f} s"
    if unit == "currency":
        return f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    return f"{value:,.2f}"


def format_q(q: float | None) -> str:
    """A corrected p-value as reports state it; no q means an exact figure without sampling error.

    Examples
    --------
    >>> from engagement.present import format_q
    >>> format_q(0.0004), format_q(0.0213), format_q(float("nan"))
    ('q < 0.001', 'q = 0.021', 'exact figure, no sampling error')
    """
    if q is None or (isinstance(q, float) and math.isnan(q)):
        return "exact figure, no sampling error"
    return "q < 0.001" if q < 0.001 else f"q = {q:.3f}"


def format_interval(low: float, high: float, unit: str) -> str:
    """``"12.1% to 13.4%"``, or an empty string where there is no interval."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return ""
    return f"{format_value(low, unit)} to {format_value(high, unit)}"


def headline(table: pd.DataFrame, metrics: Sequence[str], *, segment: str = "all", value: str = "all") -> pd.DataFrame:
    """One row per metric: this period with its interval, the previous period and a year earlier.

    ``table`` is :func:`engagement.measure.measure` output. Unavailable metrics say why.
    """
    rows = []
    d = table[(table.segment == segment) & (table.segment_value == value)]
    for metric in metrics:
        m = d[d.metric == metric].set_index("period_role")
        try:
            name = catalog.get(metric).name
        except ValueError:
            name = metric
        if m.empty:
            rows.append({"metric": name, "this period": "not measured", "95% interval": "", "n": "",
                         "previous period": "", "a year earlier": ""})
            continue
        cur = m.loc["current"] if "current" in m.index else m.iloc[0]
        if cur.status != "ok":
            rows.append({"metric": name, "this period": "unavailable", "95% interval": cur.reason, "n": "",
                         "previous period": "", "a year earlier": ""})
            continue
        unit = _unit(metric, cur.unit)
        rows.append({
            "metric": name,
            "this period": format_value(cur.value, unit),
            "95% interval": format_interval(cur.ci_low, cur.ci_high, unit),
            "n": f"{int(cur.n):,}",
            "previous period": format_value(m.loc["previous"].value, unit) if "previous" in m.index else "",
            "a year earlier": format_value(m.loc["year_ago"].value, unit) if "year_ago" in m.index else "",
        })
    return pd.DataFrame(rows)
