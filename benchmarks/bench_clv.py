"""BG/NBD fitting speed: ours (pooled, L-BFGS-B) against a straightforward reference.

The reference is the textbook implementation: the same log-likelihood evaluated
customer by customer (no pooling of identical histories), minimised with
Nelder-Mead from the same start, as most tutorials do. Both run here, side by
side, on the same RFM summary; the script prints wall times and their ratio.

    python benchmarks/bench_clv.py [--demo-customers N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import optimize

from engagement.analysis.clv import BGNBD
from engagement.data import load_cdnow
from engagement.measure import rfm_summary


def reference_fit(rfm) -> tuple[dict[str, float], float]:
    x, tx, T = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    def negll(logp):
        ll = BGNBD._loglik(np.exp(logp), x, tx, T)
        return -ll.sum()

    res = optimize.minimize(negll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 20000, "fatol": 1e-10})
    return dict(zip(("r", "alpha", "a", "b"), np.exp(res.x), strict=True)), -res.fun


def bench(name: str, rfm) -> None:
    t0 = time.perf_counter()
    ours = BGNBD.fit(rfm)
    t1 = time.perf_counter()
    ref_params, ref_ll = reference_fit(rfm)
    t2 = time.perf_counter()
    print(f"{name}: {len(rfm):,} customers")
    print(f"  ours      {t1 - t0:8.3f} s  LL {ours.log_likelihood:,.2f}  (incl. standard errors)")
    print(f"  reference {t2 - t1:8.3f} s  LL {ref_ll:,.2f}")
    print(f"  speed-up  {(t2 - t1) / (t1 - t0):8.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-customers", type=int, default=0, help="also fit on the demo data at this size")
    args = ap.parse_args()
    master = load_cdnow("master")
    bench("CDNOW master", rfm_summary(master.orders, calibration_end="1997-09-30"))
    if args.demo_customers:
        import ibis

        from engagement.data.demo import write_demo

        folder = Path(__file__).resolve().parent / "out" / f"demo_{args.demo_customers}"
        if not (folder / "ground_truth.json").exists():
            write_demo(folder, args.demo_customers, seed=2024)
        orders = ibis.duckdb.connect().read_parquet(folder / "orders.parquet")
        t0 = time.perf_counter()
        rfm = rfm_summary(orders, calibration_end="2024-12-31")
        print(f"RFM summary of {len(rfm):,} customers from {orders.count().execute():,} orders in the engine: "
              f"{time.perf_counter() - t0:.1f} s")
        bench(f"demo ({args.demo_customers:,})", rfm)


if __name__ == "__main__":
    main()
