"""The demo report's wall time: ``engagement report`` against papermill run notebook by notebook.

The reference is what papermill does on its own (``papermill.execute_notebook`` for each notebook in turn, each
starting its kernel when its turn comes, with the same parameters and run folder). Ours is the
``engagement report`` command: the same notebooks, each still in a fresh kernel of its own, but the next kernels
started, and their modules imported, while the current notebook runs and while the data are checked.

Each run is a process of its own (``engagement report`` as a user types it, the reference as
``python bench_report.py --reference FOLDER``), and the two alternate (``--runs`` each). The script prints the
wall time of each, medians with min-max, their ratio, and where our time goes: the setup before the first notebook,
each notebook (from the runner's own "done in" lines), and the HTML page and exit after the last. Both renders
are checked to give the same ``metrics.csv``.

    python benchmarks/bench_report.py [--runs 3] [--period 2024Q4]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def reference(out: Path, period: str) -> None:
    """Render the notebooks with papermill alone (the run folder, parameters and CSV written as ours does)."""
    import papermill as pm

    from engagement.report import KERNEL, WORK, _collect_outputs, _parameters, notebook_paths

    paths = notebook_paths()
    values, declared = _parameters(period, None, None, paths)
    values.pop("period_chosen")
    staging = out / period
    work = staging / WORK
    work.mkdir(parents=True)
    values = {**values, "out_dir": str(work), "history_dir": str(out)}
    for nb in paths:
        pm.execute_notebook(str(nb), str(staging / nb.name), parameters={k: values[k] for k in sorted(declared[nb])},
                            kernel_name=KERNEL, cwd=str(staging), progress_bar=False, log_output=False)
    _collect_outputs(work, staging)


def _timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--period", default="2024Q4")
    ap.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference is not None:
        reference(args.reference, args.period)
        return
    engagement = str(Path(sys.executable).with_name("engagement"))
    ours: list[float] = []
    theirs: list[float] = []
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            out_ref, out_ours = Path(tmp) / f"ref{run}", Path(tmp) / f"ours{run}"
            seconds, _ = _timed([sys.executable, __file__, "--reference", str(out_ref), "--period", args.period])
            theirs.append(seconds)
            seconds, log = _timed([engagement, "report", "--period", args.period, "--out", str(out_ours)])
            ours.append(seconds)
            done = {m[1]: float(m[2]) for m in re.finditer(r"\] (\S+) done in ([\d.]+) s", log)}
            for name, value in done.items():
                steps.setdefault(name, []).append(value)
            steps.setdefault("setup, page and exit", []).append(seconds - sum(done.values()))
            same = (out_ref / args.period / "metrics.csv").read_bytes() == \
                (out_ours / args.period / "metrics.csv").read_bytes()
            print(f"run {run + 1}: papermill alone {theirs[-1]:.1f} s, engagement report {ours[-1]:.1f} s, "
                  f"metrics.csv {'identical' if same else 'DIFFERENT'}", flush=True)
            if not same:
                sys.exit("the two renders differ")
    print(f"\nDemo report {args.period}, {args.runs} interleaved runs, wall time of the whole command "
          "(medians, min-max):")
    print(f"  papermill notebook by notebook  {_spread(theirs)}")
    print(f"  engagement report               {_spread(ours)}")
    ratios = [t / o for t, o in zip(theirs, ours, strict=True)]
    print(f"  ratio (papermill / ours)        {statistics.median(ratios):6.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f})")
    print("\nWhere our time goes:")
    for name, values in steps.items():
        print(f"  {name:<22} {_spread(values)}")


if __name__ == "__main__":
    main()
