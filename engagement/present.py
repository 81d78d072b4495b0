"""Formatting measured figures for people: units, intervals, comparisons."""

from __future__ import annotations

import csv
import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engagement import catalog
from engagement._result import nothing_to_measure

__all__ = [
    "escape_markdown",
    "format_value",
    "format_delta",
    "format_interval",
    "format_q",
    "format_money",
    "headline",
    "level_label",
    "round_significant",
    "spreadsheet_safe",
    "from_spreadsheet_safe",
    "unavailable_summary",
    "write_csv",
]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _unit(metric: str, unit: str | None) -> str:
    if unit:
        return unit
    spec = catalog.CATALOG.get(metric)
    return spec.unit if spec is not None else ""


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


def format_delta(value: float, unit: str) -> str:
    """A difference as a reader says it: percentage points for rates, points for NPS, a signed amount otherwise.

    Examples
    --------
    >>> from engagement.present import format_delta
    >>> format_delta(0.043, "fraction"), format_delta(-2.5, "points"), format_delta(-3.2, "currency")
    ('+4.3 points', '-2.5 points', '-$3.20')
    """
    if unit == "fraction":
        return f"{100 * value:+.1f} points"
    if unit == "points":
        return f"{value:+.1f} points"
    sign = "+" if value >= 0 else "-"
    return sign + format_value(abs(value), unit)


