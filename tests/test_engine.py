"""Choosing the engine: names, errors, and the plumbing from the command line to the notebooks.

The Spark results themselves are compared with DuckDB's in tests/test_spark.py (``pytest -m spark``).
"""

from __future__ import annotations

import sys

import nbformat
import pandas as pd
import pytest

import engagement as eg
from engagement import engine as eng
from engagement.cli import _engine, _parser
from engagement.parameters import PARAMETERS, RUNNER, validate
from engagement.report import notebook_paths, render_report


@pytest.mark.parametrize("name", ["duckdb", "spark", "sc://localhost:15002", "sc://spark.example.com",
                                  "sc://host:15002/;token=abc"])
def test_engine_names_that_are_accepted(name):
    assert eng.check_engine(name) == ""
    assert validate({"engine": name}) == {"engine": name}


@pytest.mark.parametrize("name", ["DuckDB", "postgres", "sc://", "http://host:15002", "", None, 3])
def test_engine_names_that_are_refused(name):
    assert "is not one of 'duckdb', 'spark' or a Spark Connect address" in eng.check_engine(name)
    with pytest.raises(ValueError, match="Parameter `engine` must be"):
        validate({"engine": name})
    if isinstance(name, str):
        with pytest.raises(ValueError, match="is not one of"):
            eng.connect(name)


def test_the_default_engine_is_embedded_duckdb_and_a_backend_is_used_as_is():
    con = eng.connect()
    assert eng.engine_name(con) == "duckdb" and not eng.is_spark(con)
    assert eng.connect(con) is con
    ds = eg.load({"customers": pd.DataFrame({"customer_id": ["1"], "signup_at": pd.to_datetime(["2024-01-01"])})},
                 engine=con)
    assert ds.backend is con
    with pytest.raises(TypeError, match="engine must be a name, a SparkSession or an Ibis backend"):
        eng.connect(42)


def test_uris():
    assert eng.is_uri("s3a://bucket/folder") and eng.is_uri("file:///tmp/x") and eng.is_uri("abfss://c@a.dfs/x")
    assert not eng.is_uri("/tmp/x") and not eng.is_uri("data/x") and not eng.is_uri(None)
    assert not eng.is_uri(r"C:\data")


def test_a_remote_uri_needs_spark():
    with pytest.raises(ValueError, match=r"s3a://bucket/engagement is a URI: remote folders are read by Spark"):
        eg.load("s3a://bucket/engagement")


def test_a_file_uri_is_a_local_folder_on_duckdb(tmp_path):
    pd.DataFrame({"customer_id": ["1", "2"], "signup_at": ["2024-01-01", "2024-01-02"]}).to_csv(
        tmp_path / "customers.csv", index=False)
    ds = eg.load(tmp_path.as_uri(), cache=False, as_of="2024-06-30")
    assert ds.report.rows_used.tolist() == [2]


def test_spark_without_pyspark_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ImportError, match=r"pip install 'engagement\[spark\]'"):
        eng.connect("spark")


def test_the_command_line_chooses_the_engine():
    p = _parser()
    assert _engine(p.parse_args(["validate"])) == "duckdb"
    assert _engine(p.parse_args(["validate", "--engine", "spark"])) == "spark"
    assert _engine(p.parse_args(["report", "--spark-remote", "sc://spark.example.com:15002"])) \
        == "sc://spark.example.com:15002"
    with pytest.raises(SystemExit, match="cannot be combined with --engine duckdb"):
        _engine(p.parse_args(["report", "--engine", "duckdb", "--spark-remote", "sc://h:1"]))
    with pytest.raises(SystemExit, match="must be a Spark Connect address"):
        _engine(p.parse_args(["validate", "--spark-remote", "http://h:1"]))
    with pytest.raises(SystemExit):
        p.parse_args(["validate", "--engine", "postgres"])


def test_the_report_hands_the_engine_to_every_notebook_that_loads_data():
    assert "engine" in RUNNER and PARAMETERS["engine"].default == "duckdb"
    loading = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        if any("eg.load(" in c.source for c in nb.cells):
            loading.append(path.name)
            params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
            assert 'engine = "duckdb"' in params.source
            assert all("eg.load(" not in c.source or "engine=engine" in c.source for c in nb.cells)
    assert loading == ["01_define.ipynb", "02_select.ipynb", "03_measure.ipynb", "04_analyse.ipynb"]


def test_the_report_refuses_a_bad_engine_before_any_kernel_starts(tmp_path, capsys):
    assert render_report("2024Q4", out=str(tmp_path), engine="postgres", progress=False) == 2
    assert "Parameter `engine` must be" in capsys.readouterr().err
    assert render_report("2024Q4", out=str(tmp_path), params=["engine=spark"], progress=False) == 2
    assert "set by the runner" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
