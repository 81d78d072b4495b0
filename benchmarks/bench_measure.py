"""Measurement speed and memory against the strongest peers, every figure checked equal.

For each size the script generates the demo data once (cached under ``benchmarks/out/``) and runs, each phase in a
process of its own (so that its peak resident memory is its own), ``--runs`` rounds interleaved:

* ``ours, warm``: ``engagement.load`` of files whose validation outcome is in the snapshot cache (an analyst's
  second run, the report's next notebook) + ``measure`` of one quarter, all default segments, no comparisons;
* ``pandas, competent``: :func:`reference_pandas.measure_reference` on
  :func:`reference_pandas.read_tables_competent`: only the columns needed, the period's rows (pyarrow filters),
  categorical segments, the as-of time from the Parquet statistics; the same figures, no validation;
* ``ours, three tables`` and ``Polars lazy``: the three heaviest metric families (customer flow, product activity,
  web sessions: :data:`peer_polars.FAMILIES`) for all segments, on a folder with only customers, events and
  pageviews; ours also computes first-week engagement from them;
* ``ours, cold``: the first load of files never seen (full validation, snapshot written) + ``measure``;
* with ``--naive``, a labelled extra: the straightforward pandas version (every table read whole).

Every figure's value and count is compared with ours (relative 1e-9, counts equal). Times are medians with the
min-max of the rounds; a sampling thread reads each process's resident memory every 20 ms.

    python benchmarks/bench_measure.py --sizes 100000 1000000 --runs 3

Polars is not a project dependency: ``pip install polars==1.44.2`` first (the Polars phases are skipped without it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import statistics
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


# --- the phases (each returns its figures and timings) -------------------------------------------------------


def ours(folder: str, cache: str, segments: str) -> dict:
    import scipy.stats  # noqa: F401  # imported by engagement's intervals when first used: before the clock, as
    import statsmodels.stats.proportion  # noqa: F401  # reference_pandas imports scipy.stats with itself

    import engagement as eg
    from engagement.measure import measure

    t0 = time.perf_counter()
    ds = eg.load(folder, cache=Path(cache))
    t1 = time.perf_counter()
    table = measure(ds, PERIOD, segments=json.loads(segments), compare=False)
    t2 = time.perf_counter()
    reused = ds.reused
    ds.backend.disconnect()
    return {"load_s": t1 - t0, "measure_s": t2 - t1, "reused": reused, "table": table}


def pandas_competent(folder: str) -> dict:
    from reference_pandas import measure_reference, read_tables_competent

    t0 = time.perf_counter()
    tables, as_of = read_tables_competent(folder, PERIOD)
    t1 = time.perf_counter()
    out = measure_reference(tables, PERIOD, as_of=as_of)
    return {"load_s": t1 - t0, "measure_s": time.perf_counter() - t1, "table": out}


def pandas_naive(folder: str) -> dict:
    from reference_pandas import measure_reference, read_tables

    t0 = time.perf_counter()
    tables = read_tables(folder)
    t1 = time.perf_counter()
    out = measure_reference(tables, PERIOD)
    return {"load_s": t1 - t0, "measure_s": time.perf_counter() - t1, "table": out}


def polars_lazy(folder: str) -> dict:
    from peer_polars import measure_polars

    t0 = time.perf_counter()
    out = measure_polars(folder, PERIOD)
    return {"load_s": 0.0, "measure_s": time.perf_counter() - t0, "table": out}  # the scans are in the plan


PHASES = {"ours": ours, "pandas_competent": pandas_competent, "pandas_naive": pandas_naive,
          "polars_lazy": polars_lazy}


def run_here(phase: str, *args: str) -> dict:
    gc.collect()
    t0 = time.perf_counter()
    with PeakRss() as mem:
        result = PHASES[phase](*args)
    return {**result, "wall_s": time.perf_counter() - t0, "rss_peak_gb": mem.peak, "rss_start_gb": mem.start}


def run(phase: str, *args: str) -> dict:
    """Run a phase in a fresh process; its figures, times and peak memory."""
    code = (f"import pickle, sys; sys.path.insert(0, {str(HERE)!r}); import bench_measure as b; "
            f"r = b.run_here({phase!r}, *{args!r}); sys.stdout.buffer.write(pickle.dumps(r))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
    if done.returncode:
        sys.exit(f"{phase} failed:\n{done.stderr.decode()[-3000:]}")
    return pickle.loads(done.stdout)


def check(label: str, mine, theirs, metrics: list[str] | None = None) -> int:
    """Compare every figure (value to 1e-9 relative, and n) of ``theirs`` with ours; print and return the count."""
    from reference_pandas import compare

    if metrics is not None:
        mine = mine[mine.metric.isin(metrics)]
    both = compare(mine, theirs)
    matched = both[both["_merge"] == "both"]
    differ = matched[(matched["rel_diff"] > 1e-9) | (matched["n"] != matched["n_ref"])]
    unmatched = both[both["_merge"] != "both"]
    print(f"  {label}: {len(matched)} figures compared (value and n), {len(differ)} differ, "
          f"{len(unmatched)} unmatched; largest relative difference {matched['rel_diff'].max():.1e}")
    for _, r in differ.head(10).iterrows():
        print(f"    {r.segment}={r.segment_value} {r.metric}: ours {r.value!r} (n {r.n}), "
              f"theirs {r.value_ref!r} (n {r.n_ref})")
    for _, r in unmatched.head(10).iterrows():
        print(f"    {r.segment}={r.segment_value} {r.metric}: only in {'ours' if r._merge == 'left_only' else 'theirs'}")
    if len(differ) or len(unmatched):
        sys.exit(f"{label}: the figures are not the same; no timing is reported for different work.")
    return len(matched)


def spread(values: list[float], unit: str = "s", digits: int = 1) -> str:
    """Median (min-max)."""
    med = statistics.median(values)
    return f"{med:.{digits}f} {unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratio(times: dict[str, list[dict]], theirs: str, mine: str) -> str:
    """Their time over ours (load and measure), round by round: median (min-max)."""
    def total(label: str) -> list[float]:
        return [r["load_s"] + r["measure_s"] for r in times[label]]

    return spread([t / m for t, m in zip(total(theirs), total(mine), strict=True)], "x", 2)


def three_tables(folder: Path) -> Path:
    """A folder holding only customers, events and pageviews of ``folder`` (links, not copies)."""
    from peer_polars import TABLES

    out = folder.parent / f"{folder.name}_three_tables"
    out.mkdir(exist_ok=True)
    for t in TABLES:
        link = out / f"{t}.parquet"
        if not link.exists():
            os.symlink((folder / f"{t}.parquet").resolve(), link)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds (medians with min-max)")
    ap.add_argument("--naive", action="store_true", help="also the straightforward pandas version")
    args = ap.parse_args()
    import pyarrow.parquet as pq
    from reference_pandas import SEGMENTS

    from engagement.data.demo import write_demo

    try:
        import polars  # noqa: F401
        from peer_polars import FAMILIES
        from peer_polars import SEGMENTS as SEGMENTS_3
        has_polars = True
    except ImportError:
        print("Polars is not installed (pip install polars==1.44.2): the Polars phases are skipped.")
        has_polars = False

    for n in args.sizes:
        folder = HERE / "out" / f"demo_{n}"
        if not (folder / "ground_truth.json").exists():
            t0 = time.perf_counter()
            write_demo(folder, n, seed=2024)
            print(f"generated {n:,} customers in {time.perf_counter() - t0:.0f} s")
        rows = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet")}
        print(f"\n== {n:,} customers: {rows.get('events', 0):,} events, {rows.get('pageviews', 0):,} pageviews, "
              f"{sum(rows.values()):,} rows in all; {args.runs} interleaved rounds, a process per phase")
        three = three_tables(folder)
        times: dict[str, list[dict]] = {}
        with tempfile.TemporaryDirectory(prefix="bench-snapshots-") as warm_cache:
            # validate once, so that the warm phases reuse the snapshot
            run("ours", str(folder), warm_cache, json.dumps(SEGMENTS))
            if has_polars:
                run("ours", str(three), warm_cache, json.dumps(SEGMENTS_3))
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="bench-cold-") as cold_cache:
                    times.setdefault("ours, cold", []).append(run("ours", str(folder), cold_cache,
                                                                 json.dumps(SEGMENTS)))
                times.setdefault("ours, warm", []).append(run("ours", str(folder), warm_cache, json.dumps(SEGMENTS)))
                times.setdefault("pandas, competent", []).append(run("pandas_competent", str(folder)))
                if has_polars:
                    times.setdefault("ours, three tables", []).append(
                        run("ours", str(three), warm_cache, json.dumps(SEGMENTS_3)))
                    times.setdefault("Polars lazy, three tables", []).append(run("polars_lazy", str(three)))
                if args.naive:
                    times.setdefault("pandas, naive (extra)", []).append(run("pandas_naive", str(folder)))
        assert not any(r["reused"] for r in times["ours, cold"]) and all(r["reused"] for r in times["ours, warm"])
        mine = times["ours, warm"][0]["table"]
        print("  every figure checked:")
        compared = {"pandas, competent": check("pandas, competent", mine, times["pandas, competent"][0]["table"])}
        for r in times["ours, cold"] + times["ours, warm"][1:]:
            assert r["table"].equals(mine), "ours gave different tables in different runs"
        if has_polars:
            mine3 = times["ours, three tables"][0]["table"]
            compared["Polars lazy, three tables"] = check("Polars lazy, three tables", mine3,
                                                          times["Polars lazy, three tables"][0]["table"], FAMILIES)
        if args.naive:
            compared["pandas, naive (extra)"] = check("pandas, naive (extra)", mine,
                                                      times["pandas, naive (extra)"][0]["table"])
        print(f"  {'':28s} {'load':>18s} {'measure':>18s} {'in all':>18s} {'peak memory':>20s}")
        for label, rs in times.items():
            print(f"  {label:28s} {spread([r['load_s'] for r in rs]):>18s} {spread([r['measure_s'] for r in rs]):>18s} "
                  f"{spread([r['load_s'] + r['measure_s'] for r in rs]):>18s} "
                  f"{spread([r['rss_peak_gb'] for r in rs], 'GB', 2):>20s}")

        print("  ratios, their time / ours, round by round (above 1: ours is faster):")
        print(f"    pandas, competent / ours, warm: {ratio(times, 'pandas, competent', 'ours, warm')}")
        if has_polars:
            print(f"    Polars lazy / ours, three tables: {ratio(times, 'Polars lazy, three tables', 'ours, three tables')}")
        if args.naive:
            print(f"    pandas, naive / ours, warm: {ratio(times, 'pandas, naive (extra)', 'ours, warm')}")
        print(f"    ours, cold / ours, warm (the first load's validation): {ratio(times, 'ours, cold', 'ours, warm')}")
        summary = {"customers": n, "rows": rows, "runs": args.runs, "figures_compared": compared,
                   "phases": {label: [{k: v for k, v in r.items() if k != "table"} for r in rs]
                              for label, rs in times.items()}}
        out = HERE / "out" / f"bench_measure_{n}.json"
        out.write_text(json.dumps(summary, indent=1, default=str))
        print(f"  written to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
