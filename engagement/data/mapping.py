"""Column mapping: read exports that do not carry the contract's names, declared in a YAML file.

Real exports rarely look like the contract. A mapping file says, per contract
table, which file holds it and how its columns become the contract's; it is
applied at load (``load(folder, mapping="shop.yml")``,
``engagement validate FOLDER --mapping shop.yml``, ``engagement report --data
FOLDER --mapping shop.yml``), in the engine, and the mapped tables are then
validated like any others. Every row a mapping leaves out on purpose is
counted in ``Dataset.notes``; nothing is dropped silently.

The format (every key but ``tables`` is optional)::

    time_zone: Europe/London        # zone of timestamps written without one (default UTC)
    tables:
      orders:                       # a contract table
        file: Online Retail.csv     # relative to the data folder, or absolute
        format: csv                 # csv, parquet or text (whitespace-separated); default from the suffix
        header: true                # csv/text: the first line names the columns
        names: [a, b, c]            # csv/text: the columns' names (for a file without a header)
        delimiter: ","              # csv
        columns:                    # contract column: a source column, or one of
          customer_id: CustomerID
          ordered_at: {column: InvoiceDate, format: "%m/%d/%Y %H:%M"}   # strptime: %Y %m %d %H %M %S %f %z
          revenue: {product: [Quantity, UnitPrice]}                     # the product of columns
          cost: {column: cost_cents, scale: 0.01}                       # currency units: cents to dollars
          event: {column: type, values: {Opened: open, Clicked: click}} # value names
          order_id: {generate: true}        # no id in the export: one from the row's values
        keep: [Country]             # source columns kept as they are (customers: usable as segments)
        exclude:                    # rows left out on purpose, each rule counted in the notes
          - {name: returns, column: Quantity, below: 0}
          - {name: anonymous, column: CustomerID, missing: true}
        lines_of: order_id          # rows are order lines: one order per id, revenue and cost summed
      customers:
        from: orders                # no customer file: one customer per customer_id of orders,
        columns: {region: Country}  # signed up at their first order; attributes from that order

Examples
--------
>>> from engagement.data.mapping import read_mapping
>>> m = read_mapping({"tables": {"orders": {"file": "o.csv", "columns": {"revenue": {"column": "amt", "scale": 0.01}}}}})
>>> m.tables["orders"].columns["revenue"]
{'column': 'amt', 'scale': 0.01}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
import yaml

from engagement import engine as _eng
from engagement.data.schema import CONTRACT

__all__ = ["MappingError", "ColumnMapping", "TableMapping", "read_mapping", "apply_mapping"]

_TABLE_KEYS = {"file", "format", "header", "names", "delimiter", "columns", "keep", "exclude", "lines_of", "from"}
_COLUMN_KEYS = {"column", "product", "generate", "scale", "format", "values"}
_EXCLUDE_TESTS = {"below", "above", "equals", "missing", "in"}
_DIRECTIVES = {"Y": r"([0-9]{4})", "m": r"([0-9]{1,2})", "d": r"([0-9]{1,2})", "H": r"([0-9]{1,2})",
               "M": r"([0-9]{1,2})", "S": r"([0-9]{1,2})", "f": r"([0-9]{1,9})", "z": r"(Z|[+-][0-9]{2}:?[0-9]{2})"}
_MONEY = ("revenue", "cost", "spend")


class MappingError(ValueError):
    """The mapping file is not usable; the message names the file and the key."""


@dataclass(frozen=True)
class TableMapping:
    """How one contract table is read from an export."""

    name: str
    file: str | None = None
    format: str | None = None
    header: bool = True
    names: tuple[str, ...] = ()
    delimiter: str = ","
    columns: dict[str, Any] = field(default_factory=dict)
    keep: tuple[str, ...] = ()
    exclude: tuple[dict[str, Any], ...] = ()
    lines_of: str | None = None
    from_table: str | None = None


@dataclass(frozen=True)
class ColumnMapping:
    """A whole mapping file: the time zone of naive timestamps and one :class:`TableMapping` per table."""

    tables: dict[str, TableMapping]
    time_zone: str = "UTC"
    origin: str = "mapping"
    text: str = ""

    def digest(self) -> str:
        """A hash of the mapping's text (part of the validated-snapshot key)."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def _fail(origin: str, where: str, message: str) -> MappingError:
    return MappingError(f"{origin}: {where}: {message}")


