"""How metrics relate: customer-level rank correlations with intervals, and period-level ones with a warning."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from engagement.analysis.trends import correct
from engagement.data.load import Dataset, load
from engagement.measure._engine import exact_sum
from engagement.measure.periods import Period, parse_period

__all__ = ["customer_summary", "associations", "period_correlations", "spearman_interval", "CUSTOMER_VARIABLE",
           "VARIABLE_METRIC"]

#: the ``customer_summary`` column that stands for a metric in customer-level relationships
CUSTOMER_VARIABLE = {"nps": "nps", "csat": "csat", "aov": "aov", "churn_rate": "churned", "retention_rate": "churned",
                     "clv": "clv", "product_usage_rate": "active_days", "stickiness": "active_days",
                     "engagement_rate": "active_days", "purchase_frequency": "orders", "revenue": "spend"}
#: and back: the metric a customer-level variable speaks for (its first metric above)
VARIABLE_METRIC: dict[str, str] = {}
for _metric, _variable in CUSTOMER_VARIABLE.items():
    VARIABLE_METRIC.setdefault(_variable, _metric)


def _ts(t: pd.Timestamp) -> Any:
    return ibis.timestamp(t.to_pydatetime())


def customer_summary(data: Dataset | Mapping[str, pd.DataFrame] | str, period: str | Period, *,
                     clv: pd.DataFrame | None = None, lookback_days: int = 365) -> pd.DataFrame:
    """One row per customer active in ``period``: survey scores, activity, spend, churn, and CLV if given.

    Columns: ``nps`` (mean NPS answer), ``csat`` (mean CSAT) over the look-back
    window ending with the period; ``active_days``, ``orders``, ``spend``,
    ``aov`` over the same window; ``churned`` (cancelled during the period);
    ``clv`` when a ``customer_id, clv`` frame is given. A small per-customer
    summary computed in the engine.
    """
    ds = data if isinstance(data, Dataset) else load(data)
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


def spearman_interval(rho: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval for Spearman's rho with the Bonett-Wright (2000) standard error sqrt((1 + rho^2/2)/(n - 3))."""
    if n < 4 or not np.isfinite(rho) or abs(rho) >= 1:
        return (np.nan, np.nan)
    z = math.atanh(rho)
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def associations(summary: pd.DataFrame, *, variables: list[str] | None = None, alpha: float = 0.05,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Spearman rank correlations between customer-level variables, with intervals and BH q-values.

    Each pair uses the customers with both values (``n``). Some pairs are linked
    by construction, not behaviour: customers who churned in the period have
    fewer active days and orders in a window that ends with it. Read those as
    bookkeeping, not as evidence.
    """
    cols = variables or [c for c in summary.columns if c != "customer_id" and summary[c].notna().sum() >= 10]
    rows = []
    for a, b in itertools.combinations(cols, 2):
        pair = summary[[a, b]].dropna()
        n = len(pair)
        if n < 10 or pair[a].nunique() < 2 or pair[b].nunique() < 2:
            continue
        res = stats.spearmanr(pair[a], pair[b])
        low, high = spearman_interval(float(res.statistic), n, confidence)
        rows.append({"variable": a, "other": b, "n": n, "rho": float(res.statistic), "ci_low": low,
                     "ci_high": high, "p_value": float(res.pvalue)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["q_value"] = correct(out["p_value"], alpha)
    out["significant"] = out["q_value"] < alpha
    out["direction"] = np.where(~out.significant, "none", np.where(out.rho > 0, "positive", "negative"))
    return out


def period_correlations(series: pd.DataFrame, *, metrics: list[str], segment: str = "all") -> pd.DataFrame:
    """Spearman correlations between metrics across periods, flagged: few points say little.

    With n periods the correlation rests on n points only; a |rho| below about
    2/sqrt(n) is indistinguishable from none. ``warning`` says so on every row.
    """
    d = series[(series.segment == segment) & (series.status == "ok") & series.metric.isin(metrics)]
    wide = d.pivot_table(index="period", columns="metric", values="value", aggfunc="first")
    rows = []
    for a, b in itertools.combinations([m for m in metrics if m in wide.columns], 2):
        pair = wide[[a, b]].dropna()
        if len(pair) < 4:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.spearmanr(pair[a], pair[b])
        rows.append({"variable": a, "other": b, "periods": len(pair), "rho": float(res.statistic),
                     "p_value": float(res.pvalue),
                     "warning": f"only {len(pair)} periods: treat as a hint, not evidence"})
    return pd.DataFrame(rows)
