"""Which segments really differ: each segment value against the rest of the customers.

The "rest" is rebuilt from the other values of the same segment column (they
partition the customers), from the measure table's sufficient statistics:
counts for proportions, NPS promoter and detractor shares recovered from the
score and its standard error, and moments (n, mean, SD) for means. Every test
of one call is corrected together with Benjamini-Hochberg.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engagement.analysis.trends import correct, difference_test, figure_kind

__all__ = ["segment_tests"]


def _pool(rows: pd.DataFrame, kind: str, metric: str, unit: str) -> dict | None:
    """Combine segment values into one estimate with value, se, n (and counts)."""
    rows = rows.dropna(subset=["value"])
    rows = rows[rows.n > 0]
    if rows.empty:
        return None
    n = float(rows.n.sum())
    out = {"metric": metric, "unit": unit, "n": n, "method": rows.method.iloc[0], "kind": kind, "sampled": True}
    if kind == "proportion":
        k, d = float(rows.numerator.sum()), float(rows.denominator.sum())
        p = k / d if d else np.nan
        out.update(value=p, numerator=k, denominator=d, se=math.sqrt(p * (1 - p) / d) if d else np.nan)
    elif kind == "net_score":
        v, se = rows.value / 100, rows.se / 100
        both = se**2 * rows.n + v**2  # p + d
        pro = ((v + both) / 2 * rows.n).sum() / n
        det = ((both - v) / 2 * rows.n).sum() / n
        out.update(value=100 * (pro - det), se=100 * math.sqrt(max(pro + det - (pro - det) ** 2, 0) / n))
    elif kind == "mean":
        total = (rows.value * rows.n).sum()
        sumsq = ((rows.se**2 * rows.n) * (rows.n - 1) + rows.n * rows.value**2).sum()
        mean = total / n
        var = max((sumsq - n * mean**2) / (n - 1), 0.0) if n > 1 else np.nan
        out.update(value=mean, se=math.sqrt(var / n) if n > 1 else np.nan)
    else:
        return None  # medians, ratios and population figures cannot be pooled from their summaries
    return out


def segment_tests(table: pd.DataFrame, *, metrics: list[str] | None = None, period_role: str = "current",
                  alpha: float = 0.05, min_n: int = 30, confidence: float = 0.95) -> pd.DataFrame:
    """Each segment value against the rest of the customers, for every metric, with BH-corrected q-values.

    Parameters
    ----------
    table : DataFrame
        :func:`engagement.measure.measure` output.
    metrics : list of str, optional
    period_role : str, default "current"
    alpha : float, default 0.05
    min_n : int, default 30
        Segment values with fewer observations are reported but not tested.
    confidence : float, default 0.95
        Level of the differences' intervals.

    Returns
    -------
    DataFrame
        ``segment, segment_value, metric, value, rest, difference, ci_low,
        ci_high, relative_difference, n, n_rest, p_value, test, q_value,
        significant``.
    """
    d = table[(table.status == "ok") & (table.period_role == period_role) & (table.segment != "all")]
    if metrics is not None:
        d = d[d.metric.isin(metrics)]
    rows = []
    for (segment, metric), g in d.groupby(["segment", "metric"], sort=True):
        if len(g) < 2:
            continue
        unit = g.unit.iloc[0]
        kind, _ = figure_kind(g.iloc[0].to_dict())
        g = g.sort_values("segment_value")
        for row in g.to_dict("records"):
            rest = _pool(g[g.segment_value != row["segment_value"]], kind, metric, unit)
            base = {"segment": segment, "segment_value": row["segment_value"], "metric": metric, "unit": unit,
                    "period": row["period"], "value": row["value"], "n": row["n"]}
            if rest is None or row["n"] < min_n or rest["n"] < min_n:
                rows.append({**base, "rest": rest["value"] if rest is not None else np.nan,
                             "n_rest": rest["n"] if rest is not None else 0, "difference": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "p_value": np.nan,
                             "test": "none (too few observations or not poolable)"})
                continue
            res = difference_test({**row, "metric": metric}, rest, confidence)
            rows.append({**base, "rest": rest["value"], "n_rest": rest["n"], **res})
    out = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["segment", "segment_value", "metric", "unit", "period", "value", "n", "rest",
                                      "n_rest", "difference", "ci_low", "ci_high", "p_value", "test"])
    if out.empty:
        return out.assign(relative_difference=pd.Series(dtype="float64"), q_value=pd.Series(dtype="float64"),
                          significant=pd.Series(dtype="bool"))
    out["relative_difference"] = out["difference"] / out["rest"].abs()
    out["q_value"] = correct(out["p_value"], alpha)
    out["significant"] = out["q_value"] < alpha
    return out.reset_index(drop=True)