def read_mapping(source: str | Path | Mapping[str, Any]) -> ColumnMapping:
    """Read and check a mapping (a YAML file, or the same structure as a dict).

    Parameters
    ----------
    source : path or mapping
        The YAML file, or its content as a dict.

    Returns
    -------
    ColumnMapping

    Raises
    ------
    MappingError
        Naming the file and the key: an unknown table, key, column form or
        ``exclude`` test, a ``format`` directive the reader does not know, an
        unknown time zone, or a table with neither ``file`` nor ``from``.
    """
    if isinstance(source, Mapping):
        origin, text, doc = "mapping", yaml.safe_dump(dict(source), sort_keys=True), dict(source)
    else:
        path = Path(source)
        origin = path.name
        if not path.is_file():
            raise MappingError(f"{path}: the mapping file does not exist")
        text = path.read_text()
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise MappingError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(doc, Mapping) or not isinstance(doc.get("tables"), Mapping) or not doc["tables"]:
        raise _fail(origin, "tables", "the mapping needs a `tables:` section naming at least one contract table")
    unknown = sorted(set(doc) - {"tables", "time_zone"})
    if unknown:
        raise _fail(origin, unknown[0], "unknown key (a mapping has `tables` and `time_zone`)")
    zone = str(doc.get("time_zone") or "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise _fail(origin, "time_zone", f"unknown time zone {zone!r} (e.g. UTC, Europe/London)") from err
    tables = {}
    for name, spec in doc["tables"].items():
        tables[name] = _table(origin, str(name), spec)
    for name, t in tables.items():
        if t.from_table is not None and t.from_table not in tables:
            raise _fail(origin, f"tables.{name}.from", f"{t.from_table!r} is not a table of this mapping")
    return ColumnMapping(tables=tables, time_zone=zone, origin=origin, text=text)


def _table(origin: str, name: str, spec: Any) -> TableMapping:
    where = f"tables.{name}"
    if name not in CONTRACT:
        raise _fail(origin, where, f"not a contract table ({', '.join(sorted(CONTRACT))})")
    if not isinstance(spec, Mapping):
        raise _fail(origin, where, "must be a mapping with `file` (or `from`) and `columns`")
    unknown = sorted(set(spec) - _TABLE_KEYS)
    if unknown:
        raise _fail(origin, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_TABLE_KEYS))})")
    if ("file" in spec) == ("from" in spec):
        raise _fail(origin, where, "give either `file` (where the table is) or `from` (customers derived "
                                   "from another table's customer ids)")
    if "from" in spec and name != "customers":
        raise _fail(origin, f"{where}.from", "only customers can be derived from another table")
    fmt = spec.get("format")
    if fmt is not None and fmt not in ("csv", "parquet", "text"):
        raise _fail(origin, f"{where}.format", f"{fmt!r} is not csv, parquet or text")
    columns = spec.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise _fail(origin, f"{where}.columns", "must map contract columns to source columns")
    for col, form in columns.items():
        _check_column(origin, f"{where}.columns.{col}", form)
    exclude = spec.get("exclude") or []
    if not isinstance(exclude, list):
        raise _fail(origin, f"{where}.exclude", "must be a list of {name, column, <test>}")
    for i, rule in enumerate(exclude):
        tests = set(rule) & _EXCLUDE_TESTS if isinstance(rule, Mapping) else set()
        if not isinstance(rule, Mapping) or not {"name", "column"} <= set(rule) or len(tests) != 1 \
                or set(rule) - _EXCLUDE_TESTS - {"name", "column"}:
            raise _fail(origin, f"{where}.exclude[{i}]", "must be {name, column} and one test of "
                                                         f"{', '.join(sorted(_EXCLUDE_TESTS))}")
    lines_of = spec.get("lines_of")
    if lines_of is not None and CONTRACT[name].key != lines_of:
        raise _fail(origin, f"{where}.lines_of", f"must be the table's id column ({CONTRACT[name].key})")
    return TableMapping(
        name=name, file=None if spec.get("file") is None else str(spec["file"]), format=fmt,
        header=bool(spec.get("header", True)), names=tuple(str(n) for n in spec.get("names") or ()),
        delimiter=str(spec.get("delimiter", ",")), columns=dict(columns),
        keep=tuple(str(k) for k in spec.get("keep") or ()), exclude=tuple(dict(r) for r in exclude),
        lines_of=lines_of, from_table=None if spec.get("from") is None else str(spec["from"]),
    )


