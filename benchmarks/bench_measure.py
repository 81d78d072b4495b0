"""Measurement speed and memory: engagement (Ibis on DuckDB) against a plain pandas reference.

For each size the script generates the demo data once (cached under
``benchmarks/out/``) and then, in one Python process (as the issue asks; pass
``--isolate`` to give each phase its own process instead), runs:

* ``ours cold``: ``engagement.load`` of files it has never seen (full validation,
  and the validated snapshot written) + ``measure`` of one quarter, all default
  segments, no comparison periods;
* ``ours warm``: the same on the same files again, as an analyst's second run or
  the report's next notebook: validation is reused from the snapshot;
* ``reference``: :mod:`reference_pandas`, the same aggregations written the
  straightforward pandas way (read every table, filter, groupby, merge); it
  does no validation;
* sessionization alone, both ways (the usual hot spot).

Every metric value and count of both (793 figures with the default segments)
are compared and must agree to a relative 1e-9. A sampling thread reads the
process's resident memory every 20 ms; each phase reports its peak and the
process's memory when it started (DuckDB's connection is closed between phases
so its memory is returned; pandas' freed memory is not always returned to the
system, which is why the reference runs after ours).

    python benchmarks/bench_measure.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # reference_pandas lives with the tests that check it
PERIOD = "2024Q4"


class PeakRss:
    """Peak resident set size of this process while the ``with`` block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> float:
    """Resident memory of this process in GB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1024 ** 3


# --- the phases ----------------------------------------------------------------------------------


def ours(folder: str, cache: str) -> dict:
    from reference_pandas import SEGMENTS

    import engagement as eg
    from engagement.measure import measure

    t0 = time.perf_counter()
    ds = eg.load(folder, cache=Path(cache))
    t1 = time.perf_counter()
    table = measure(ds, PERIOD, segments=SEGMENTS, compare=False)
    t2 = time.perf_counter()
    reused = ds.reused
    ds.backend.disconnect()
    del ds
    gc.collect()
    return {"load_s": t1 - t0, "measure_s": t2 - t1, "reused": reused, "table": table}


def reference(folder: str) -> dict:
    from reference_pandas import measure_reference, read_tables

    t0 = time.perf_counter()
    d = read_tables(folder)
    t1 = time.perf_counter()
    out = measure_reference(d, PERIOD)
    t2 = time.perf_counter()
    del d
    gc.collect()
    return {"read_s": t1 - t0, "compute_s": t2 - t1, "table": out}


def sessions_ours(folder: str) -> dict:
    import ibis
    import pandas as pd

    from engagement.measure import sessions

    con = ibis.duckdb.connect()
    t0 = time.perf_counter()
    pv = con.read_parquet(Path(folder) / "pageviews.parquet")
    pv = pv.filter((pv.viewed_at >= pd.Timestamp("2024-10-01")) & (pv.viewed_at < pd.Timestamp("2025-01-01")))
    n = int(sessions(pv).count().execute())
    seconds = time.perf_counter() - t0
    con.disconnect()
    return {"seconds": seconds, "sessions": n}  # includes reading the file


def sessions_reference(folder: str) -> dict:
    import pandas as pd
    from reference_pandas import sessions

    t0 = time.perf_counter()
    pv = pd.read_parquet(Path(folder) / "pageviews.parquet")
    pv = pv[(pv.viewed_at >= pd.Timestamp("2024-10-01")) & (pv.viewed_at < pd.Timestamp("2025-01-01"))]
    n = len(sessions(pv))
    return {"seconds": time.perf_counter() - t0, "sessions": n}


PHASES = {"ours": ours, "reference": reference, "sessions_ours": sessions_ours,
          "sessions_reference": sessions_reference}


def run(phase: str, *args: str, isolate: bool) -> dict:
    """Run a phase here (default) or in a fresh process; add its wall time and peak RSS."""
    if not isolate:
        gc.collect()
        t0 = time.perf_counter()
        with PeakRss() as mem:
            result = PHASES[phase](*args)
        return {**result, "wall_s": time.perf_counter() - t0, "rss_start_gb": mem.start, "rss_peak_gb": mem.peak}
    code = (f"import pickle, sys; sys.path.insert(0, {str(HERE)!r}); import bench_measure as b; "
            f"r = b.run({phase!r}, *{args!r}, isolate=False); sys.stdout.buffer.write(pickle.dumps(r))")
    import pickle

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    return pickle.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--isolate", action="store_true", help="run each phase in its own process")
    args = ap.parse_args()
    from reference_pandas import compare

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
              f"{sum(rows.values()):,} rows in all ({'one process per phase' if args.isolate else 'one process'})")
        with tempfile.TemporaryDirectory(prefix="bench-snapshots-") as cache:
            cold = run("ours", str(folder), cache, isolate=args.isolate)
            warm = run("ours", str(folder), cache, isolate=args.isolate)
        s_ours = run("sessions_ours", str(folder), isolate=args.isolate)
        ref = run("reference", str(folder), isolate=args.isolate)
        s_ref = run("sessions_reference", str(folder), isolate=args.isolate)
        assert not cold["reused"] and warm["reused"]

        both = compare(cold["table"], ref["table"])
        matched = both[both["_merge"] == "both"]
        differ = matched[(matched["rel_diff"] > 1e-9) | (matched["n"] != matched["n_ref"])]
        unmatched = int((both["_merge"] != "both").sum())
        same_warm = cold["table"].equals(warm["table"])
        print(f"  figures compared: {len(matched)} (value and n), differing: {len(differ)}, unmatched: {unmatched}, "
              f"max relative difference {matched['rel_diff'].max():.1e}; warm table identical to cold: {same_warm}")
        for _, r in differ.head(10).iterrows():
            print(f"    {r.segment}={r.segment_value} {r.metric}: ours {r.value!r} (n {r.n}), "
                  f"reference {r.value_ref!r} (n {r.n_ref})")

        ref_s = ref["read_s"] + ref["compute_s"]
        lines = [
            ("ours, first load (validate)", cold["load_s"], cold["measure_s"], cold),
            ("ours, snapshot reused", warm["load_s"], warm["measure_s"], warm),
        ]
        print(f"  {'':30s} {'load':>8s} {'measure':>8s} {'total':>8s} {'peak RSS':>9s} {'(at start)':>10s}   "
              "ratio reference/ours: measure only, total")
        for label, load_s, measure_s, r in lines:
            print(f"  {label:30s} {load_s:7.1f}s {measure_s:7.1f}s {load_s + measure_s:7.1f}s "
                  f"{r['rss_peak_gb']:6.2f} GB {r['rss_start_gb']:7.2f} GB   "
                  f"{ref_s / measure_s:5.2f}x, {ref_s / (load_s + measure_s):5.2f}x")
        print(f"  {'pandas reference (no checks)':30s} {ref['read_s']:7.1f}s {ref['compute_s']:7.1f}s {ref_s:7.1f}s "
              f"{ref['rss_peak_gb']:6.2f} GB {ref['rss_start_gb']:7.2f} GB   (load = read the files into pandas)")
        print(f"  sessionization only (read + sessionize one quarter): ours {s_ours['seconds']:.2f} s "
              f"(peak {s_ours['rss_peak_gb']:.2f} GB from {s_ours['rss_start_gb']:.2f}), pandas "
              f"{s_ref['seconds']:.2f} s (peak {s_ref['rss_peak_gb']:.2f} GB from {s_ref['rss_start_gb']:.2f}), "
              f"ratio {s_ref['seconds'] / s_ours['seconds']:.2f}x; sessions {s_ours['sessions']:,} vs "
              f"{s_ref['sessions']:,}")
        summary = {
            "customers": n, "rows": rows, "one_process": not args.isolate, "figures_compared": len(matched),
            "figures_differing": len(differ), "ours_cold": {k: v for k, v in cold.items() if k != "table"},
            "ours_warm": {k: v for k, v in warm.items() if k != "table"},
            "reference": {k: v for k, v in ref.items() if k != "table"},
            "sessions_ours": s_ours, "sessions_reference": s_ref,
        }
        out = HERE / "out" / f"bench_measure_{n}.json"
        out.write_text(json.dumps(summary, indent=1, default=str))
        print(f"  written to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
