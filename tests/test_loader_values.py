"""Values the loader must refuse, and ones it must accept, on small data of our own making."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import engagement as eg
from engagement.data import ContractError
from engagement.measure import measure

AS_OF = "2024-06-30"


def _customers(ids=("1", "2", "3")) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(ids),
                         "signup_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01"][: len(ids)])})


def _orders(**cols) -> pd.DataFrame:
    base = {"order_id": ["o1", "o2", "o3"], "customer_id": ["1", "2", "3"],
            "ordered_at": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"]),
            "revenue": [10.0, 20.0, 30.0]}
    return pd.DataFrame({**base, **cols})


def _rules(ds) -> dict[str, int]:
    return dict(zip(ds.problems["rule"], ds.problems["rows"], strict=True))


def test_infinite_and_nan_amounts_are_rejected_and_measure_runs():
    orders = _orders(revenue=[10.0, np.inf, -np.inf], cost=[1.0, 2.0, np.inf])
    ds = eg.load({"customers": _customers(), "orders": orders}, as_of=AS_OF)
    assert _rules(ds) == {"infinite_revenue": 2, "negative_revenue": 1, "infinite_cost": 1}
    assert ds.report.set_index("table").loc["orders"].tolist() == [3, 1, 2]
    got = measure(ds, "2024-03", segments=[], compare=False).set_index("metric")
    assert got.loc["revenue", "value"] == pytest.approx(10.0)
    assert got.loc["aov", "n"] == 1


def test_nan_in_a_parquet_float_column_is_rejected_not_measured(tmp_path):
    # pandas NaN becomes NULL through Arrow, but a Parquet file can hold a real NaN
    import pyarrow as pa
    import pyarrow.parquet as pq

    _customers().to_parquet(tmp_path / "customers.parquet")
    table = pa.Table.from_pandas(_orders(), preserve_index=False)
    table = table.set_column(3, "revenue", pa.array([10.0, float("nan"), 30.0], from_pandas=False))
    pq.write_table(table, tmp_path / "orders.parquet")
    ds = eg.load(tmp_path, cache=False, as_of=AS_OF)
    assert _rules(ds) == {"infinite_revenue": 1}


def test_timestamps_after_the_as_of_time_are_rejected():
    orders = _orders(ordered_at=pd.to_datetime(["2024-03-01 00:00:00", "2999-01-01 00:00:00", "2024-06-30 00:00:01"]))
    ds = eg.load({"customers": _customers(), "orders": orders}, as_of=AS_OF)
    p = ds.problems.set_index("rule")
    assert p.loc["after_as_of_ordered_at", "rows"] == 2
    assert p.loc["after_as_of_ordered_at", "example"].startswith("2024-06-30 00:00:01")
    assert "2024-06-30 00:00:00 UTC" in p.loc["after_as_of_ordered_at", "description"]
    assert ds.as_of == pd.Timestamp(AS_OF)
    # by default the as-of time is the load's: the order in 2999 is refused, the others are kept; the text names no
    # time (it would be another at each load, and a report rendered again would differ in it)
    ds = eg.load({"customers": _customers(), "orders": orders})
    assert _rules(ds) == {"after_as_of_ordered_at": 1}
    assert ds.problems.description.tolist() == ["dated in the future (later than the time the data were loaded)"]
    # an aware as-of time is converted to UTC
    ds = eg.load({"customers": _customers(), "orders": orders}, as_of="2024-06-30T02:00:01+02:00")
    assert _rules(ds) == {"after_as_of_ordered_at": 1}
    with pytest.raises(ValueError, match="as_of='soon' is not a date"):
        eg.load({"customers": _customers()}, as_of="soon")


def test_the_default_as_of_reuses_a_snapshot_while_its_future_rows_are_still_in_the_future(tmp_path):
    """Against the time of each load: an order in 2099 is rejected by both loads, so the second reuses the first's
    outcome (with the same text, which names no time); an order a few seconds ahead is in the past by the next
    load, which validates again and uses it."""
    import time

    folder = tmp_path / "src"
    folder.mkdir()
    _customers().to_parquet(folder / "customers.parquet")
    _orders(ordered_at=pd.to_datetime(["2024-03-01", "2099-01-01", "2024-03-03"])).to_parquet(
        folder / "orders.parquet")
    first = eg.load(folder, cache=tmp_path / "cache")
    time.sleep(1.1)  # a second later: another as-of time, the same text
    again = eg.load(folder, cache=tmp_path / "cache")
    assert _rules(first) == _rules(again) == {"after_as_of_ordered_at": 1}
    assert again.reused is True and again.as_of > first.as_of
    pd.testing.assert_frame_equal(again.problems, first.problems)
    assert again.problems["description"].tolist() == ["dated in the future (later than the time the data were loaded)"]
    assert again.fingerprint() == first.fingerprint()
    pd.testing.assert_frame_equal(again["orders"].to_pandas(), eg.load(folder, cache=False)["orders"].to_pandas())
    fixed = eg.load(folder, cache=tmp_path / "cache", as_of=AS_OF)
    assert eg.load(folder, cache=tmp_path / "cache", as_of=AS_OF).reused is True
    assert _rules(fixed) == {"after_as_of_ordered_at": 1}

    soon = tmp_path / "soon"
    soon.mkdir()
    _customers().to_parquet(soon / "customers.parquet")
    ahead = pd.Timestamp.now(tz="UTC").tz_localize(None).ceil("s") + pd.Timedelta(seconds=2)
    _orders(ordered_at=pd.to_datetime(["2024-03-01", "2099-01-01"]).append(pd.DatetimeIndex([ahead]))).to_parquet(
        soon / "orders.parquet")
    before = eg.load(soon, cache=tmp_path / "cache")
    assert _rules(before) == {"after_as_of_ordered_at": 2}
    time.sleep(max(0.0, (ahead - pd.Timestamp.now(tz="UTC").tz_localize(None)).total_seconds()) + 1.1)
    after = eg.load(soon, cache=tmp_path / "cache")
    assert after.reused is False and _rules(after) == {"after_as_of_ordered_at": 1}
    assert after.report.set_index("table").loc["orders", "rows_used"] == 2


def test_an_empty_customers_table_is_one_clear_error():
    empty = _customers().iloc[:0]
    with pytest.raises(ContractError) as err:
        eg.load({"customers": empty, "orders": _orders()})
    assert len(err.value.problems) == 1
    assert "customers.*: the table has no rows" in str(err.value)


def test_csv_ids_written_as_decimals_match_whole_ids(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    _customers().to_csv(folder / "customers.csv", index=False)
    # a spreadsheet export wrote the customer ids of orders as 1.0, 2.00 and 3.0; "3.5" is not an id of 3
    _orders(customer_id=["1.0", "2.00", "3.5"]).to_csv(folder / "orders.csv", index=False)
    ds = eg.load(folder, cache=False, as_of=AS_OF)
    assert _rules(ds) == {"unknown_customer_id": 1}
    assert sorted(ds["orders"].to_pandas()["customer_id"]) == ["1", "2"]
    assert any("orders.customer_id: 2 id(s) written as whole decimals" in n for n in ds.notes)
    # ids with leading zeros or letters are left as written
    _customers(ids=("007", "A.0", "3")).to_csv(folder / "customers.csv", index=False)
    _orders(customer_id=["007", "A.0", "3.0"]).to_csv(folder / "orders.csv", index=False)
    ds = eg.load(folder, cache=False, as_of=AS_OF)
    assert ds.problems.empty
    assert sorted(ds["orders"].to_pandas()["customer_id"]) == ["007", "3", "A.0"]


def test_ids_written_as_decimals_are_screened_with_and_without_a_reference(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    _customers().to_csv(folder / "customers.csv", index=False)
    # customer ids point at customers: only an id that points at none is looked at again ("9" is simply unknown);
    # order ids point at nothing: "10.0" is order 10, the same id as the next row's
    _orders(order_id=["10.0", "10", "11"], customer_id=["1", "2", "9"]).to_csv(folder / "orders.csv", index=False)
    ds = eg.load(folder, cache=False, as_of=AS_OF)
    assert _rules(ds) == {"unknown_customer_id": 1, "duplicate_order_id": 2}
    assert [n for n in ds.notes if "whole decimals" in n] == [
        "orders.order_id: 1 id(s) written as whole decimals (such as 17.0) are read as whole numbers (17)"]
    _orders(order_id=["10", "11", "12"], customer_id=["1.0", "2", "9"]).to_csv(folder / "orders.csv", index=False)
    ds = eg.load(folder, cache=False, as_of=AS_OF)
    assert _rules(ds) == {"unknown_customer_id": 1}
    assert sorted(ds["orders"].to_pandas()["customer_id"]) == ["1", "2"]
    assert [n for n in ds.notes if "whole decimals" in n] == [
        "orders.customer_id: 1 id(s) written as whole decimals (such as 17.0) are read as whole numbers (17)"]


def test_rows_of_a_duplicated_customer_say_duplicate_not_unknown():
    customers = pd.concat([_customers(), pd.DataFrame({"customer_id": ["2"],
                                                       "signup_at": [pd.Timestamp("2024-04-01")]})])
    customers = pd.concat([customers, pd.DataFrame({"customer_id": ["9"], "signup_at": [pd.NaT]})])
    orders = _orders(order_id=["o1", "o2", "o3", "o4", "o5"], customer_id=["1", "2", "2", "9", "404"],
                     ordered_at=pd.to_datetime(["2024-03-01"] * 5), revenue=[1.0] * 5)
    ds = eg.load({"customers": customers, "orders": orders}, as_of=AS_OF)
    rules = ds.problems.set_index(["table", "rule"])["rows"].to_dict()
    assert rules == {("customers", "missing_signup_at"): 1, ("customers", "duplicate_customer_id"): 2,
                     ("orders", "duplicate_customer_id"): 2, ("orders", "rejected_customer_id"): 1,
                     ("orders", "unknown_customer_id"): 1}
    text = ds.problems.set_index(["table", "rule"]).loc[("orders", "duplicate_customer_id"), "description"]
    assert "duplicated customers id" in text
    reasons = ds.rejects["orders"].to_pandas().set_index("order_id")["_reason"].to_dict()
    assert reasons == {"o2": "duplicate_customer_id", "o3": "duplicate_customer_id", "o4": "rejected_customer_id",
                       "o5": "unknown_customer_id"}


def test_a_zero_byte_file_says_it_is_empty(tmp_path):
    _customers().to_parquet(tmp_path / "customers.parquet")
    (tmp_path / "orders.csv").write_bytes(b"")
    with pytest.raises(ContractError, match=r"orders\.\*: the file is empty \(0 bytes\), e\.g\. orders\.csv"):
        eg.load(tmp_path, cache=False)


def test_an_empty_folder_names_the_files_it_looked_for(tmp_path):
    with pytest.raises(ContractError) as err:
        eg.load(tmp_path, cache=False)
    text = str(err.value)
    assert "no table files in" in text and "customers.parquet or customers.csv; orders.parquet or orders.csv" in text
    (tmp_path / "orders.csv").write_text(_orders().to_csv(index=False))
    with pytest.raises(ContractError, match=r"customers table \(customers\.parquet or customers\.csv\) in "):
        eg.load(tmp_path, cache=False)
