"""Choosing the metrics to track: the seed articles' selection framework, made explicit.

Each catalogue metric is scored on the five criteria of the framework:

* **relevance** to the business objectives given (each objective names the
  metrics that speak to it);
* **measurability**: the dataset has the tables the metric needs (a metric that
  cannot be measured is never selected);
* **actionability**: the metric has a direction (better/worse) and moves with
  actions a team owns;
* **segmentation**: it can be broken down by customer segment (it rests on
  customer-level data);
* **benchmark**: a published benchmark exists;
* and a bonus for the nine distinct metrics the seed article recommends.

Metrics are then picked greedily by score, with a penalty for journey stages
already covered, so the set spans the customer journey (awareness to advocacy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from engagement.catalog import CATALOG, OBJECTIVES, available_metrics

__all__ = ["OBJECTIVES", "select_metrics"]

# tables whose rows belong to a customer, so their metrics can be cut by customer segment
_CUSTOMER_LEVEL = {"customers", "orders", "events", "survey_responses", "email_events", "support_tickets",
                   "referrals", "pageviews"}
#: The nine distinct metrics the seed article recommends ("Examples of 9 Distinct Metrics"); website
#: engagement is represented by bounce rate and conversion, customer engagement rate by engagement_rate.
SEED_NINE = ("clv", "nps", "churn_rate", "aov", "cac", "engagement_rate", "csat", "bounce_rate",
             "social_engagement_rate")
WEIGHTS = {"relevance": 3.0, "actionable": 1.0, "segmentable": 1.0, "benchmark": 0.5, "seed_nine": 2.0}
STAGE_PENALTY = 1.5


def select_metrics(
    available_tables: Mapping[str, Iterable[str]] | Iterable[str],
    objectives: Iterable[str] = ("retention", "satisfaction", "revenue", "acquisition", "engagement"),
    *,
    n: int = 9,
    required: Iterable[str] = (),
    excluded: Iterable[str] = (),
) -> pd.DataFrame:
    """Score every catalogue metric and choose ``n`` of them.

    Parameters
    ----------
    available_tables : mapping of table to columns, or iterable of str
        What the dataset has: ``available_columns(ds)`` (tables and their
        columns, so a missing optional column counts) or ``Dataset.tables``.
    objectives : iterable of str
        Keys of :data:`OBJECTIVES`.
    n : int, default 9
    required, excluded : iterable of str
        Metric ids forced in (if measurable) or kept out.

    Returns
    -------
    DataFrame
        One row per metric: the criteria, ``score``, ``selected`` (bool),
        ``rank`` (selection order, 0 if not selected) and ``reason`` in words.

    Examples
    --------
    >>> from engagement.plan.selection import select_metrics
    >>> sel = select_metrics({"customers", "orders", "survey_responses"}, ["satisfaction"], n=3)
    >>> sel.loc[sel.selected, "id"].tolist()
    ['nps', 'csat', 'ces']
    """
    objectives = list(dict.fromkeys(objectives))
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"Unknown objective(s) {unknown}; choose from {sorted(OBJECTIVES)}.")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a whole number >= 1, got {n!r}.")
    required, excluded = list(required), set(excluded)
    for m in [*required, *excluded]:
        if m not in CATALOG:
            raise ValueError(f"Unknown metric {m!r}; known: {sorted(CATALOG)}.")
    have = set(available_tables)
    why_not = available_metrics(available_tables if isinstance(available_tables, Mapping) else have)
    why_not = why_not.set_index("id")["reason"]
    rows = []
    for order, spec in enumerate(CATALOG.values()):
        relevant_to = [o for o in objectives if spec.id in OBJECTIVES[o]]
        measurable = not why_not[spec.id]
        row: dict[str, Any] = {
            "id": spec.id, "name": spec.name, "journey_stage": spec.journey_stage,
            "objectives": ", ".join(relevant_to), "relevance": len(relevant_to), "measurable": measurable,
            "actionable": spec.higher_is_better is not None and spec.unit not in ("count",),
            "segmentable": set(spec.tables) <= _CUSTOMER_LEVEL or spec.id == "cac",
            "benchmark": bool(spec.benchmark), "seed_nine": spec.id in SEED_NINE, "_order": order,
        }
        row["score"] = (WEIGHTS["relevance"] * row["relevance"] + WEIGHTS["actionable"] * row["actionable"]
                        + WEIGHTS["segmentable"] * row["segmentable"] + WEIGHTS["benchmark"] * row["benchmark"]
                        + WEIGHTS["seed_nine"] * row["seed_nine"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    eligible = frame[frame.measurable & ~frame.id.isin(excluded)]
    chosen: list[str] = [m for m in required if m in set(eligible.id)]
    stages = {frame.set_index("id").loc[m, "journey_stage"] for m in chosen}
    pool = eligible[(eligible.relevance > 0) & ~eligible.id.isin(chosen)].copy()
    while len(chosen) < n and len(pool):
        adjusted = pool.score - STAGE_PENALTY * pool.journey_stage.isin(stages)
        best = pool.assign(_adj=adjusted).sort_values(["_adj", "_order"], ascending=[False, True]).iloc[0]
        chosen.append(best.id)
        stages.add(best.journey_stage)
        pool = pool[pool.id != best.id]
    frame["selected"] = frame.id.isin(chosen)
    frame["rank"] = frame.id.map({m: i + 1 for i, m in enumerate(chosen)}).fillna(0).astype(int)

    def reason(r: pd.Series) -> str:
        if not r.measurable:
            return "not measurable here: " + why_not[r.id]
        if r.id in excluded:
            return "excluded by the analyst"
        if r.id in required:
            return "required by the analyst"
        if r.relevance == 0:
            return "not relevant to the objectives given"
        parts = [f"serves {r.objectives}"]
        parts.append("actionable" if r.actionable else "descriptive only")
        parts.append("segmentable" if r.segmentable else "not by customer segment")
        if r.benchmark:
            parts.append("has a published benchmark")
        if r.seed_nine:
            parts.append("one of the seed's nine distinct metrics")
        return "; ".join(parts)

    frame["reason"] = frame.apply(reason, axis=1)
    frame = frame.sort_values(["selected", "rank", "score", "_order"], ascending=[False, True, False, True])
    return frame.drop(columns="_order").reset_index(drop=True)
