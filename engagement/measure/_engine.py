"""Turning what the analyst has into an Ibis table, and small results back into pandas.

Everything heavy is an Ibis expression; DuckDB (embedded) executes it by default,
and any other Ibis backend (Spark, ...) runs the same expression.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

__all__ = ["as_table", "exact_sum", "to_pandas"]


def as_table(data: Any, name: str = "data") -> ir.Table:
    """Return ``data`` as an Ibis table.

    An Ibis table (of any backend) is used as is; a pandas DataFrame becomes an
    in-memory table that the default backend (embedded DuckDB) executes.
    """
    if isinstance(data, ir.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return ibis.memtable(data)
    raise TypeError(f"`{name}` must be a pandas DataFrame or an Ibis table, got {type(data).__name__}.")


def to_pandas(expr: ir.Table) -> pd.DataFrame:
    """Execute a small, aggregated expression on its backend and return pandas."""
    return expr.to_pandas()


def exact_sum(x: ir.NumericValue, where: ir.BooleanValue | None = None) -> ir.NumericScalar:
    """``sum(x)`` that gives the same number on every run.

    A parallel engine adds floating-point values in whichever order its threads
    finish, so the last bits of a float sum change from run to run (revenue of a
    million orders differed by 3e-9 between two runs). Floats are therefore summed
    as DECIMAL(38, 6), whose addition is exact, and the total is cast back to
    float64: one rounding per value to a millionth, then no more. Integers are
    summed as they are.

    Examples
    --------
    >>> import ibis, pandas as pd
    >>> t = ibis.memtable(pd.DataFrame({"x": [0.1, 0.2, 0.3]}))
    >>> float(t.aggregate(s=exact_sum(t.x)).to_pandas().s[0])
    0.6
    """
    if x.type().is_floating() or x.type().is_decimal():
        return x.cast(dt.Decimal(38, 6)).sum(where=where).cast(dt.float64)
    return x.sum(where=where)
