"""Cohort retention matrices and daily active-user series (exact, computed in the engine)."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from engagement._validate import check_argument
from engagement.data.load import DataLike, Dataset, as_dataset
from engagement.intervals import wilson_interval

__all__ = ["cohort_retention", "active_users_series"]


def _month_index(ts: Any) -> Any:
    return ts.year() * 12 + ts.month() - 1


def _ds(data: DataLike) -> Dataset:
    return as_dataset(data)


def cohort_retention(
    data: DataLike,
    *,
    activity: str = "subscription",
    kind: str = "on",
    as_of: Any = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Monthly acquisition-cohort retention: the share of each sign-up month still retained k months later.

    Parameters
    ----------
    activity : {"subscription", "events", "orders"}
        ``"subscription"``: not cancelled by the end of month k (k = 0 is the
        sign-up month). ``"events"`` / ``"orders"``: had a product event / an
        order in month k.
    kind : {"on", "on_or_after"}
        For activity-based retention: active in month k exactly ("on", N-day
        style), or in month k or any later month ("on or after", unbounded; never
        increases with k). Subscription retention is the same either way.
    as_of : date-like, optional
        End of the data; months not complete by then are **immature**: flagged
        and given no value (counting them would understate retention). Default:
        the latest sign-up, event or order.

    Returns
    -------
    DataFrame
        ``cohort`` ("YYYY-MM"), ``month`` (k), ``cohort_size``, ``retained``,
        ``share``, ``ci_low``, ``ci_high`` (Wilson) and ``mature``.
    """
    check_argument("activity", ["subscription", "events", "orders"], activity)
    check_argument("kind", ["on", "on_or_after"], kind)
    ds = _ds(data)
    c = ds["customers"]
    cm = _month_index(c.signup_at)
    if as_of is None:
        stamps = [c.signup_at.max()]
        for table, col in (("events", "occurred_at"), ("orders", "ordered_at")):
            if ds.has(table):
                stamps.append(ds[table][col].max())
        as_of_ts = max(pd.Timestamp(s.to_pandas()) for s in stamps)
    else:
        as_of_ts = pd.Timestamp(as_of)
    # the last complete month: month index m is complete when its last day <= as_of
    last_complete = as_of_ts.year * 12 + as_of_ts.month - 1 - (0 if (as_of_ts + pd.Timedelta(days=1)).month
                                                               != as_of_ts.month else 1)
    sizes = c.group_by(cohort=cm).aggregate(cohort_size=c.count()).to_pandas()
    if activity == "subscription":
        if "cancelled_at" in c.columns:
            gone = ibis.ifelse(c.cancelled_at.isnull(), 10**6, _month_index(c.cancelled_at) - cm)
        else:
            gone = ibis.literal(10**6)
        # retained at the end of month k  <=>  cancelled in a later month (or never): last k = gone - 1
        last = c.group_by(cohort=cm, last=gone - 1).aggregate(n=c.count()).to_pandas()
        on = None
    else:
        t = ds[activity]
        col = "occurred_at" if activity == "events" else "ordered_at"
        j = t.join(c.select(customer_id=c.customer_id, cm=cm), "customer_id")
        k = _month_index(j[col]) - j.cm
        per = j.select(customer_id=j.customer_id, cohort=j.cm, k=k).distinct()
        on = per.group_by(["cohort", "k"]).aggregate(n=per.count()).to_pandas()
        mx = per.group_by(["customer_id", "cohort"]).aggregate(last=per.k.max())
        last = mx.group_by(["cohort", "last"]).aggregate(n=mx.count()).to_pandas()
    rows = []
    for cohort, size in sizes.sort_values("cohort").itertuples(index=False):
        horizon = last_complete - cohort
        ks = range(0, max(last_complete - cohort, -1) + 2) if horizon >= -1 else range(0)
        lc = last[last.cohort == cohort].set_index("last")["n"]
        oc = on[on.cohort == cohort].set_index("k")["n"] if on is not None else None
        for k in ks:
            mature = k <= horizon
            if activity == "subscription" or kind == "on_or_after":
                retained = int(lc[lc.index >= k].sum())
            else:
                assert oc is not None  # activity cohorts have their on-month counts
                retained = int(oc.get(k, 0))
            low, high = wilson_interval(retained, int(size), confidence) if mature else (np.nan, np.nan)
            rows.append({"cohort": f"{cohort // 12:04d}-{cohort % 12 + 1:02d}", "month": k,
                         "cohort_size": int(size), "retained": retained if mature else np.nan,
                         "share": retained / size if mature else np.nan, "ci_low": low, "ci_high": high,
                         "mature": mature})
    return pd.DataFrame(rows, columns=["cohort", "month", "cohort_size", "retained", "share", "ci_low",
                                       "ci_high", "mature"])


def active_users_series(
    data: DataLike,
    *,
    start: Any,
    end: Any,
) -> pd.DataFrame:
    """Daily DAU and trailing-window WAU (7 days) and MAU (30 days), with DAU/MAU.

    A customer counts on day d in a W-day window if they had a product event on
    one of the days d-W+1 .. d (PostHog's and GA4's trailing windows). Exact
    distinct counts, computed as interval coverage in the engine: each active
    day covers the next W days up to the customer's next active day.

    Returns
    -------
    DataFrame
        ``day, dau, wau, mau, stickiness`` for every day in ``[start, end)``.
    """
    ds = _ds(data)
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    ev = ds["events"]
    lo = start_ts - pd.Timedelta(days=30)
    ev = ev.filter((ev.occurred_at >= ibis.timestamp(lo.to_pydatetime()))
                   & (ev.occurred_at < ibis.timestamp(end_ts.to_pydatetime())))
    days = ev.select(customer_id=ev.customer_id, day=ev.occurred_at.truncate("D")).distinct()
    epoch = ibis.timestamp(lo.to_pydatetime())
    d = days.mutate(i=(days.day.epoch_seconds() - epoch.epoch_seconds()) // 86_400)
    nxt = d.i.lead().over(ibis.window(group_by=d.customer_id, order_by=d.i))
    d = d.mutate(nxt=nxt)
    grid = pd.date_range(start_ts, end_ts - pd.Timedelta(days=1), freq="D")
    n = (end_ts - lo).days + 31
    out = {"day": grid}
    for name, width in (("dau", 1), ("wau", 7), ("mau", 30)):
        stop = ibis.least(d.i + width, d.nxt.fill_null(10**9))  # exclusive
        starts = d.group_by(i=d.i).aggregate(n=d.count()).to_pandas()
        ends = d.group_by(i=stop).aggregate(n=d.count()).to_pandas()
        delta = np.zeros(n + width + 1)
        np.add.at(delta, starts["i"].to_numpy(dtype=int), starts["n"].to_numpy())
        e = ends[ends["i"] < len(delta)]
        np.add.at(delta, e["i"].to_numpy(dtype=int), -e["n"].to_numpy())
        covered = np.cumsum(delta)
        offset = (start_ts - lo).days
        out[name] = covered[offset:offset + len(grid)].astype(int)
    frame = pd.DataFrame(out)
    frame["stickiness"] = np.where(frame["mau"] > 0, frame["dau"] / frame["mau"].where(frame["mau"] > 0, 1), np.nan)
    return frame
