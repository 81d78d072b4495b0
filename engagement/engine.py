"""Where the aggregations run: embedded DuckDB (the default) or Spark.

Every measurement in the package is an Ibis expression, so the same code runs on
either engine; only reading the source differs (see :mod:`engagement.data.load`).
Choose the engine with one value, everywhere (``load(engine=...)``, the report's
``engine`` parameter, ``engagement report --engine``):

``"duckdb"``
    An embedded DuckDB connection: no server, spills to disk past its memory limit.
    Right up to a few hundred million rows on one machine.
``"spark"``
    A local Spark session (``local[*]``, or the master in ``ENGAGEMENT_SPARK_MASTER``),
    for trying the Spark path on one machine.
``"sc://HOST:PORT"``
    A Spark Connect server: how a notebook or a scheduled report reaches a Spark
    cluster. The source paths are then read by the cluster (``s3a://``, ``abfss://``,
    ``hdfs://`` or a path the cluster sees).

A ``SparkSession`` made by the caller (a Databricks or EMR notebook's ``spark``) or an
Ibis backend can be passed instead of a name. Spark sessions run in UTC
(``spark.sql.session.timeZone``), as the data contract's naive timestamps are UTC.

Only aggregates come back to the Python process (the driver): per-segment sums,
counts and order statistics, per-period series and the RFM summary of each customer
when a predictive CLV model is fitted. Raw tables are never collected.

Examples
--------
>>> from engagement.engine import connect, engine_name
>>> engine_name(connect("duckdb"))
'duckdb'
>>> connect("postgres")
Traceback (most recent call last):
...
ValueError: engine='postgres' is not one of 'duckdb', 'spark' or a Spark Connect address 'sc://HOST:PORT'.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import ibis

__all__ = ["ENGINES", "check_engine", "connect", "engine_name", "is_spark", "is_uri", "read_csv_text", "read_lines",
           "read_parquet", "register_frame", "spark_session"]

#: The engine names; a Spark Connect address ``sc://HOST:PORT`` is accepted too.
ENGINES = ("duckdb", "spark")

_REMOTE = re.compile(r"^sc://[^/\s:]+(:\d+)?(/.*)?$")


def check_engine(engine: Any) -> str:
    """Why ``engine`` cannot be used as an engine name ("" when it can).

    Examples
    --------
    >>> check_engine("sc://spark.example.com:15002"), check_engine("sc://")
    ('', "engine='sc://' is not one of 'duckdb', 'spark' or a Spark Connect address 'sc://HOST:PORT'.")
    """
    if isinstance(engine, str) and (engine in ENGINES or _REMOTE.match(engine)):
        return ""
    return f"engine={engine!r} is not one of 'duckdb', 'spark' or a Spark Connect address 'sc://HOST:PORT'."


def _duckdb(memory_limit: str | None) -> Any:
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")  # naive timestamps are UTC; aware ones convert to UTC
    try:  # no progress bars in scripts' and schedulers' logs; in Jupyter DuckDB shows none without ipywidgets
        con.raw_sql("SET enable_progress_bar = false")
    except Exception:  # DuckDB refuses the setting in a kernel without ipywidgets, where it shows nothing anyway
        pass
    if memory_limit:
        # validated tables are cached in the engine; past this limit DuckDB spills them to disk
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    return con


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise ImportError("The Spark engine needs pyspark: pip install 'engagement[spark]' "
                          "(pyspark 4.0, the range Ibis 12 supports; Java 17 or newer).") from None
    return pyspark.sql


def spark_session(engine: str = "spark", conf: Mapping[str, str] | None = None) -> Any:
    """A Spark session for ``engine``: "spark" (local) or "sc://HOST:PORT" (Spark Connect).

    A local session has its web UI and console progress bars off and as many
    shuffle partitions as cores (Spark's 200 suit a cluster, not one machine);
    ``conf`` overrides any setting. An existing session is reused
    (``getOrCreate``), with ``conf`` applied to it.
    """
    problem = check_engine(engine)
    if problem or engine == "duckdb":
        raise ValueError(problem or "engine='duckdb' is not Spark")
    sql = _pyspark()
    settings = {"spark.sql.session.timeZone": "UTC"}
    if engine == "spark":
        builder = sql.SparkSession.builder.master(os.environ.get("ENGAGEMENT_SPARK_MASTER", "local[*]"))
        settings.update({"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                         "spark.sql.shuffle.partitions": str(max(2, os.cpu_count() or 2))})
    else:
        builder = sql.SparkSession.builder.remote(engine)
    settings.update(conf or {})
    static = {k: v for k, v in settings.items() if k.startswith(("spark.ui.", "spark.driver.", "spark.master"))}
    for key, value in (static if engine == "spark" else {}).items():
        builder = builder.config(key, value)
    session = builder.appName("engagement").getOrCreate()
    for key, value in settings.items():
        if key not in static:
            session.conf.set(key, value)
    if engine == "spark":
        session.sparkContext.setLogLevel("ERROR")
    return session


def connect(engine: Any = "duckdb", *, memory_limit: str | None = "3GB",
            spark_conf: Mapping[str, str] | None = None) -> Any:
    """An Ibis backend for ``engine``.

    Parameters
    ----------
    engine : str, SparkSession or Ibis backend, default "duckdb"
        "duckdb", "spark" (a local session), "sc://HOST:PORT" (Spark Connect), a
        ``SparkSession`` (its time zone is set to UTC), or an Ibis backend, used as is.
    memory_limit : str or None, default "3GB"
        DuckDB only: its memory cap (it spills to disk past it); None leaves
        DuckDB's own default (80% of RAM).
    spark_conf : mapping, optional
        Spark settings for a session this function starts.

    Returns
    -------
    ibis backend
    """
    if not isinstance(engine, str) or engine != "duckdb":
        # pyspark 4.0 passes pandas 3's deprecated copy= keyword on every result it converts: not the user's concern
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated", module=r"pyspark\.")
    if isinstance(engine, str):
        problem = check_engine(engine)
        if problem:
            raise ValueError(problem)
        if engine == "duckdb":
            return _duckdb(memory_limit)
        session = spark_session(engine, spark_conf)  # says how to install pyspark when it is missing
        return ibis.pyspark.connect(session)
    if type(engine).__name__ == "SparkSession":
        return ibis.pyspark.connect(engine)  # sets spark.sql.session.timeZone to UTC
    if hasattr(engine, "execute") and hasattr(engine, "list_tables"):
        return engine
    raise TypeError(f"engine must be a name, a SparkSession or an Ibis backend, not {type(engine).__name__}")


def engine_name(con: Any) -> str:
    """ "duckdb", "spark" or the Ibis backend's own name."""
    name = getattr(con, "name", "")
    return "spark" if name == "pyspark" else name


def is_spark(con: Any) -> bool:
    """Whether ``con`` is Ibis's PySpark backend."""
    return getattr(con, "name", "") == "pyspark"


# --- reading sources: the only place where the engines differ -------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(source: Any) -> bool:
    """Whether ``source`` is written as a URI (``s3a://...``, ``file:///...``) rather than a local path."""
    return isinstance(source, str) and bool(_SCHEME.match(source))


def _location(path: Any) -> str:
    return path if is_uri(path) else os.fspath(path)


def read_parquet(con: Any, path: Any, table_name: str) -> Any:
    """A Parquet file (or a folder of Parquet part files, on Spark) as a table of ``con``."""
    return con.read_parquet(_location(path), table_name=table_name)


def read_csv_text(con: Any, path: Any, table_name: str, *, delim: str = ",", header: bool = True,
                  names: list[str] | None = None) -> Any:
    """A CSV file with every column read as text: the data contract, not a type sniffer, decides types.

    Quoting follows RFC 4180 on both engines (a quote inside a quoted field is doubled);
    an empty field is NULL. ``names`` replaces the header's names (or names the
    columns of a file without one).
    """
    if not is_spark(con):
        opts: dict[str, Any] = {"all_varchar": True, "delim": delim, "header": header}
        if names:
            opts["names"] = list(names)
        return con.read_csv(_location(path), table_name=table_name, **opts)
    t = con.read_csv(_location(path), table_name=f"{table_name}_src", inferSchema=False, header=header, sep=delim,
                     quote='"', escape='"', mode="PERMISSIVE")
    if names:
        if len(names) != len(t.columns):
            raise ValueError(f"{path}: {len(t.columns)} columns, but {len(names)} names were given")
        t = t.select(**{n: t[c] for n, c in zip(names, t.columns, strict=True)})
    return con.create_view(table_name, t, overwrite=True)


def read_lines(con: Any, path: Any, table_name: str, *, skip_header: bool) -> Any:
    """A text file as one text column ``line``, one row per line (the first skipped when ``skip_header``)."""
    if not is_spark(con):
        return con.read_csv(_location(path), table_name=table_name, columns={"line": "VARCHAR"}, header=False,
                            delim="\x01", quote="", escape="", skip=1 if skip_header else 0)
    t = con.read_csv(_location(path), table_name=f"{table_name}_src", inferSchema=False, header=skip_header,
                     sep="\x01", quote="\u0000", escape="\u0000")
    return con.create_view(table_name, t.select(line=t[t.columns[0]]), overwrite=True)


def register_frame(con: Any, table_name: str, frame: Any) -> Any:
    """A pandas DataFrame as a table of ``con``: copied into DuckDB, a temporary view on Spark.

    Spark receives it through Arrow (missing text stays NULL, which Ibis's own
    conversion of pandas 3 text columns turns into the text "NaN"; timestamps keep
    microseconds, Spark's resolution).
    """
    if is_spark(con):
        import pyarrow as pa

        con._session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False)).createOrReplaceTempView(
            table_name)
        return con.table(table_name)
    return con.create_table(table_name, frame, temp=True, overwrite=True)


def missing_path(err: Exception) -> bool:
    """Whether a read failed because the path does not exist (Spark's PATH_NOT_FOUND)."""
    text = str(err)
    return "PATH_NOT_FOUND" in text or "Path does not exist" in text
