"""Support metrics: first response time and resolution time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engagement._result import MetricResult
from engagement._validate import check_confidence, check_range, numeric_values
from engagement.intervals import NONNEGATIVE, mean_result

__all__ = ["first_response_time", "resolution_time"]


def _durations(start: Any, end: Any, start_name: str, end_name: str) -> tuple[np.ndarray, int]:
    if end is None:
        x, n_missing = numeric_values(start, start_name)
        check_range(x, start_name, 0, np.inf, "A duration cannot be negative.")
        return x, n_missing
    s = pd.Series(pd.to_datetime(pd.Series(start).reset_index(drop=True)))
    e = pd.Series(pd.to_datetime(pd.Series(end).reset_index(drop=True)))
    if len(s) != len(e):
        raise ValueError(f"`{start_name}` ({len(s)}) and `{end_name}` ({len(e)}) must have one value per ticket.")
    if s.isna().any():
        raise ValueError(f"`{start_name}`: {int(s.isna().sum())} of {len(s)} tickets have no open time.")
    seconds = (e - s).dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
    negative = seconds < 0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise ValueError(
            f"`{end_name}`: {int(negative.sum())} of {len(s)} tickets end before `{start_name}` "
            f"(e.g. {e.iloc[i]} < {s.iloc[i]})."
        )
    missing = np.isnan(seconds)
    return seconds[~missing], int(missing.sum())


def first_response_time(
    opened_at: Any,
    first_response_at: Any = None,
    *,
    statistic: str = "median",
    confidence: float = 0.95,
) -> MetricResult:
    """First response time in seconds: ticket opened to first agent reply.

    Parameters
    ----------
    opened_at : array-like of timestamps, or of durations
        Ticket open times; or, with ``first_response_at`` None, the response
        durations themselves (seconds or Timedeltas).
    first_response_at : array-like of timestamps, optional
        First public agent reply; missing for tickets not yet answered.
    statistic : {"median", "mean"}, default "median"
        The median (Intercom's default) resists the long tail; the mean shows it.

    Notes
    -----
    Unanswered tickets have no response time yet: they are *censored*, not zero
    and not ignorable. They are excluded from the statistic and counted in
    ``n_missing``; a large count means the statistic is optimistic. Calendar time,
    not business hours.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.first_response_time([60, 120, 600]).value
    120.0
    """
    x, n_missing = _durations(opened_at, first_response_at, "opened_at", "first_response_at")
    return mean_result(
        "first_response_time", x, name="durations", confidence=check_confidence(confidence), unit="seconds",
        statistic=statistic, clean=(x, n_missing), method_prefix="opened to first reply (unanswered excluded)",
        details={"unanswered": n_missing}, bounds=NONNEGATIVE,
    )


def resolution_time(
    opened_at: Any,
    resolved_at: Any = None,
    *,
    statistic: str = "median",
    confidence: float = 0.95,
) -> MetricResult:
    """Resolution time in seconds: ticket opened to (first) solved.

    Parameters and conventions as :func:`first_response_time`; unresolved tickets
    are censored and counted in ``n_missing``.

    Examples
    --------
    >>> import engagement as eg
    >>> import pandas as pd
    >>> opened = pd.to_datetime(["2024-01-01 09:00", "2024-01-01 10:00"])
    >>> solved = pd.to_datetime(["2024-01-01 11:00", None])
    >>> r = eg.resolution_time(opened, solved)
    >>> r.value, r.n_missing
    (7200.0, 1)
    """
    x, n_missing = _durations(opened_at, resolved_at, "opened_at", "resolved_at")
    return mean_result(
        "resolution_time", x, name="durations", confidence=check_confidence(confidence), unit="seconds",
        statistic=statistic, clean=(x, n_missing), method_prefix="opened to solved (unresolved excluded)",
        details={"unresolved": n_missing}, bounds=NONNEGATIVE,
    )
