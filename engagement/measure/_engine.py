"""Turning what the analyst has into an Ibis table, and small results back into pandas.

Everything heavy is an Ibis expression; DuckDB (embedded) executes it by default,
and any other Ibis backend (Spark, ...) runs the same expression.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

__all__ = ["as_table", "to_pandas"]


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