def escape_markdown(text: Any) -> str:
    """Text from the data, safe to place in Markdown: no live HTML, links, images or emphasis.

    HTML's ``& < >`` become entities and every Markdown metacharacter is
    backslash-escaped, so a label such as ``<img src=x onerror=...>`` or
    ``[click](javascript:...)`` shows as the literal text it is; so is ``$``, or
    two amounts in one sentence ("from $38.36 to $36.12") would be typeset as
    mathematics between them. Line breaks
    become spaces (a label cannot start a heading or a list).

    Examples
    --------
    >>> from engagement.present import escape_markdown
    >>> print(escape_markdown("<b>basic</b> [x](javascript:alert(1))"))
    &lt;b&gt;basic&lt;/b&gt; \\[x\\]\\(javascript:alert\\(1\\)\\)
    """
    flat = re.sub(r"\s+", " ", str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def unavailable_summary(names: Sequence[str], reasons: Sequence[str], *,
                        lead: str = "Not measurable with this data") -> str:
    r"""The metrics the data cannot support as one Markdown line, grouped by reason ("" when there are none).

    The largest group comes first; within a group the metrics keep the order given.
    A prefix ``not measurable here:`` on the reasons is dropped.

    Examples
    --------
    >>> from engagement.present import unavailable_summary
    >>> print(unavailable_summary(["NPS", "CSAT", "Churn"], ["the dataset has no survey_responses table"] * 2
    ...                           + ["needs customers.cancelled_at"]))
    **Not measurable with this data** (3 metrics): NPS, CSAT (the dataset has no survey\_responses table); Churn (needs customers\.cancelled\_at).
    """
    groups: dict[str, list[str]] = {}
    for name, reason in zip(names, reasons, strict=True):
        groups.setdefault(str(reason).removeprefix("not measurable here: "), []).append(str(name))
    if not groups:
        return ""
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    parts = [f"{', '.join(escape_markdown(n) for n in members)} ({escape_markdown(reason)})"
             for reason, members in ordered]
    n = sum(len(m) for m in groups.values())
    return f"**{lead}** ({n} metric{'s' if n != 1 else ''}): " + "; ".join(parts) + "."


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (OWASP CSV injection).

    A text cell that starts with ``= + - @``, a tab or a carriage return gets a
    leading apostrophe, which spreadsheets show as text; numeric columns are
    left as numbers. A cell that starts with an apostrophe itself gets one more,
    so that :func:`from_spreadsheet_safe` restores every value exactly.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.present import spreadsheet_safe
    >>> spreadsheet_safe(pd.DataFrame({"label": ["=HYPERLINK(1)", "@cmd", "basic"], "value": [-1.5, 2.0, 3.0]}))
                label  value
    0  '=HYPERLINK(1)   -1.5
    1           '@cmd    2.0
    2           basic    3.0
    """

    def cell(v: Any) -> Any:
        return "'" + v if isinstance(v, str) and v.startswith((*_FORMULA_START, "'")) else v

    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
                or pd.api.types.is_bool_dtype(col)):
            out[name] = col.map(cell, na_action="ignore")
    return out


def from_spreadsheet_safe(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The values :func:`spreadsheet_safe` wrote, read back: one leading apostrophe it added is removed.

    An earlier report's ``action_plan.csv`` names a segment ``'=HYPERLINK(...)`` when its label is
    ``=HYPERLINK(...)``: read back as is, its targets would match no segment of this period.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.present import from_spreadsheet_safe, spreadsheet_safe
    >>> labels = pd.DataFrame({"label": ["=HYPERLINK(1)", "'quoted", "basic", "-", "it's"]})
    >>> from_spreadsheet_safe(spreadsheet_safe(labels)).equals(labels)
    True
    """

    def cell(v: Any) -> Any:
        return v[1:] if isinstance(v, str) and v.startswith("'") and v[1:].startswith((*_FORMULA_START, "'")) else v

    out = frame.copy()
    for name in columns if columns is not None else list(out.columns):
        col = out[name]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
                or pd.api.types.is_bool_dtype(col)):
            out[name] = col.map(cell, na_action="ignore")
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as a CSV that is safe to open in a spreadsheet (see :func:`spreadsheet_safe`).

    Text is quoted, numbers are not, so they stay numbers.
    """
    path = Path(path)
    spreadsheet_safe(frame).to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    return path


def round_significant(values: Any, digits: int = 3) -> Any:
    """Round to ``digits`` significant digits (elementwise for arrays, Series and DataFrames).

    Model estimates and standard errors are shown to what they mean: an optimiser's
    last digits differ between machines, a standard error's third digit means little.

    Examples
    --------
    >>> from engagement.present import round_significant
    >>> round_significant(7.7215, 2), round_significant(688731.9, 3), round_significant(0.0012345, 2)
    (7.7, 689000.0, 0.0012)
    """
    if isinstance(values, pd.DataFrame):
        return values.apply(lambda col: round_significant(col, digits) if pd.api.types.is_float_dtype(col) else col)
    if isinstance(values, pd.Series):
        return pd.Series(round_significant(values.to_numpy(dtype="float64"), digits), index=values.index,
                         name=values.name)
    arr = np.asarray(values, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where((arr == 0) | ~np.isfinite(arr), 0, np.floor(np.log10(np.abs(arr))))
        factor = 10.0 ** (digits - 1 - mag)
        out = np.where(np.isfinite(arr) & (arr != 0), np.round(arr * factor) / factor, arr)
    return float(out) if out.ndim == 0 else out


def format_money(value: float, *, digits: int = 3) -> str:
    """Money as a manager reads it: whole dollars below $1,000, else ``digits`` significant digits.

    Examples
    --------
    >>> from engagement.present import format_money
    >>> format_money(160.94), format_money(688731.4), format_money(float("nan"))
    ('$161', '$689,000', 'unavailable')
    """
    if value is None or not math.isfinite(value):
        return "unavailable"
    if abs(value) < 1000:
        return f"${value:,.0f}"
    return f"${round_significant(value, digits):,.0f}"


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


def level_label(confidence: float) -> str:
    """A confidence level as reports write it.

    Examples
    --------
    >>> from engagement.present import level_label
    >>> level_label(0.95), level_label(0.9), level_label(0.995)
    ('95%', '90%', '99.5%')
    """
    return f"{round(confidence * 100, 6):g}%"


def headline(table: pd.DataFrame, metrics: Sequence[str], *, segment: str = "all", value: str = "all",
             confidence: float = 0.95) -> pd.DataFrame:
    """One row per metric: this period with its interval, the previous period and a year earlier.

    ``table`` is :func:`engagement.measure.measure` output, measured at ``confidence`` (the interval column
    is named after it). Unavailable metrics say why.
    """
    interval = f"{level_label(confidence)} interval"
    rows = []
    d = table[(table.segment == segment) & (table.segment_value == value)]
    for metric in metrics:
        m = d[d.metric == metric].set_index("period_role")
        name = catalog.name(metric)
        if m.empty:
            rows.append({"metric": name, "this period": "not measured", interval: "", "n": "",
                         "previous period": "", "a year earlier": ""})
            continue
        if "current" not in m.index:  # measured in other periods only (e.g. CLV:CAC without churned customers)
            rows.append({"metric": name, "this period": "unavailable", interval: "nothing to measure this period",
                         "n": "", "previous period": "", "a year earlier": ""})
            continue
        cur = m.loc["current"]
        if cur.status != "ok" or pd.isna(cur.value):  # an empty population reads "unavailable", never 0 or NaN
            # a blank marked ok: a table measured before such figures read unavailable (an earlier report's)
            why = cur.reason if cur.status != "ok" else nothing_to_measure(cur.method)
            rows.append({"metric": name, "this period": "unavailable", interval: why, "n": "",
                         "previous period": "", "a year earlier": ""})
            continue
        unit = _unit(metric, cur.unit)
        rows.append({
            "metric": name,
            "this period": format_value(cur.value, unit),
            interval: format_interval(cur.ci_low, cur.ci_high, unit),
            "n": f"{int(cur.n):,}",
            "previous period": format_value(m.loc["previous"].value, unit) if "previous" in m.index else "",
            "a year earlier": format_value(m.loc["year_ago"].value, unit) if "year_ago" in m.index else "",
        })
    return pd.DataFrame(rows)