def _check_column(origin: str, where: str, form: Any) -> None:
    if isinstance(form, str):
        return
    if not isinstance(form, Mapping):
        raise _fail(origin, where, "must be a source column name or a mapping such as {column: x, scale: 0.01}")
    unknown = sorted(set(form) - _COLUMN_KEYS)
    if unknown:
        raise _fail(origin, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_COLUMN_KEYS))})")
    sources = [k for k in ("column", "product", "generate") if k in form]
    if len(sources) != 1:
        raise _fail(origin, where, "give exactly one of `column`, `product` or `generate`")
    if "product" in form and (not isinstance(form["product"], list) or len(form["product"]) < 2):
        raise _fail(origin, f"{where}.product", "must list two or more source columns")
    if "scale" in form and (isinstance(form["scale"], bool) or not isinstance(form["scale"], int | float)):
        raise _fail(origin, f"{where}.scale", "must be a number (0.01 for amounts in cents)")
    if "values" in form and not isinstance(form["values"], Mapping):
        raise _fail(origin, f"{where}.values", "must map source values to contract values")
    if "format" in form:
        _format_regex(origin, f"{where}.format", str(form["format"]))


def _format_regex(origin: str, where: str, fmt: str) -> tuple[str, list[str]]:
    """A regular expression for strptime format ``fmt`` and the directive of each of its groups."""
    parts, fields, i = [], [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            if d not in _DIRECTIVES:
                raise _fail(origin, where, f"the directive %{d} is not supported (use %Y %m %d %H %M %S %f %z)")
            parts.append(_DIRECTIVES[d])
            fields.append(d)
            i += 2
        else:
            parts.append(r"\s+" if ch == " " else re.escape(ch))
            i += 1
    if not {"Y", "m", "d"} <= set(fields):
        raise _fail(origin, where, "a date format needs %Y, %m and %d")
    return "^" + "".join(parts) + "$", fields


# --- applying a mapping -----------------------------------------------------------------------


def _read(con: Any, t: TableMapping, base: Path, origin: str) -> ir.Table:
    path = Path(t.file or "")
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise _fail(origin, f"tables.{t.name}.file", f"{path} does not exist")
    if path.stat().st_size == 0:
        raise _fail(origin, f"tables.{t.name}.file", f"{path} is empty (0 bytes)")
    fmt = t.format or {".parquet": "parquet", ".txt": "text"}.get(path.suffix.lower(), "csv")
    name = f"mapped_{t.name}"
    if fmt == "parquet":
        return _eng.read_parquet(con, path, name)
    if fmt == "csv":
        return _eng.read_csv_text(con, path, name, delim=t.delimiter, header=t.header, names=list(t.names) or None)
    # whitespace-separated text: one text column per line, split in the engine
    names = list(t.names)
    if t.header and not names:
        with open(path) as f:
            names = f.readline().split()
    if not names:
        raise _fail(origin, f"tables.{t.name}.names", "a text file without a header needs `names`")
    lines = _eng.read_lines(con, path, name, skip_header=t.header)
    lines = lines.filter(lines.line.strip() != "")
    parts = lines.line.strip().re_split(r"\s+")
    return lines.select(**{n: parts[i] for i, n in enumerate(names)})


def _source_column(src: ir.Table, name: str, origin: str, where: str) -> ir.Value:
    if name not in src.columns:
        raise _fail(origin, where, f"the source has no column {name!r} (it has {', '.join(src.columns)})")
    return src[name]


def _number(v: ir.Value) -> ir.Value:
    return v.cast(dt.float64) if v.type().is_numeric() else v.try_cast(dt.float64)


def _iso(v: ir.Value, fmt: str, origin: str, where: str) -> ir.Value:
    """Text in strptime format ``fmt`` rewritten as ISO text, which the validator parses (or rejects)."""
    pattern, fields = _format_regex(origin, where, fmt)
    text = v if v.type().is_string() else v.cast(dt.string)

    def grab(d: str, default: str, width: int) -> ir.Value:
        if d not in fields:
            return ibis.literal(default)
        return text.strip().re_extract(pattern, fields.index(d) + 1).lpad(width, "0")

    iso = (grab("Y", "", 4) + "-" + grab("m", "", 2) + "-" + grab("d", "", 2) + " " + grab("H", "00", 2) + ":"
           + grab("M", "00", 2) + ":" + grab("S", "00", 2))
    if "f" in fields:
        iso = iso + "." + text.strip().re_extract(pattern, fields.index("f") + 1)
    if "z" in fields:
        iso = iso + text.strip().re_extract(pattern, fields.index("z") + 1)
    return ibis.ifelse(text.strip().re_search(pattern), iso, text)


def _column(src: ir.Table, contract: str, form: Any, origin: str, where: str) -> ir.Value:
    if isinstance(form, str):
        return _source_column(src, form, origin, where)
    if "generate" in form:
        # a row identity from the row's own values, and its copy number among identical rows
        cols = [src[c].cast(dt.string).fill_null("") for c in src.columns]
        joined = cols[0]
        for c in cols[1:]:
            joined = joined + "|" + c
        copy = ibis.row_number().over(group_by=[src[c] for c in src.columns])
        return joined + "#" + copy.cast(dt.string)
    if "product" in form:
        value = _number(_source_column(src, form["product"][0], origin, where))
        for name in form["product"][1:]:
            value = value * _number(_source_column(src, name, origin, where))
    else:
        value = _source_column(src, form["column"], origin, where)
    if "values" in form:
        value = value.cast(dt.string).substitute({str(k): str(x) for k, x in form["values"].items()})
    if "scale" in form:
        value = _number(value) * float(form["scale"])
    if "format" in form:
        value = _iso(value, str(form["format"]), origin, where)
    return value


def _exclusions(src: ir.Table, t: TableMapping, origin: str) -> list[tuple[str, ir.BooleanValue]]:
    out = []
    for i, rule in enumerate(t.exclude):
        where = f"tables.{t.name}.exclude[{i}]"
        v = _source_column(src, str(rule["column"]), origin, where)
        if "missing" in rule:
            hit = v.isnull() | (v.cast(dt.string).strip() == "") if rule["missing"] else v.notnull()
        elif "below" in rule:
            hit = _number(v) < float(rule["below"])
        elif "above" in rule:
            hit = _number(v) > float(rule["above"])
        elif "equals" in rule:
            hit = v.cast(dt.string) == str(rule["equals"])
        else:
            hit = v.cast(dt.string).isin([str(x) for x in rule["in"]])
        out.append((str(rule["name"]), hit.fill_null(False)))
    return out


def _with_zone(con: Any, table: ir.Table, columns: list[str], zone: str) -> ir.Table:
    """Write the UTC offset of ``zone`` after each naive timestamp text, from a table of local hours.

    The offset of every local hour in the data's range comes from the tz database
    (a few thousand rows per year, built here); the data stays in the engine.
    """
    if not columns:
        return table
    text = {c: table[c] if table[c].type().is_string() else table[c].cast(dt.string) for c in columns}
    table = table.mutate(**text)
    bounds = table.aggregate(**{f"lo_{c}": table[c].min() for c in columns},
                             **{f"hi_{c}": table[c].max() for c in columns}).execute().iloc[0]
    starts = [pd.Timestamp(str(bounds[f"lo_{c}"])[:10]) for c in columns if pd.notna(bounds[f"lo_{c}"])]
    ends = [pd.Timestamp(str(bounds[f"hi_{c}"])[:10]) for c in columns if pd.notna(bounds[f"hi_{c}"])]
    if not starts:
        return table
    tz = ZoneInfo(zone)
    hours, offsets = [], []
    t = datetime.combine(min(starts).date(), datetime.min.time()) - timedelta(days=1)
    end = datetime.combine(max(ends).date(), datetime.min.time()) + timedelta(days=2)
    while t < end:
        off = t.replace(tzinfo=tz).utcoffset() or timedelta(0)
        minutes = int(off.total_seconds() // 60)
        hours.append(t.strftime("%Y-%m-%d %H"))
        offsets.append(f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
        t += timedelta(hours=1)
    lookup = ibis.memtable(pd.DataFrame({"_hour": hours, "_offset": offsets}))
    for c in columns:
        text = table[c].strip()
        naive = text.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}") & ~text.re_search(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
        # complete to YYYY-MM-DD HH:MM:SS[.f] so that the offset can follow
        local = ibis.cases((text.length() == 10, text + " 00:00:00"),
                           (text.re_search(r"[ T][0-9]{2}:[0-9]{2}$"), text + ":00"), else_=text)
        key = (local.substr(0, 10) + " " + local.substr(11, 2)).name("_key")
        joined = table.mutate(_key=key).left_join(lookup, [ibis._["_key"] == lookup["_hour"]])
        table = joined.mutate(**{c: ibis.ifelse(naive & joined["_offset"].notnull(), local + joined["_offset"],
                                                joined[c])}).drop("_key", "_hour", "_offset")
    return table


def apply_mapping(con: Any, mapping: ColumnMapping, base: Path, notes: list[str]) -> dict[str, ir.Table]:
    """The mapped tables (contract names, in the engine), with what was left out or combined in ``notes``.

    Parameters
    ----------
    con : Ibis backend
    mapping : ColumnMapping
    base : Path
        The folder relative file names are read from.
    notes : list of str
        Appended: rows each ``exclude`` rule left out, order lines combined,
        customers derived, time zones converted.

    Returns
    -------
    dict of table name -> Ibis table
    """
    origin = mapping.origin
    out: dict[str, ir.Table] = {}
    derived = [n for n, t in mapping.tables.items() if t.from_table is not None]
    for name, t in mapping.tables.items():
        if t.from_table is not None:
            continue
        src = _read(con, t, base, origin)
        spec = CONTRACT[name]
        rules = _exclusions(src, t, origin)
        if rules:
            # counted in order: a row two rules would leave out counts for the first
            left_out = ibis.literal(False)
            firsts = []
            for _label, hit in rules:
                firsts.append(hit & ~left_out)
                left_out = left_out | hit
            counts = src.aggregate(_n=src.count(), **{f"x{i}": first.cast("int64").sum()
                                                      for i, first in enumerate(firsts)}).execute().iloc[0]
            for i, (label, _hit) in enumerate(rules):
                n = int(counts[f"x{i}"] or 0)
                if n:
                    notes.append(f"{name}: {n:,} of {int(counts['_n']):,} source rows left out by the mapping "
                                 f"as {label!r} ({rules_text(t.exclude[i])})")
            src = src.filter(~left_out)
        cols: dict[str, ir.Value] = {}
        for contract, form in t.columns.items():
            cols[str(contract)] = _column(src, str(contract), form, origin, f"tables.{name}.columns.{contract}")
        for c in spec.columns:
            if c.name not in cols and c.name in src.columns:
                cols[c.name] = src[c.name]
        for k in t.keep:
            cols[k] = _source_column(src, k, origin, f"tables.{name}.keep")
        table = src.select(**cols)
        zone_cols = [c.name for c in spec.columns if c.kind in ("timestamp", "date") and c.name in table.columns]
        if mapping.time_zone != "UTC":
            table = _with_zone(con, table, zone_cols, mapping.time_zone)
            notes.append(f"{name}: times without a zone are in {mapping.time_zone}, converted to UTC")
        if t.lines_of is not None:
            table = _combine_lines(table, t.lines_of, name, notes)
        # materialised once in the engine (it spills to disk past its memory limit): parsing, generated ids
        # and combined lines are not recomputed by every query that reads the table
        out[name] = table.cache()
    for name in derived:
        t = mapping.tables[name]
        out[name] = _derive_customers(out[t.from_table or ""], t, origin, notes).cache()
    return out


def rules_text(rule: Mapping[str, Any]) -> str:
    """An exclude rule in words, e.g. "Quantity below 0"."""
    col = rule["column"]
    if "missing" in rule:
        return f"{col} is missing" if rule["missing"] else f"{col} is present"
    if "in" in rule:
        return f"{col} is one of {', '.join(map(str, rule['in']))}"
    test = next(k for k in ("below", "above", "equals") if k in rule)
    return f"{col} {test} {rule[test]}"


def _combine_lines(table: ir.Table, key: str, name: str, notes: list[str]) -> ir.Table:
    """Order lines to orders: money summed, the earliest time, and every other column's smallest value."""
    money = [c for c in table.columns if c in _MONEY]
    aggs: dict[str, Any] = {c: _number(table[c]).sum() for c in money}
    for c in table.columns:
        if c != key and c not in money:
            aggs[c] = table[c].min()
    lines = int(table.count().execute())
    combined = table.group_by(key).aggregate(**aggs)
    n = int(combined.count().execute())
    notes.append(f"{name}: {lines:,} source lines combined into {n:,} by {key} "
                 f"({', '.join(money) or 'no amounts'} summed)")
    return combined.select(key, *[c for c in table.columns if c != key])


def _derive_customers(orders: ir.Table, t: TableMapping, origin: str, notes: list[str]) -> ir.Table:
    """One customer per customer id of the source table, signed up at the first row, attributes from it."""
    when = {"orders": "ordered_at", "events": "occurred_at"}.get(t.from_table or "")
    if when is None or "customer_id" not in orders.columns or when not in orders.columns:
        raise _fail(origin, f"tables.{t.name}.from", "customers can be derived from orders or events "
                                                     "(their customer_id and time)")
    ok = orders.filter(orders.customer_id.notnull() & (orders.customer_id.cast(dt.string).strip() != ""))
    first = ok.group_by("customer_id").aggregate(signup_at=ok[when].min())
    attrs = {str(k): (v if isinstance(v, str) else v.get("column")) for k, v in t.columns.items()}
    for target, column in attrs.items():
        if column not in orders.columns:
            raise _fail(origin, f"tables.{t.name}.columns.{target}",
                        f"{t.from_table} has no column {column!r} (keep it there with `keep:`)")
    if attrs:
        # the attribute on the customer's first row (the smallest value when several rows share that time)
        at_first = ok.inner_join(first, [ok.customer_id == first.customer_id, ok[when] == first.signup_at])
        picked = at_first.group_by("customer_id").aggregate(**{k: at_first[c].min() for k, c in attrs.items()})
        first = first.left_join(picked, "customer_id").select("customer_id", "signup_at", *attrs)
    notes.append(f"customers: derived from {t.from_table}: one per customer_id, signed up at their first row"
                 + (f"; {', '.join(attrs)} from that row" if attrs else ""))
    return first
