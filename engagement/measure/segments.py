"""Segments: each customer's value of every segment column, and the derived segments.

``tenure_band`` (at the period start: new this period / under 1 year / more than
1 year), ``new_vs_returning`` (signed up in the period or before) and
``value_tier`` (tertile of revenue in the 365 days before the period among
customers who bought: low / mid / high, else none) are derived; any other name is
a customers column.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from engagement.data.load import Dataset
from engagement.measure._engine import exact_sum as _xsum
from engagement.measure.facts import Periods
from engagement.measure.periods import Period

__all__ = ["DEFAULT_SEGMENTS", "DERIVED_SEGMENTS", "TENURE_BANDS", "crossed", "segment_columns", "segment_table",
           "split_crossed"]

DEFAULT_SEGMENTS = ("plan", "acquisition_channel", "region", "tenure_band", "new_vs_returning", "value_tier")
DERIVED_SEGMENTS = ("tenure_band", "new_vs_returning", "value_tier")
TENURE_BANDS = ("new this period", "under 1 year", "more than 1 year")


def crossed(first: str, second: str) -> str:
    """The name of the segment that crosses two others (``"plan*region"``): one value per pair of values.

    Its values are written so that they split back exactly, whatever the labels hold
    (:func:`split_crossed`).
    """
    return f"{first}*{second}"


def split_crossed(value: str) -> tuple[str, str]:
    """The two values of a crossed segment's value (``"5:basicnorth"`` -> ``("basic", "north")``): the first
    value's length comes first, so that no character of a label can be mistaken for the separator.

    Examples
    --------
    >>> from engagement.measure.segments import split_crossed
    >>> split_crossed("5:basicnorth"), split_crossed("3:a*b:c")
    (('basic', 'north'), ('a*b', ':c'))
    """
    size, _, rest = value.partition(":")
    n = int(size)
    return rest[:n], rest[n:]


def segment_columns(ds: Dataset, period: Period | Periods, segments: Sequence[str], *,
                    customers: ir.Table | None = None, keep: Sequence[str] = (),
                    orders: ir.Table | None = None) -> ir.Table:
    """Wide table ``customer_id, __seg0, __seg1, ...``: each customer's value of each segment, as text.

    One row per customer who exists by ``period.end``; column ``__seg<i>`` holds
    the value of ``segments[i]`` (internal names, so that a customer attribute can
    never collide with a fact column). Missing attribute values are
    ``"(missing)"``; see :func:`segment_table` for the derived segments. A crossed
    segment ``"plan*region"`` (:func:`crossed`) has one value per pair of values.
    ``customers`` (default ``ds["customers"]``) may carry more columns of each
    customer, of which those named in ``keep`` are kept: the measurement's flags
    come with the segments from one read of the customers, not from a join. ``orders``: the orders' facts
    of :func:`~engagement.measure.facts.customer_facts`, whose ``__spend_year`` is each customer's revenue in
    the 365 days before the period (the value tiers are then ranked from it rather than from another read of
    the orders).

    Several periods (:class:`~engagement.measure.facts.Periods`): a row per customer and period, with the period's
    index ``__p``; ``customers`` are then the periods' customers with their bounds (the facts' flags).
    """
    P = period if isinstance(period, Periods) else Periods(period)
    if customers is None:
        c = P.within(ds["customers"], "signup_at", None, "__e")
    else:
        c = customers.filter(customers.signup_at < P.value(customers, "__e"))
    start, year_before = P.value(c, "__s"), P.value(c, "__s_year")
    parts = {col: col.split("*") for col in segments}
    for col, names in parts.items():
        if len(names) > 2 or "" in names:
            raise ValueError(f"Segment {col!r}: a crossed segment joins two segments, as 'plan*region'.")
    bases = list(dict.fromkeys(b for names in parts.values() for b in names))
    values: dict[str, ir.Value | None] = {}
    tiers = None
    for col in bases:
        if col == "tenure_band":
            values[col] = ibis.ifelse(c.signup_at >= start, TENURE_BANDS[0],
                                      ibis.ifelse(c.signup_at >= year_before, TENURE_BANDS[1], TENURE_BANDS[2]))
        elif col == "new_vs_returning":
            values[col] = ibis.ifelse(c.signup_at >= start, "new", "returning")
        elif col == "value_tier":
            if not ds.has("orders"):
                raise ValueError("Segment 'value_tier' needs the orders table, which the dataset does not have.")
            if orders is not None:
                spend = orders.select("customer_id", *P.key, spend=orders.__spend_year)
            else:
                o = P.within(ds["orders"], "ordered_at", "__s_year", "__s")
                spend = o.group_by(["customer_id", *P.key]).aggregate(spend=_xsum(o.revenue))
            spend = spend.filter(spend.spend > 0)
            tiers = spend.select("customer_id", *P.key, __tier=ibis.ntile(3).over(
                group_by=[spend[k] for k in P.key], order_by=[spend.spend, spend.customer_id]))
            values[col] = None  # filled after the join below
        elif col in c.columns:
            values[col] = c[col].cast("string").fill_null("(missing)")
        else:
            raise ValueError(
                f"Segment column {col!r} is not a customers column nor a derived segment; customers has "
                f"{list(c.columns)}, derived: {list(DERIVED_SEGMENTS)}."
            )
    inner = {col: f"__base{i}" for i, col in enumerate(bases)}
    keep = [*P.key, *keep]
    table = c.select("customer_id", *keep, **{inner[k]: v for k, v in values.items() if v is not None})
    if tiers is not None:
        joined = table.left_join(tiers, ["customer_id", *P.key])
        label = ibis.cases((joined.__tier == 0, "low"), (joined.__tier == 1, "mid"), (joined.__tier == 2, "high"),
                           else_="none")
        table = joined.select("customer_id", *keep, *[joined[inner[k]] for k, v in values.items() if v is not None],
                              **{inner["value_tier"]: label})
    out = {}
    for i, col in enumerate(segments):
        first, *second = (table[inner[b]] for b in parts[col])
        out[f"__seg{i}"] = first if not second else first.length().cast("string") + ":" + first + second[0]
    return table.select("customer_id", **out, **{k: table[k] for k in keep})


def segment_table(ds: Dataset, period: Period, segments: Sequence[str]) -> ir.Table:
    """Long table ``customer_id, segment, segment_value`` for customers who exist by ``period.end``.

    Includes ``segment = "all"`` for every customer. Derived segments:
    ``tenure_band`` (at the period start: new this period / under 1 year / more
    than 1 year), ``new_vs_returning`` (signed up in the period or before) and
    ``value_tier`` (tertile of revenue in the 365 days before the period among
    customers who bought: low / mid / high, else none).

    Examples
    --------
    >>> import pandas as pd
    >>> import engagement as eg
    >>> from engagement.measure import parse_period, segment_table
    >>> c = pd.DataFrame({"customer_id": ["a", "b"], "plan": ["basic", None],
    ...                   "signup_at": pd.to_datetime(["2023-01-01", "2024-11-01"])})
    >>> t = segment_table(eg.load({"customers": c}), parse_period("2024Q4"), ["plan", "tenure_band"])
    >>> t.order_by(["segment", "customer_id"]).to_pandas().values.tolist()
    [['a', 'all', 'all'], ['b', 'all', 'all'], ['a', 'plan', 'basic'], ['b', 'plan', '(missing)'], \
['a', 'tenure_band', 'more than 1 year'], ['b', 'tenure_band', 'new this period']]
    """
    segments = list(dict.fromkeys(segments))
    wide = segment_columns(ds, period, segments)
    parts = [wide.select(customer_id=wide.customer_id, segment=ibis.literal("all"), segment_value=ibis.literal("all"))]
    for i, col in enumerate(segments):
        parts.append(wide.select(customer_id=wide.customer_id, segment=ibis.literal(col),
                                 segment_value=wide[f"__seg{i}"]))
    return ibis.union(*parts)

