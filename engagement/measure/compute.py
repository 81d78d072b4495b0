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

import ibis
import pandas as pd

from engagement.data.load import DataLike, Dataset, as_dataset
from engagement.measure._engine import exact_sum as _xsum
from engagement.measure.facts import (
    FLAG_COLUMNS,
    Periods,
    customer_facts,
    segment_sums,
    social_totals,
    spend_by_channel,
    ticket_medians,
)
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

__all__ = ["measure", "measure_series", "data_range", "available_columns", "resolve_business_model", "BUSINESS_MODELS", "DEFAULT_SEGMENTS",
           "DERIVED_SEGMENTS", "COLUMNS", "segment_table", "sessions"]


_ACTIVITY = (("events", "occurred_at"), ("orders", "ordered_at"), ("pageviews", "viewed_at"), ("customers", "signup_at"),
             ("email_events", "occurred_at"), ("survey_responses", "responded_at"), ("support_tickets", "opened_at"))
BUSINESS_MODELS = ("auto", "subscription", "non_contractual")
#: periods (a trend series, the comparisons) are measured together while their number times the data's rows stays
#: below this. Below it, Ibis building and compiling each period's twenty queries is most of a period's time (on
#: the demo data eight quarters took 6.6-10.3 s one by one, 1.8-2.8 s together); far above it the engine's work
#: is, and more periods at once only take more memory (a million customers' 80M rows, three quarters: 38 s
#: together as one by one, with 2.2 GB instead of 1.1 GB)
BATCH_ROWS = 20_000_000


