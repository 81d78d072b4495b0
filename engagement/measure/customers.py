"""Per-customer facts for the analyses: one row per customer, computed in the engine.

The analyses (customer-level relationships, survival) read customers through
these functions, never the raw tables: only the small per-customer summary
becomes pandas.
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd

from engagement.data.load import DataLike, as_dataset
from engagement.measure._engine import exact_sum
from engagement.measure.periods import Period, parse_period

__all__ = ["customer_summary", "lifetimes", "DAYS_PER_MONTH"]

DAYS_PER_MONTH = 365.25 / 12


def _ts(t: pd.Timestamp) -> Any:
    return ibis.timestamp(t.to_pydatetime())


def customer_summary(data: DataLike, period: str | Period, *,
                     clv: pd.DataFrame | None = None, lookback_days: int = 365) -> pd.DataFrame:
    """One row per customer active in ``period``: survey scores, activity, spend, churn, and CLV if given.

    Columns: ``nps`` (mean NPS answer), ``csat`` (mean CSAT) over the look-back
    window ending with the period; ``active_days``, ``orders``, ``spend``,
    ``aov`` over the same window; ``churned`` (cancelled during the period);
    ``clv`` when a ``customer_id, clv`` frame is given. A small per-customer
    summary computed in the engine.
    """
    ds = as_dataset(data)
    p = period if isinstance(period, Period) else parse_period(period)
    lo, s, e = _ts(p.end - pd.Timedelta(days=lookback_days)), _ts(p.start), _ts(p.end)
    c = ds["customers"]
    cancelled = c.cancelled_at if "cancelled_at" in c.columns else ibis.null("timestamp")
    base = c.filter((c.signup_at < s) & (cancelled.isnull() | (cancelled >= s)))
    out = base.select(customer_id=base.customer_id,
                      churned=cancelled.notnull() & (cancelled < e))
    out = out.mutate(churned=out.churned.cast("int64"))
    parts = []
    if ds.has("survey_responses"):
        r = ds["survey_responses"]
        r = r.filter((r.responded_at >= lo) & (r.responded_at < e))
        parts.append(r.group_by("customer_id").aggregate(
            nps=r.score.mean(where=r.survey == "nps"), csat=r.score.mean(where=r.survey == "csat")))
    if ds.has("events"):
        ev = ds["events"]
        ev = ev.filter((ev.occurred_at >= lo) & (ev.occurred_at < e))
        parts.append(ev.group_by("customer_id").aggregate(active_days=ev.occurred_at.truncate("D").nunique()))
    if ds.has("orders"):
        o = ds["orders"]
        o = o.filter((o.ordered_at >= lo) & (o.ordered_at < e))
        spend = exact_sum(o.revenue)  # the same number every run, however the engine's threads add
        parts.append(o.group_by("customer_id").aggregate(orders=o.count(), spend=spend,
                                                          aov=spend / o.revenue.count()))
    for part in parts:
        j = out.left_join(part, out.customer_id == part.customer_id)
        out = j.select(*[out[c] for c in out.columns], *[part[c] for c in part.columns if c != "customer_id"])
    frame = out.to_pandas().sort_values("customer_id").reset_index(drop=True)
    for col in ("active_days", "orders", "spend"):
        if col in frame.columns:
            frame[col] = frame[col].fillna(0).astype("float64")
    if clv is not None:
        frame = frame.merge(clv[["customer_id", "clv"]], on="customer_id", how="left")
    return frame


def lifetimes(data: DataLike, *, by: str | None = None,
              as_of: Any = None) -> pd.DataFrame:
    """Per customer: time from sign-up to cancellation or censoring (months), event flag, segment.

    A small per-customer summary computed in the engine (no raw event data).
    """
    ds = as_dataset(data)
    c = ds["customers"]
    end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(c.signup_at.max().to_pandas())
    end_lit = ibis.timestamp(end.to_pydatetime())
    cancelled = c.cancelled_at if "cancelled_at" in c.columns else ibis.null("timestamp")
    event = cancelled.notnull() & (cancelled <= end_lit)
    stop = ibis.ifelse(event, cancelled, end_lit)
    cols = {"duration_days": (stop.epoch_seconds() - c.signup_at.epoch_seconds()) / 86_400,
            "event": event.cast("int64")}
    if by is not None:
        if by not in c.columns:
            raise ValueError(f"`by`: customers has no column {by!r}; columns are {list(c.columns)}.")
        cols["segment_value"] = c[by].cast("string").fill_null("(missing)")
    out = c.filter(c.signup_at <= end_lit).select(**cols).to_pandas()
    out["duration"] = out.pop("duration_days") / DAYS_PER_MONTH
    return out
