"""The data contract, validated loading, the demo generator and the CDNOW loader."""

from __future__ import annotations

import filecmp
import importlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import engagement as eg
from engagement import catalog
from engagement.data import ContractError
from engagement.data.demo import generate_demo, write_demo
from engagement.data.load import default_demo_path
from engagement.measure import data_range

DEMO = default_demo_path()


def _tiny() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c"],
        "signup_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01"]),
        "plan": ["basic", "premium", "basic"],
        "cancelled_at": pd.to_datetime([None, "2024-03-01", None]),
    })
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o4"],
        "customer_id": ["a", "b", "zz", "c", "c"],
        "ordered_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-09", "2024-02-01", "2024-02-02"]),
        "revenue": [10.0, -2.0, 4.0, 7.0, 8.0],
    })
    return {"customers": customers, "orders": orders}


# --- demo generator ----------------------------------------------------------------------------


def test_committed_demo_is_byte_identical_to_a_regeneration(tmp_path):
    truth = json.loads((DEMO / "ground_truth.json").read_text())
    write_demo(tmp_path, truth["n_customers"], seed=truth["seed"], mode=truth["mode"])
    committed = sorted(p.name for p in DEMO.glob("*.parquet")) + ["ground_truth.json"]
    assert len(committed) == 11
    match, mismatch, errors = filecmp.cmpfiles(DEMO, tmp_path, committed, shallow=False)
    assert mismatch == [] and errors == []


