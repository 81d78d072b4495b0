"""Measurement speed and memory: engagement (Ibis on DuckDB) against a plain pandas reference.

For each size the script generates the demo data (once, cached under
``benchmarks/out/``), then runs, each in a fresh Python process so that peak RSS
belongs to one implementation only:

* ``ours``: ``engagement.load`` (validation included) + ``measure`` of one quarter,
  all default segments, no comparison periods;
* ``reference``: the same aggregations written the straightforward pandas way
  (read every table into pandas, merge, groupby);
* sessionization alone, both ways (the usual hot spot).

It checks that both give the same key figures, then prints wall time, peak RSS
and the ratio reference / ours.

    python benchmarks/bench_measure.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PERIOD = "2024Q4"
SEGMENTS = ["plan", "acquisition_channel", "region", "tenure_band", "new_vs_returning", "value_tier"]


# --- the two implementations (run inside a child process) --------------------------------------


def run_ours(folder: str) -> dict:
    import engagement as eg
    from engagement.measure import measure

    t0 = time.perf_counter()
    ds = eg.load(folder)
    t1 = time.perf_counter()
    table = measure(ds, PERIOD, segments=SEGMENTS, compare=False)
    t2 = time.perf_counter()
    key = table[(table.segment == "all")].set_index("metric")["value"]
    return {"load_s": t1 - t0, "measure_s": t2 - t1, "rows": len(table),
            "check": {k: float(key[k]) for k in ("churn_rate", "aov", "nps", "bounce_rate", "dau")}}


def run_reference(folder: str) -> dict:
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    d = {p.stem: pd.read_parquet(p) for p in Path(folder).glob("*.parquet")}
    s, e = pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")
    c = d["customers"]
    c = c[c.signup_at < e].copy()
    at_start = (c.signup_at < s) & (c.cancelled_at.isna() | (c.cancelled_at >= s))
    facts = pd.DataFrame({"customer_id": c.customer_id, "at_start": at_start.astype(int),
                          "lost": (at_start & (c.cancelled_at < e)).astype(int),
                          "new": (c.signup_at >= s).astype(int)})
    # segments
    long = [pd.DataFrame({"customer_id": c.customer_id, "segment": "all", "segment_value": "all"})]
    for col in ("plan", "acquisition_channel", "region"):
        long.append(pd.DataFrame({"customer_id": c.customer_id, "segment": col, "segment_value": c[col]}))
    band = np.where(c.signup_at >= s, "new this period",
                    np.where(c.signup_at >= s - pd.Timedelta(days=365), "under 1 year", "more than 1 year"))
    long.append(pd.DataFrame({"customer_id": c.customer_id, "segment": "tenure_band", "segment_value": band}))
    long.append(pd.DataFrame({"customer_id": c.customer_id, "segment": "new_vs_returning",
                              "segment_value": np.where(c.signup_at >= s, "new", "returning")}))
    o = d["orders"]
    prior = o[(o.ordered_at >= s - pd.Timedelta(days=365)) & (o.ordered_at < s)].groupby("customer_id").revenue.sum()
    tier = pd.qcut(prior[prior > 0].rank(method="first"), 3, labels=["low", "mid", "high"]).astype(str)
    long.append(pd.DataFrame({"customer_id": c.customer_id, "segment": "value_tier",
                              "segment_value": c.customer_id.map(tier).fillna("none")}))
    long = pd.concat(long, ignore_index=True)
    # orders, surveys, events, email, sessions
    ow = o[(o.ordered_at >= s) & (o.ordered_at < e)]
    facts = facts.merge(ow.groupby("customer_id").agg(n_orders=("revenue", "size"), revenue=("revenue", "sum")),
                        on="customer_id", how="left")
    sv = d["survey_responses"]
    sv = sv[(sv.responded_at >= s) & (sv.responded_at < e) & (sv.survey == "nps")]
    facts = facts.merge(sv.assign(pro=sv.score >= 9, det=sv.score <= 6).groupby("customer_id")
                        .agg(nps_n=("score", "size"), pro=("pro", "sum"), det=("det", "sum")), on="customer_id",
                        how="left")
    ev = d["events"]
    ev = ev[(ev.occurred_at >= s) & (ev.occurred_at < e)]
    facts = facts.merge(ev.assign(day=ev.occurred_at.dt.floor("D")).groupby("customer_id").day.nunique()
                        .rename("active_days"), on="customer_id", how="left")
    em = d["email_events"]
    em = em[(em.occurred_at >= s) & (em.occurred_at < e)]
    facts = facts.merge(em.groupby(["customer_id", "event"]).campaign_id.nunique().unstack(fill_value=0),
                        on="customer_id", how="left")
    t_sess = time.perf_counter()
    ss = pandas_sessions(d["pageviews"], s, e)
    t_sess = time.perf_counter() - t_sess
    cust_ss = ss[ss.customer_id.notna()].groupby("customer_id").agg(sessions=("pages", "size"),
                                                                    bounces=("bounce", "sum"))
    facts = facts.merge(cust_ss, on="customer_id", how="left").fillna(0)
    agg = long.merge(facts, on="customer_id").groupby(["segment", "segment_value"]).sum(numeric_only=True)
    t = d["support_tickets"]
    t = t[(t.opened_at >= s) & (t.opened_at < e)]
    t = t.assign(frt=(t.first_response_at - t.opened_at).dt.total_seconds())
    medians = long.merge(t, on="customer_id").groupby(["segment", "segment_value"]).frt.median()
    t1 = time.perf_counter()
    a = agg.loc[("all", "all")]
    anon = ss[ss.customer_id.isna()]
    return {"total_s": t1 - t0, "sessionize_s": t_sess, "segments": len(agg), "medians": len(medians),
            "check": {"churn_rate": a.lost / a.at_start, "aov": a.revenue / a.n_orders,
                      "nps": 100 * (a.pro - a.det) / a.nps_n,
                      "bounce_rate": (a.bounces + anon.bounce.sum()) / (a.sessions + len(anon)),
                      "dau": a.active_days / (e - s).days}}


def pandas_sessions(pv, s, e):
    import pandas as pd

    pv = pv[(pv.viewed_at >= s) & (pv.viewed_at < e)].sort_values(["visitor_id", "viewed_at"], kind="stable")
    gap = pv.viewed_at.diff()
    new = (pv.visitor_id != pv.visitor_id.shift()) | (gap > pd.Timedelta(minutes=30))
    sid = new.cumsum()
    ss = pv.groupby(sid).agg(customer_id=("customer_id", "first"), pages=("page", "size"))
    return ss.assign(bounce=ss.pages == 1)


def run_sessions_ours(folder: str) -> dict:
    import ibis
    import pandas as pd

    from engagement.measure import sessions

    con = ibis.duckdb.connect()
    t0 = time.perf_counter()
    pv = con.read_parquet(Path(folder) / "pageviews.parquet")
    pv = pv.filter((pv.viewed_at >= pd.Timestamp("2024-10-01")) & (pv.viewed_at < pd.Timestamp("2025-01-01")))
    n = sessions(pv).count().execute()
    return {"sessionize_s": time.perf_counter() - t0, "sessions": int(n)}  # includes reading the file


def run_sessions_reference(folder: str) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    pv = pd.read_parquet(Path(folder) / "pageviews.parquet")
    ss = pandas_sessions(pv, pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01"))
    return {"sessionize_s": time.perf_counter() - t0, "sessions": len(ss)}


# --- the driver ----------------------------------------------------------------------------------


def child(kind: str, folder: str) -> tuple[dict, float, float]:
    """Run one implementation in a fresh process; return its result, wall time and peak RSS in GB."""
    code = (f"import json, resource, sys; sys.path.insert(0, {str(HERE)!r}); import bench_measure as b; "
            f"r = b.run_{kind}({folder!r}); "
            "r['peak_rss_gb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2; "
            "print('RESULT' + json.dumps(r))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    result = json.loads(out.split("RESULT", 1)[1])
    return result, wall, result["peak_rss_gb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    args = ap.parse_args()
    from engagement.data.demo import write_demo

    for n in args.sizes:
        folder = HERE / "out" / f"demo_{n}"
        if not (folder / "ground_truth.json").exists():
            t0 = time.perf_counter()
            write_demo(folder, n, seed=2024)
            print(f"generated {n:,} customers in {time.perf_counter() - t0:.0f} s")
        rows = {p.stem: __import__("pyarrow.parquet").parquet.ParquetFile(p).metadata.num_rows
                for p in folder.glob("*.parquet")}
        print(f"\n== {n:,} customers: {rows.get('events', 0):,} events, {rows.get('pageviews', 0):,} pageviews, "
              f"{sum(rows.values()):,} rows in all")
        ours, ours_wall, ours_rss = child("ours", str(folder))
        ref, ref_wall, ref_rss = child("reference", str(folder))
        s_ours, s_ours_wall, s_ours_rss = child("sessions_ours", str(folder))
        s_ref, s_ref_wall, s_ref_rss = child("sessions_reference", str(folder))
        same = all(abs(ours["check"][k] - ref["check"][k]) <= 1e-9 * max(1, abs(ref["check"][k]))
                   for k in ours["check"])
        print(f"  same key figures (churn, AOV, NPS, bounce, DAU): {same}")
        ours_work = ours["load_s"] + ours["measure_s"]
        print(f"  ours      {ours_wall:7.1f} s wall, {ours_work:.1f} s of work (load+validate {ours['load_s']:.1f} s, "
              f"measure {ours['measure_s']:.1f} s), peak RSS {ours_rss:.2f} GB")
        print(f"  reference {ref_wall:7.1f} s wall, {ref['total_s']:.1f} s of work (pandas, no validation), "
              f"peak RSS {ref_rss:.2f} GB")
        print(f"  ratio reference/ours: wall {ref_wall / ours_wall:.2f}x, work {ref['total_s'] / ours_work:.2f}x, "
              f"peak RSS {ref_rss / ours_rss:.2f}x")
        print(f"  sessionization only (read + sessionize one quarter): ours {s_ours['sessionize_s']:.2f} s "
              f"({s_ours_rss:.2f} GB), pandas {s_ref['sessionize_s']:.2f} s ({s_ref_rss:.2f} GB), ratio "
              f"{s_ref['sessionize_s'] / s_ours['sessionize_s']:.2f}x; sessions {s_ours['sessions']:,} vs "
              f"{s_ref['sessions']:,}")


if __name__ == "__main__":
    main()
