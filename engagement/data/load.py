"""Load the engagement tables, validate them against the contract, quarantine bad rows.

``load(source)`` reads a directory of Parquet/CSV files (one per table), a DuckDB
database file, or a mapping of pandas DataFrames, into one engine connection
(embedded DuckDB by default). Each table is checked against
:data:`engagement.data.schema.CONTRACT` in the engine:

* hard problems (unreadable or empty file, missing required column, no
  customers) are collected and raised together as one :class:`ContractError`
  that names table, column, rows and an example for each;
* row problems (missing, unparseable or infinite values, values out of range,
  timestamps after the as-of time, duplicate rows or ids, ids that point at no
  customer or at a rejected one, time order) put the row in the table's rejects
  with the reasons; the report counts them per rule;
* what is converted rather than refused is said in ``Dataset.notes``: zone-aware
  timestamps (to UTC, also when a column mixes them with naive ones, which are
  UTC by the contract) and ids written as whole decimals ("17.0" is "17").

Rows read = rows used + rows rejected, always. Raw tables never become pandas.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engagement import engine as _eng
from engagement.data import _snapshot
from engagement.data.mapping import ColumnMapping, apply_mapping, read_mapping
from engagement.data.schema import CONTRACT, Col, TableSpec

__all__ = ["ContractError", "Dataset", "load", "default_demo_path"]

_TZ_PATTERN = r"(Z|[+-]\d{2}:?\d{2})$"


def default_demo_path() -> Path:
    """The embedded demo dataset, shipped inside the package (``data/demo`` in a checkout links to it)."""
    return Path(str(resources.files("engagement.data").joinpath("demo_dataset")))


class ContractError(ValueError):
    """The data cannot be used as it is; ``problems`` lists every problem found."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) with the data:"]
        for p in problems:
            rows = "" if p["rows"] is None else f", {p['rows']:,} rows"
            example = "" if p["example"] in (None, "") else f", e.g. {p['example']}"
            lines.append(f"  - {p['table']}.{p['column']}: {p['description']}{rows}{example}")
        super().__init__("\n".join(lines))