def test_demo_is_deterministic_and_seed_dependent(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_demo(a, 200, seed=5)
    write_demo(b, 200, seed=5)
    write_demo(c, 200, seed=6)
    assert (a / "orders.parquet").read_bytes() == (b / "orders.parquet").read_bytes()
    assert (a / "orders.parquet").read_bytes() != (c / "orders.parquet").read_bytes()


def test_demo_written_in_several_batches_passes_its_own_contract(tmp_path, monkeypatch):
    # a million customers are written 100,000 at a time; ids must stay unique across batches
    from engagement.data import demo

    monkeypatch.setattr(demo, "BATCH", 100)
    write_demo(tmp_path, 300, seed=9)
    ds = eg.load(tmp_path)
    assert ds.problems.empty, ds.problems[["table", "column", "rule", "rows"]]
    assert int(ds.report.rows_rejected.sum()) == 0
    tickets = ds["support_tickets"].ticket_id.execute()
    assert tickets.is_unique and tickets.str.startswith("T2").any()  # the third batch's numbering


def test_demo_covers_at_least_nine_quarters_and_every_table():
    ds = eg.load(DEMO)
    assert ds.missing_tables == []
    assert ds.report["rows_rejected"].sum() == 0
    span = ds["orders"].aggregate(lo=ds["orders"].ordered_at.min(), hi=ds["orders"].ordered_at.max()).to_pandas()
    quarters = pd.period_range(span["lo"][0], span["hi"][0], freq="Q")
    assert len(quarters) >= 9


def _quarterly(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Independent pandas computation of the figures the planted effects move."""
    c, sv, o, t = (tables[k] for k in ("customers", "survey_responses", "orders", "support_tickets"))
    rows = []
    for q in pd.period_range("2024Q1", "2024Q4", freq="Q"):
        s, e = q.start_time, q.end_time
        base = c[(c.signup_at < s) & (c.cancelled_at.isna() | (c.cancelled_at >= s))]
        basic = base[base.plan == "basic"]
        nps = sv[(sv.survey == "nps") & sv.responded_at.between(s, e)].score
        csat = sv[(sv.survey == "csat") & sv.responded_at.between(s, e)].score
        tq = t[t.opened_at.between(s, e)]
        rows.append({
            "q": str(q),
            "basic_churn": (basic.cancelled_at <= e).mean(),
            "nps": 100 * ((nps >= 9).mean() - (nps <= 6).mean()),
            "csat": (csat >= 4).mean(),
            "aov": o[o.ordered_at.between(s, e)].revenue.mean(),
            "frt_hours": ((tq.first_response_at - tq.opened_at).dt.total_seconds() / 3600).median(),
        })
    return pd.DataFrame(rows).set_index("q")


def test_planted_effects_are_in_the_data():
    d = generate_demo(4000, seed=2024)
    q = _quarterly(d.tables)
    assert q.loc["2024Q4", "basic_churn"] > 1.6 * q.loc["2024Q3", "basic_churn"]
    assert q.loc["2024Q1", "nps"] < q.loc["2024Q2", "nps"] < q.loc["2024Q3", "nps"] > q.loc["2024Q4", "nps"]
    assert q["aov"].is_monotonic_increasing
    assert q.loc["2024Q4", "frt_hours"] > 2 * q.loc["2024Q3", "frt_hours"]
    assert q.loc["2024Q4", "csat"] < q.loc["2024Q3", "csat"] - 0.1
    c, ms = d.tables["customers"], d.tables["marketing_spend"]
    cac = ms.groupby("channel").spend.sum() / c.groupby("acquisition_channel").size()
    assert cac["paid_social"] > 2.5 * cac.drop("paid_social").max()
    truth = d.ground_truth
    assert truth["mode"] == "planted" and len(truth["effects"]) == 12
    assert {e["metric"] for e in truth["effects"]} == {"nps", "churn_rate", "aov", "first_response_time", "csat", "cac"}


def test_null_mode_has_the_same_structure_and_no_effects():
    planted = generate_demo(600, seed=3)
    null = generate_demo(600, seed=3, mode="null")
    assert null.ground_truth["effects"] == []
    for name, frame in planted.tables.items():
        assert list(null.tables[name].columns) == list(frame.columns), name
    c, ms = null.tables["customers"], null.tables["marketing_spend"]
    cac = ms.groupby("channel").spend.sum() / c.groupby("acquisition_channel").size()
    assert cac.max() / cac.min() < 1.15


# --- loading ---------------------------------------------------------------------------------


def test_rows_read_equal_rows_used_plus_rejected_with_reasons():
    ds = eg.load(_tiny())
    rep = ds.report.set_index("table")
    assert rep.loc["orders"].tolist() == [5, 1, 4]
    for _, row in ds.report.iterrows():
        assert row.rows_read == row.rows_used + row.rows_rejected
    rules = set(ds.problems["rule"])
    assert {"negative_revenue", "unknown_customer_id", "duplicate_order_id"} <= rules
    rejects = ds.rejects["orders"].to_pandas().sort_values("order_id")
    assert rejects["_reason"].tolist() == ["negative_revenue", "unknown_customer_id", "duplicate_order_id",
                                           "duplicate_order_id"]
    assert rejects["order_id"].tolist() == ["o2", "o3", "o4", "o4"]
    # the rejected order of a customer also does not count against referential checks
    assert ds["orders"].to_pandas()["order_id"].tolist() == ["o1"]


def test_each_row_rule_names_column_count_and_example():
    tables = _tiny()
    tables["support_tickets"] = pd.DataFrame({
        "ticket_id": ["t1", "t2"], "customer_id": ["a", "a"],
        "opened_at": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:00"]),
        "first_response_at": pd.to_datetime(["2024-01-02 09:00", "2024-01-02 11:00"]),
        "resolved_at": pd.to_datetime([None, "2024-01-03 10:00"]),
    })
    tables["survey_responses"] = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c"], "responded_at": pd.to_datetime(["2024-01-03"] * 4),
        "survey": ["nps", "nps", "csat", "poll"], "score": [11.0, 7.5, 5.0, 3.0],
    })
    tables["email_events"] = pd.DataFrame({
        "campaign_id": ["m1", "m1"], "customer_id": ["a", "a"],
        "occurred_at": pd.to_datetime(["2024-01-03"] * 2), "event": ["open", "opened"],
    })
    ds = eg.load(tables)
    p = ds.problems.set_index(["table", "rule"])
    assert p.loc[("support_tickets", "response_before_open"), "rows"] == 1
    assert p.loc[("survey_responses", "score_outside_scale"), "rows"] == 3
    assert p.loc[("survey_responses", "score_outside_scale"), "example"] == "11.0"
    assert p.loc[("email_events", "unknown_email_event"), "example"] == "opened"
    assert ds.report.set_index("table").loc["survey_responses", "rows_used"] == 1


def test_rule_counts_and_their_examples_come_from_the_failing_rows_of_each_rule(monkeypatch):
    """Counted in one pass; the examples and the earliest later-than-as-of time in a second, over the rows that fail
    some rule, each example the least failing value of its own rule (by hand below); no second pass when nothing
    fails."""
    import ibis

    L = importlib.import_module("engagement.data.load")  # the package's ``load`` is the function
    t = ibis.memtable(pd.DataFrame({"v": [-5.0, -1.0, 150.0, 200.0, 50.0],
                                    "at": pd.to_datetime(["2024-01-01 00:00:00", "2031-06-01 10:00:03", "2024-01-02 00:00:00",
                                                          "2030-01-01 00:00:00", "2024-01-03 00:00:00"])}))
    rules = [("negative_v", "v", "", t.v >= 0), ("huge_v", "v", "", t.v <= 100), ("nan_v", "v", "", t.v.notnull()),
             ("after_as_of_at", "at", "", t.at <= pd.Timestamp("2025-01-01"))]
    passes = []
    real = ibis.expr.types.Table.aggregate
    monkeypatch.setattr(ibis.expr.types.Table, "aggregate", lambda self, *a, **k: passes.append(1) or real(self, *a, **k))
    c = L._count_rules(t, rules, {"v": "v", "at": "at"}, "v")
    assert len(passes) == 2 and c["rows_read"] == 5
    assert [int(c[f"n{i}"]) for i in range(4)] == [2, 2, 0, 2]
    # least as text among each rule's own failing rows: "-1.0" < "-5.0"; "150.0" < "200.0"; the 2030 time first
    assert (c["e0"], c["e1"], c["e2"]) == ("-1.0", "150.0", None)
    assert c["e3"] == "2030-01-01 00:00:00" and int(c["f3"]) == int(pd.Timestamp("2030-01-01").timestamp())
    passes.clear()
    clean = L._count_rules(t, rules[2:3], {"v": "v", "at": "at"}, "v")
    assert len(passes) == 1 and int(clean["n0"]) == 0 and clean["e0"] is None


def test_duplicate_rows_keep_the_first_copy():
    tables = _tiny()
    ev = pd.DataFrame({"customer_id": ["a", "a", "a"], "event": ["login"] * 3,
                       "occurred_at": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:00", "2024-01-03 10:00"])})
    ds = eg.load({**tables, "events": ev})
    assert ds.report.set_index("table").loc["events"].tolist() == [3, 2, 1]
    assert ds.problems.set_index(["table", "rule"]).loc[("events", "duplicate_row"), "rows"] == 1


def _suspect_tables() -> dict[str, pd.DataFrame]:
    """200 clean events plus, worked out by hand: one row three times (2 extra copies rejected), one of an unknown
    customer, one of a duplicated customer (both of whose rows are rejected), and an unknown customer's row twice
    (both rejected, the second also as a copy): 206 read, 6 rejected. Customers: d twice as an exact copy (one
    rejected), e on two different rows (both rejected), one without an id."""
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "d", "e", "e", None],
        "signup_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-04",
                                     "2024-01-05", "2024-01-06", "2024-01-07"]),
    })
    clean = pd.DataFrame({"customer_id": np.array(["a", "b", "c", "d"])[np.arange(200) % 4],
                          "occurred_at": pd.Timestamp("2024-02-01") + pd.to_timedelta(np.arange(200), unit="min"),
                          "event": "login"})
    odd = pd.DataFrame({"customer_id": ["a", "a", "zz", "e", "zz", "zz"],
                        "occurred_at": pd.to_datetime(["2024-02-01"] * 2 + ["2024-03-01"] * 4),
                        "event": ["login", "login", "login", "login", "click", "click"]})
    return {"customers": customers, "events": pd.concat([clean, odd], ignore_index=True)}


def _rejects_by_reason(ds: eg.Dataset, table: str) -> dict[str, int]:
    return ds.rejects[table].to_pandas()["_reason"].value_counts().sort_index().to_dict()


def test_only_suspect_rows_are_compared_and_the_outcome_is_exact():
    ds = eg.load(_suspect_tables())
    rep = ds.report.set_index("table")
    assert rep.loc["customers"].tolist() == [8, 4, 4]  # a, b, c and one copy of d
    assert rep.loc["events"].tolist() == [206, 200, 6]
    assert _rejects_by_reason(ds, "customers") == {"duplicate_customer_id": 2, "duplicate_row": 1,
                                                   "missing_customer_id": 1}
    assert _rejects_by_reason(ds, "events") == {"duplicate_customer_id": 1, "duplicate_row": 2,
                                                "unknown_customer_id": 2, "unknown_customer_id;duplicate_row": 1}
    used = ds["events"].to_pandas()
    assert len(used) == len(used.drop_duplicates()) == 200 and set(used.customer_id) == {"a", "b", "c", "d"}


def test_rows_sharing_a_hash_are_compared_column_by_column(monkeypatch):
    """A hash collision costs work, never a wrong answer: with one hash for every row, every row is a suspect
    and the outcome is the same."""
    import importlib

    import ibis

    honest = eg.load(_suspect_tables())
    monkeypatch.setattr(importlib.import_module("engagement.data.load"), "_row_hash",
                        lambda table, columns, wide, duckdb=False: ibis.literal(7, "int64"))
    colliding = eg.load(_suspect_tables())
    pd.testing.assert_frame_equal(honest.report, colliding.report)
    pd.testing.assert_frame_equal(honest.problems, colliding.problems)
    _assert_same_contents(_contents(honest), _contents(colliding))


def test_duckdb_row_hash_is_ibis_hash_unsigned():
    """The row screen takes DuckDB's hash as it is: the same 64 bits as Ibis's hash (which casts them to a signed
    integer through a bit string), so copies share it, rows that differ in a null or a value do not."""
    import importlib

    import ibis

    load_module = importlib.import_module("engagement.data.load")
    frame = pd.DataFrame({"a": ["x", "x", "x", None, "y"], "t": pd.to_datetime(["2024-01-01"] * 4 + [None]),
                          "v": [1.5, 1.5, 2.5, 1.5, None]})
    con = ibis.duckdb.connect()
    t = con.create_table("rows", frame)
    got = t.select(u=load_module._row_hash(t, ["a", "t", "v"], False, True),
                   s=load_module._row_hash(t, ["a", "t", "v"], False, False)).to_pandas()
    assert str(t.select(u=load_module._row_hash(t, ["a"], False, True)).schema()["u"]) == "uint64"
    assert [int(u) for u in got["u"]] == [int(s) % 2 ** 64 for s in got["s"]]
    assert got["u"].iloc[0] == got["u"].iloc[1] and got["u"].nunique() == 4


@pytest.mark.parametrize("spark", [False, True])
def test_repeated_values_by_sorting_or_grouping(spark):
    """Both ways of finding repeats (DuckDB sorts, Spark groups) give the values seen twice or more, nulls never."""
    import importlib

    import ibis

    load_module = importlib.import_module("engagement.data.load")
    values = ibis.memtable(pd.DataFrame({"__v": pd.array([5, 1, None, 3, 5, 1, 1, None, 7, -2**63], dtype="Int64")}))
    got = load_module._repeated(values, spark).to_pandas()["__v"]
    assert sorted(got.tolist()) == [1, 5]


def test_a_snapshot_stores_only_tables_with_rejects(tmp_path):
    tables = {**_suspect_tables(), "orders": pd.DataFrame({
        "order_id": ["o1", "o2"], "customer_id": ["a", "b"], "ordered_at": pd.to_datetime(["2024-02-01"] * 2),
        "revenue": [5.0, 6.0]})}
    src = tmp_path / "src"
    src.mkdir()
    for name, frame in tables.items():
        frame.to_parquet(src / f"{name}.parquet")
    cold = eg.load(src, cache=tmp_path / "cache")
    warm = eg.load(src, cache=tmp_path / "cache")
    assert (cold.reused, warm.reused) == (False, True)
    # few suspects: each table with rejects keeps them, not a copy of its used rows
    assert sorted(p.name for p in cold.snapshot.glob("*.parquet")) == [
        f"{t}.{part}.parquet" for t in ("customers", "events") for part in ("kept", "rejects", "suspects")]
    memory = _contents(eg.load(tables))
    for ds in (cold, warm):
        _assert_same_contents(_contents(ds), memory)


def _awkward_pageviews() -> pd.DataFrame:
    """Pageviews that test the values a lazily kept table compares: NULL ids and flags, nanosecond timestamps,
    an id written 17.0, an exact copy of the last view (the data's last instant), a view
    after the as-of time (so the file's own last value is not the data's) and one without a time."""
    base = pd.Timestamp("2024-03-01 10:00:00.123456789")
    return pd.DataFrame({
        "visitor_id": ["v1", "v1", "v2", None, "v3", "v3", "v4", "v5"],
        "customer_id": ["17.0", "17.0", None, None, "a", "a", "a", None],
        "viewed_at": [base, base + pd.Timedelta("1ns"), base, base, base + pd.Timedelta("2h"),
                      base + pd.Timedelta("2h"), pd.Timestamp("2030-01-01"), None],
        "page": ["/", "/a", "/<b>", "/", "/x", "/x", "/", "/"],
        "converted": [False, None, True, False, True, True, False, False],
    })


def test_few_rejects_are_kept_out_by_their_values_and_the_range_is_the_used_rows(tmp_path):
    """One exact copy, a row without a visitor, one after the as-of time and one without a time: the snapshot keeps
    their four distinct rows (not a copy of the used rows), and cold, warm and uncached loads hold the same rows;
    the data's last instant is the copied view's (worked out from the frame: 12:00:00.123456789, read to the
    microsecond), not the rejected 2030 one."""
    customers = pd.DataFrame({"customer_id": ["17", "a"], "signup_at": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    src = tmp_path / "src"
    src.mkdir()
    customers.to_parquet(src / "customers.parquet")
    _awkward_pageviews().to_parquet(src / "pageviews.parquet")
    as_of = "2024-12-31"
    cold = eg.load(src, cache=tmp_path / "cache", as_of=as_of)
    warm = eg.load(src, cache=tmp_path / "cache", as_of=as_of)
    assert (cold.reused, warm.reused) == (False, True)
    assert cold.report.set_index("table").loc["pageviews"].tolist() == [8, 4, 4]
    assert sorted(p.name for p in cold.snapshot.glob("*.parquet")) == [
        "pageviews.kept.parquet", "pageviews.rejects.parquet", "pageviews.suspects.parquet"]
    fresh = eg.load(src, cache=False, as_of=as_of)
    _assert_same_contents(_contents(cold), _contents(fresh))
    _assert_same_contents(_contents(warm), _contents(fresh))
    used = fresh["pageviews"].to_pandas()
    assert used["customer_id"].tolist().count("17") == 2  # 17.0 read as 17
    assert (used["viewed_at"] == pd.Timestamp("2024-03-01 12:00:00.123456789")).sum() == 1  # one copy kept
    for ds in (cold, warm):  # in microseconds, as the data's range is read from any table
        assert ds.known_range("pageviews", "viewed_at") == (pd.Timestamp("2024-03-01 10:00:00.123456"),
                                                            pd.Timestamp("2024-03-01 12:00:00.123456"))
        assert data_range(ds) == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01 12:00:00.123456"))
    assert data_range(fresh) == data_range(warm)
    # a table replaced since validation is not answered from what validation counted
    warm.tables["pageviews"] = warm["pageviews"].filter(warm["pageviews"].page == "/")
    assert warm.known_range("pageviews", "viewed_at") is None


@pytest.mark.parametrize("extra, read", [
    ({}, False),  # the last instant is the copied view's, and a copy of it is used: the source's own range
    ({"visitor_id": "v9", "viewed_at": pd.Timestamp("2030-01-01")}, True),  # only a rejected row holds the last
    ({"visitor_id": None, "viewed_at": pd.Timestamp("2024-03-01 09:00")}, True),  # a rejected row holds the first
])
def test_a_lazily_kept_tables_range_is_the_sources_unless_only_rejects_hold_an_end(tmp_path, monkeypatch, extra,
                                                                                     read):
    """The first and last view of the used rows, worked out by hand: 10:00 (09:00 where a row without a visitor
    has it, since v8 has it too) to 12:00:00.5 (the copied view, one copy used); read from the used rows only
    where a rejected row alone may hold an end, from the source's own first and last value elsewhere."""
    load_module = importlib.import_module("engagement.data.load")

    read_calls = []
    real = load_module._ranges
    monkeypatch.setattr(load_module, "_ranges", lambda *a: read_calls.append(1) or real(*a))
    customers = pd.DataFrame({"customer_id": ["a"], "signup_at": pd.to_datetime(["2024-01-01"])})
    views = pd.DataFrame({
        "visitor_id": ["v1", "v2", "v3", "v3", "v8"],
        "customer_id": ["a", None, "a", "a", None],
        "viewed_at": pd.to_datetime(["2024-03-01 10:00:00", "2024-03-01 11:00:00", "2024-03-01 12:00:00.5",
                                     "2024-03-01 12:00:00.5", "2024-03-01 09:00:00" if extra else "2024-03-01 10:30:00"],
                                    format="ISO8601"),
        "page": ["/"] * 5,
    })
    if extra:
        views = pd.concat([views, pd.DataFrame([{**extra, "customer_id": None, "page": "/"}])], ignore_index=True)
    src = tmp_path / "src"
    src.mkdir()
    customers.to_parquet(src / "customers.parquet")
    views.to_parquet(src / "pageviews.parquet")
    cold = eg.load(src, cache=tmp_path / "cache", as_of="2024-12-31")
    assert cold.report.set_index("table").loc["pageviews", "rows_rejected"] == 1 + bool(extra)
    assert "pageviews.suspects.parquet" in [p.name for p in cold.snapshot.glob("*.parquet")]  # kept lazily
    assert bool(read_calls) == read
    first = pd.Timestamp("2024-03-01 09:00" if extra else "2024-03-01 10:00")
    assert cold.known_range("pageviews", "viewed_at") == (first, pd.Timestamp("2024-03-01 12:00:00.5"))
    used = eg.load(src, cache=False, as_of="2024-12-31")["pageviews"].to_pandas()
    assert (used["viewed_at"].min(), used["viewed_at"].max()) == cold.known_range("pageviews", "viewed_at")


def test_suspects_that_do_not_come_back_as_their_literals_are_stored_as_a_copy(tmp_path, monkeypatch):
    """A literal that differs from the value it was read from (here every timestamp one microsecond late) would
    keep rejected rows and drop used ones: the suspects are checked against their own literals, and the used
    rows are then written whole, the same rows as an uncached load."""
    load_module = importlib.import_module("engagement.data.load")
    real = load_module._literal
    monkeypatch.setattr(load_module, "_literal", lambda v, t: real(v + pd.Timedelta("1us"), t)
                        if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat") else real(v, t))
    customers = pd.DataFrame({"customer_id": ["a"], "signup_at": pd.to_datetime(["2024-01-01"])})
    src = tmp_path / "src"
    src.mkdir()
    customers.to_parquet(src / "customers.parquet")
    pd.DataFrame({"visitor_id": ["v1", "v2", "v2"], "customer_id": ["a", None, None],
                  "viewed_at": pd.to_datetime(["2024-03-01 10:00", "2024-03-01 11:00", "2024-03-01 11:00"]),
                  "page": ["/", "/", "/"]}).to_parquet(src / "pageviews.parquet")
    cold = eg.load(src, cache=tmp_path / "cache", as_of="2024-12-31")
    assert "pageviews.used.parquet" in [p.name for p in cold.snapshot.glob("*.parquet")]
    monkeypatch.setattr(load_module, "_literal", real)
    _assert_same_contents(_contents(cold), _contents(eg.load(src, cache=False, as_of="2024-12-31")))


@pytest.mark.parametrize("suspects", [[0, 3], [3], [1, 2, 3]])
def test_the_source_less_its_suspects_is_an_anti_join(suspects):
    """_less_suspects keeps exactly the rows equal to no suspect in every column (NULLs alike), whether the
    suspects' locating values are known, missing, or both; checked against pandas' own anti-join."""
    import ibis

    load_module = importlib.import_module("engagement.data.load")
    frame = pd.DataFrame({
        "visitor_id": ["v1", "v1", "v2", "v2", None, "v3"],
        "viewed_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", None, None, "2024-01-03"]),
        "page": ["/", "/", "/a", "/a", "/", None],
    })
    raw = ibis.memtable(frame)
    rows = pa.Table.from_pandas(frame.iloc[suspects], preserve_index=False)
    got = load_module._less_suspects(eg.data.schema.CONTRACT["pageviews"], raw, rows).to_pandas()
    marked = frame.fillna({"visitor_id": "<na>", "page": "<na>"}).assign(
        viewed_at=frame.viewed_at.astype("string").fillna("<na>"))
    gone = set(map(tuple, marked.iloc[suspects].values.tolist()))
    expected = frame[[tuple(r) not in gone for r in marked.values.tolist()]]
    key = ["visitor_id", "viewed_at", "page"]
    pd.testing.assert_frame_equal(got.sort_values(key, na_position="first").reset_index(drop=True),
                                  expected.sort_values(key, na_position="first").reset_index(drop=True),
                                  check_dtype=False)


def test_the_fingerprint_is_the_data_not_the_time_it_was_loaded():
    """A row dated in the future is rejected against any as-of time before it, with that time in the problem's text:
    the same rejects give the same fingerprint; an as-of time that rejects one more row gives another."""
    tables = _tiny()
    tables["orders"] = pd.concat([tables["orders"], pd.DataFrame({
        "order_id": ["o9"], "customer_id": ["a"], "ordered_at": pd.to_datetime(["2099-01-01"]), "revenue": [1.0]})],
        ignore_index=True)
    early, late = eg.load(tables, as_of="2025-01-01"), eg.load(tables, as_of="2025-01-01 00:00:05")
    assert early.problems["description"].tolist() != late.problems["description"].tolist()
    assert early.fingerprint() == late.fingerprint()
    assert eg.load(tables, as_of="2024-01-20").fingerprint() != early.fingerprint()  # also rejects 2024-02-01


def test_many_rejects_are_stored_as_a_copy_of_the_used_rows(tmp_path, monkeypatch):
    """Past LAZY_SUSPECTS distinct suspects the used rows are written whole; the rows are the same either way."""
    load_module = importlib.import_module("engagement.data.load")
    customers = pd.DataFrame({"customer_id": ["17", "a"], "signup_at": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    src = tmp_path / "src"
    src.mkdir()
    customers.to_parquet(src / "customers.parquet")
    _awkward_pageviews().to_parquet(src / "pageviews.parquet")
    lazy = eg.load(src, cache=tmp_path / "lazy", as_of="2024-12-31")
    monkeypatch.setattr(load_module, "LAZY_SUSPECTS", 3)  # four distinct suspects: too many
    copied = eg.load(src, cache=tmp_path / "copied", as_of="2024-12-31")
    assert sorted(p.name for p in copied.snapshot.glob("*.parquet")) == ["pageviews.rejects.parquet",
                                                                         "pageviews.used.parquet"]
    assert copied.known_range("pageviews", "viewed_at") is None
    _assert_same_contents(_contents(copied), _contents(lazy))
    assert data_range(copied) == data_range(lazy)


def _snapshot_source(folder):
    tables = _tiny()  # orders has a negative revenue, an unknown customer and a duplicated id: rejects
    folder.mkdir()
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet")
    return folder


def _contents(ds):
    return {name: (ds[name].to_pandas().sort_values(list(ds[name].columns)).reset_index(drop=True),
                   ds.rejects[name].to_pandas().sort_values(list(ds.rejects[name].columns)).reset_index(drop=True))
            for name in ds.tables}


def _assert_same_contents(a, b):
    """Two :func:`_contents` hold the same used rows and rejects, table by table."""
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name][0], b[name][0])
        pd.testing.assert_frame_equal(a[name][1], b[name][1])


def test_validated_snapshot_is_reused_with_identical_outcome(tmp_path):
    src, cache = _snapshot_source(tmp_path / "src"), tmp_path / "cache"
    first = eg.load(src, cache=cache)
    again = eg.load(src, cache=cache)
    assert (first.reused, again.reused) == (False, True)
    assert first.snapshot == again.snapshot and (first.snapshot / "manifest.json").exists()
    assert sorted(p.name for p in first.snapshot.glob("*.parquet")) == [
        "orders.kept.parquet", "orders.rejects.parquet", "orders.suspects.parquet"]
    pd.testing.assert_frame_equal(first.report, again.report)
    pd.testing.assert_frame_equal(first.problems, again.problems)
    assert first.fingerprint() == again.fingerprint()
    a, b = _contents(first), _contents(again)
    assert a.keys() == {"customers", "orders"}
    _assert_same_contents(a, b)
    assert len(a["orders"][0]) == 1 and len(a["orders"][1]) == 4  # o1 used; o2 negative, o3 unknown, o4 twice
    fresh = _contents(eg.load(src, cache=False))
    pd.testing.assert_frame_equal(fresh["orders"][0], a["orders"][0])


def test_changed_file_or_no_cache_validates_again(tmp_path):
    src, cache = _snapshot_source(tmp_path / "src"), tmp_path / "cache"
    eg.load(src, cache=cache)
    orders = pd.read_parquet(src / "orders.parquet")
    orders.loc[0, "revenue"] = 11.0  # one value changed: a new snapshot
    orders.to_parquet(src / "orders.parquet")
    changed = eg.load(src, cache=cache)
    assert not changed.reused
    assert changed["orders"].revenue.to_pandas().tolist() == [11.0]
    off = eg.load(src, cache=False)
    assert (off.reused, off.snapshot) == (False, None)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2


def test_unwritable_cache_never_fails_a_load(tmp_path):
    src = _snapshot_source(tmp_path / "src")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    ds = eg.load(src, cache=blocker / "cache")
    assert (ds.reused, ds.snapshot) == (False, None)
    assert ds.report.set_index("table").loc["orders", "rows_rejected"] == 4


def test_hard_problems_are_listed_together():
    tables = _tiny()
    tables["orders"] = tables["orders"].drop(columns=["revenue"])
    tables["events"] = pd.DataFrame({"customer_id": ["a"], "when": [pd.Timestamp("2024-01-01")]})
    with pytest.raises(ContractError) as err:
        eg.load(tables)
    text = str(err.value)
    assert "orders.revenue: required column is missing" in text
    assert "events.occurred_at: required column is missing" in text and "events.event" in text
    assert len(err.value.problems) == 3


def test_missing_customers_table_is_a_hard_problem():
    with pytest.raises(ContractError, match="customers"):
        eg.load({"orders": _tiny()["orders"]})


def test_mixed_naive_and_aware_timestamps_convert_to_utc_with_a_note(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    c = _tiny()["customers"].assign(signup_at=["2024-01-01 10:00:00", "2024-01-05 10:00:00+02:00",
                                               "2024-02-01 10:00:00"])
    c.to_csv(folder / "customers.csv", index=False)
    ds = eg.load(folder, cache=False)
    # 10:00 at +02:00 is 08:00 UTC; the naive values are UTC by the contract and stay as written
    assert ds["customers"].to_pandas()["signup_at"].tolist() == [
        pd.Timestamp("2024-01-01 10:00"), pd.Timestamp("2024-01-05 08:00"), pd.Timestamp("2024-02-01 10:00")]
    assert ds.report["rows_rejected"].tolist() == [0]
    assert any("customers.signup_at: 1 value(s) with a time zone were converted to UTC; the other 2" in n
               for n in ds.notes)
    # the same from pandas: an object column of naive and aware Timestamps
    frame = _tiny()["customers"].assign(signup_at=pd.Series(
        [pd.Timestamp("2024-01-01 10:00"), pd.Timestamp("2024-01-05 10:00", tz="Europe/Paris"),
         pd.Timestamp("2024-02-01 10:00")], dtype=object))
    ds = eg.load({"customers": frame})
    assert ds["customers"].to_pandas()["signup_at"].tolist()[1] == pd.Timestamp("2024-01-05 09:00")
    assert any("1 value(s) with a time zone" in n for n in ds.notes)


def test_aware_timestamps_convert_to_utc(tmp_path):
    c = _tiny()["customers"].assign(signup_at=pd.to_datetime(["2024-01-01 10:00"] * 3).tz_localize("Europe/Paris"))
    ds = eg.load({"customers": c})
    got = ds["customers"].to_pandas()["signup_at"]
    assert (got == pd.Timestamp("2024-01-01 09:00")).all()


def test_csv_directory_with_unparseable_values(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    t = _tiny()
    t["customers"].to_csv(folder / "customers.csv", index=False)
    orders = t["orders"].iloc[:2].assign(revenue=["12.5", "twelve"], customer_id=["a", "a"])
    orders.to_csv(folder / "orders.csv", index=False)
    (folder / "notes.txt").write_text("not data")
    ds = eg.load(folder)
    p = ds.problems.set_index(["table", "rule"])
    assert p.loc[("orders", "unparseable_revenue"), "example"] == "twelve"
    assert any("notes.txt" in n for n in ds.notes)
    assert ds["orders"].to_pandas()["revenue"].tolist() == [12.5]


def test_unreadable_file_is_a_hard_problem(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    _tiny()["customers"].to_parquet(folder / "customers.parquet")
    (folder / "orders.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(ContractError, match=r"orders\.\*: the file cannot be read"):
        eg.load(folder)


def test_duckdb_file_source(tmp_path):
    import duckdb

    path = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(path))
    t = _tiny()
    con.register("c_df", t["customers"])
    con.execute("CREATE TABLE customers AS SELECT * FROM c_df")
    con.close()
    ds = eg.load(path)
    assert ds.report["rows_read"].tolist() == [3]
    assert "orders" in ds.missing_tables


def test_missing_tables_make_metrics_unavailable_not_errors():
    ds = eg.load(_tiny())
    av = catalog.available_metrics(set(ds.tables)).set_index("id")
    assert bool(av.loc["aov", "available"]) and not bool(av.loc["nps", "available"])
    assert "survey_responses" in av.loc["nps", "reason"]


def test_extra_customer_columns_are_kept_for_segments():
    t = _tiny()
    t["customers"]["industry"] = ["retail", "saas", "retail"]
    ds = eg.load(t)
    assert "industry" in ds["customers"].columns


def test_validated_types_are_the_contract_types():
    t = _tiny()
    t["customers"]["customer_id"] = [1, 2, 3]
    t["orders"]["customer_id"] = [1, 2, 3, 3, 3]
    ds = eg.load(t)
    schema = ds["orders"].schema()
    assert schema["customer_id"].is_string() and schema["revenue"].is_floating()
    assert schema["ordered_at"].is_timestamp()
    assert np.isin(ds["orders"].to_pandas()["customer_id"], ["1", "2", "3"]).all()
