"""``engagement validate SOURCE``: the data-quality report of a source, without rendering anything.

Rows read, used and rejected per table; each problem with its rule, count and an example (identifiers are
never shown); the tables the contract knows that the source lacks; and which metrics the data supports, with
the reason for each that it does not. Exit 0 when every row is usable, 1 when rows were rejected, 2 when the
source cannot be used at all.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["validate_source"]


def _summary(source: str | None, mapping: str | None = None, as_of: str | None = None,
             engine: str = "duckdb") -> dict[str, Any]:
    from engagement.catalog import available_metrics
    from engagement.data import load
    from engagement.measure import data_range, resolve_business_model

    ds = load(source, mapping=mapping, as_of=as_of, engine=engine)
    first, last = data_range(ds)
    metrics = available_metrics(ds.tables)
    return {
        "source": ds.source,
        "fingerprint": ds.fingerprint(),
        "tables": ds.report.to_dict("records"),
        "problems": ds.problems.to_dict("records"),
        "missing_tables": list(ds.missing_tables),
        "notes": list(ds.notes),
        "data_range": [None if first is None else str(first.date()), None if last is None else str(last.date())],
        "business_model": resolve_business_model(ds),
        "metrics_supported": metrics.loc[metrics.available, "id"].tolist(),
        "metrics_unavailable": dict(zip(metrics.loc[~metrics.available, "id"],
                                        metrics.loc[~metrics.available, "reason"], strict=True)),
    }


def _text(s: dict[str, Any]) -> str:
    lines = [f"Data source: {s['source']} (fingerprint {s['fingerprint']})",
             f"Dates: {s['data_range'][0]} to {s['data_range'][1]}; business model: "
             f"{s['business_model'].replace('_', '-')}", "", "table               read      used  rejected"]
    for t in s["tables"]:
        lines.append(f"{t['table']:<16}{t['rows_read']:>8,}{t['rows_used']:>10,}{t['rows_rejected']:>10,}")
    if s["problems"]:
        lines += ["", "Problems:"]
        for p in s["problems"]:
            lines.append(f"- {p['table']}.{p['column']}: {p['description']} ({p['rule']}): {p['rows']:,} row(s), "
                         f"e.g. {p['example']}")
    if s["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in s["notes"]]
    if s["missing_tables"]:
        lines += ["", "Tables this source does not have: " + ", ".join(s["missing_tables"]) + "."]
    lines += ["", f"Metrics the data supports ({len(s['metrics_supported'])}): " + ", ".join(s["metrics_supported"])]
    for metric, why in s["metrics_unavailable"].items():
        lines.append(f"- {metric}: {why}")
    return "\n".join(lines)


def validate_source(source: str | None, *, as_json: bool = False, mapping: str | None = None,
                    as_of: str | None = None, engine: str = "duckdb") -> int:
    """Print the data-quality report of ``source``; return 0 (clean), 1 (rows rejected) or 2 (unusable).

    ``engine`` is "duckdb", "spark" or a Spark Connect address (see :mod:`engagement.engine`);
    the report is the same on each.

    Examples
    --------
    >>> import contextlib, io
    >>> from engagement.check import validate_source
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     code = validate_source(None)
    >>> code, out.getvalue().splitlines()[1].startswith("Dates: 2022-01-01 to 2024-12-31")
    (0, True)
    """
    from pathlib import Path

    from engagement.data import ContractError
    from engagement.data.mapping import MappingError
    from engagement.engine import check_engine, is_uri

    if check_engine(engine):
        print(f"error: {check_engine(engine)}", file=sys.stderr)
        return 2
    if source is not None and not is_uri(source) and not Path(source).exists():
        print(f"error: the data source {source} does not exist (a folder of Parquet/CSV files or a DuckDB file).",
              file=sys.stderr)
        return 2
    try:
        summary = _summary(source, mapping, as_of, engine)
    except ContractError as err:
        print(f"error: the data cannot be used: {err}", file=sys.stderr)
        return 2
    except (MappingError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str) if as_json else _text(summary))
    return 1 if any(t["rows_rejected"] for t in summary["tables"]) else 0
