"""Column mappings: exports that do not carry the contract's names, read through a YAML file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engagement as eg
from engagement.check import validate_source
from engagement.data.cdnow import cdnow_dir, load_cdnow
from engagement.data.mapping import MappingError, read_mapping
from engagement.measure import measure

MAPPINGS = Path(eg.__file__).parent / "data" / "mappings"


# --- worked example 1: the raw CDNOW text file -------------------------------------------------


def test_cdnow_raw_text_file_through_its_mapping_matches_the_reference_reader():
    ds = eg.load(cdnow_dir(), mapping=MAPPINGS / "cdnow.yml", cache=False)
    ref = load_cdnow("master")  # pandas' whitespace reader, written independently of the mapping
    assert ds.problems.empty
    assert ds.report.set_index("table")["rows_used"].to_dict() == {"customers": 23_570, "orders": 69_659}
    orders = ds["orders"].to_pandas()
    assert orders["revenue"].sum() == pytest.approx(ref.orders["revenue"].sum(), abs=1e-6)  # 2,500,315.63
    assert orders["order_id"].is_unique
    # the same customers, signed up on the same first purchase days (ids keep their leading zeros)
    got = ds["customers"].to_pandas().assign(customer_id=lambda d: d.customer_id.astype(int))
    want = ref.customers.assign(customer_id=lambda d: d.customer_id.astype(int))
    pd.testing.assert_frame_equal(got.sort_values("customer_id").reset_index(drop=True)[["customer_id", "signup_at"]],
                                  want.sort_values("customer_id").reset_index(drop=True), check_dtype=False)
    assert "customers: derived from orders: one per customer_id, signed up at their first row" in ds.notes


# --- worked example 2: a retail invoice export -------------------------------------------------


def _online_retail(folder: Path, seed: int = 7) -> pd.DataFrame:
    """Invoice lines shaped like the public Online Retail data: returns, anonymous rows, float ids, UK time."""
    rng = np.random.default_rng(seed)
    rows = []
    countries = ["United Kingdom", "France", "Germany", "EIRE"]
    stamps = pd.date_range("2010-12-01 08:00", "2011-09-30 18:00", freq="37min")
    for inv in range(120):
        cust = None if inv % 10 == 9 else 12_000 + int(rng.integers(0, 25))
        when = stamps[int(rng.integers(0, len(stamps)))]
        returned = inv % 13 == 5
        for line in range(int(rng.integers(1, 5))):
            qty = int(rng.integers(1, 13)) * (-1 if returned else 1)
            rows.append({"InvoiceNo": f"{'C' if returned else ''}{536_000 + inv}", "StockCode": f"8{line}123",
                         "Description": "WHITE HANGING HEART <T-LIGHT> HOLDER", "Quantity": qty,
                         "InvoiceDate": f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}",
                         "UnitPrice": round(float(rng.uniform(0.4, 9.0)), 2),
                         "CustomerID": "" if cust is None else f"{cust}.0",
                         "Country": countries[(cust or 0) % 4], "_when": when})
    lines = pd.DataFrame(rows)
    lines.drop(columns="_when").to_csv(folder / "online_retail.csv", index=False)
    return lines


def test_online_retail_export_through_its_mapping(tmp_path):
    lines = _online_retail(tmp_path)
    ds = eg.load(tmp_path, mapping=MAPPINGS / "online_retail.yml", cache=False, as_of="2012-01-01")
    assert ds.problems.empty
    # what the mapping should give, computed with pandas from the generated lines
    kept = lines[(lines.Quantity >= 0) & (lines.CustomerID != "")]
    want = (kept.assign(amount=kept.Quantity * kept.UnitPrice).groupby("InvoiceNo")
            .agg(revenue=("amount", "sum"), when=("_when", "min"), customer=("CustomerID", "first")))
    want["utc"] = want["when"].dt.tz_localize("Europe/London").dt.tz_convert("UTC").dt.tz_localize(None)
    got = ds["orders"].to_pandas().set_index("order_id").sort_index()
    assert len(got) == len(want) == ds.report.set_index("table").loc["orders", "rows_used"]
    np.testing.assert_allclose(got["revenue"], want["revenue"].sort_index(), rtol=1e-12)
    assert (got["ordered_at"] == want["utc"].sort_index()).all()  # summer times are an hour behind UK time
    assert (got["customer_id"] == want["customer"].sort_index().str.removesuffix(".0")).all()
    # the rows left out are counted, by rule, in the notes
    n_returns = int((lines.Quantity < 0).sum())
    n_anon = int(((lines.Quantity >= 0) & (lines.CustomerID == "")).sum())
    assert f"orders: {n_returns:,} of {len(lines):,} source rows left out by the mapping as 'returns' " \
           "(Quantity below 0)" in ds.notes
    assert any(n.startswith(f"orders: {n_anon:,} of") and "'anonymous'" in n for n in ds.notes)
    assert any("id(s) written as whole decimals" in n for n in ds.notes)
    # customers: one per id, signed up at their first invoice, with that invoice's country as region
    customers = ds["customers"].to_pandas().set_index("customer_id").sort_index()
    first = kept.sort_values(["_when", "Country"]).groupby("CustomerID").first()
    assert customers.index.tolist() == sorted(c.removesuffix(".0") for c in first.index)
    assert customers["region"].tolist() == first["Country"].tolist()
    # and it measures: revenue of 2011Q1 is the sum of that quarter's invoices (in UTC)
    q1 = want[(want.utc >= "2011-01-01") & (want.utc < "2011-04-01")]
    t = measure(ds, "2011Q1", segments=[], compare=False).set_index("metric")
    assert t.loc["revenue", "value"] == pytest.approx(q1["revenue"].sum())


def test_time_zone_conversion_follows_daylight_saving(tmp_path):
    """10:00 in London is 10:00 UTC in January and 09:00 UTC in July (the tz database, not a fixed offset)."""
    pd.DataFrame({"customer_id": ["1", "2", "3"],
                  "signup_at": ["2011-01-15 10:00", "2011-07-15 10:00", "2011-07-15T10:00:00+02:00"]}
                 ).to_csv(tmp_path / "c.csv", index=False)
    mapping = {"time_zone": "Europe/London", "tables": {"customers": {"file": "c.csv"}}}
    ds = eg.load(tmp_path, mapping=mapping, cache=False)
    # a value that carries its own zone keeps it
    assert ds["customers"].to_pandas()["signup_at"].tolist() == [
        pd.Timestamp("2011-01-15 10:00"), pd.Timestamp("2011-07-15 09:00"), pd.Timestamp("2011-07-15 08:00")]
    assert "customers: times without a zone are in Europe/London, converted to UTC" in ds.notes


# --- value maps, currency units, generated ids ------------------------------------------------


def test_value_names_and_currency_units_are_mapped(tmp_path):
    pd.DataFrame({"id": ["1", "2"], "joined": ["2024-01-01", "2024-01-02"]}).to_csv(tmp_path / "crm.csv",
                                                                                     index=False)
    pd.DataFrame({"camp": ["c1"] * 4, "who": ["1", "1", "2", "2"], "at": ["2024-02-01"] * 4,
                  "type": ["Sent", "Opened", "Sent", "Bounced"]}).to_csv(tmp_path / "mail.csv", index=False)
    pd.DataFrame({"no": ["a", "b"], "who": ["1", "2"], "at": ["2024-02-03", "2024-02-04"],
                  "cents": ["1250", "99"]}).to_csv(tmp_path / "sales.csv", index=False)
    mapping = {"tables": {
        "customers": {"file": "crm.csv", "columns": {"customer_id": "id", "signup_at": "joined"}},
        "email_events": {"file": "mail.csv", "columns": {
            "campaign_id": "camp", "customer_id": "who", "occurred_at": "at",
            "event": {"column": "type", "values": {"Sent": "sent", "Opened": "open", "Bounced": "bounce"}}}},
        "orders": {"file": "sales.csv", "columns": {"order_id": "no", "customer_id": "who", "ordered_at": "at",
                                                   "revenue": {"column": "cents", "scale": 0.01}}},
    }}
    ds = eg.load(tmp_path, mapping=mapping, cache=False)
    assert ds.problems.empty
    assert sorted(ds["email_events"].to_pandas()["event"]) == ["bounce", "open", "sent", "sent"]
    assert ds["orders"].to_pandas().sort_values("order_id")["revenue"].tolist() == [12.5, 0.99]


def test_an_unmapped_value_name_is_rejected_by_the_contract_with_its_count(tmp_path):
    pd.DataFrame({"customer_id": ["1"], "signup_at": ["2024-01-01"]}).to_csv(tmp_path / "customers.csv",
                                                                             index=False)
    pd.DataFrame({"campaign_id": ["c"] * 2, "customer_id": ["1", "1"], "occurred_at": ["2024-02-01"] * 2,
                  "type": ["Opened", "Forwarded"]}).to_csv(tmp_path / "mail.csv", index=False)
    mapping = {"tables": {"email_events": {"file": "mail.csv", "columns": {
        "event": {"column": "type", "values": {"Opened": "open"}}}}}}
    ds = eg.load(tmp_path, mapping=mapping, cache=False)  # customers.csv is read as usual
    p = ds.problems.set_index("rule")
    assert p.loc["unknown_email_event", ["rows", "example"]].tolist() == [1, "Forwarded"]


# --- bad mappings: a clear error naming the file and the key --------------------------------


@pytest.mark.parametrize("doc, message", [
    ({"tables": {"purchases": {"file": "x.csv"}}}, "tables.purchases: not a contract table"),
    ({"tables": {"orders": {"file": "x.csv", "colums": {}}}}, "tables.orders.colums: unknown key"),
    ({"tables": {"orders": {"columns": {}}}}, "tables.orders: give either `file`"),
    ({"tables": {"orders": {"file": "x.csv", "columns": {"ordered_at": {"column": "d", "format": "%d %b %Y"}}}}},
     "the directive %b is not supported"),
    ({"tables": {"orders": {"file": "x.csv", "columns": {"revenue": {"column": "a", "scale": "cents"}}}}},
     "tables.orders.columns.revenue.scale: must be a number"),
    ({"tables": {"orders": {"file": "x.csv", "exclude": [{"name": "r", "column": "q", "under": 0}]}}},
     r"tables.orders.exclude\[0\]: must be"),
    ({"time_zone": "Mars/Olympus", "tables": {"orders": {"file": "x.csv"}}}, "unknown time zone 'Mars/Olympus'"),
    ({"tables": {"orders": {"from": "customers"}}}, "only customers can be derived"),
])
def test_a_bad_mapping_names_the_key(doc, message):
    with pytest.raises(MappingError, match=message):
        read_mapping(doc)


def test_a_mapping_that_names_a_missing_source_column_lists_the_columns(tmp_path):
    pd.DataFrame({"id": ["1"], "joined": ["2024-01-01"]}).to_csv(tmp_path / "crm.csv", index=False)
    mapping = {"tables": {"customers": {"file": "crm.csv", "columns": {"customer_id": "ID", "signup_at": "joined"}}}}
    with pytest.raises(MappingError, match=r"tables.customers.columns.customer_id: the source has no column 'ID' "
                                           r"\(it has id, joined\)"):
        eg.load(tmp_path, mapping=mapping, cache=False)
    mapping["tables"]["customers"]["file"] = "nowhere.csv"
    with pytest.raises(MappingError, match="nowhere.csv does not exist"):
        eg.load(tmp_path, mapping=mapping, cache=False)


def test_a_mapping_file_is_part_of_the_snapshot_key(tmp_path):
    shutil.copy(cdnow_dir() / "CDNOW_sample.txt", tmp_path / "sample.txt")
    yml = tmp_path / "m.yml"
    body = ("tables:\n  orders:\n    file: sample.txt\n    header: false\n"
            "    names: [master_id, customer_id, date, n, amount]\n"
            "    columns: {order_id: {generate: true}, ordered_at: {column: date, format: '%Y%m%d'}, "
            "revenue: amount}\n  customers: {from: orders}\n")
    yml.write_text(body)
    first = eg.load(tmp_path, mapping=yml, cache=tmp_path / "cache")
    assert eg.load(tmp_path, mapping=yml, cache=tmp_path / "cache").reused is True
    yml.write_text(body.replace("revenue: amount", "revenue: {column: amount, scale: 100}"))
    again = eg.load(tmp_path, mapping=yml, cache=tmp_path / "cache")
    assert again.reused is False
    ratio = again["orders"].to_pandas()["revenue"].sum() / first["orders"].to_pandas()["revenue"].sum()
    assert ratio == pytest.approx(100)
    assert first.report.set_index("table")["rows_used"].to_dict() == {"customers": 2_357, "orders": 6_919}


def test_validate_command_reads_through_a_mapping(tmp_path, capsys):
    _online_retail(tmp_path)
    code = validate_source(str(tmp_path), mapping=str(MAPPINGS / "online_retail.yml"), as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {t["table"] for t in out["tables"]} == {"customers", "orders"}
    assert any("'returns'" in n for n in out["notes"])
    assert "aov" in out["metrics_supported"]
    code = validate_source(str(tmp_path), mapping=str(tmp_path / "missing.yml"))
    assert code == 2 and "the mapping file does not exist" in capsys.readouterr().err
