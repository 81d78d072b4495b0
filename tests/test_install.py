"""Installable: the wheel carries the notebooks, playbook and demo data, and renders from any folder."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_renders_the_report_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("engagement-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # the dependencies come from the test environment (already installed from the lock); the package from the
    # wheel alone: a path line in a .pth file does not run the editable install's own .pth finder
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ENGAGEMENT_WORK_DIR")}
    (tmp_path / "home").mkdir()
    env["HOME"] = str(tmp_path / "home")  # a scratch folder, if any, goes under this home, not the checkout
    # nbconvert's templates are data files of the environment the dependencies came from (share/jupyter)
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    where = subprocess.run([python, "-c", "import engagement, engagement.report as r; "
                            "print(engagement.__file__); print(r.NOTEBOOKS)"], cwd=elsewhere, env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    assert all(str(env_dir) in p for p in where), where  # imported from the wheel, not the checkout
    done = subprocess.run([python, "-m", "engagement.cli", "report", "--period", "2024Q4", "--quiet"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr == ""  # --quiet prints errors only; no kernel warnings
    report = elsewhere / "reports" / "2024Q4"
    assert {"report.html", "metrics.csv", "findings.json", "action_plan.csv"} <= {p.name for p in report.iterdir()}
    assert json.loads((report / "manifest.json").read_text())["outputs"][0] == "report.html"
    assert not (ROOT / "reports" / "_work").exists()
