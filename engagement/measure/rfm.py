"""The per-customer RFM summary as the buy-till-you-die literature defines it.

* purchases on the same day are one purchase occasion (their revenue summed);
* ``frequency`` = repeat purchase occasions (occasions - 1);
* ``recency`` = time from the first to the last occasion;
* ``T`` = time from the first occasion to the end of the calibration period;
* ``monetary_value`` = mean revenue of the repeat occasions (0 without repeats);
* times in the caller's unit (days, weeks, or any number of days) at day precision.

This is the definition of Fader, Hardie & Lee (2005) and of the ``lifetimes``
package's ``summary_data_from_transaction_data``. It runs as one Ibis expression.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from engagement.measure._engine import as_table, exact_sum, to_pandas

__all__ = ["rfm_summary", "calibration_holdout_summary", "purchase_day_counts", "unit_days"]

_UNITS = {"D": 1.0, "W": 7.0}


def unit_days(time_unit: str | float) -> float:
    """Days per time unit: ``"D"`` (1), ``"W"`` (7) or a positive number of days."""
    if isinstance(time_unit, str):
        if time_unit not in _UNITS:
            raise ValueError(f"`time_unit` must be one of {list(_UNITS)} or a number of days, got {time_unit!r}.")
        return _UNITS[time_unit]
    if not isinstance(time_unit, (int, float)) or time_unit <= 0:
        raise ValueError(f"`time_unit` must be positive, got {time_unit!r}.")
    return float(time_unit)


def _as_date(value: Any, name: str) -> dt.date:
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a date, got {value!r}.") from None


def _occasions(orders: ir.Table, customer_col: str, datetime_col: str, monetary_col: str | None) -> ir.Table:
    missing = [c for c in (customer_col, datetime_col, monetary_col) if c and c not in orders.columns]
    if missing:
        raise ValueError(f"`orders` has no column(s) {missing}; columns are {list(orders.columns)}.")
    value = orders[monetary_col].cast("float64") if monetary_col else ibis.literal(0.0)
    day = orders[datetime_col].cast("timestamp").date() if not orders[datetime_col].type().is_date() \
        else orders[datetime_col]
    occ = orders.select(customer_id=orders[customer_col], day=day, value=value)
    # exact sums: parallel float sums differ in the last bits between runs, and the models
    # fitted on these values must give the same numbers every time
    return occ.group_by(["customer_id", "day"]).aggregate(value=exact_sum(occ.value))


def _summarise(occ: ir.Table, end: dt.date, days: float) -> ir.Table:
    per = occ.group_by("customer_id").aggregate(
        first=_.day.min(), last=_.day.max(), occasions=_.day.count(),
        total=exact_sum(occ.value), first_value=_.value.argmin(_.day),
    )
    end_lit = ibis.date(end)
    freq = (per.occasions - 1).cast("int64")
    return per.select(
        customer_id=per.customer_id,
        frequency=freq,
        recency=per.last.delta(per.first, unit="day").cast("float64") / days,
        T=end_lit.delta(per.first, unit="day").cast("float64") / days,
        monetary_value=ibis.ifelse(freq > 0, ((per.total - per.first_value) / freq.cast("float64")).round(9), 0.0),
        first_purchase=per.first,
    )


def rfm_summary(
    orders: Any,
    *,
    calibration_end: Any,
    time_unit: str | float = "W",
    customer_col: str = "customer_id",
    datetime_col: str = "ordered_at",
    monetary_col: str | None = "revenue",
) -> pd.DataFrame:
    """Frequency, recency, T and monetary value per customer, up to ``calibration_end``.

    Parameters
    ----------
    orders : DataFrame or Ibis table
        One row per order (or line): customer, timestamp, revenue.
    calibration_end : date-like
        Last day of the calibration period (inclusive). Orders after it are ignored.
    time_unit : {"W", "D"} or float, default "W"
        Unit of recency and T: weeks, days, or a number of days.
    customer_col, datetime_col, monetary_col : str
        Column names; ``monetary_col=None`` skips monetary value (0).

    Returns
    -------
    DataFrame
        ``customer_id, frequency, recency, T, monetary_value, first_purchase``,
        sorted by customer. Customers whose first purchase is after
        ``calibration_end`` are not in it.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.measure import rfm_summary
    >>> orders = pd.DataFrame({
    ...     "customer_id": [1, 1, 1, 1, 2],
    ...     "ordered_at": pd.to_datetime(["1997-01-01", "1997-01-18", "1997-08-02", "1997-12-12", "1997-03-01"]),
    ...     "revenue": [29.33, 29.73, 14.96, 26.48, 10.0]})
    >>> s = rfm_summary(orders, calibration_end="1997-09-30")
    >>> row = s.iloc[0]
    >>> print(row["frequency"], round(row["recency"], 2), round(row["T"], 2), round(row["monetary_value"], 3))
    2 30.43 38.86 22.345
    """
    end = _as_date(calibration_end, "calibration_end")
    days = unit_days(time_unit)
    table = as_table(orders, "orders")
    occ = _occasions(table, customer_col, datetime_col, monetary_col)
    occ = occ.filter(occ.day <= ibis.date(end))
    out = to_pandas(_summarise(occ, end, days).order_by("customer_id"))
    return out.reset_index(drop=True)


def calibration_holdout_summary(
    orders: Any,
    *,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str | float = "W",
    customer_col: str = "customer_id",
    datetime_col: str = "ordered_at",
    monetary_col: str | None = "revenue",
) -> pd.DataFrame:
    """RFM in the calibration period plus what each customer did in the holdout.

    Adds ``frequency_holdout`` (purchase occasions after ``calibration_end`` up
    to ``observation_end``), ``monetary_value_holdout`` and ``duration_holdout``
    (length of the holdout in ``time_unit``) to :func:`rfm_summary`'s columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.measure import calibration_holdout_summary
    >>> orders = pd.DataFrame({"customer_id": [1, 1, 1], "revenue": [5.0, 6.0, 7.0],
    ...     "ordered_at": pd.to_datetime(["2020-01-01", "2020-01-10", "2020-03-01"])})
    >>> s = calibration_holdout_summary(orders, calibration_end="2020-01-31", observation_end="2020-03-31")
    >>> s[["frequency", "frequency_holdout"]].iloc[0].tolist()
    [1, 1]
    """
    cal = _as_date(calibration_end, "calibration_end")
    obs = _as_date(observation_end, "observation_end")
    if obs <= cal:
        raise ValueError(f"`observation_end` ({obs}) must be after `calibration_end` ({cal}).")
    days = unit_days(time_unit)
    table = as_table(orders, "orders")
    occ = _occasions(table, customer_col, datetime_col, monetary_col)
    calib = _summarise(occ.filter(occ.day <= ibis.date(cal)), cal, days)
    in_holdout = occ.filter((occ.day > ibis.date(cal)) & (occ.day <= ibis.date(obs)))
    hold = in_holdout.group_by("customer_id").aggregate(
        frequency_holdout=_.day.count(), holdout_total=exact_sum(in_holdout.value))
    joined = calib.left_join(hold, "customer_id")
    fh = joined.frequency_holdout.fill_null(0).cast("int64")
    expr = joined.select(
        *[joined[c] for c in calib.columns],
        frequency_holdout=fh,
        monetary_value_holdout=ibis.ifelse(fh > 0, joined.holdout_total / fh.cast("float64"), 0.0),
        duration_holdout=ibis.literal((obs - cal).days / days),
    ).order_by("customer_id")
    return to_pandas(expr).reset_index(drop=True)


def purchase_day_counts(
    orders: Any,
    *,
    customer_col: str = "customer_id",
    datetime_col: str = "ordered_at",
) -> pd.DataFrame:
    """Per day: customers making their first purchase and repeat purchase occasions.

    Small (one row per day with purchases) whatever the size of ``orders``; the
    input of :func:`engagement.analysis.clv.cumulative_repeat_transactions`.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.measure import purchase_day_counts
    >>> orders = pd.DataFrame({"customer_id": [1, 1, 1, 2], "revenue": 1.0,
    ...     "ordered_at": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-03", "2020-01-03"])})
    >>> purchase_day_counts(orders)[["first_purchases", "repeat_occasions"]].values.tolist()
    [[1, 0], [1, 1]]
    """
    table = as_table(orders, "orders")
    occ = _occasions(table, customer_col, datetime_col, None)
    first = occ.group_by("customer_id").aggregate(first=occ.day.min())
    j = occ.join(first, "customer_id")
    expr = j.group_by("day").aggregate(
        first_purchases=(j.day == j.first).cast("int64").sum(),
        repeat_occasions=(j.day > j.first).cast("int64").sum(),
    ).order_by("day")
    out = to_pandas(expr).reset_index(drop=True)
    out["day"] = pd.to_datetime(out["day"])
    return out
