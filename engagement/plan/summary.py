"""The report's first screen: what matters most, the headline action, and what the data covered."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from engagement.present import escape_markdown, format_money

__all__ = ["executive_summary"]


def _covered(table: pd.DataFrame | None, period: str) -> str:
    """What the period's figures rest on, from the measure table: customers, orders, answers, emails, sessions."""
    if table is None or not len(table):
        return ""
    now = table[(table.period_role == "current") & (table.segment == "all") & (table.status == "ok")]
    got = now.drop_duplicates("metric").set_index("metric")

    def count(metric: str, column: str = "value") -> int | None:
        if metric not in got.index or pd.isna(got.loc[metric, column]):
            return None
        return int(round(float(got.loc[metric, column])))

    parts = []
    customers = count("active_customers")
    at_start = next((n for n in (count(m, "denominator") for m in ("churn_rate", "engagement_rate",
                                                                     "product_usage_rate")) if n is not None), None)
    new = count("new_customers")
    if customers is not None:
        detail = ", ".join(x for x in ((f"{at_start:,} at its start" if at_start is not None else ""),
                                       (f"{new:,} new" if new is not None else "")) if x)
        parts.append(f"{customers:,} customers" + (f" ({detail})" if detail else ""))
    answers = [n for n in (count(m, "denominator") for m in ("nps", "csat", "ces")) if n is not None]
    for label, n in (("orders", count("orders")), ("survey answers", sum(answers) if answers else None),
                     ("emails delivered", count("email_open_rate", "denominator")),
                     ("web sessions", count("website_visits"))):
        if n is not None:
            parts.append(f"{n:,} {label}")
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"in {escape_markdown(period)}, {listed}; "


def executive_summary(found: pd.DataFrame, plan: pd.DataFrame | None, quality: dict[str, Any], period: str,
                      *, most: int = 5, table: pd.DataFrame | None = None) -> str:
    """The answer in a few lines of Markdown: the top findings (ranked, money at stake first among what got
    worse), the first action of the plan, and the rows and tables the figures rest on.

    Parameters
    ----------
    found : DataFrame
        :func:`engagement.plan.findings` output, ranked.
    plan : DataFrame or None
        :func:`engagement.plan.action_plan` output.
    quality : dict
        The workspace's ``data_quality`` artefact (``tables``: rows read, used and rejected per table;
        ``missing_tables``).
    period : str
    most : int, default 5
        How many findings to show (three to five).
    table : DataFrame, optional
        The measure table: the period's customers, orders, survey answers, emails and sessions are named.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plan.summary import executive_summary
    >>> found = pd.DataFrame({"rank": [1], "sentence": ["Churn rose from 5% to 9% in 2024Q4."],
    ...                       "direction": ["worse"], "impact": [15800.0]})
    >>> quality = {"tables": [{"table": "customers", "rows_read": 10, "rows_used": 10, "rows_rejected": 0}],
    ...            "missing_tables": ["orders"]}
    >>> print(executive_summary(found, None, quality, "2024Q4"))
    ## The answer for 2024Q4
    <BLANKLINE>
    **What matters most** (1 finding; $15,800 at stake in what got worse):
    <BLANKLINE>
    1. Churn rose from 5% to 9% in 2024Q4\\.
    <BLANKLINE>
    **What the data covered:** 10 rows used from 1 table (none rejected); not in the data: orders. Every finding is in section 5, every figure in metrics\\.csv\\.

    With the measure table, the period's own figures come first:

    >>> table = pd.DataFrame({"period_role": "current", "segment": "all", "status": "ok",
    ...                       "metric": ["active_customers", "new_customers", "churn_rate"],
    ...                       "value": [10.0, 2.0, 0.125], "denominator": [None, None, 8.0]})
    >>> line = executive_summary(found, None, quality, "2024Q4", table=table).splitlines()[-1]
    >>> line[:line.index(" rows used")]
    '**What the data covered:** in 2024Q4, 10 customers (8 at its start, 2 new); from 10'

    More findings than ``most``: the list says which they are.

    >>> many = pd.DataFrame({"rank": [1, 2, 3], "sentence": ["A.", "B.", "C."], "direction": "better",
    ...                      "impact": float("nan")})
    >>> executive_summary(many, None, quality, "2024Q4", most=2).splitlines()[2]
    '**What matters most** (the 2 most important of 3 findings):'
    """
    lines = [f"## The answer for {escape_markdown(period)}", ""]
    top = found.sort_values("rank").head(most) if len(found) else found
    if not len(top):
        lines += ["**Nothing moved significantly** this period: no change, gap, trend or relationship passed the "
                  "tests after correction for multiple comparisons.", ""]
    else:
        worse = found[found.direction == "worse"]
        if "segment" in worse:  # a segment's money is part of its overall finding's: counted once
            worse = worse[worse.segment == "all"]
        stake = float(worse.impact.dropna().sum()) if "impact" in worse else math.nan
        extra = (f"; {format_money(stake)} at stake in what got worse for all customers" if "segment" in found
                 else f"; {format_money(stake)} at stake in what got worse") if stake > 0 else ""
        # when there are more findings than shown, say which these are: "6 findings" over a list of five reads as
        # if one were missing
        count = (f"the {len(top)} most important of {len(found):,} findings" if len(found) > len(top)
                 else f"{len(found):,} finding{'s' if len(found) != 1 else ''}")
        lines += [f"**What matters most** ({count}{extra}):", ""]
        lines += [f"{i}. {escape_markdown(s)}" for i, s in enumerate(top.sentence, start=1)]
        lines.append("")
    if plan is not None and len(plan):
        first = plan.sort_values("priority").iloc[0]
        target = "" if pd.isna(first.get("target")) or not str(first.get("target")) else \
            f" Target: {escape_markdown(first['target'])}."
        lines += [f"**The headline action** ({escape_markdown(first['owner'])}): {escape_markdown(first['action'])}"
                  f"{target}", ""]
    tables = quality.get("tables", [])
    used = sum(int(t["rows_used"]) for t in tables)
    rejected = sum(int(t["rows_rejected"]) for t in tables)
    missing = quality.get("missing_tables", [])
    lines.append(
        f"**What the data covered:** {_covered(table, period)}"
        f"{'from ' if table is not None and _covered(table, period) else ''}{used:,} rows used from "
        f"{len(tables)} table{'s' if len(tables) != 1 else ''} ({'none' if not rejected else f'{rejected:,}'} rejected)"
        + (f"; not in the data: {escape_markdown(', '.join(missing))}" if missing else "")
        + ". Every finding is in section 5, every figure in metrics\\.csv\\.")
    return "\n".join(lines)
