#!/usr/bin/env python3
"""Plain task runner: needs only Python 3.11+ (no make, no conda).

    python3 tasks.py report [--period 2024Q4] [engagement report options]
    python3 tasks.py test   [pytest options]
    python3 tasks.py test-spark  # the Spark parity suite: installs the spark extra (requirements-spark.lock) first
    python3 tasks.py lab
    python3 tasks.py notebooks   # re-execute the committed notebooks on the demo data
    python3 tasks.py lock        # add new dependencies of pyproject.toml to the locks (--upgrade: all)

Each task creates or updates the project's virtual environment ``.venv`` first,
installing every package at the version and hash that ``requirements.lock``
pins (so every machine runs the same code), then the project itself; it
re-installs only when ``pyproject.toml`` or the lock changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".engagement-install-stamp"
LOCK = ROOT / "requirements.lock"
SPARK_LOCK = ROOT / "requirements-spark.lock"  # the same pins plus the spark extra (pyspark, Spark Connect's client)
SPARK_STAMP = VENV / ".engagement-spark-stamp"
UV = "uv==0.13.9"  # the resolver that writes the lock (a universal lock with hashes)


def _run(cmd: list[str | Path], **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def ensure_venv() -> None:
    """Create ``.venv`` if needed and install the package with its dev extras."""
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py runs under any python3
        sys.exit(f"engagement needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"Creating the virtual environment {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("Installing engagement and its locked dependencies into .venv (first run takes a couple of minutes) ...",
          flush=True)
    quiet = ["--quiet", "--disable-pip-version-check", "--no-warn-script-location"]
    if _run([PY, "-m", "pip", "install", *quiet, "--require-hashes", "--no-deps", "-r", LOCK]) != 0:
        sys.exit("Installing the locked dependencies into .venv failed (see pip's message above).")
    if _run([PY, "-m", "pip", "install", *quiet, "--no-deps", "-e", "."]) != 0:
        sys.exit("Installing engagement into .venv failed (see pip's message above).")
    if _run([PY, "-m", "pip", "check"], stdout=subprocess.DEVNULL) != 0:
        sys.exit("The installed packages do not satisfy pyproject.toml: run `python3 tasks.py lock`.")
    if _run([PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (engagement)"]) != 0:
        sys.exit("Registering the notebook kernel failed.")
    STAMP.write_text(wanted)


def task_report(args: list[str]) -> int:
    """Render the report; with no arguments, the demo report for 2024Q4 (re-rendered if it exists).

    With arguments (your own --data, --out, ...) an existing report is kept unless you pass --force.
    """
    ensure_venv()
    demo = not args
    if not any(a == "--period" or a.startswith("--period=") for a in args):
        args = ["--period", "2024Q4", *args]
    if demo:
        args.append("--force")  # the demo render is reproducible: re-running the README command refreshes it
    return _run([BIN / "engagement", "report", *args])


def task_test(args: list[str]) -> int:
    ensure_venv()
    rc = _run([BIN / "ruff", "check", "."])
    if rc != 0:
        print("ruff found problems (above).", flush=True)
        return rc
    rc = _run([BIN / "mypy"])  # the package's types ([tool.mypy] in pyproject.toml)
    if rc != 0:
        print("mypy found type errors (above).", flush=True)
        return rc
    return _run([PY, "-m", "pytest", *args])


def ensure_spark() -> None:
    """Install the ``spark`` extra into ``.venv`` from its lock (pyspark is a 434 MB source archive: once)."""
    ensure_venv()
    wanted = hashlib.sha256(SPARK_LOCK.read_bytes()).hexdigest()
    if SPARK_STAMP.exists() and SPARK_STAMP.read_text().strip() == wanted:
        return
    print("Installing the spark extra (pyspark 4.0) into .venv (the first time takes a few minutes) ...", flush=True)
    quiet = ["--quiet", "--disable-pip-version-check", "--no-warn-script-location"]
    if _run([PY, "-m", "pip", "install", *quiet, "--require-hashes", "--no-deps", "-r", SPARK_LOCK]) != 0:
        sys.exit("Installing the spark extra into .venv failed (see pip's message above).")
    if _run([PY, "-m", "pip", "check"], stdout=subprocess.DEVNULL) != 0:
        sys.exit("The installed packages do not satisfy pyproject.toml: run `python3 tasks.py lock`.")
    SPARK_STAMP.write_text(wanted)


def task_test_spark(args: list[str]) -> int:
    """The Spark parity suite (``pytest -m spark``): the same numbers on a local Spark session as on DuckDB."""
    ensure_spark()
    return _run([PY, "-m", "pytest", "-m", "spark", "tests/test_spark.py", "tests/test_spark_connect.py", *args])


def task_lab(args: list[str]) -> int:
    ensure_venv()
    return _run([BIN / "jupyter", "lab", "notebooks", *args])


def task_notebooks(args: list[str]) -> int:
    ensure_venv()
    return _run([PY, "-m", "engagement.report", "--refresh-notebooks", *args])


def task_lock(args: list[str]) -> int:
    """Re-resolve requirements.lock from pyproject.toml: one version of every package for Python 3.11+."""
    ensure_venv()
    if _run([PY, "-m", "pip", "install", "--quiet", UV]) != 0:
        sys.exit(f"Could not install {UV} into .venv.")
    # the pins already in the lock are kept (a new dependency is added at its newest version);
    # `python3 tasks.py lock --upgrade` moves every package to its newest allowed version
    common = ["--universal", "--fork-strategy", "fewest", "--generate-hashes", "--python-version", "3.11",
              "--no-header"]
    rc = _run([BIN / "uv", "pip", "compile", "pyproject.toml", "--extra", "dev", *common, "-o", LOCK, *args])
    if rc != 0:
        return rc
    # the spark lock keeps every pin of the main lock and adds the spark extra's packages
    SPARK_LOCK.write_bytes(LOCK.read_bytes())
    return _run([BIN / "uv", "pip", "compile", "pyproject.toml", "--extra", "dev", "--extra", "spark", *common,
                 "-o", SPARK_LOCK])


TASKS = {"report": task_report, "test": task_test, "test-spark": task_test_spark, "lab": task_lab,
         "notebooks": task_notebooks, "lock": task_lock}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    sys.exit(TASKS[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
