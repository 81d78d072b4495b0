"""Every metric per period and per segment, from the validated raw tables.

How it works, so it stays fast at a million customers (the modules it calls):

1. :mod:`~engagement.measure.segments`: a wide table of each customer's value of
   every segment column, derived segments included.
2. :mod:`~engagement.measure.facts`: one per-customer fact table for the period
   (subscription flags, and per source table the additive quantities the metrics
   need), summed per cell of segment values in one ``GROUP BY`` and rolled up to
   ``all`` and each segment's values. Only these few hundred rows become pandas.
   Float sums are exact (:func:`~engagement.measure._engine.exact_sum`), so the
   same data give the same numbers on every run, however the engine's threads add.
3. :mod:`~engagement.measure.declarations`: one declaration per metric says what
   it needs, what kind of figure it is and how it comes from the sums;
   :mod:`~engagement.measure.results` turns the sums into rows (medians of support
   times, social posts and marketing spend at their own level).

Every expression is plain Ibis; nothing here is DuckDB-specific.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from engagement.data.load import DataLike, Dataset, as_dataset
from engagement.measure._engine import exact_sum as _xsum
from engagement.measure.facts import customer_facts, segment_sums, social_totals, spend_by_channel, ticket_medians
from engagement.measure.periods import Period, parse_period
from engagement.measure.results import (
    COLUMNS,
    channel_results,
    platform_results,
    segment_results,
    ticket_results,
    to_row,
    unavailable_rows,
)
from engagement.measure.segments import DEFAULT_SEGMENTS, DERIVED_SEGMENTS, segment_columns, segment_table
from engagement.measure.sessions import sessions

__all__ = ["measure", "measure_series", "DEFAULT_SEGMENTS", "DERIVED_SEGMENTS", "COLUMNS", "segment_table",
           "sessions"]


def _as_of(ds: Dataset) -> pd.Timestamp:
    candidates = []
    for table, col in (("events", "occurred_at"), ("orders", "ordered_at"), ("pageviews", "viewed_at"),
                       ("customers", "signup_at")):
        if ds.has(table):
            candidates.append(ds[table][col].max())
    values = [pd.Timestamp(c.to_pandas()) for c in candidates]
    values = [v for v in values if not pd.isna(v)]
    return max(values) if values else pd.Timestamp.max


def measure(
    data: DataLike,
    period: str | Period,
    *,
    segments: Iterable[str] = DEFAULT_SEGMENTS,
    compare: bool = True,
    confidence: float = 0.95,
    fiscal_start_month: int = 1,
    first_week_min_days: int = 2,
    session_timeout_minutes: float = 30.0,
    as_of: Any = None,
) -> pd.DataFrame:
    """Measure every available metric for ``period`` (and its comparisons) per segment.

    Parameters
    ----------
    data : Dataset, mapping of DataFrames, or path
        A loaded :class:`~engagement.data.Dataset`; DataFrames or a path are
        loaded (and validated) first.
    period : str or Period
        ``"2024Q4"``, ``"2024-11"`` or ``"2024"``.
    segments : iterable of str
        Customer attribute columns and derived segments (``tenure_band``,
        ``new_vs_returning``, ``value_tier``); ``all`` is always included.
    compare : bool, default True
        Also measure the previous period and the same period a year earlier.
    confidence : float, default 0.95
    fiscal_start_month : int, default 1
    first_week_min_days : int, default 2
        Active days in days 0-6 that make a new customer "engaged in week one".
    session_timeout_minutes : float, default 30
    as_of : date-like, optional
        When the data ends (for first-week completeness); default the latest
        event, order, pageview or sign-up.

    Returns
    -------
    DataFrame
        :data:`COLUMNS`: ``period, period_role, segment, segment_value, metric,
        value, ci_low, ci_high, se, n, numerator, denominator, unit, kind,
        sampled, method, status, reason``, sorted deterministically. ``kind`` and
        ``sampled`` come from the metric's declaration
        (:mod:`engagement.measure.declarations`); metrics whose table is missing
        have status ``unavailable`` and the reason.

    Examples
    --------
    Three customers, two of them at the start of the quarter, one of whom cancels:

    >>> import pandas as pd
    >>> from engagement.measure import measure
    >>> customers = pd.DataFrame({
    ...     "customer_id": ["a", "b", "c"],
    ...     "signup_at": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-11-02"]),
    ...     "cancelled_at": pd.to_datetime([None, "2024-12-01", None])})
    >>> t = measure({"customers": customers}, "2024Q4", segments=[], compare=False)
    >>> churn = t[t.metric == "churn_rate"].iloc[0]
    >>> float(churn.value), int(churn.n), churn.kind, bool(churn.sampled)
    (0.5, 2, 'proportion', True)
    >>> t.loc[t.metric == "aov", ["status", "reason"]].values.tolist()
    [['unavailable', 'the dataset has no orders table']]
    """
    ds = as_dataset(data)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fiscal_start_month)
    segments = list(dict.fromkeys(segments))
    if "value_tier" in segments and not ds.has("orders"):
        segments.remove("value_tier")  # a default segment; without orders there is no value to tier
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else _as_of(ds)
    roles = [("current", p)] + ([("previous", p.previous()), ("year_ago", p.year_ago())] if compare else [])
    rows: list[dict[str, Any]] = []
    for role, per in roles:
        rows.extend(_measure_one(ds, per, role, segments, confidence, as_of_ts, first_week_min_days,
                                 session_timeout_minutes))
    for role, per in roles:
        rows.extend(unavailable_rows(per, role, set(ds.tables)))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    role_order = {"current": 0, "previous": 1, "year_ago": 2}
    frame["_r"] = frame["period_role"].map(role_order)
    frame["_s"] = (frame["segment"] != "all").astype(int)
    frame = frame.sort_values(["_r", "_s", "segment", "segment_value", "metric"], kind="stable")
    frame = frame.drop(columns=["_r", "_s"]).reset_index(drop=True)
    for col in ("value", "ci_low", "ci_high", "se", "numerator", "denominator"):
        frame[col] = frame[col].astype("float64")
    frame["n"] = frame["n"].astype("int64")
    frame["sampled"] = frame["sampled"].astype(bool)
    return frame


def _measure_one(ds: Dataset, per: Period, role: str, segments: list[str], conf: float,
                 as_of: pd.Timestamp, fw_min: int, timeout: float) -> list[dict[str, Any]]:
    have = set(ds.tables)
    wide = segment_columns(ds, per, segments).cache()
    facts, anonymous, caches = customer_facts(ds, per, as_of, timeout)
    sums = segment_sums(facts, wide, segments, fw_min)
    if anonymous is not None:
        anon = anonymous.aggregate(**{c: _xsum(anonymous[c]) for c in anonymous.columns if c != "customer_id"})
        anon_row = anon.to_pandas().iloc[0].fillna(0)
        mask = sums["segment"] == "all"
        for c in anon_row.index:
            sums.loc[mask, c] = sums.loc[mask, c] + anon_row[c]
    results = list(segment_results(sums, have, confidence=conf, period=per, first_week_min_days=fw_min))
    if ds.has("marketing_spend"):
        results += channel_results(sums, spend_by_channel(ds, per), confidence=conf)
    if ds.has("support_tickets"):
        results += ticket_results(ticket_medians(ds, per, wide, segments, conf), confidence=conf)
    if ds.has("social_posts"):
        results += platform_results(social_totals(ds, per), confidence=conf)
    for cached in (wide, *caches):
        cached.release()
    return [to_row(per, role, segment, value, res) for segment, value, res in results]


def measure_series(
    data: DataLike,
    period: str | Period,
    *,
    periods: int = 8,
    segments: Iterable[str] = (),
    confidence: float = 0.95,
    fiscal_start_month: int = 1,
    known: pd.DataFrame | None = None,
    **options: Any,
) -> pd.DataFrame:
    """The measure table for the ``periods`` periods ending with ``period`` (oldest first).

    Same columns as :func:`measure`; ``period_role`` is ``"series"``. Used for
    trend charts and trend tests. Periods already measured in ``known`` (a
    :func:`measure` table with the same options) are taken from it.
    """
    ds = as_dataset(data)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fiscal_start_month)
    if not isinstance(periods, int) or periods < 1:
        raise ValueError(f"`periods` must be a whole number >= 1, got {periods!r}.")
    segments = list(segments)
    frames = []
    for k in range(periods - 1, -1, -1):
        label = p.shift(-k).label
        if known is not None and (known.period == label).any():
            reuse = known[(known.period == label) & (known.segment.isin(["all", *segments]))]
            frames.append(reuse.assign(period_role="series"))
            continue
        t = measure(ds, p.shift(-k), segments=segments, compare=False, confidence=confidence, **options)
        frames.append(t.assign(period_role="series"))
    return pd.concat(frames, ignore_index=True)
