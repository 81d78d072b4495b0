"""The same load and measurement on embedded DuckDB and on a local Spark session, side by side.

For each size the demo data are written once as Parquet (under ``benchmarks/out/``),
then, in interleaved rounds, each engine loads and validates them (no snapshot
reuse: ``cache=False``) and measures one quarter with every default segment and
both comparison periods. Every figure and count of the two must agree (values and
intervals to a relative 1e-12, counts exactly) or the script stops. It prints the
medians, min-max, and Spark's time as a ratio of DuckDB's; the Spark session's
start is reported on its own (once per process, as in a notebook).

Needs the ``spark`` extra (``python3 tasks.py test-spark`` installs it, or
``pip install 'engagement[spark]'``) and Java 17+.

    python benchmarks/bench_spark.py --sizes 2000 20000 --rounds 3 --master 'local[2]'

What it shows on 2 cores: Spark's fixed cost per query (planning, a job per
aggregate) dominates at these sizes, so DuckDB is many times faster on one machine;
Spark is for data that no longer fits one, where its cluster does the scanning.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _demo(n: int) -> Path:
    from engagement.data.demo import write_demo

    out = HERE / "out" / f"demo_{n}"
    if not (out / "customers.parquet").exists():
        write_demo(out, n, seed=2024)
    return out


def _run(folder: Path, engine, period: str):
    import engagement as eg
    from engagement.measure import measure

    t0 = time.perf_counter()
    ds = eg.load(folder, engine=engine, cache=False, as_of="2025-01-01")
    t1 = time.perf_counter()
    table = measure(ds, period)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, ds.report, table


def _same(a, b) -> int:
    import pandas as pd

    keys = ["period_role", "segment", "segment_value", "metric"]
    a, b = a.sort_values(keys, ignore_index=True), b.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-12, atol=0)
    return int(a.value.notna().sum())


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.1f} s ({min(xs):.1f}-{max(xs):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--period", default="2024Q4")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()

    os.environ["ENGAGEMENT_SPARK_MASTER"] = args.master
    from engagement.engine import connect

    t0 = time.perf_counter()
    spark = connect("spark")
    print(f"Spark session ({args.master}) started in {time.perf_counter() - t0:.1f} s", flush=True)
    for n in args.sizes:
        folder = _demo(n)
        times: dict[str, dict[str, list[float]]] = {"duckdb": {"load": [], "measure": []},
                                                    "spark": {"load": [], "measure": []}}
        figures = 0
        for _ in range(args.rounds):  # interleaved: each round runs both engines
            d_load, d_measure, d_report, d_table = _run(folder, "duckdb", args.period)
            s_load, s_measure, s_report, s_table = _run(folder, spark, args.period)
            if d_report.to_dict("records") != s_report.to_dict("records"):
                sys.exit("the two engines' validation reports differ")
            figures = _same(d_table, s_table)
            for engine, (lo, me) in {"duckdb": (d_load, d_measure), "spark": (s_load, s_measure)}.items():
                times[engine]["load"].append(lo)
                times[engine]["measure"].append(me)
        rows = int(d_report.rows_read.sum())
        print(f"\n{n:,} customers ({rows:,} rows), {args.rounds} interleaved rounds, {figures:,} figures equal:")
        for phase in ("load", "measure"):
            d, s = times["duckdb"][phase], times["spark"][phase]
            print(f"  {phase:<8} duckdb {_fmt(d)}   spark {_fmt(s)}   spark/duckdb "
                  f"{statistics.median(s) / statistics.median(d):5.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
