"""Spark Connect, how a report reaches a cluster: the same validation, rejects and figures as DuckDB's.

A process holds either a classic Spark session or a Connect one, never both, so
these checks run in a child pytest process of their own (``ENGAGEMENT_CONNECT_CHILD``)
against a Connect server started from pyspark's own jars (``local[2]``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

import engagement as eg
from engagement.check import validate_source
from engagement.data.demo import write_demo
from engagement.engine import connect
from engagement.measure.compute import measure

pytestmark = pytest.mark.spark

CHILD = os.environ.get("ENGAGEMENT_CONNECT_CHILD") == "1"
AS_OF = "2025-01-01"


def _helpers():
    sys.path.insert(0, str(Path(__file__).parent))
    import test_spark

    return test_spark


@pytest.mark.skipif(CHILD, reason="the child process runs the checks themselves")
def test_spark_connect_in_its_own_process():
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "spark", "-q", "-p", "no:cacheprovider", __file__],
                         env={**os.environ, "ENGAGEMENT_CONNECT_CHILD": "1"}, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "1 passed, 1 skipped" in run.stdout


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return write_demo(tmp_path_factory.mktemp("connect") / "demo", 300, seed=7)




@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """A Spark Connect server (pyspark's own jars, ``local[2]``) on a free port; its ``sc://`` address."""
    import socket
    import subprocess
    import time

    import pyspark

    home = Path(pyspark.__file__).parent
    jar = next((home / "jars").glob("spark-connect_*.jar"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("connect") / "server.log"
    cmd = [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
           "--master", "local[2]", "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=1",
           "--conf", f"spark.connect.grpc.binding.port={port}", str(jar)]
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "SPARK_HOME": str(home)})
    try:
        deadline = time.monotonic() + 180
        while "Spark Connect server started" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"sc://localhost:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.skipif(not CHILD, reason="runs in the child process")
def test_spark_connect_validates_loads_and_measures_the_same(connect_server, demo_dir, capsys):
    h = _helpers()
    assert validate_source(str(demo_dir), as_json=True, as_of=AS_OF) == 0
    duck_json = capsys.readouterr().out
    assert validate_source(str(demo_dir), as_json=True, as_of=AS_OF, engine=connect_server) == 0
    assert capsys.readouterr().out == duck_json
    remote = connect(connect_server)
    assert type(remote._session).__module__.startswith("pyspark.sql.connect")
    duck = eg.load(h._awkward(), as_of="2024-06-30")
    h._check_rejects(duck, eg.load(h._awkward(), engine=remote, as_of="2024-06-30"))
    keys = ["period_role", "segment", "segment_value", "metric"]
    a = measure(eg.load(demo_dir, as_of=AS_OF, cache=False), "2024Q4", segments=["plan"], compare=False)
    b = measure(eg.load(demo_dir, engine=remote, as_of=AS_OF), "2024Q4", segments=["plan"], compare=False)
    assert {"all", "plan"} <= set(a.segment) and (a.status == "ok").sum() > 50
    h._same(a.sort_values(keys), b.sort_values(keys))
