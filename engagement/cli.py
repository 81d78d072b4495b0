"""The ``engagement`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _engine_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--engine", choices=["duckdb", "spark"], default=None,
                     help="Where the aggregations run: duckdb (embedded, the default) or spark (a local session, "
                     "local[*]; or the cluster of --spark-remote). Needs the spark extra: pip install "
                     "'engagement[spark]'.")
    sub.add_argument("--spark-remote", default=None, metavar="sc://HOST:PORT",
                     help="A Spark Connect server to run on (implies --engine spark); the data paths are then read "
                     "by the cluster (s3a://, abfss://, hdfs://).")


def _engine(args: argparse.Namespace) -> str:
    if args.spark_remote:
        if args.engine == "duckdb":
            raise SystemExit("engagement: --spark-remote runs on Spark; it cannot be combined with --engine duckdb")
        if not str(args.spark_remote).startswith("sc://"):
            raise SystemExit(f"engagement: --spark-remote must be a Spark Connect address sc://HOST:PORT, "
                             f"not {args.spark_remote!r}")
        return str(args.spark_remote)
    return args.engine or "duckdb"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="engagement", description="Customer-engagement metrics and reports.")
    sub = p.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("report", help="Render the quarterly report (six notebooks, HTML, CSVs).")
    rep.add_argument("--period", default=None, help='Report period, e.g. "2024Q4", "2024-11" or "2024" (default: '
                     "the latest complete quarter in the data).")
    rep.add_argument("--data", default=None, help="Data source: a directory of Parquet/CSV files or a DuckDB file "
                     "(default: the embedded demo dataset).")
    rep.add_argument("--mapping", default=None, metavar="FILE", help="A column-mapping YAML file for exports that "
                     "do not carry the contract's names (see engagement.data.mapping).")
    _engine_options(rep)
    rep.add_argument("--out", default="reports", help="Output root; the report goes to OUT/<period>/.")
    rep.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="Notebook parameter (repeatable); unknown names are refused before anything runs.")
    rep.add_argument("--force", action="store_true", help="Overwrite an existing report for the period.")
    rep.add_argument("--quiet", action="store_true", help="No progress display.")

    val = sub.add_parser("validate", help="The data-quality report of a source, without rendering (exit 0 clean, "
                         "1 rows rejected, 2 unusable).")
    val.add_argument("source", nargs="?", default=None, help="Folder of Parquet/CSV files or a DuckDB file "
                     "(default: the embedded demo dataset).")
    val.add_argument("--mapping", default=None, metavar="FILE", help="A column-mapping YAML file (see "
                     "engagement.data.mapping).")
    val.add_argument("--as-of", default=None, metavar="TIME", help="Reject rows dated after this time (default: "
                     "now), e.g. 2024-12-31.")
    _engine_options(val)
    val.add_argument("--json", action="store_true", help="Print the report as JSON.")

    demo = sub.add_parser("demo", help="Write the demo dataset (Parquet + ground_truth.json).")
    demo.add_argument("--out", default="data/demo", help="Output directory.")
    demo.add_argument("--customers", type=int, default=4000, help="Number of customers (default 4000).")
    demo.add_argument("--seed", type=int, default=2024, help="Random seed (default 2024).")
    demo.add_argument("--mode", choices=["planted", "null"], default="planted",
                      help="planted: the documented effects; null: no effects at all.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        from engagement.report import render_report

        return render_report(
            period=args.period, data=args.data, out=args.out, params=args.param,
            force=args.force, progress=not args.quiet, mapping=args.mapping, engine=_engine(args),
        )
    if args.command == "validate":
        from engagement.check import validate_source

        return validate_source(args.source, as_json=args.json, mapping=args.mapping, as_of=args.as_of,
                               engine=_engine(args))
    if args.command == "demo":
        from engagement.data.demo import write_demo

        out = write_demo(args.out, args.customers, seed=args.seed, mode=args.mode)
        print(f"Wrote the {args.mode} demo dataset ({args.customers:,} customers, seed {args.seed}) to {out}.")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
