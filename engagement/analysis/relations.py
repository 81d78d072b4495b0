"""How metrics relate: customer-level rank correlations with intervals, and period-level ones with a warning."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from engagement.analysis.trends import correct
from engagement.catalog import CUSTOMER_VARIABLE, VARIABLE_METRIC

__all__ = ["associations", "period_correlations", "spearman_interval", "CUSTOMER_VARIABLE",
           "VARIABLE_METRIC"]


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
    out = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["variable", "other", "n", "rho", "ci_low", "ci_high", "p_value"])
    if out.empty:  # too few customers with two measures: the columns still say what would be there
        return out.assign(q_value=pd.Series(dtype="float64"), significant=pd.Series(dtype="bool"),
                          direction=pd.Series(dtype="str"))
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
