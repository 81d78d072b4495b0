"""Parity: the same load, validation and measurement on Spark as on DuckDB (``pytest -m spark``).

A local Spark session (``local[2]``, one shuffle partition, no UI) runs against a
small demo written as Parquet (300 customers, every table), a dataset of awkward
values with rejects (as DataFrames and as a CSV folder), the same demo written by
Spark itself as folders of part files and read through a ``file://`` URI, and a
slice of CDNOW's raw text file through its column mapping. Every result is
compared with DuckDB's on the same input: counts and ids exactly, figures and
intervals to 1e-12 relative (sums run in a different order), timestamps to the
microsecond (Spark's resolution).

Not in the default run (see ``addopts``): ``python3 tasks.py test-spark`` installs
the ``spark`` extra from ``requirements-spark.lock`` and runs this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

import engagement as eg
from engagement.analysis.survival import kaplan_meier
from engagement.check import validate_source
from engagement.data.demo import write_demo
from engagement.engine import connect, engine_name
from engagement.measure.cohorts import active_users_series, cohort_retention
from engagement.measure.compute import data_range, measure, measure_series
from engagement.measure.customers import customer_summary, lifetimes
from engagement.measure.rfm import rfm_summary
from engagement.measure.sessions import sessions

pytestmark = pytest.mark.spark

AS_OF = "2025-01-01"
RTOL = 1e-12
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("ENGAGEMENT_SPARK_MASTER", "local[2]")
    con = connect("spark", spark_conf={"spark.sql.shuffle.partitions": "1"})
    assert engine_name(con) == "spark"
    assert con._session.conf.get("spark.sql.session.timeZone") == "UTC"
    return con


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return write_demo(tmp_path_factory.mktemp("spark") / "demo", 300, seed=7)


@pytest.fixture(scope="module")
def both(demo_dir, spark):
    duck = eg.load(demo_dir, as_of=AS_OF, cache=False)
    on_spark = eg.load(demo_dir, engine=spark, as_of=AS_OF)
    return duck, on_spark


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].astype("datetime64[us]")  # Spark keeps microseconds
        elif pd.api.types.is_bool_dtype(out[c]) or out[c].dtype == object:
            out[c] = out[c].astype("object")
    return out.sort_values(list(out.columns), ignore_index=True, na_position="first", key=_sort_key)


def _sort_key(s: pd.Series) -> pd.Series:
    return s.astype(str) if s.dtype == object else s


def _same(a: pd.DataFrame, b: pd.DataFrame, *, sort: bool = True) -> None:
    a, b = (_sorted(a), _sorted(b)) if sort else (a.reset_index(drop=True), b.reset_index(drop=True))
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=RTOL, atol=0)


def _table(ds, name: str) -> pd.DataFrame:
    return ds[name].to_pandas()


# --- loading and validation ----------------------------------------------------------------


def test_loading_the_demo_gives_the_same_report_tables_and_notes(both, demo_dir):
    duck, on_spark = both
    assert on_spark.report.to_dict("records") == duck.report.to_dict("records")
    import pyarrow.parquet as pq

    on_disk = {f.stem: pq.read_metadata(f).num_rows for f in demo_dir.glob("*.parquet")}
    assert dict(zip(duck.report.table, duck.report.rows_read, strict=True)) == on_disk  # every row of every file
    assert on_spark.problems.empty and duck.problems.empty
    assert on_spark.notes == duck.notes
    assert on_spark.missing_tables == duck.missing_tables == []
    assert data_range(on_spark) == data_range(duck)
    for name in ("customers", "orders", "support_tickets", "email_events"):
        assert on_spark[name].columns == duck[name].columns
        _same(_table(duck, name), _table(on_spark, name))


def _awkward() -> dict[str, pd.DataFrame]:
    """Small tables with every kind of rejected and converted value, and only customers, orders and tickets."""
    customers = pd.DataFrame({
        "customer_id": ["1", "2", "3", "4", "4", "5", "6", "6"],
        "signup_at": ["2024-01-01", "2024-01-05T10:00:00+02:00", "2024-02-01 08:30:00", "not a date",
                      "2024-02-02", "2024-03-01", "2024-03-02", "2024-03-02"],
        "plan": ["basic", "pro", "<b>basic</b>", "pro", "basic", None, "pro", "pro"],
        "region": ["EU", "US", "EU", "EU", "US", "US", None, None],
    })
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o5", "o6", "o7", "o8", "o9"],
        "customer_id": ["1", "2.0", "3", "9", "4", "5", "1", "2", "5", "3"],
        "ordered_at": ["2024-03-01 10:00:00", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05",
                       "2024-03-06", "2999-01-01", "2024-02-10Z", "2024-04-01", "2024-04-02"],
        "revenue": ["10.5", "20", "-3", "5", "7", "8", "9", "abc", "12.25", "1e400"],
    })
    tickets = pd.DataFrame({
        "ticket_id": ["t1", "t2", "t3", "t3"],
        "customer_id": ["1", "3", "5", "5"],
        "opened_at": ["2024-03-01 09:00:00", "2024-03-02 09:00:00", "2024-03-03 09:00:00", "2024-03-03 09:00:00"],
        "first_response_at": ["2024-03-01 10:00:00", "2024-03-02 08:00:00", None, None],
        "resolved_at": [None, "2024-03-03 09:00:00", "2024-03-04 09:00:00", "2024-03-04 09:00:00"],
    })
    return {"customers": customers, "orders": orders, "support_tickets": tickets}


def _check_rejects(duck, on_spark) -> None:
    assert on_spark.report.to_dict("records") == duck.report.to_dict("records")
    _same(duck.problems, on_spark.problems)
    assert on_spark.notes == duck.notes
    for name in duck.tables:
        _same(duck.rejects[name].to_pandas(), on_spark.rejects[name].to_pandas())
        _same(_table(duck, name), _table(on_spark, name))


def test_a_dataset_with_rejects_gives_the_same_rejects_from_dataframes(spark):
    duck = eg.load(_awkward(), as_of="2024-06-30")
    on_spark = eg.load(_awkward(), engine=spark, as_of="2024-06-30")
    # worked out by hand: customer 4 twice with different values (both rejected) and 6 as an exact copy (one kept)
    assert duck.report.set_index("table").loc["customers"].tolist() == [8, 5, 3]
    rules = set(duck.problems.rule)
    assert {"duplicate_customer_id", "duplicate_row", "unparseable_revenue", "negative_revenue",
            "after_as_of_ordered_at", "unknown_customer_id"} <= rules
    _check_rejects(duck, on_spark)
    assert any("17" in n or "whole decimals" in n for n in on_spark.notes)  # "2.0" is read as customer 2


def test_a_csv_folder_with_rejects_gives_the_same_rejects(spark, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, frame in _awkward().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    duck = eg.load(folder, as_of="2024-06-30", cache=False)
    on_spark = eg.load(folder, engine=spark, as_of="2024-06-30")
    assert duck.report.rows_rejected.sum() > 0
    _check_rejects(duck, on_spark)


def test_a_uri_to_folders_of_part_files_reads_like_the_local_files(spark, demo_dir, both, tmp_path):
    session = spark._session
    out = tmp_path / "parts"
    for name in ("customers", "orders", "support_tickets"):
        session.read.parquet(str(demo_dir / f"{name}.parquet")).repartition(3).write.parquet(
            str(out / f"{name}.parquet"))
    on_spark = eg.load(out.as_uri(), engine=spark, as_of=AS_OF)
    duck = both[0]
    assert sorted(on_spark.tables) == ["customers", "orders", "support_tickets"]
    expected = duck.report[duck.report.table.isin(on_spark.tables)].reset_index(drop=True)
    assert on_spark.report.to_dict("records") == expected.to_dict("records")
    _same(_table(duck, "orders"), _table(on_spark, "orders"))
    with pytest.raises(ValueError, match="remote folders are read by Spark"):
        eg.load("s3a://bucket/engagement")


def test_a_mapped_raw_text_file_loads_the_same(spark, tmp_path):
    src = ROOT / "engagement" / "data" / "cdnow_files"
    mapping = ROOT / "engagement" / "data" / "mappings" / "cdnow.yml"
    import yaml

    spec = yaml.safe_load(mapping.read_text())
    file = spec["tables"]["orders"]["file"]
    lines = (src / file).read_text().splitlines(keepends=True)
    folder = tmp_path / "cdnow"
    folder.mkdir()
    (folder / file).write_text("".join(lines[:3000]))  # the first 3,000 lines: about 1,000 customers
    duck = eg.load(folder, mapping=mapping, as_of="1998-07-01", cache=False)
    on_spark = eg.load(folder, mapping=mapping, engine=spark, as_of="1998-07-01")
    assert duck.report.set_index("table").loc["orders", "rows_read"] > 2000
    assert on_spark.notes == duck.notes
    _check_rejects(duck, on_spark)


def test_validate_on_spark_reports_the_same(spark, demo_dir, capsys):
    assert validate_source(str(demo_dir), as_json=True, as_of=AS_OF) == 0
    duck = capsys.readouterr().out
    assert validate_source(str(demo_dir), as_json=True, as_of=AS_OF, engine="spark") == 0
    assert capsys.readouterr().out == duck


# --- measurement ---------------------------------------------------------------------------


def test_measure_with_segments_and_comparisons_is_the_same(both):
    duck, on_spark = both
    a = measure(duck, "2024Q4")
    b = measure(on_spark, "2024Q4")
    assert len(a) > 1000 and set(a.period_role) == {"current", "previous", "year_ago"}
    assert a.segment.nunique() > 3
    keys = ["period_role", "segment", "segment_value", "metric"]
    a, b = a.sort_values(keys, ignore_index=True), b.sort_values(keys, ignore_index=True)
    _same(a, b, sort=False)
    assert (a.n.to_numpy() == b.n.to_numpy()).all()  # counts exactly
    assert (a.status == "ok").sum() > 500 and a.ci_low.notna().sum() > 300  # figures with intervals compared


def test_measure_series_is_the_same(both):
    duck, on_spark = both
    _same(measure_series(duck, "2024Q4", periods=2), measure_series(on_spark, "2024Q4", periods=2))


def test_rfm_cohorts_and_active_users_are_the_same(both):
    duck, on_spark = both
    end = pd.Timestamp("2024-10-01")
    _same(rfm_summary(duck["orders"], calibration_end=end), rfm_summary(on_spark["orders"], calibration_end=end))
    _same(cohort_retention(duck), cohort_retention(on_spark))
    kw = {"start": "2024-10-01", "end": "2025-01-01"}  # the end is exclusive
    a, b = active_users_series(duck, **kw), active_users_series(on_spark, **kw)
    assert len(a) == 92
    _same(a, b)


def test_sessions_are_the_same_to_the_microsecond(both):
    duck, on_spark = both
    a = sessions(duck["pageviews"]).to_pandas()
    b = sessions(on_spark["pageviews"]).to_pandas()
    assert len(a) > 1000
    _same(a, b)


def test_survival_and_the_customer_summary_are_the_same(both):
    duck, on_spark = both
    a, b = lifetimes(duck, by="plan"), lifetimes(on_spark, by="plan")
    _same(a, b)
    km_a, km_b = kaplan_meier(a), kaplan_meier(b)
    for x, y in zip(km_a, km_b, strict=True):
        _same(x, y, sort=False)
    _same(customer_summary(duck, "2024Q4"), customer_summary(on_spark, "2024Q4"))
    assert np.isfinite(customer_summary(on_spark, "2024Q4").spend.sum())