@dataclass
class Dataset:
    """Validated tables (Ibis, bound to one backend), their rejects and the validation report.

    Attributes
    ----------
    tables : dict of name -> Ibis table
        The rows that passed, with contract types (ids as strings, timestamps as
        naive UTC) plus any extra columns.
    rejects : dict of name -> Ibis table
        The rows that failed, as read, with a ``_reason`` column.
    report : DataFrame
        ``table, rows_read, rows_used, rows_rejected`` per table present.
    problems : DataFrame
        ``table, column, rule, rows, example, description`` per rule that failed.
    missing_tables : list of str
        Contract tables the source does not have (their metrics are unavailable).
    notes : list of str
        Things worth knowing that are not problems (ignored files, converted time zones).
    snapshot : Path or None
        The validated-snapshot entry that holds this validation's outcome (see
        :mod:`engagement.data._snapshot`), or None when none was used.
    reused : bool
        True when the outcome was read from ``snapshot`` instead of validating
        again (the files and the contract are byte-for-byte those validated then).
    as_of : Timestamp
        The as-of time rows were checked against (naive UTC).
    """

    tables: dict[str, ir.Table]
    rejects: dict[str, ir.Table]
    report: pd.DataFrame
    problems: pd.DataFrame
    missing_tables: list[str]
    source: str
    backend: Any
    notes: list[str] = field(default_factory=list)
    snapshot: Path | None = None
    reused: bool = False
    as_of: pd.Timestamp | None = None
    #: what functions of the data computed once and keep (see :func:`engagement.measure.data_range`)
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: per table kept lazily (the source less a few rejects: see ``_lazy_used``), the table and the first and last
    #: value of its timestamp columns, counted when it was validated
    ranges: dict[str, tuple[ir.Table, dict[str, tuple[Any, Any]]]] = field(default_factory=dict, repr=False,
                                                                          compare=False)

    def __getitem__(self, name: str) -> ir.Table:
        if name not in self.tables:
            raise KeyError(f"The dataset has no table {name!r}; it has {sorted(self.tables)}.")
        return self.tables[name]

    def has(self, name: str) -> bool:
        """Whether the dataset has table ``name``."""
        return name in self.tables

    def known_range(self, table: str, column: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None] | None:
        """The first and last value of ``table.column`` as validation counted them, or None when not counted (or
        the table has been replaced since)."""
        known = self.ranges.get(table)
        if known is None or known[0] is not self.tables.get(table) or column not in known[1]:
            return None
        lo, hi = known[1][column]
        return (None if lo is None else pd.Timestamp(lo)), (None if hi is None else pd.Timestamp(hi))

    def fingerprint(self) -> str:
        """A short hash of the validation report: same data, same fingerprint.

        The problems count without their descriptions, which name the as-of time: loaded again a few seconds later
        (each notebook of a report loads the data), data with a row dated in the future rejects the same rows with
        another as-of time in the text, and is the same data.
        """
        text = self.report.to_csv(index=False) + self.problems.drop(columns="description").to_csv(index=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- reading ----------------------------------------------------------------------------------


def _read_directory(con: Any, folder: Path, problems: list, notes: list,
                    mapped: tuple[set[str], set[str]] = (set(), set())) -> dict[str, ir.Table]:
    """The contract-named files of ``folder``, except ``mapped`` (tables a mapping reads, and its files)."""
    raw: dict[str, ir.Table] = {}
    known = set(CONTRACT)
    mapped_tables, mapped_files = mapped
    for path in sorted(folder.iterdir()):
        stem, suffix = path.stem, path.suffix.lower()
        if path.name in mapped_files or (stem in mapped_tables and suffix in (".parquet", ".csv")):
            continue
        if path.name.startswith(".") or suffix not in (".parquet", ".csv"):
            if path.is_file() and not path.name.startswith("."):
                notes.append(f"ignored {path.name}: not a Parquet or CSV file")
            continue
        if stem not in known:
            notes.append(f"ignored {path.name}: not a contract table ({', '.join(sorted(known))})")
            continue
        if stem in raw:
            problems.append(_problem(stem, "*", "duplicate_source", None, path.name,
                                     "two files hold this table (Parquet and CSV); keep one"))
            continue
        if path.stat().st_size == 0:
            problems.append(_problem(stem, "*", "empty_file", None, path.name, "the file is empty (0 bytes)"))
            continue
        try:
            if suffix == ".parquet":
                raw[stem] = _eng.read_parquet(con, path, f"raw_{stem}")
            else:
                # read as text: the contract, not a sniffer, decides types (keeps leading zeros in ids,
                # and cannot silently read naive timestamps as UTC next to aware ones)
                raw[stem] = _eng.read_csv_text(con, path, f"raw_{stem}")
            raw[stem].count().execute()  # force the read now so an unreadable file is reported here
        except Exception as err:
            raw.pop(stem, None)
            problems.append(_problem(stem, "*", "unreadable_file", None, path.name,
                                     f"the file cannot be read ({type(err).__name__}: {str(err).splitlines()[0]})"))
    return raw


def _read_uri(con: Any, uri: str, problems: list) -> dict[str, ir.Table]:
    """The contract tables under a folder URI that Spark reads (``s3a://bucket/engagement``, ...).

    A remote folder is not listed: each contract name is looked for as ``<name>.parquet``
    (a file or a folder of part files, as Spark writes them) and ``<name>.csv``.
    """
    raw: dict[str, ir.Table] = {}
    for stem in CONTRACT:
        found = []
        for suffix in (".parquet", ".csv"):
            where = f"{uri}/{stem}{suffix}"
            try:
                table = (_eng.read_parquet(con, where, f"raw_{stem}") if suffix == ".parquet"
                         else _eng.read_csv_text(con, where, f"raw_{stem}"))
                table.count().execute()  # force the read now so an unreadable file is reported here
            except Exception as err:
                if not _eng.missing_path(err):
                    problems.append(_problem(stem, "*", "unreadable_file", None, where,
                                             f"the file cannot be read ({type(err).__name__}: "
                                             f"{str(err).splitlines()[0]})"))
                continue
            found.append((suffix, table))
        if len(found) > 1:
            problems.append(_problem(stem, "*", "duplicate_source", None, f"{uri}/{stem}",
                                     "two files hold this table (Parquet and CSV); keep one"))
        elif found:
            raw[stem] = found[0][1]
    return raw


def _read_duckdb(con: Any, path: Path, problems: list) -> dict[str, ir.Table]:
    try:
        con.raw_sql(f"ATTACH '{path.as_posix()}' AS source (READ_ONLY)")
    except Exception as err:
        problems.append(_problem("*", "*", "unreadable_file", None, path.name,
                                 f"the DuckDB file cannot be opened ({str(err).splitlines()[0]})"))
        return {}
    names = set(con.list_tables(database=("source", "main")))
    return {n: con.table(n, database=("source", "main")) for n in sorted(names & set(CONTRACT))}


def _read_frames(con: Any, frames: Mapping[str, pd.DataFrame], problems: list, notes: list) -> dict[str, ir.Table]:
    raw = {}
    for name, frame in frames.items():
        if name not in CONTRACT:
            problems.append(_problem(name, "*", "unknown_table", None, None,
                                     f"not a contract table ({', '.join(sorted(CONTRACT))})"))
            continue
        if not isinstance(frame, pd.DataFrame):
            problems.append(_problem(name, "*", "not_a_dataframe", None, type(frame).__name__,
                                     "tables must be pandas DataFrames"))
            continue
        frame = _pandas_timestamps(name, _typed_nulls(frame), notes)
        raw[name] = _eng.register_frame(con, f"raw_{name}", frame)
    return raw


def _typed_nulls(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns with no value at all (``[None, None]``: nobody has cancelled yet) as text.

    Such a column has no type for the engine to take (DuckDB refused it: "NULL typed columns"); as text, the
    contract's casts read it as missing values of the column's own type.
    """
    empty = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().all()]
    return frame.astype(dict.fromkeys(empty, "string")) if empty else frame


def _pandas_timestamps(name: str, frame: pd.DataFrame, notes: list) -> pd.DataFrame:
    """Object columns of Timestamps with zones become UTC; naive values in them are UTC by the contract."""
    spec = CONTRACT.get(name)
    if spec is None:
        return frame
    out = frame
    for col in spec.columns:
        if col.kind != "timestamp" or col.name not in frame.columns or frame[col.name].dtype != object:
            continue
        values = frame[col.name].dropna()
        aware = values.map(lambda v: getattr(v, "tzinfo", None) is not None)
        if not aware.any():
            continue
        if not aware.all():
            notes.append(_mixed_note(name, col.name, int(aware.sum()), int((~aware).sum())))
        out = out.assign(**{col.name: pd.to_datetime(frame[col.name], utc=True)})
    return out


def _mixed_note(table: str, column: str, aware: int, naive: int) -> str:
    return (f"{table}.{column}: {aware:,} value(s) with a time zone were converted to UTC; "
            f"the other {naive:,} have none and are UTC by the contract")


# --- normalising types ------------------------------------------------------------------------


_DECIMAL_ID = r"^-?[0-9]+[.]0+$"


def _normalise(col: Col, value: ir.Value, decimal_ids: bool = False) -> ir.Value:
    """The contract-typed version of a raw column (NULL where it cannot be parsed).

    ``decimal_ids`` reads ids written as whole decimals ("17.0", as spreadsheets
    and float columns export them) as the integer they are ("17"), as Parquet
    float ids already are.
    """
    t = value.type()
    if col.kind == "id":
        if t.is_floating():
            value = value.try_cast(dt.int64)
        if not t.is_string():
            return value.cast(dt.string)
        if decimal_ids:
            return ibis.ifelse(value.re_search(_DECIMAL_ID), value.re_extract(r"^(-?[0-9]+)[.]0+$", 1), value)
        return value
    if col.kind == "str":
        return value if t.is_string() else value.cast(dt.string)
    if col.kind in ("timestamp", "date"):
        if t.is_timestamp():
            out = value.cast(dt.Timestamp()) if t.timezone is not None else value
        elif t.is_date():
            out = value.cast(dt.Timestamp())
        elif t.is_string():
            out = value.try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())
        else:
            out = value.try_cast(dt.Timestamp())
        return out.date() if col.kind == "date" else out
    if col.kind == "float":
        return value.cast(dt.float64) if t.is_numeric() else value.try_cast(dt.float64)
    if col.kind == "int":
        return value.cast(dt.int64) if t.is_integer() else value.try_cast(dt.float64).try_cast(dt.int64)
    if col.kind == "bool":
        return value if t.is_boolean() else value.try_cast(dt.boolean)
    raise ValueError(f"unknown column kind {col.kind!r}")  # pragma: no cover


HIDDEN = "(an identifier: not shown)"


def _row_example(spec: TableSpec, column: str, value: Any) -> Any:
    """A failing row's example as it may be shown: identifiers (and columns the contract does not know,
    which may hold names or emails) are never printed, so reports can be shared; ``Dataset.rejects`` has the rows."""
    col = spec.column(column) if column != "*" else None
    if value is None or col is None or col.kind == "id":
        return None if value is None else HIDDEN
    return value


def _problem(table: str, column: str, rule: str, rows: int | None, example: Any, description: str) -> dict:
    return {"table": table, "column": column, "rule": rule, "rows": rows,
            "example": None if example is None else str(example), "description": description}


def _structure(name: str, spec: TableSpec, raw: ir.Table, problems: list, notes: list) -> bool:
    """Table-level checks: required columns, customers not empty, time zones written in text timestamps."""
    missing = [c for c in spec.required if c not in raw.columns]
    for c in missing:
        problems.append(_problem(name, c, "missing_column", None, None,
                                 f"required column is missing (columns are {', '.join(raw.columns)})"))
    ok = not missing
    if name == "customers" and not int(raw.count().execute()):
        problems.append(_problem(name, "*", "empty_table", 0, None,
                                 "the table has no rows: every other table's rows point at a customer"))
        ok = False
    for col in spec.columns:
        if col.name not in raw.columns or col.kind not in ("timestamp", "date"):
            continue
        t = raw[col.name].type()
        if t.is_timestamp() and t.timezone not in (None, "UTC"):
            notes.append(f"{name}.{col.name}: converted from time zone {t.timezone} to UTC")
        if t.is_string():
            v = raw[col.name]
            has_tz = v.re_search(_TZ_PATTERN)
            counts = raw.aggregate(aware=has_tz.cast("int64").sum(), naive=(~has_tz).cast("int64").sum()
                                   ).execute().iloc[0]
            if counts["aware"] and counts["naive"]:
                notes.append(_mixed_note(name, col.name, int(counts["aware"]), int(counts["naive"])))
            elif counts["aware"]:
                notes.append(f"{name}.{col.name}: converted to UTC from the zones written in the values")
    return ok


# --- row rules --------------------------------------------------------------------------------


@dataclass
class _Checks:
    """What the row rules of one load compare against, beyond the row itself."""

    as_of: pd.Timestamp  # naive UTC: no timestamp may be later
    #: whether the caller named the as-of time (else it is the time of loading, which no output states: a report
    #: rendered again would differ in it)
    as_of_given: bool = False
    decimal_ids: set[str] = field(default_factory=set)  # "table.column" of text ids written as 17.0
    used: dict[str, ir.Table] = field(default_factory=dict)  # tables validated so far
    rejected_keys: dict[str, tuple[ir.Table, ir.Table]] = field(default_factory=dict)  # (duplicated, other)
    spark: bool = False  # a distributed engine with a 32-bit hash (see _row_hash, _repeated, _kept)
    duckdb: bool = False  # DuckDB, whose own 64-bit hash the row screen takes as it is (see _row_hash)
    #: the earliest time of a row rejected as later than ``as_of`` (any table); while the time now is before it,
    #: a validation against now rejects the same rows (see :func:`load`)
    future_from: pd.Timestamp | None = None


def _row_rules(
    name: str, spec: TableSpec, raw: ir.Table, checks: _Checks
) -> tuple[ir.Table, list[tuple[str, str, str, ir.BooleanValue]], dict[str, str]]:
    """The typed view of ``raw``, its row rules as (rule, column, description, ok), and where raw values live.

    A raw copy (``__raw__<col>``) is kept only for columns whose typed value can
    differ from what was read (text parsed into numbers or timestamps, ids
    re-typed); elsewhere the typed column is the raw one. Duplicate rules are
    added by :func:`_duplicate_rules` only when a cheap count finds duplicates.
    """
    present = [c for c in spec.columns if c.name in raw.columns]
    typed_cols = {c.name: _normalise(c, raw[c.name], f"{name}.{c.name}" in checks.decimal_ids) for c in present}
    changed = {c for c, expr in typed_cols.items() if not expr.equals(raw[c])}
    extras = [c for c in raw.columns if spec.column(c) is None]
    view = raw.select(
        **{f"__raw__{c}": raw[c] for c in raw.columns if c in changed},
        **typed_cols,
        **{c: raw[c] for c in extras},
    )
    raw_of = {c: (f"__raw__{c}" if c in changed else c) for c in raw.columns}
    rules: list[tuple[str, str, str, ir.BooleanValue]] = []
    for c in present:
        rv, tv = view[raw_of[c.name]], view[c.name]
        if not c.nullable:
            rules.append((f"missing_{c.name}", c.name, "required value is missing", rv.notnull()))
        if c.name in changed:
            rules.append((f"unparseable_{c.name}", c.name, f"value cannot be read as {c.kind}",
                          rv.isnull() | tv.notnull()))
        if c.kind == "float":
            rules.append((f"infinite_{c.name}", c.name, "value is infinite or not a number",
                          _finite(tv).fill_null(True)))
        if c.kind in ("timestamp", "date"):
            limit = checks.as_of.date() if c.kind == "date" else checks.as_of.to_pydatetime()
            rules.append((f"after_as_of_{c.name}", c.name, _after_as_of(checks.as_of, checks.as_of_given),
                          (tv <= ibis.literal(limit)).fill_null(True)))
    for rule in spec.rules:
        if all(n in view.columns for n in rule.uses or (rule.column,)):
            rules.append((rule.name, rule.column, rule.description, rule.check(view).fill_null(True)))
    for col, other, other_col in spec.references:
        if col in view.columns and other in checks.used:
            value = view[col]
            known = value.isin(checks.used[other][other_col])
            if other in checks.rejected_keys:
                duplicated, rejected = (t[other_col] for t in checks.rejected_keys[other])
                rules.append((f"duplicate_{col}", col,
                              f"points at a duplicated {other} id (every copy of it was rejected in {other})",
                              value.isnull() | known | ~value.isin(duplicated)))
                rules.append((f"rejected_{col}", col, f"points at a row rejected in {other} (see its problems)",
                              value.isnull() | known | value.isin(duplicated) | ~value.isin(rejected)))
                known = known | value.isin(rejected) | value.isin(duplicated)
            rules.append((f"unknown_{col}", col, f"points at no row of {other}", value.isnull() | known))
    return view, rules, raw_of


def _after_as_of(as_of: pd.Timestamp, given: bool) -> str:
    """What an ``after_as_of_<column>`` problem says: the as-of time when the caller named it; else (the time of
    loading) no time, so that the same data give the same text whenever they are loaded (a scheduled report
    rendered again is the same report; the example shows the row's own time)."""
    if not given:
        return "dated in the future (later than the time the data were loaded)"
    return f"later than the data's as-of time ({as_of:%Y-%m-%d %H:%M:%S} UTC)"


def _finite(value: ir.FloatingValue) -> ir.BooleanValue:
    """Neither infinite nor NaN; written without ``isinf``, which Ibis 12 compiles to FALSE on Spark."""
    return ~(value.isnan() | (value.abs() > _MAX_DOUBLE))


_MAX_DOUBLE = float(np.finfo(np.float64).max)


def _duplicate_rules(
    spec: TableSpec, raw: ir.Table, view: ir.Table, raw_of: dict[str, str], dup_rows: bool, dup_keys: bool
) -> list[tuple[str, str, str, ir.BooleanValue]]:
    """Window-based duplicate rules, built only when a distinct count found duplicates."""
    rules: list[tuple[str, str, str, Any]] = []
    raw_cols = [view[raw_of[c]] for c in raw.columns]
    if dup_rows:
        copy_no = ibis.row_number().over(group_by=raw_cols)
        rules.append(("duplicate_row", "*", "exact copy of an earlier row (first copy kept)", copy_no == 0))
    if dup_keys and spec.key is not None:
        key = view[spec.key]
        n_key = key.count().over(group_by=key)
        n_same = key.count().over(group_by=raw_cols)
        rules.append((f"duplicate_{spec.key}", spec.key, "the same id on different rows (all copies rejected)",
                      key.isnull() | (n_key == n_same)))
    return rules


def _count_rules(
    table: ir.Table, rules: list[tuple[str, str, str, ir.BooleanValue]], raw_of: dict[str, str], first: str,
    key: str | None = None, dotted: list[str] | None = None, examples: bool = True,
) -> pd.Series:
    """Each rule's failing rows (``n<i>``) and an example (``e<i>``); with ``key``, how many rows have one; per
    column of ``dotted`` (``__dots<i>``), how many values have a dot (text ids that may be written as 17.0); per
    rule of a time later than the as-of time (``f<i>``), the earliest such time.

    The counts take one pass; the examples and earliest times a second, over the failing rows alone, and only
    when a rule fails (:func:`_rule_examples`; ``examples=False``: the counts alone). Taking every rule's example in
    the one pass cost each row a CASE per rule: 0.3 s of a 1.5 s pass over 27 million pageviews without a failing
    row.
    """
    hits = _hits(table, rules)
    aggs: dict[str, Any] = {"rows_read": hits.count()}
    if key is not None:
        aggs.update(_key_n=hits[key].count())
    for i, column in enumerate(dotted or []):
        aggs[f"__dots{i}"] = _int(hits[raw_of[column]].contains(".")).sum()
    for i in range(len(rules)):
        aggs[f"n{i}"] = _int(hits[f"__hit{i}"]).sum()
    counts = hits.aggregate(**aggs).execute().iloc[0]
    return _rule_examples(table, rules, raw_of, first, counts) if examples else counts


def _hits(table: ir.Table, rules: list[tuple[str, str, str, ir.BooleanValue]]) -> ir.Table:
    """``table`` with each rule's failure as a column ``__hit<i>``: each rule once, as a column (written inline in
    both its count and its example, a reference rule's IN (SELECT ...) was joined twice: 2.8 s against 1.9 s over
    28 million events)."""
    return table.mutate(**{f"__hit{i}": ~ok for i, (_r, _c, _d, ok) in enumerate(rules)})


def _rule_examples(table: ir.Table, rules: list[tuple[str, str, str, ir.BooleanValue]], raw_of: dict[str, str],
                   first: str, counts: pd.Series) -> pd.Series:
    """``counts`` (:func:`_count_rules`) with each rule's example and earliest later-than-as-of time, read in one
    pass over the rows that fail a rule, when one does; None for a rule that no row fails."""
    failing = [i for i in range(len(rules)) if int(counts[f"n{i}"] or 0)]
    found: dict[str, Any] = {}
    for i, (rule, *_rest) in enumerate(rules):
        found[f"e{i}"] = None
        if rule.startswith("after_as_of_"):
            found[f"f{i}"] = None
    if failing:
        hits = _hits(table, rules)
        bad = hits.filter(functools.reduce(operator.or_, [hits[f"__hit{i}"] for i in failing]))
        examples: dict[str, Any] = {}
        for i in failing:
            rule, column = rules[i][0], rules[i][1]
            hit = bad[f"__hit{i}"]
            examples[f"e{i}"] = _example(bad[raw_of[column if column != "*" else first]], hit)
            if rule.startswith("after_as_of_"):  # in seconds: a time in 2999 does not fit Spark's pandas timestamps
                seconds = bad[column].cast("timestamp").epoch_seconds().cast("float64").floor().cast("int64")
                examples[f"f{i}"] = ibis.ifelse(hit, seconds, ibis.null("int64")).min()
        found.update(bad.aggregate(**examples).execute().iloc[0].to_dict())
    return pd.concat([counts, pd.Series(found, dtype=object)])


def _example(value: ir.Value, hit: ir.BooleanValue) -> ir.StringScalar:
    """The least of ``value`` as text over the rows that ``hit``: the example a failing rule shows.

    A CASE, not an aggregate's FILTER: DuckDB computed a filtered aggregate's argument, the cast to text, for every
    row before filtering (1.2 s of the 1.7 s rule pass over 28 million events); a CASE casts only the hits.
    """
    return ibis.ifelse(hit, value.cast("string"), ibis.null("string")).min()


def _decimal_ids(name: str, raw: ir.Table, dotted: list[str], checks: _Checks, notes: list[str]) -> bool:
    """Adds the ``table.column`` of ``dotted`` text ids written as whole decimals to ``checks.decimal_ids``, with
    a note each; whether any was added."""
    if not dotted:
        return False
    counts = raw.aggregate(**{c: _int(raw[c].re_search(_DECIMAL_ID)).sum() for c in dotted}).execute().iloc[0]
    found = [c for c in dotted if int(counts[c] or 0)]
    for c in found:
        checks.decimal_ids.add(f"{name}.{c}")
        notes.append(f"{name}.{c}: {int(counts[c]):,} id(s) written as whole decimals "
                     "(such as 17.0) are read as whole numbers (17)")
    return bool(found)


@ibis.udf.scalar.builtin(name="hash")
def _hash64(value) -> dt.uint64:
    """DuckDB's own 64-bit ``hash``, unsigned as DuckDB gives it. Ibis's ``hash()`` casts it to a signed integer
    through a bit string (``CAST(CAST(HASH(...) AS BIT) AS BIGINT)``), which cost 0.6 s of the 1.1 s of hashing
    28 million events, and 0.7 s of the 2.7 s screen for their copies."""


def _row_hash(table: ir.Table, columns: list[str], wide: bool, duckdb: bool = False) -> ir.IntegerValue:
    """A 64-bit hash of each row's ``columns``: exact copies share it, distinct rows almost never do.

    ``wide`` builds it from two 32-bit hashes (Spark's ``hash`` is 32-bit Murmur3, with which a table of 27
    million rows would have some 85,000 colliding pairs); ``duckdb`` takes DuckDB's unsigned hash as it is
    (:func:`_hash64`). A collision costs only work, never a wrong answer: rows that share a hash are compared
    column by column.
    """
    row = ibis.struct({c: table[c] for c in columns})
    if duckdb:
        return _hash64(row)
    if not wide:
        return row.hash()
    salted = ibis.struct({"__salt": ibis.literal(1), **{c: table[c] for c in columns}})
    return row.hash().cast("int64") * 4294967296 + (salted.hash().cast("int64") + 2147483648)


def _repeated(values: ir.Table, spark: bool, nullable: bool = True) -> ir.Table:
    """The non-null values of ``values.__v`` that occur more than once (one row each); ``nullable=False`` says
    that none is null.

    DuckDB sorts them and compares neighbours (2.2 s over the row hashes of 28 million events, the scan and the
    hashing included, against 5.1 s for a GROUP BY with a 28-million-entry hash table; 0.5 s against 1.1 s for
    an exact distinct count of 5.6 million order ids); Spark groups, since a window without partitions would run
    on one executor.
    """
    if nullable:  # a row hash never is null; the test made DuckDB compute it twice (0.7 s over 28 million rows)
        values = values.filter(values.__v.notnull())
    if spark:
        return values.group_by("__v").having(values.count() > 1).aggregate(__copies=values.count()).select("__v")
    prev = values.mutate(__prev=values.__v.lag().over(ibis.window(order_by=values.__v)))
    return prev.filter(prev.__v == prev.__prev).select("__v").distinct()


def _kept(table: ir.Table, spark: bool) -> ir.Table:
    """``table`` cached, on DuckDB; on Spark the expression itself, computed again where it is read.

    On Spark Connect, caching the screens' results, the suspects, or the flagged suspects whose filter reads the
    screens failed Ibis's ``is_cached`` check, so Spark recomputes them where they are read. That is safe: rows
    are told apart by their values, never by position (which of two identical copies is kept changes nothing).
    """
    return table if spark else table.cache()


def _release(*tables: ir.Table | None, spark: bool) -> None:
    """Free what :func:`_kept` cached."""
    if not spark:
        for table in tables:
            if table is not None:
                table.release()


def _kept_if_any(table: ir.Table, spark: bool) -> ir.Table | None:
    """:func:`_kept` of ``table``, or None (nothing kept) when it has no rows."""
    kept = _kept(table, spark)
    if int(kept.count().execute()):
        return kept
    _release(kept, spark=spark)
    return None


@dataclass
class _Outcome:
    """What validating one table gives."""

    used: ir.Table
    rejects: ir.Table
    summary: dict[str, Any]
    problems: list[dict]
    flagged: ir.Table | None = None  # the suspects with their rule flags, cached on DuckDB (None: no rejects)
    #: the used rows kept lazily (:func:`_lazy_used`): the suspects' distinct rows, the suspects that passed, and
    #: the used rows' ranges; None when the used rows are the anti-join (a snapshot stores them as a copy)
    lazy: tuple[pa.Table, ir.Table, dict[str, tuple[Any, Any]]] | None = None


def _validate_table(name: str, spec: TableSpec, raw: ir.Table, checks: _Checks, notes: list[str]
                    ) -> _Outcome:
    """Validate one table in the engine.

    Pass 1 streams once over the table: every row rule's count and an example.
    Repeated ids are found among the key's values alone, and exact copies among
    one 64-bit hash per row (they share it), each sorted or grouped
    (:func:`_repeated`); the row screen is needed only where the key does not
    already make every row distinct. Only if a row fails
    (the exception in practice) are the *suspects* cached: the rows that fail a
    row rule, share their hash with another row, or share a duplicated key. That
    set is small; the window-based duplicate rules run on it alone, exactly
    (every copy of a row, and every row of a key, is in it). The used rows are
    then the source less the suspects plus the suspects that passed, read
    lazily (a snapshot stores them as a copy: see :func:`load`). Without
    rejects the used table is the typed source itself.
    """
    view, rules, raw_of = _row_rules(name, spec, raw, checks)
    first = raw.columns[0]
    has_key = bool(spec.key and spec.key in view.columns)
    key = spec.key if has_key else None
    text_ids = [c.name for c in spec.columns if c.kind == "id" and c.name in raw.columns
                and raw[c.name].type().is_string() and f"{name}.{c.name}" not in checks.decimal_ids]
    # an id that points at another table's (normalised) ids and is written 17.0 points at none of them: its
    # reference rule fails, and only then is it screened (a dot screen over 28 million ids cost 0.2 s)
    rule_at = {r[0]: k for k, r in enumerate(rules)}
    pointing = {c: rule_at[f"unknown_{c}"] for c in text_ids if f"unknown_{c}" in rule_at}
    screened = [c for c in text_ids if c not in pointing]
    # the screen for ids written as 17.0 (a dot anywhere) rides on the rule pass; in the rare table that has
    # them, the rules are counted again on the ids as read. The examples are read once the counts are final
    counts = _count_rules(view, rules, raw_of, first, key, screened, examples=False)
    dotted = {c for i, c in enumerate(screened) if int(counts[f"__dots{i}"] or 0)}
    dotted |= {c for c, k in pointing.items() if int(counts[f"n{k}"] or 0)}
    if _decimal_ids(name, raw, [c for c in text_ids if c in dotted], checks, notes):
        view, rules, raw_of = _row_rules(name, spec, raw, checks)
        counts = _count_rules(view, rules, raw_of, first, key)
    else:
        counts = _rule_examples(view, rules, raw_of, first, counts)
    rows_read = int(counts["rows_read"])
    for i, (rule, *_rest) in enumerate(rules):
        if rule.startswith("after_as_of_") and not pd.isna(counts[f"f{i}"]):
            # to the second, rounded down: a stored outcome is reused only while now is before it, so never late
            first_future = pd.Timestamp(int(counts[f"f{i}"]), unit="s")
            checks.future_from = first_future if checks.future_from is None else min(checks.future_from, first_future)
    raw_cols = [raw_of[c] for c in raw.columns]
    hashed = view.mutate(__hash=_row_hash(view, raw_cols, checks.spark, checks.duckdb))
    shared_keys = _kept_if_any(_repeated(view.select(__v=view[spec.key]), checks.spark), checks.spark) if has_key \
        else None
    dup_keys = shared_keys is not None
    shared: ir.Table | None = None  # row hashes that more than one row has
    # where every row has its own key, no two rows are copies: no need to screen for them
    if rows_read and not (has_key and int(counts["_key_n"]) == rows_read and not dup_keys):
        shared = _kept_if_any(_repeated(hashed.select(__v=hashed.__hash), checks.spark, nullable=False),
                               checks.spark)
    failing = [i for i in range(len(rules)) if int(counts[f"n{i}"] or 0)]
    used_columns = _used_columns(spec, raw)
    problems = [
        _problem(name, rules[i][1], rules[i][0], int(counts[f"n{i}"]), _row_example(spec, rules[i][1],
                                                                                     counts[f"e{i}"]), rules[i][2])
        for i in failing
    ]
    if not failing and shared is None and not dup_keys:
        summary = {"table": name, "rows_read": rows_read, "rows_used": rows_read, "rows_rejected": 0}
        return _Outcome(view.select(*used_columns), _no_rejects(raw), summary, problems)
    flags = {f"__bad__{k}": ~rules[i][3] for k, i in enumerate(failing)}
    marked = hashed.mutate(**flags)
    suspect = ibis.literal(False)
    for f in flags:
        suspect = suspect | marked[f]
    if shared is not None:
        suspect = suspect | marked.__hash.isin(shared.__v)
    if shared_keys is not None:
        suspect = suspect | marked[spec.key].isin(shared_keys.__v)
    suspects = _kept(marked.filter(suspect), checks.spark)
    # the window rules see every copy of a row and every row of a key: all of them are suspects
    dups = _duplicate_rules(spec, raw, suspects, raw_of, shared is not None, dup_keys)
    offset = len(failing)
    windowed = suspects.mutate(**{f"__bad__{offset + j}": ~ok for j, (_, _, _, ok) in enumerate(dups)})
    active = [rules[i] for i in failing] + dups
    any_bad = ibis.literal(False)
    for k in range(len(active)):
        any_bad = any_bad | windowed[f"__bad__{k}"]
    flagged = _kept(windowed.mutate(__bad=any_bad), checks.spark)
    _release(suspects, shared, shared_keys, spark=checks.spark)
    reason = ibis.literal("")
    for k, (rule, *_rest) in enumerate(active):
        reason = reason + ibis.ifelse(flagged[f"__bad__{k}"], f"{rule};", "")
    bad_rows = flagged.filter(flagged.__bad)
    bad = bad_rows.select(**{c: bad_rows[raw_of[c]] for c in raw.columns},
                          _reason=reason.re_replace(";$", "").name("_reason"))
    good_rows = flagged.filter(~flagged.__bad)
    kept = good_rows.select(**{c: good_rows[raw_of[c]] for c in raw.columns})
    dup_aggs: dict[str, Any] = {"rows_rejected": _int(flagged.__bad).sum()}
    for j, (_rule, column, _d, _ok) in enumerate(dups):
        hit = flagged[f"__bad__{offset + j}"]
        dup_aggs[f"n{j}"] = _int(hit).sum()
        dup_aggs[f"e{j}"] = _example(flagged[raw_of[column if column != "*" else first]], hit)
    dcounts = flagged.aggregate(**dup_aggs).execute().iloc[0]
    for j, (rule, column, description, _ok) in enumerate(dups):
        n = int(dcounts[f"n{j}"] or 0)
        if n:
            problems.append(_problem(name, column, rule, n, _row_example(spec, column, dcounts[f"e{j}"]),
                                     description))
    rejected = int(dcounts["rows_rejected"] or 0)
    if not rejected:  # the suspects only shared a hash: nothing to keep apart
        _release(flagged, spark=checks.spark)
        summary = {"table": name, "rows_read": rows_read, "rows_used": rows_read, "rows_rejected": 0}
        return _Outcome(view.select(*used_columns), _no_rejects(raw), summary, problems)
    if has_key:
        dup_flag = next((f"__bad__{offset + j}" for j, d in enumerate(dups) if d[0] == f"duplicate_{spec.key}"),
                        None)
        ids = flagged[spec.key]
        is_dup = flagged[dup_flag] if dup_flag else ibis.literal(False)
        # without the rows whose id is missing: a NULL in an IN list makes every id not in it NULL, not FALSE,
        # and an unknown id then passed as known
        with_id = flagged.__bad & ids.notnull()
        checks.rejected_keys[name] = (flagged.filter(with_id & is_dup).select(ids).distinct(),
                                      flagged.filter(with_id & ~is_dup).select(ids).distinct())
    summary = {"table": name, "rows_read": rows_read, "rows_used": rows_read - rejected, "rows_rejected": rejected}
    if not checks.spark:
        lazy = _lazy_used(name, spec, raw, flagged, raw_of, kept, rows_read - rejected, checks.decimal_ids)
        if lazy is not None:
            return _Outcome(lazy[0], bad, summary, problems, flagged, lazy[1:])
    good = _source_less_suspects(name, spec, raw, bad, kept, checks.decimal_ids)
    return _Outcome(good, bad, summary, problems, flagged)


#: a table whose rejects and their copies are at most this many distinct rows is used lazily: the source less
#: those rows (a filter on their values), plus the ones that passed (see :func:`_lazy_used`)
LAZY_SUSPECTS = 64


def _lazy_used(name: str, spec: TableSpec, raw: ir.Table, flagged: ir.Table, raw_of: dict[str, str], kept: ir.Table,
               rows_used: int, decimal_ids: set[str]
               ) -> tuple[ir.Table, pa.Table, ir.Table, dict[str, tuple[Any, Any]]] | None:
    """The used rows as the source less the suspects' values plus the suspects that passed, if that is exact.

    A table of 27 million pageviews with one copied row had its used rows written to the snapshot, 3.4 s of a
    first load; joined against the suspects instead, every later scan cost a third more. The source less the
    suspects' few distinct rows (:func:`_less_suspects`) costs a period's scan 0.02-0.03 s (0.45 s). It is used
    only when every suspect equals its own row's literals (a value that does not come back as the same literal
    falls back to the copy): the rows it takes away are then exactly the suspects, since a row equal to a suspect
    shares its hash, its key and its rules' outcome, and so is one. Returns the used rows, the suspects' rows, the
    suspects that passed, and per timestamp column of the used rows its first and last value
    (:func:`_lazy_ranges`); None when the suspects are too many or do not compare exactly.
    """
    suspect_rows = flagged.select(**{c: flagged[raw_of[c]] for c in raw.columns}).distinct()
    if int(suspect_rows.count().execute()) > LAZY_SUSPECTS:
        return None
    rows = suspect_rows.to_pyarrow()
    used = _source_less_rows(name, spec, raw, rows, kept, decimal_ids)
    if used is None:
        return None
    try:
        exact, ranges = _lazy_ranges(name, spec, raw, rows, flagged, raw_of, decimal_ids)
        if not exact:
            return None
        if ranges is None:  # a first or last value held only by rejected rows: read the used rows for them
            n, ranges = _ranges(spec, used)
            if n != rows_used:
                return None
    except Exception:  # a literal the engine cannot compare: the copy it is
        return None
    return used, rows, kept, ranges


def _lazy_ranges(name: str, spec: TableSpec, raw: ir.Table, rows: pa.Table, flagged: ir.Table,
                 raw_of: dict[str, str], decimal_ids: set[str]) -> tuple[bool, dict[str, tuple[Any, Any]] | None]:
    """Whether every suspect equals its own row's literals, and per timestamp column of a table kept lazily
    the first and last value of its used rows (:func:`_ranges`), the source's own where that is exact.

    The used rows are the source less its rejected rows, so a column's first value in the source is theirs
    unless only rejected rows hold it; the ranges are then None (the used rows must be read). A filtered scan
    cannot answer from the Parquet statistics (0.46 s over 27 million pageviews, against none); the checks run
    on the few suspects alone.
    """
    typed = _typed(name, spec, raw, decimal_ids)
    cols = [c.name for c in spec.columns if c.kind in ("timestamp", "date") and c.name in typed.columns]
    got: Any = {}
    if cols:  # from the Parquet statistics where the typed column is the column read
        got = typed.aggregate(**{f"lo{i}": typed[c].min().cast("timestamp") for i, c in enumerate(cols)},
                              **{f"hi{i}": typed[c].max().cast("timestamp") for i, c in enumerate(cols)}
                              ).execute().iloc[0]
    ends = [(f"{end}{i}", i) for i in range(len(cols)) for end in ("lo", "hi") if not pd.isna(got[f"{end}{i}"])]
    suspects = flagged.select(**{c: flagged[raw_of[c]] for c in raw.columns},
                              **{f"__t{i}": flagged[c].cast("timestamp") for i, c in enumerate(cols)},
                              __bad=flagged.__bad)
    _elsewhere, there, equal = _located(spec, suspects, rows)
    checks: dict[str, Any] = {"__off": _int(~(there & equal).fill_null(False)).sum()}
    for end, i in ends:  # whether a rejected row, and a used one, holds the source's first or last value
        same = suspects[f"__t{i}"] == ibis.literal(pd.Timestamp(got[end]).to_pydatetime())
        checks[f"bad_{end}"] = _int(same & suspects.__bad).max()
        checks[f"good_{end}"] = _int(same & ~suspects.__bad).max()
    seen = suspects.aggregate(**checks).execute().iloc[0]
    if int(seen["__off"] or 0):
        return False, None
    if any(int(seen[f"bad_{end}"] or 0) and not int(seen[f"good_{end}"] or 0) for end, _i in ends):
        return True, None
    return True, {c: (_stamp(got[f"lo{i}"]), _stamp(got[f"hi{i}"])) for i, c in enumerate(cols)}


def _source_less_rows(name: str, spec: TableSpec, raw: ir.Table, rows: pa.Table, kept: ir.Table,
                      decimal_ids: set[str]) -> ir.Table | None:
    """The used rows of a table kept lazily, typed: the source less every row equal to one of ``rows`` (the
    suspects), plus ``kept`` (those that passed); None when ``rows`` cannot be compared (:func:`_less_suspects`).
    Validation builds them so, and so does a load that reuses the snapshot."""
    rest = _less_suspects(spec, raw, rows)
    if rest is None:
        return None
    kept = kept.select(**{c: kept[c].cast(raw[c].type()) for c in raw.columns})  # as read back from Parquet
    return _typed(name, spec, rest.union(kept), decimal_ids)


def _less_suspects(spec: TableSpec, raw: ir.Table, rows: pa.Table) -> ir.Table | None:
    """The rows of ``raw`` equal to none of ``rows`` in every column (NULLs alike); None when a column's type is
    not one a literal compares exactly (nested, binary).

    Written as two parts on one *locating* column (the first timestamp the contract names, else the first):
    the rows whose value there is none of the suspects' (which reads only that column), and the few rows whose
    value is one of them, compared in every column. A filter on every column of every row had each later scan
    read them all (a period's pageviews 0.65-0.70 s instead of 0.45 s); bounded by the suspects' first and last
    value, the second part of a period that cannot hold them is known empty before anything is read.
    """
    types = raw.schema().types
    if not all(t.is_primitive() or t.is_decimal() or t.is_temporal() or t.is_string() for t in types) or any(
            t.is_binary() for t in types):
        return None
    elsewhere, there, equal = _located(spec, raw, rows)
    return raw.filter(elsewhere).union(raw.filter(there & ~equal))


def _located(spec: TableSpec, table: ir.Table, rows: pa.Table
             ) -> tuple[ir.BooleanValue, ir.BooleanValue, ir.BooleanValue]:
    """For a table with the source's columns: whether a row's locating column holds none of ``rows``' values
    there (``elsewhere``), one of them (``there``), and whether the row equals one of ``rows`` in every column
    (``equal``). See :func:`_less_suspects`."""
    stamps = [c.name for c in spec.columns if c.kind in ("timestamp", "date") and c.name in table.columns]
    at = table[stamps[0] if stamps else table.columns[0]]
    values = rows.to_pylist()
    equal = ibis.literal(False)
    for row in values:
        same = ibis.literal(True)
        for c in rows.column_names:
            v = row[c]
            same = same & (table[c].isnull() if v is None else table[c].identical_to(_literal(v, table[c].type())))
        equal = equal | same
    located = sorted({row[at.get_name()] for row in values if row[at.get_name()] is not None})
    points = [_literal(v, at.type()) for v in located]
    with_null = any(row[at.get_name()] is None for row in values)
    if points:
        elsewhere = at.notin(points) if with_null else at.notin(points) | at.isnull()
        there = at.between(points[0], points[-1]) & at.isin(points)
        if with_null:
            there = there | at.isnull()
    else:  # every suspect has no value there
        elsewhere, there = at.notnull(), at.isnull()
    return elsewhere, there, equal


def _literal(value: Any, dtype: dt.DataType) -> ir.Value:
    """``value`` as a literal of ``dtype``; a timestamp with nanoseconds through its text (a Python datetime, which
    Ibis's literal goes through, stops at microseconds)."""
    if dtype.is_timestamp() and isinstance(value, pd.Timestamp) and value.nanosecond:
        return ibis.literal(value.isoformat()).cast(dtype)
    return ibis.literal(value, type=dtype)


def _ranges(spec: TableSpec, used: ir.Table) -> tuple[int, dict[str, tuple[Any, Any]]]:
    """The rows of ``used`` and the first and last value of each of its contract timestamp or date columns, as
    microsecond timestamps (as ``data_range`` reads them)."""
    cols = [c.name for c in spec.columns if c.kind in ("timestamp", "date") and c.name in used.columns]
    aggs: dict[str, Any] = {"__n": used.count()}
    for i, c in enumerate(cols):
        aggs.update({f"lo{i}": used[c].min().cast("timestamp"), f"hi{i}": used[c].max().cast("timestamp")})
    got = used.aggregate(**aggs).execute().iloc[0]
    return int(got["__n"]), {c: (_stamp(got[f"lo{i}"]), _stamp(got[f"hi{i}"])) for i, c in enumerate(cols)}


def _stamp(value: Any) -> str | None:
    """A first or last value as the snapshot manifest keeps it (ISO text, None when there is none)."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def _source_less_suspects(name: str, spec: TableSpec, raw: ir.Table, rejects: ir.Table, kept: ir.Table,
                          decimal_ids: set[str]) -> ir.Table:
    """The used rows: the source less every row equal to a suspect (all its copies are suspects), plus the
    suspects that passed (the first copy of a duplicated row), typed."""
    suspects = rejects.drop("_reason").union(kept, distinct=True)
    rest = raw.anti_join(suspects, [raw[c].identical_to(suspects[c]) for c in raw.columns])
    return _typed(name, spec, rest.union(kept), decimal_ids)


def _int(flag: ir.BooleanValue) -> ir.Value:
    return flag.cast("int64")


def _typed(name: str, spec: TableSpec, raw: ir.Table, decimal_ids: set[str]) -> ir.Table:
    """The typed view of source rows (a table without rejects, or one less its suspects), read lazily."""
    view, _rules, _raw_of = _row_rules(name, spec, raw, _Checks(pd.Timestamp.now(), decimal_ids=set(decimal_ids)))
    return view.select(*_used_columns(spec, raw))


def _used_columns(spec: TableSpec, raw: ir.Table) -> list[str]:
    """Columns of a used table: the contract's, in contract order, then any extra ones as read."""
    return [c.name for c in spec.columns if c.name in raw.columns] + [c for c in raw.columns if spec.column(c) is None]


def _no_rejects(raw: ir.Table) -> ir.Table:
    """An empty rejects table with the raw columns and ``_reason``."""
    return raw.filter(ibis.literal(False)).mutate(_reason=ibis.literal(""))


def _stored(con: Any, entry: Path, name: str, raw: ir.Table | None = None, decimal_ids: set[str] | None = None
            ) -> tuple[ir.Table, ir.Table]:
    """The used rows and rejects of a table with rejects, as a snapshot entry stores them: the used rows as a copy,
    or (``<name>.suspects.parquet``) as the source ``raw`` less the suspects plus those that passed."""
    rejects = _eng.read_parquet(con, entry / f"{name}.rejects.parquet", f"rejects_{name}")
    if not (entry / f"{name}.suspects.parquet").exists():
        return _eng.read_parquet(con, entry / f"{name}.used.parquet", f"used_{name}"), rejects
    if raw is None:
        raise ValueError(f"the snapshot keeps {name} as its source less its suspects: the source is needed")
    kept = _eng.read_parquet(con, entry / f"{name}.kept.parquet", f"kept_{name}")
    used = _source_less_rows(name, CONTRACT[name], raw, pq.read_table(entry / f"{name}.suspects.parquet"), kept,
                             decimal_ids or set())
    if used is None:  # pragma: no cover - written only where it was not None, by this code (the key has it)
        raise ValueError(f"the snapshot's suspects of {name} cannot be compared")
    return used, rejects


def _from_snapshot(con: Any, raw: dict[str, ir.Table], entry: Path, manifest: dict[str, Any], label: str,
                   as_of: pd.Timestamp, as_of_given: bool) -> Dataset:
    used: dict[str, ir.Table] = {}
    rejects: dict[str, ir.Table] = {}
    decimal_ids = set(manifest.get("decimal_ids", []))
    for row in manifest["report"]:
        name = row["table"]
        if row["rows_rejected"]:
            used[name], rejects[name] = _stored(con, entry, name, raw[name], decimal_ids)
        else:
            used[name] = _typed(name, CONTRACT[name], raw[name], decimal_ids)
            rejects[name] = _no_rejects(raw[name])
    # the rows later than the as-of time are those validated against (see _still_later); their text says now
    problems = [{**p, "description": _after_as_of(as_of, as_of_given)} if p["rule"].startswith("after_as_of_")
                else p for p in manifest["problems"]]
    return Dataset(
        tables=used, rejects=rejects,
        report=pd.DataFrame(manifest["report"], columns=["table", "rows_read", "rows_used", "rows_rejected"]),
        problems=pd.DataFrame(problems, columns=["table", "column", "rule", "rows", "example", "description"]),
        missing_tables=[n for n in CONTRACT if n not in used], source=label, backend=con, notes=manifest["notes"],
        snapshot=entry, reused=True, as_of=as_of,
        ranges={n: (used[n], {c: tuple(v) for c, v in r.items()}) for n, r in manifest.get("ranges", {}).items()},
    )


def load(
    source: str | Path | Mapping[str, pd.DataFrame] | None = None,
    *,
    engine: Any = "duckdb",
    backend: Any = None,
    memory_limit: str | None = "3GB",
    cache: bool | str | Path = True,
    as_of: str | pd.Timestamp | None = None,
    mapping: str | Path | Mapping[str, Any] | ColumnMapping | None = None,
) -> Dataset:
    """Load and validate the engagement tables.

    Parameters
    ----------
    source : path, mapping of DataFrames, or None
        A directory with one ``<table>.parquet`` or ``<table>.csv`` per contract
        table; a DuckDB database file (``.duckdb``/``.db``) whose tables carry the
        contract names; or ``{"customers": df, ...}``. None loads the embedded
        demo dataset. On Spark, a folder may also be a URI the cluster reads
        (``s3a://bucket/engagement``, ``abfss://...``, ``hdfs://...``, ``file:///...``),
        where ``<table>.parquet`` may be a folder of part files.
    engine : str, SparkSession or Ibis backend, default "duckdb"
        Where the validation and every later measurement run (see
        :mod:`engagement.engine`): "duckdb" (embedded), "spark" (a local
        session), "sc://HOST:PORT" (Spark Connect, to reach a cluster), a
        ``SparkSession``, or an Ibis backend. Both engines give the same report,
        problems, rejects and figures.
    backend : Ibis backend, optional
        An existing connection to use (the same as passing it as ``engine``).
    memory_limit : str or None, default "3GB"
        Memory cap of a DuckDB connection made here (it spills to disk past it);
        None leaves DuckDB's own default (80% of RAM).
    cache : bool or path, default True
        Reuse the outcome of an earlier validation of the same files (a local
        folder on a DuckDB connection made here): every file's bytes and the contract are
        hashed, and an identical snapshot is not validated again; tables with
        rejects are then read from their stored used rows. True uses
        :func:`~engagement.data._snapshot.default_cache_dir`, a path names the
        folder, False always validates. ``Dataset.reused`` says which happened;
        report, problems and tables are the same either way.
    as_of : str or Timestamp, optional
        When the data was extracted: a row with any timestamp later than this is
        rejected (``after_as_of_<column>``: an order dated 2999 is a typing error,
        not a forecast). Naive values are UTC. Default: the time of the load; a
        stored outcome is then reused while every row it rejected as later is
        still later than now (until then the same rows are rejected).
    mapping : path, dict or ColumnMapping, optional
        A column mapping (see :mod:`engagement.data.mapping`) for exports that do
        not carry the contract's names: which file holds each table and how its
        columns become the contract's. Its file names are relative to ``source``
        (a folder), or to the mapping file's own folder when ``source`` is None.
        Tables it does not name are read from ``source`` as usual.

    Returns
    -------
    Dataset

    Raises
    ------
    ContractError
        Listing every hard problem (unreadable or empty file, missing required
        column, no or an empty ``customers`` table) with table, column, rows and
        an example.

    Examples
    --------
    >>> import pandas as pd
    >>> import engagement as eg
    >>> customers = pd.DataFrame({"customer_id": [1, 2], "signup_at": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    >>> orders = pd.DataFrame({"order_id": [1, 2, 3], "customer_id": [1, 2, 9], "revenue": [10.0, -1.0, 5.0],
    ...                        "ordered_at": pd.to_datetime(["2024-03-01"] * 3)})
    >>> ds = eg.load({"customers": customers, "orders": orders})
    >>> ds.report.set_index("table").loc["orders"].tolist()
    [3, 1, 2]
    >>> ds.problems[["column", "rule", "rows", "example"]].values.tolist()
    [['revenue', 'negative_revenue', 1, '-1.0'], ['customer_id', 'unknown_customer_id', 1, '(an identifier: not shown)']]
    """
    con = _eng.connect(backend if backend is not None else engine, memory_limit=memory_limit)
    own_duckdb = backend is None and isinstance(engine, str) and engine == "duckdb"
    problems: list[dict] = []
    notes: list[str] = []
    checks = _Checks(_as_of(as_of), as_of_given=as_of is not None, spark=_eng.is_spark(con),
                     duckdb=_eng.engine_name(con) == "duckdb")
    spec_map = None if mapping is None else (mapping if isinstance(mapping, ColumnMapping) else read_mapping(mapping))
    if source is None:
        if spec_map is not None and isinstance(mapping, str | Path):
            source = Path(mapping).resolve().parent
        else:
            source = default_demo_path()
    snapshot: tuple[Path, str] | None = None
    if spec_map is not None and isinstance(source, Mapping):
        raise ValueError("a mapping reads files: give a folder as the source, not DataFrames")
    if isinstance(source, Mapping):
        label = "in-memory DataFrames"
        raw = _read_frames(con, source, problems, notes)
    elif _eng.is_uri(source) and not str(source).startswith("file://"):
        if not _eng.is_spark(con):
            raise ValueError(f"{source} is a URI: remote folders are read by Spark (engine='spark' or "
                             "'sc://HOST:PORT'); DuckDB reads a local folder")
        if spec_map is not None:
            raise ValueError("a mapping reads local files: give a local folder as the source")
        label = str(source).rstrip("/")
        raw = _read_uri(con, label, problems)
    else:
        path = Path(str(source).removeprefix("file://")) if _eng.is_uri(source) else Path(source)
        label = path.name
        if _eng.is_spark(con) and path.is_file() and path.suffix.lower() in (".duckdb", ".db", ".ddb"):
            raise ValueError(f"{path} is a DuckDB file: Spark reads folders of Parquet or CSV files")
        if path.is_dir():
            mapped: tuple[set[str], set[str]] = (set(), set())
            if spec_map is not None:
                mapped = (set(spec_map.tables), {t.file for t in spec_map.tables.values() if t.file})
            raw = _read_directory(con, path, problems, notes, mapped)
            if spec_map is not None and not problems:
                raw.update(apply_mapping(con, spec_map, path, notes))
            if cache is not False and own_duckdb and not problems:
                from engagement import __version__

                cache_dir = _snapshot.default_cache_dir() if cache is True else Path(cache)
                # an explicit as-of time is part of the key; with the default (now), an outcome stays valid
                # while the time now is before the earliest row it rejected as later than its as-of time (time
                # only moves forward: until then the same rows are later than now)
                salt = "as_of=now" if as_of is None else f"as_of={checks.as_of.isoformat()}"
                if spec_map is not None:
                    salt += f"|mapping={spec_map.digest()}|" + "|".join(
                        _snapshot.file_digest(path / t.file) for t in spec_map.tables.values() if t.file)
                snapshot = (cache_dir, _snapshot.snapshot_key(path, f"{__version__}|{salt}"))
                hit = _snapshot.read_entry(*snapshot)
                if (hit is not None and set(r["table"] for r in hit[1]["report"]) <= set(raw)
                        and (as_of is not None or _still_later(hit[1], checks.as_of))):
                    return _from_snapshot(con, raw, hit[0], hit[1], label, checks.as_of, checks.as_of_given)
        elif spec_map is not None:
            raise ValueError(f"a mapping reads files from a folder; {path} is not one")
        elif path.is_file() and path.suffix.lower() in (".duckdb", ".db", ".ddb"):
            raw = _read_duckdb(con, path, problems)
        else:
            raise ContractError([_problem("*", "*", "no_source", None, str(path),
                                          "not a directory of Parquet/CSV files nor a DuckDB file")])
    if "customers" not in raw and not any(p["table"] == "customers" for p in problems):
        folder = None if isinstance(source, Mapping) or not Path(source).is_dir() else Path(source)
        if folder is not None and not raw:
            looked = "; ".join(f"{n}.parquet or {n}.csv" for n in CONTRACT)
            problems.append(_problem("*", "*", "no_tables", None, None,
                                     f"no table files in {folder}: looked for {looked}"))
        else:
            where = "" if folder is None else f" (customers.parquet or customers.csv) in {folder}"
            problems.append(_problem("customers", "*", "missing_table", None, None,
                                     f"every dataset needs the customers table{where}: ids, sign-up dates"))
    ordered = ["customers"] + sorted(n for n in raw if n != "customers")
    structurally_ok = {n: _structure(n, CONTRACT[n], raw[n], problems, notes)
                       for n in ordered if n in raw}
    if problems:
        raise ContractError(problems)
    used = checks.used
    rejects: dict[str, ir.Table] = {}
    flagged: dict[str, ir.Table] = {}  # tables with rejects: their flagged suspects
    lazy: dict[str, tuple[pa.Table, ir.Table, dict[str, tuple[Any, Any]]]] = {}  # of those, the ones used lazily
    summaries, row_problems = [], []
    for name in ordered:
        if name not in raw or not structurally_ok[name]:
            continue
        out = _validate_table(name, CONTRACT[name], raw[name], checks, notes)
        used[name], rejects[name] = out.used, out.rejects
        if out.flagged is not None:
            flagged[name] = out.flagged
        if out.lazy is not None:
            lazy[name] = out.lazy
        summaries.append(out.summary)
        row_problems.extend(out.problems)
    report = pd.DataFrame(summaries, columns=["table", "rows_read", "rows_used", "rows_rejected"])
    problem_frame = pd.DataFrame(row_problems, columns=["table", "column", "rule", "rows", "example", "description"])
    entry = None
    if snapshot is not None:
        def write_tables(folder: Path) -> None:
            # only the tables with rejects. A table with few suspects keeps them (its used rows are the source
            # less them, plus those that passed: _lazy_used); any other, its used rows as a copy, not the
            # anti-join in every later query: that would cost each scan of the table a third more, and every min
            # or max its answer from the Parquet statistics (data_range read 0.7 s instead of nothing)
            for name in flagged:
                if name in lazy:
                    rows, kept, _ranges = lazy[name]
                    pq.write_table(rows, folder / f"{name}.suspects.parquet")
                    con.to_parquet(kept, folder / f"{name}.kept.parquet")
                else:
                    con.to_parquet(used[name], folder / f"{name}.used.parquet")
                con.to_parquet(rejects[name], folder / f"{name}.rejects.parquet")

        manifest = {"report": summaries, "problems": row_problems, "notes": notes,
                    "decimal_ids": sorted(checks.decimal_ids), "future_from": _stamp(checks.future_from),
                    "ranges": {name: ranges for name, (_rows, _kept, ranges) in lazy.items()}}
        entry = _snapshot.write_entry(*snapshot, manifest, write_tables)
        if entry is not None and flagged:
            # read the stored rows from now on and free the in-memory copies
            for name, table in flagged.items():
                used[name], rejects[name] = _stored(con, entry, name, raw[name], checks.decimal_ids)
                _release(table, spark=checks.spark)
    return Dataset(
        tables=used, rejects=rejects, report=report, problems=problem_frame,
        missing_tables=[n for n in CONTRACT if n not in used], source=label, backend=con, notes=notes,
        snapshot=entry, as_of=checks.as_of, ranges={n: (used[n], r) for n, (_rows, _kept, r) in lazy.items()},
    )


def _still_later(manifest: dict[str, Any], now: pd.Timestamp) -> bool:
    """Whether a stored outcome validated against the time then is the outcome against ``now``: it rejected no row
    as later than its as-of time, or the earliest it did is still later than now."""
    if not any(p["rule"].startswith("after_as_of_") for p in manifest["problems"]):
        return True
    return manifest.get("future_from") is not None and pd.Timestamp(manifest["future_from"]) > now


def _as_of(value: str | pd.Timestamp | None) -> pd.Timestamp:
    """The as-of time as naive UTC (aware values converted), to the second; now when None."""
    if value is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"as_of={value!r} is not a date or time (e.g. 2024-12-31 or 2024-12-31T23:59:59Z)"
                         ) from err
    if ts is pd.NaT:
        raise ValueError(f"as_of={value!r} is not a date or time")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


#: What every function that reads data accepts: a loaded Dataset, DataFrames by table name, or a path.
DataLike = Dataset | Mapping[str, pd.DataFrame] | str | Path


def as_dataset(data: DataLike | None) -> Dataset:
    """``data`` itself when it is a :class:`Dataset`, else :func:`load` of it (validated once, here).

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.data import as_dataset
    >>> ds = as_dataset({"customers": pd.DataFrame({"customer_id": [1], "signup_at": pd.to_datetime(["2024-01-01"])})})
    >>> as_dataset(ds) is ds
    True
    """
    return data if isinstance(data, Dataset) else load(data)
