"""BG/NBD fitting speed: ours (pooled, L-BFGS-B) against a straightforward reference.

The reference is the textbook implementation: the same log-likelihood evaluated
customer by customer (no pooling of identical histories), minimised with
Nelder-Mead from the same start, as most tutorials do. Both run here, side by
side, on the same RFM summary; the script prints wall times and their ratio.

With ``--lifetimes-python PATH`` the same RFM summaries are also fitted by lifetimes
(``BetaGeoFitter`` and ``GammaGammaFitter``, customer by customer and on pooled
histories with ``weights``), in a Python of its own: lifetimes 0.11.3 needs pandas < 2
and numpy < 2, which this project's lock does not allow. Make that environment once:

    python3 -m venv /tmp/lt
    /tmp/lt/bin/pip install "lifetimes==0.11.3" "pandas<2" "numpy<1.27" "scipy<1.12"

The summaries go to it as CSV written with 17 significant digits; each fit is timed
in its own process (imports excluded), runs are interleaved with ours (three each,
medians with min-max), and the estimates are checked equal to 6 significant digits.

    python benchmarks/bench_clv.py [--demo-customers N] [--lifetimes-python /tmp/lt/bin/python]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import optimize

from engagement.analysis.clv import BGNBD, GammaGamma
from engagement.data import load_cdnow
from engagement.measure import rfm_summary


def reference_fit(rfm) -> tuple[dict[str, float], float]:
    x, tx, T = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    def negll(logp):
        ll = BGNBD._loglik(np.exp(logp), x, tx, T)
        return -ll.sum()

    res = optimize.minimize(negll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 20000, "fatol": 1e-10})
    return dict(zip(("r", "alpha", "a", "b"), np.exp(res.x), strict=True)), -res.fun


def bench(name: str, rfm, naive: bool) -> None:
    t0 = time.perf_counter()
    ours = BGNBD.fit(rfm)
    t1 = time.perf_counter()
    print(f"{name}: {len(rfm):,} customers")
    print(f"  ours      {t1 - t0:8.3f} s  LL {ours.log_likelihood:,.2f}  (incl. standard errors)")
    if naive:  # the textbook version, a labelled extra: the peers are lifetimes' fits below
        ref_params, ref_ll = reference_fit(rfm)
        t2 = time.perf_counter()
        print(f"  naive Nelder-Mead (extra) {t2 - t1:8.3f} s  LL {ref_ll:,.2f}  ({(t2 - t1) / (t1 - t0):.1f}x ours)")


#: the lifetimes side, run by the other Python: fits and times one model on the CSV it is given
LIFETIMES = r"""
import json, sys, time
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
rfm = pd.read_csv(sys.argv[1])
model, pooled = sys.argv[2], sys.argv[3] == "pooled"
if model == "bgnbd":
    cols = ["frequency", "recency", "T"]
    d = rfm.groupby(cols).size().rename("w").reset_index() if pooled else rfm.assign(w=1)
    t0 = time.perf_counter()
    f = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"], weights=d["w"].to_numpy())
    out = {k: float(f.params_[k]) for k in ("r", "alpha", "a", "b")}
else:
    rep = rfm[(rfm.frequency > 0) & (rfm.monetary_value > 0)]
    d = rep.groupby(["frequency", "monetary_value"]).size().rename("w").reset_index() if pooled else rep.assign(w=1)
    t0 = time.perf_counter()
    f = GammaGammaFitter(penalizer_coef=0.0).fit(d["frequency"], d["monetary_value"], weights=d["w"].to_numpy())
    out = {"p": float(f.params_["p"]), "q": float(f.params_["q"]), "gamma": float(f.params_["v"])}
print(json.dumps({"seconds": time.perf_counter() - t0, "params": out}))
"""


def _lifetimes(python: str, csv: Path, model: str, pooled: bool) -> dict:
    run = subprocess.run([python, "-c", LIFETIMES, str(csv), model, "pooled" if pooled else "each"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"lifetimes ({python}) failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _spread(times: list[float]) -> str:
    return f"{statistics.median(times):7.3f} s ({min(times):.3f}-{max(times):.3f})"


def against_lifetimes(name: str, rfm, python: str, reps: int = 3) -> None:
    """Ours against lifetimes on the same summary, interleaved; estimates equal to 6 significant digits."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "rfm.csv"
        rfm[["frequency", "recency", "T", "monetary_value"]].to_csv(csv, index=False, float_format="%.17g")
        print(f"{name}: {len(rfm):,} customers, against lifetimes (medians of {reps}, min-max)")
        for model, ours_fit in (("bgnbd", BGNBD.fit), ("gammagamma", GammaGamma.fit)):
            times: dict[str, list[float]] = {"ours": [], "lifetimes": [], "lifetimes pooled": []}
            params: dict[str, dict] = {}
            for _ in range(reps):
                t0 = time.perf_counter()
                fitted = ours_fit(rfm)
                times["ours"].append(time.perf_counter() - t0)
                params["ours"] = fitted.params
                for label, pooled in (("lifetimes", False), ("lifetimes pooled", True)):
                    got = _lifetimes(python, csv, model, pooled)
                    times[label].append(got["seconds"])
                    params[label] = got["params"]
            for label, t in times.items():
                ratio = "" if label == "ours" else \
                    f"  its time / ours {statistics.median(t) / statistics.median(times['ours']):5.2f}"
                print(f"  {model:<10} {label:<17} {_spread(t)}{ratio}")
            for label in ("lifetimes", "lifetimes pooled"):
                worst = max(abs(params["ours"][k] - v) / abs(v) for k, v in params[label].items())
                same = "equal to 6 significant digits" if worst < 5e-6 else "DIFFERENT"
                print(f"  {model:<10} estimates vs {label}: {same} (largest relative difference {worst:.1e})")
                if worst >= 5e-6:
                    raise SystemExit(f"{model}: ours {params['ours']} against {label} {params[label]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-customers", type=int, default=0, help="also fit on the demo data at this size")
    ap.add_argument("--lifetimes-python", default="", help="a Python with lifetimes 0.11.3 (see above)")
    ap.add_argument("--naive", action="store_true", help="also the textbook Nelder-Mead fit (slow at scale)")
    args = ap.parse_args()
    master = load_cdnow("master")
    cdnow = rfm_summary(master.orders, calibration_end="1997-09-30")
    bench("CDNOW master", cdnow, args.naive)
    if args.lifetimes_python:
        against_lifetimes("CDNOW master", cdnow, args.lifetimes_python)
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
        bench(f"demo ({args.demo_customers:,})", rfm, args.naive)
        if args.lifetimes_python:
            against_lifetimes(f"demo ({args.demo_customers:,})", rfm, args.lifetimes_python)


if __name__ == "__main__":
    main()
