"""The seed article's trend-analysis table, filled from the statistics instead of by hand."""

from __future__ import annotations

import pandas as pd

from engagement import catalog
from engagement.analysis.relations import CUSTOMER_VARIABLE
from engagement.present import format_q, format_value

__all__ = ["trend_table", "forecasts", "CUSTOMER_VARIABLE"]



def _name(metric: str) -> str:
    return catalog.name(metric)


def forecasts(series: pd.DataFrame, *, metrics: list[str], horizon: int = 1, confidence: float = 0.95) -> pd.DataFrame:
    """Next-period forecasts (exponential smoothing, ``confidence`` prediction interval) for each metric."""
    from engagement.analysis.trends import forecast

    parts = [forecast(series, metric=m, horizon=horizon, confidence=confidence).assign(metric=m) for m in metrics]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["period", "value", "ci_low", "ci_high", "method", "metric"])


def trend_table(metrics: list[str], *, trends: pd.DataFrame, changes: pd.DataFrame, segments: pd.DataFrame,
                relations: pd.DataFrame) -> pd.DataFrame:
    """One row per metric: trend over time, segment performance, relationship with other metrics.

    Only statistically supported statements are made (the ``significant`` flags of the tests, set
    by their Benjamini-Hochberg q-values against the report's ``alpha``); otherwise the cell says that
    nothing significant was found.
    """
    rows = []
    for m in metrics:
        unit = catalog.CATALOG[m].unit if m in catalog.CATALOG else ""
        t = trends[(trends.metric == m) & (trends.segment_value == "all")] if len(trends) else trends
        c = changes[(changes.metric == m) & (changes.segment == "all") & (changes.comparison == "previous period")] \
            if len(changes) else changes
        parts = []
        if len(t):
            r = t.iloc[0]
            if r.significant:
                parts.append(f"{'rising' if r.slope > 0 else 'falling'} {format_value(abs(r.slope), unit)} per "
                             f"period over {r.periods} periods ({format_q(r.q_value)})")
            else:
                parts.append(f"no significant trend over {r.periods} periods")
        if len(c):
            r = c.iloc[0]
            change = f"{r.period} vs {r.against}: {format_value(r.reference, unit)} to {format_value(r.value, unit)}"
            parts.append(change + (f" ({format_q(r.q_value)})" if r.significant else " (not significant)"))
        s = segments[(segments.metric == m) & segments.significant] if len(segments) else segments
        if len(s):
            s = s.assign(size=s.relative_difference.abs()).sort_values("size", ascending=False).head(2)
            seg_text = "; ".join(
                f"{'higher' if r.difference > 0 else 'lower'} for {r.segment.replace('_', ' ')} {r.segment_value} "
                f"({format_value(r.value, unit)} vs {format_value(r.rest, unit)}, {format_q(r.q_value)})"
                for r in s.itertuples())
        else:
            seg_text = "no segment differs significantly"
        var = CUSTOMER_VARIABLE.get(m)
        rel = relations[((relations.variable == var) | (relations.other == var)) & relations.significant] \
            if var and len(relations) else relations.iloc[0:0] if len(relations) else relations
        if var and len(rel):
            rel_text = "; ".join(
                f"{r.direction} with {r.other if r.variable == var else r.variable} (rho {r.rho:+.2f})"
                for r in rel.sort_values("rho", key=abs, ascending=False).head(3).itertuples())
        else:
            rel_text = "no significant customer-level relationship" if var else "not measured per customer"
        rows.append({"metric": _name(m), "trend over time": "; ".join(parts) or "too few periods",
                     "customer segment performance": seg_text, "relationship with other metrics": rel_text})
    return pd.DataFrame(rows)