def data_range(data: DataLike) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The first and last timestamp of the data's activity (sign-ups, orders, events, pageviews, email events,
    survey answers, support tickets; cancellations count for the last); None if empty.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.measure import data_range
    >>> c = pd.DataFrame({"customer_id": [1, 2], "signup_at": pd.to_datetime(["2023-03-05", "2024-01-02"])})
    >>> [str(t.date()) for t in data_range({"customers": c})]
    ['2023-03-05', '2024-01-02']
    """
    ds = as_dataset(data)
    # kept with the Dataset, for its tables as they are: a report's measurement asks for it once per period (the
    # trend series eight times), 0.08 s a time on the demo data
    # (the entry holds the tables it was computed from, so no other table can take one of their ids meanwhile)
    key = ("data_range", *((t, id(table)) for t, table in sorted(ds.tables.items())))
    if key not in ds.memo:
        ds.memo[key] = (tuple(ds.tables.values()), _data_range(ds))
    return ds.memo[key][1]


def _data_range(ds: Dataset) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    columns = [(t, c, "both") for t, c in _ACTIVITY if ds.has(t)]
    if "cancelled_at" in ds["customers"].columns:  # a cancellation is an observation too (of the last day only)
        columns.append(("customers", "cancelled_at", "last"))
    lows: list[pd.Timestamp] = []
    highs: list[pd.Timestamp] = []
    parts = []
    for t, c, which in columns:
        known = ds.known_range(t, c)  # a table kept lazily: counted when validated (no Parquet statistics)
        if known is not None:
            lows += [known[0]] if known[0] is not None and which == "both" else []
            highs += [known[1]] if known[1] is not None else []
            continue
        lo = ds[t][c].min().cast("timestamp") if which == "both" else ibis.null("timestamp")
        parts.append(ds[t].aggregate(lo=lo, hi=ds[t][c].max().cast("timestamp")))
    if parts:  # one query (a round trip and a compilation each cost more than scanning these columns' statistics)
        ranges = ibis.union(*parts).to_pandas()
        lows += [pd.Timestamp(v) for v in ranges["lo"] if not pd.isna(v)]
        highs += [pd.Timestamp(v) for v in ranges["hi"] if not pd.isna(v)]
    return (min(lows) if lows else None), (max(highs) if highs else None)


def resolve_business_model(ds: Dataset, business_model: str = "auto") -> str:
    """``subscription`` or ``non_contractual``: ``auto`` reads a ``customers.cancelled_at`` column as subscriptions.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.data import as_dataset
    >>> from engagement.measure import resolve_business_model
    >>> shop = as_dataset({"customers": pd.DataFrame({"customer_id": [1], "signup_at": pd.to_datetime(["2024-01-01"])})})
    >>> resolve_business_model(shop)
    'non_contractual'
    """
    available = available_columns(ds, business_model)
    return "subscription" if "cancelled_at" in available["customers"] else "non_contractual"


def available_columns(ds: Dataset, business_model: str = "auto") -> dict[str, set[str]]:
    """Each table of ``ds`` with its columns, as the declarations read them under ``business_model``.

    ``auto`` takes a ``customers.cancelled_at`` column to mean a subscription
    business; ``non_contractual`` ignores it (subscription churn and retention
    become unavailable, inactivity churn stands in); ``subscription`` requires it.
    """
    if business_model not in BUSINESS_MODELS:
        raise ValueError(f"`business_model` must be one of {list(BUSINESS_MODELS)}, got {business_model!r}.")
    available = {t: set(ds[t].columns) for t in ds.tables}
    if business_model == "subscription" and "cancelled_at" not in available["customers"]:
        raise ValueError("business_model='subscription' needs customers.cancelled_at (when each customer cancelled, "
                         f"empty if never); customers has {sorted(available['customers'])}.")
    if business_model == "non_contractual":
        available["customers"].discard("cancelled_at")
    return available


def measure(
    data: DataLike,
    period: str | Period,
    *,
    segments: Iterable[str] | None = None,
    compare: bool = True,
    confidence: float = 0.95,
    fiscal_start_month: int = 1,
    first_week_min_days: int = 2,
    session_timeout_minutes: float = 30.0,
    as_of: Any = None,
    business_model: str = "auto",
    inactivity_days: int = 365,
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
        None (the default): those of :data:`DEFAULT_SEGMENTS` the data has;
        a segment named here must exist.
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
    business_model : {"auto", "subscription", "non_contractual"}, default "auto"
        ``auto``: a ``customers.cancelled_at`` column means subscriptions.
        Without cancellations, subscription churn, retention and the simple CLV
        are unavailable (they would read 0% and 100%), and
        ``inactivity_churn_rate`` is the churn to read.
    inactivity_days : int, default 365
        The inactivity churn window: a customer who ordered in the
        ``inactivity_days`` before the period and not in the ``inactivity_days``
        before its end has lapsed.

    A comparison period that ends before the data starts is not measured: its
    rows are ``unavailable`` ("no comparison: ..."), never zeros. A ``period``
    outside the data is refused.

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
    segments = _segments_the_data_has(ds, list(dict.fromkeys(DEFAULT_SEGMENTS if segments is None else segments)),
                                      segments is None)
    roles = [("current", p)] + ([("previous", p.previous()), ("year_ago", p.year_ago())] if compare else [])
    rows = _measured(ds, p, roles, segments, confidence=confidence, first_week_min_days=first_week_min_days,
                     session_timeout_minutes=session_timeout_minutes, as_of=as_of, business_model=business_model,
                     inactivity_days=inactivity_days)
    return _sorted(pd.DataFrame(rows, columns=COLUMNS))


def _measured(ds: Dataset, p: Period, roles: list[tuple[str, Period]], segments: list[str], *,
              confidence: float = 0.95, first_week_min_days: int = 2, session_timeout_minutes: float = 30.0,
              as_of: Any = None, business_model: str = "auto", inactivity_days: int = 365) -> list[dict[str, Any]]:
    """The rows of the ``roles``' periods, once the options and the period ``p`` are checked against the data."""
    available = available_columns(ds, business_model)
    if not isinstance(inactivity_days, int) or isinstance(inactivity_days, bool) or inactivity_days < 1:
        raise ValueError(f"`inactivity_days` must be a whole number of days >= 1, got {inactivity_days!r}.")
    first, last = data_range(ds)
    if first is None or last is None:
        raise ValueError("The dataset has no dated rows (customers.signup_at is empty): there is nothing to measure.")
    if p.end <= first or p.start > last:
        raise ValueError(f"Period {p.label} ({p.start.date()} to {(p.end - pd.Timedelta(days=1)).date()}) is outside "
                         f"the data, which runs from {first.date()} to {last.date()}.")
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else last
    return _measure_periods(ds, roles, segments, first=first, conf=confidence, as_of=as_of_ts,
                            fw_min=first_week_min_days, timeout=session_timeout_minutes, available=available,
                            inactivity_days=inactivity_days)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """The measure table in its order (current, previous, year ago; all, then segments by name and value; metric)
    and its columns' types."""
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


def _segments_the_data_has(ds: Dataset, segments: list[str], defaults: bool) -> list[str]:
    """The default segments are those the data has; segments the analyst named must exist (segment_columns says
    why not)."""
    if not defaults:
        return segments
    have = set(ds["customers"].columns)
    return [s for s in segments if s in have or (s in DERIVED_SEGMENTS and (s != "value_tier" or ds.has("orders")))]


