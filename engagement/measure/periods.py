"""Report periods written as analysts write them: "2024-11", "2024Q4", "2024".

With a fiscal year that starts in month ``m`` (``fiscal_start_month``), quarters
and years follow pandas' convention: the fiscal year is named after the calendar
year in which it **ends** (with an April start, "2025Q1" is April-June 2024 and
"2025" is April 2024 - March 2025).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

import pandas as pd

__all__ = ["Period", "parse_period"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    """A calendar or fiscal month, quarter or year: ``[start, end)``.

    Examples
    --------
    >>> from engagement.measure import parse_period
    >>> p = parse_period("2024Q4")
    >>> p.start, p.end
    (Timestamp('2024-10-01 00:00:00'), Timestamp('2025-01-01 00:00:00'))
    >>> p.previous().label, p.year_ago().label
    ('2024Q3', '2023Q4')
    """

    label: str
    kind: str  # "month" | "quarter" | "year"
    start: pd.Timestamp
    end: pd.Timestamp
    fiscal_start_month: int = 1

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def _pandas(self) -> pd.Period:
        return pd.Period(self.label, freq=_freq(self.kind, self.fiscal_start_month))

    def shift(self, n: int) -> Period:
        """The period ``n`` steps later (negative: earlier) of the same kind."""
        return _from_pandas(self._pandas() + n, self.kind, self.fiscal_start_month)

    def previous(self) -> Period:
        """The period just before."""
        return self.shift(-1)

    def year_ago(self) -> Period:
        """The same period a year earlier."""
        return self.shift(-{"month": 12, "quarter": 4, "year": 1}[self.kind])

    def months(self) -> list[pd.Timestamp]:
        """Start of every calendar month in the period."""
        return list(pd.date_range(self.start, self.end - pd.Timedelta(days=1), freq="MS"))


def _freq(kind: str, fiscal_start_month: int) -> str:
    if kind == "month":
        return "M"
    end_month = calendar.month_abbr[(fiscal_start_month - 2) % 12 + 1].upper()
    return f"Q-{end_month}" if kind == "quarter" else f"Y-{end_month}"


def _from_pandas(p: pd.Period, kind: str, fiscal_start_month: int) -> Period:
    label = {"month": p.strftime("%Y-%m"), "quarter": f"{p.qyear}Q{p.quarter}", "year": f"{p.year}"}[kind]
    return Period(label, kind, p.start_time.normalize(), (p + 1).start_time.normalize(), fiscal_start_month)


def parse_period(text: str, *, fiscal_start_month: int = 1) -> Period:
    """Parse ``"YYYY-MM"``, ``"YYYYQn"`` or ``"YYYY"`` into a :class:`Period`.

    Examples
    --------
    >>> from engagement.measure import parse_period
    >>> parse_period("2024-11").end
    Timestamp('2024-12-01 00:00:00')
    >>> fy = parse_period("2025Q1", fiscal_start_month=4)
    >>> fy.start, fy.end
    (Timestamp('2024-04-01 00:00:00'), Timestamp('2024-07-01 00:00:00'))
    """
    if not isinstance(fiscal_start_month, int) or not 1 <= fiscal_start_month <= 12:
        raise ValueError(f"`fiscal_start_month` must be 1..12, got {fiscal_start_month!r}.")
    text = str(text).strip()
    if m := _MONTH.match(text):
        if not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"`period` {text!r}: month must be 01..12.")
        kind = "month"
    elif _QUARTER.match(text):
        kind = "quarter"
    elif _YEAR.match(text):
        kind = "year"
    else:
        raise ValueError(f"`period` must look like '2024-11', '2024Q4' or '2024', got {text!r}.")
    return _from_pandas(pd.Period(text, freq=_freq(kind, fiscal_start_month)), kind, fiscal_start_month)


def latest_complete_period(last: pd.Timestamp, *, kind: str = "quarter", fiscal_start_month: int = 1) -> Period:
    """The latest period of ``kind`` that ends by ``last`` (the data's last timestamp): a period is complete once its
    last day has data.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.measure.periods import latest_complete_period
    >>> latest_complete_period(pd.Timestamp("1998-06-30")).label, latest_complete_period(pd.Timestamp("2024-03-20")).label
    ('1998Q2', '2023Q4')
    """
    if kind not in ("month", "quarter", "year"):
        raise ValueError(f"`kind` must be 'month', 'quarter' or 'year', got {kind!r}.")
    p = _from_pandas(pd.Period(pd.Timestamp(last), freq=_freq(kind, fiscal_start_month)), kind, fiscal_start_month)
    return p if pd.Timestamp(last) >= p.end - pd.Timedelta(days=1) else p.previous()
