"""The CDNOW purchase data mapped into the orders/customers contract."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["CdnowData", "load_cdnow", "cdnow_dir"]


def cdnow_dir() -> Path:
    """The folder holding the CDNOW files shipped inside the package (``data/cdnow`` in a checkout)."""
    return Path(str(resources.files("engagement.data").joinpath("cdnow_files")))


@dataclass(frozen=True)
class CdnowData:
    """CDNOW orders and customers in the contract's column names."""

    orders: pd.DataFrame
    customers: pd.DataFrame


def load_cdnow(which: str = "master", path: str | Path | None = None) -> CdnowData:
    """Read ``CDNOW_master.txt`` or ``CDNOW_sample.txt`` into contract tables.

    Parameters
    ----------
    which : {"master", "sample"}
        The full file (69,659 order lines, 23,570 customers) or the 1/10 sample
        (6,919 lines, 2,357 customers; ``customer_id`` is the sample id, as in the
        published summaries, ``master_id`` the master file's id).
    path : path, optional
        The file; default ``data/cdnow/CDNOW_<which>.txt``.

    Returns
    -------
    CdnowData
        ``orders``: ``order_id, customer_id, ordered_at, revenue, number_of_cds``
        (one row per line of the file: several lines on one day are separate
        orders; the RFM summary merges them into one purchase occasion).
        ``customers``: ``customer_id, signup_at`` (the first purchase day).

    Examples
    --------
    >>> from engagement.data.cdnow import load_cdnow
    >>> d = load_cdnow("sample")
    >>> len(d.orders), d.orders["customer_id"].nunique()
    (6919, 2357)
    """
    if which not in ("master", "sample"):
        raise ValueError(f"`which` must be 'master' or 'sample', got {which!r}.")
    file = Path(path) if path is not None else cdnow_dir() / f"CDNOW_{which}.txt"
    if which == "master":
        raw = pd.read_csv(file, sep=r"\s+", header=0, names=["customer_id", "date", "number_of_cds", "revenue"],
                          dtype={"customer_id": "int64", "date": "str"})
    else:
        raw = pd.read_csv(file, sep=r"\s+", header=None,
                          names=["master_id", "customer_id", "date", "number_of_cds", "revenue"],
                          dtype={"master_id": "int64", "customer_id": "int64", "date": "str"})
    ordered_at = pd.to_datetime(raw["date"], format="%Y%m%d")
    orders = pd.DataFrame(
        {
            "order_id": [f"{c}-{i}" for c, i in zip(raw["customer_id"], raw.groupby("customer_id").cumcount(), strict=True)],
            "customer_id": raw["customer_id"],
            "ordered_at": ordered_at,
            "revenue": raw["revenue"].astype("float64"),
            "number_of_cds": raw["number_of_cds"].astype("int64"),
        }
    )
    if which == "sample":
        orders["master_id"] = raw["master_id"]
    customers = (
        orders.groupby("customer_id", as_index=False, sort=True)["ordered_at"].min()
        .rename(columns={"ordered_at": "signup_at"})
    )
    return CdnowData(orders=orders, customers=customers)