def _measure_periods(ds: Dataset, roles: list[tuple[str, Period]], segments: list[str], *, first: pd.Timestamp,
                     conf: float, as_of: pd.Timestamp, fw_min: int, timeout: float, available: dict[str, set[str]],
                     inactivity_days: int) -> list[dict[str, Any]]:
    """The rows of each ``(role, period)``: a period that ends before the data starts is ``no comparison``; the
    others are measured together, by one set of queries (:class:`~engagement.measure.facts.Periods`), as many at a
    time as :data:`BATCH_ROWS` allows."""
    rows: list[dict[str, Any]] = []
    measured = []
    for role, per in roles:
        if per.end <= first:  # before the data starts: no comparison, not zeros
            rows.extend(unavailable_rows(per, role, available, why_all=(
                f"no comparison: {per.label} ends before the data starts ({first.date()})")))
        else:
            measured.append((role, per))
    data_rows = int(ds.report["rows_used"].sum()) if "rows_used" in ds.report.columns else 0
    size = max(1, BATCH_ROWS // max(data_rows, 1))
    for i in range(0, len(measured), size):
        rows.extend(_measure_batch(ds, measured[i:i + size], segments, first=first, conf=conf, as_of=as_of,
                                   fw_min=fw_min, timeout=timeout, available=available,
                                   inactivity_days=inactivity_days))
    return rows


def _measure_batch(ds: Dataset, measured: list[tuple[str, Period]], segments: list[str], *, first: pd.Timestamp,
                   conf: float, as_of: pd.Timestamp, fw_min: int, timeout: float, available: dict[str, set[str]],
                   inactivity_days: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    P = Periods([per for _, per in measured], inactivity_days)
    facts = customer_facts(ds, P, as_of, timeout, inactivity_days)
    # each customer's segment values and flags: every source's sums and the support times read it
    wide = segment_columns(ds, P, segments, customers=facts.flags, keep=FLAG_COLUMNS,
                           orders=facts.parts.get("orders")).cache()
    sums = segment_sums(wide, facts, segments, fw_min)
    anonymous, caches = facts.anonymous, facts.caches
    if anonymous is not None:  # the anonymous visitors' sessions count for all customers
        sums_of = {c: _xsum(anonymous[c]) for c in anonymous.columns if c not in ("customer_id", *P.key)}
        anon = (anonymous.group_by(P.key) if P.key else anonymous).aggregate(**sums_of).to_pandas()
        for r in anon.to_dict("records"):
            mask = (sums["segment"] == "all") & (sums["__p"] == r.get("__p", 0))
            for c in sums_of:
                sums.loc[mask, c] = sums.loc[mask, c] + (0 if pd.isna(r[c]) else r[c])
    # freed before the support times, which read only the segment table: their sorted lists then reuse the facts'
    # memory (at a million customers the process held 1.17 GB after them, 0.86 GB now)
    for cached in caches:
        cached.release()
    spend = spend_by_channel(ds, P) if ds.has("marketing_spend") else None
    tickets = ticket_medians(ds, P, wide, segments, conf) if ds.has("support_tickets") else None
    social = social_totals(ds, P) if ds.has("social_posts") else None
    wide.release()
    for k, (role, per) in enumerate(measured):
        mine = sums[sums["__p"] == k].drop(columns="__p").reset_index(drop=True)
        results = list(segment_results(mine, available, confidence=conf, period=per, first_week_min_days=fw_min,
                                       inactivity_days=inactivity_days))
        if spend is not None:
            results += channel_results(mine, spend[spend["__p"] == k].drop(columns="__p"), confidence=conf,
                                       subscription="cancelled_at" in available["customers"])
        if tickets is not None:
            results += ticket_results(tickets[tickets["__p"] == k].drop(columns="__p"), confidence=conf,
                                      groups=zip(mine["segment"], mine["segment_value"], strict=True))
        if social is not None:
            results += platform_results(social[social["__p"] == k].drop(columns="__p"), confidence=conf)
        short = {}  # metrics whose window reaches back before the data: unavailable, not a measured 0%
        if per.start - pd.Timedelta(days=inactivity_days) < first:
            short["inactivity_churn_rate"] = (f"needs {inactivity_days} days of orders before {per.label}; the data "
                                              f"starts on {first.date()}")
        rows.extend(r for r in (to_row(per, role, segment, value, res) for segment, value, res in results)
                    if r["metric"] not in short)
        rows.extend(unavailable_rows(per, role, available, why=short))
    return rows


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
    :func:`measure` table with the same options) are taken from it. Periods
    that end before the data starts are absent (not zeros), so a short history
    gives a shorter series; a series that ends before the data starts is
    refused.
    """
    ds = as_dataset(data)
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fiscal_start_month)
    if not isinstance(periods, int) or periods < 1:
        raise ValueError(f"`periods` must be a whole number >= 1, got {periods!r}.")
    segments = list(segments)
    first = data_range(ds)[0]
    frames: dict[str, pd.DataFrame] = {}
    todo = []
    for k in range(periods - 1, -1, -1):
        per = p.shift(-k)
        if first is not None and per.end <= first:
            continue  # before the data: absent
        if known is not None and (known.period == per.label).any():
            frames[per.label] = known[(known.period == per.label) & (known.segment.isin(["all", *segments]))]
        else:
            frames[per.label] = pd.DataFrame()  # measured below, with the others
            todo.append(per)
    if todo:  # all the periods to measure at once: one set of queries
        rows = pd.DataFrame(_measured(ds, todo[-1], [("current", per) for per in todo], segments,
                                      confidence=confidence, **options), columns=COLUMNS)
        for per in todo:
            frames[per.label] = _sorted(rows[rows.period == per.label].reset_index(drop=True))
    frames = {label: t.assign(period_role="series") for label, t in frames.items()}
    if not frames:  # every period ends before the data starts: nothing to show, and most likely a wrong period
        raise ValueError(f"The series of {periods} periods {p.shift(-(periods - 1)).label} to {p.label} ends before "
                         f"the data starts ({first.date() if first is not None else 'no dated rows'}).")
    return pd.concat(frames.values(), ignore_index=True)
