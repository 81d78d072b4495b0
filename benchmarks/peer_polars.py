"""A Polars lazy implementation of three heavy metric families, the peer :mod:`bench_measure` times us against.

The families are those whose raw tables are the largest: customer flow (churn, retention, new and active
customers), product activity (DAU, WAU, MAU, stickiness, product usage, engagement) and web sessions (visits, page
views, pages per session, bounce rate, session duration, conversion), for ``all`` and every segment, from the
customers, events and pageviews tables. The definitions are the package's (and :mod:`reference_pandas`'s): a
session belongs to the period of its first view, with views a day either side of the period read to sessionise
its edges; sessions cluster in their customer, or in their visitor when anonymous; anonymous visits count for
``all`` only. Per-segment sums come from Polars; the few hundred rows of sums become figures with
:func:`reference_pandas._metrics`, the same formulas as the pandas reference, so the comparison is of the
aggregations over raw rows.

Polars is not one of the project's dependencies: ``pip install polars==1.44.2`` (the benchmark says so when it is
missing).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
from reference_pandas import SUMS, _metrics, quarter_bounds

#: the figures this peer computes (ours computes first-week engagement from the same tables besides)
FAMILIES = ["churn_rate", "retention_rate", "new_customers", "active_customers", "dau", "wau", "mau", "stickiness",
            "product_usage_rate", "engagement_rate", "website_visits", "page_views", "pages_per_session",
            "bounce_rate", "average_session_duration", "conversion_rate"]
#: the default segments these three tables have (value tiers need orders)
SEGMENTS = ["plan", "acquisition_channel", "region", "tenure_band", "new_vs_returning"]
TABLES = ["customers", "events", "pageviews"]

_SUMS = ["at_start", "new", "lost", "at_end", "retained", "active", "n_events", "active_days", "active_weeks",
         "active_months", "users_at_start", "engaged", "n_sessions", "n_pageviews", "bounces", "dur_sum",
         "converting", "web_clusters", "web_s_sq", "web_pv_sq", "web_s_pv", "web_dur_sq", "web_s_dur", "web_b_sq",
         "web_s_b", "web_c_sq", "web_s_c"]
_WEB = [c for c in _SUMS if c.startswith("web_") or c in ("n_sessions", "n_pageviews", "bounces", "dur_sum",
                                                          "converting")]


def measure_polars(folder: str | Path, period: str = "2024Q4", segments: list[str] | None = None,
                   timeout_minutes: float = 30.0) -> pd.DataFrame:
    """``segment, segment_value, metric, value, n, se, ci_low, ci_high`` of :data:`FAMILIES`."""
    segments = SEGMENTS if segments is None else segments
    folder = Path(folder)
    s, e = quarter_bounds(period)
    s_, e_ = s.to_pydatetime(), e.to_pydatetime()
    day = pd.Timedelta(days=1).to_pytimedelta()
    signup, cancelled = pl.col("signup_at"), pl.col("cancelled_at")
    at_start = (signup < s_) & (cancelled.is_null() | (cancelled >= s_))
    lost = at_start & cancelled.is_not_null() & (cancelled < e_)
    customers = pl.scan_parquet(folder / "customers.parquet").filter(signup < e_).select(
        "customer_id",
        *[pl.col(c).fill_null("(missing)") for c in ("plan", "acquisition_channel", "region")],
        tenure_band=pl.when(signup >= s_).then(pl.lit("new this period"))
        .when(signup >= s_ - 365 * day).then(pl.lit("under 1 year")).otherwise(pl.lit("more than 1 year")),
        new_vs_returning=pl.when(signup >= s_).then(pl.lit("new")).otherwise(pl.lit("returning")),
        at_start=at_start.cast(pl.Int64), new=(signup >= s_).cast(pl.Int64), lost=lost.cast(pl.Int64),
        at_end=(cancelled.is_null() | (cancelled >= e_)).cast(pl.Int64),
        retained=(at_start & ~lost).cast(pl.Int64), active=(at_start | (signup >= s_)).cast(pl.Int64),
    )

    ev = pl.scan_parquet(folder / "events.parquet").filter(
        (pl.col("occurred_at") >= s_) & (pl.col("occurred_at") < e_)
    ).select("customer_id", day=pl.col("occurred_at").dt.truncate("1d"))
    activity = ev.group_by("customer_id").agg(
        n_events=pl.len(), active_days=pl.col("day").n_unique(),
        active_weeks=pl.col("day").dt.truncate("1w").n_unique(),  # calendar weeks, Monday start
        active_months=pl.col("day").dt.truncate("1mo").n_unique(),
    )

    pv = pl.scan_parquet(folder / "pageviews.parquet").filter(
        (pl.col("viewed_at") >= s_ - day) & (pl.col("viewed_at") < e_ + day)
    ).select("visitor_id", "customer_id", "viewed_at", "converted").sort(["visitor_id", "viewed_at"])
    gap = pl.col("viewed_at") - pl.col("viewed_at").shift(1)
    starts = ((pl.col("visitor_id") != pl.col("visitor_id").shift(1)).fill_null(True)
              | (gap > pd.Timedelta(minutes=timeout_minutes).to_pytimedelta()))
    sessions = pv.with_columns(_sid=starts.cum_sum()).group_by("_sid").agg(
        visitor_id=pl.col("visitor_id").first(), customer_id=pl.col("customer_id").max(),
        first=pl.col("viewed_at").min(), last=pl.col("viewed_at").max(), pageviews=pl.len(),
        converted=pl.col("converted").fill_null(False).max(),
    ).filter((pl.col("first") >= s_) & (pl.col("first") < e_))
    cluster = pl.coalesce(pl.col("customer_id"), pl.lit("visitor ") + pl.col("visitor_id").cast(pl.String))
    per = sessions.with_columns(
        _cluster=cluster, duration=(pl.col("last") - pl.col("first")).dt.total_microseconds() / 1e6,
    ).group_by("_cluster").agg(
        customer_id=pl.col("customer_id").max(), n_sessions=pl.len(), n_pageviews=pl.col("pageviews").sum(),
        bounces=(pl.col("pageviews") == 1).sum(), dur_sum=pl.col("duration").sum(),
        converting=pl.col("converted").sum(),
    )
    s_n, pv_n, b, d, cv = (pl.col(c) for c in ("n_sessions", "n_pageviews", "bounces", "dur_sum", "converting"))
    per = per.with_columns(
        web_clusters=pl.lit(1, pl.Int64), web_s_sq=s_n * s_n, web_pv_sq=pv_n * pv_n, web_s_pv=s_n * pv_n,
        web_dur_sq=d * d, web_s_dur=s_n * d, web_b_sq=b * b, web_s_b=s_n * b, web_c_sq=cv * cv, web_s_c=s_n * cv,
    ).drop("_cluster")
    web = per.filter(pl.col("customer_id").is_not_null()).group_by("customer_id").agg(pl.col(_WEB).sum())
    # visits of no customer of the period (anonymous, or a customer who signs up later) count for all only
    anonymous = per.join(customers.select("customer_id"), on="customer_id", how="anti").select(pl.col(_WEB).sum())

    facts = customers.join(activity, on="customer_id", how="left").join(web, on="customer_id", how="left")
    facts = facts.with_columns(pl.col(["n_events", "active_days", "active_weeks", "active_months", *_WEB])
                               .fill_null(0))
    facts = facts.with_columns(
        users_at_start=((pl.col("n_events") > 0) & (pl.col("at_start") == 1)).cast(pl.Int64),
        engaged=(((pl.col("n_events") > 0) | (pl.col("n_sessions") > 0)) & (pl.col("at_start") == 1))
        .cast(pl.Int64),
    )
    plans = [facts.select(pl.col(_SUMS).sum()), anonymous]
    plans += [facts.group_by(seg).agg(pl.col(_SUMS).sum()) for seg in segments]
    total, anon, *by_segment = pl.collect_all(plans)  # one plan, run in parallel

    days, months = (e - s).days, 3
    weeks = len(pd.date_range(s - pd.Timedelta(days=s.weekday()), e - pd.Timedelta(days=1), freq="W-MON"))
    rows: list[tuple] = []
    everything = total.to_pandas().iloc[0]
    everything[_WEB] = everything[_WEB] + anon.to_pandas().iloc[0][_WEB].fillna(0)
    groups = [("all", "all", everything)]
    for seg, frame in zip(segments, by_segment, strict=True):
        groups += [(seg, str(r[seg]), r) for _, r in frame.to_pandas().sort_values(seg).iterrows()]
    for seg, value, r in groups:
        full = pd.Series(0.0, index=_ALL_SUMS)  # the facts of the other tables are zero
        full[_SUMS] = r[_SUMS].astype(float).to_numpy()
        rows += [row for row in _metrics(seg, value, full, days, weeks, months) if row[2] in FAMILIES]
    return pd.DataFrame(rows, columns=["segment", "segment_value", "metric", "value", "n", "se", "ci_low", "ci_high"])


#: every sum :func:`reference_pandas._metrics` reads; those of the tables left out are zero (their figures are
#: dropped)
_ALL_SUMS = SUMS
