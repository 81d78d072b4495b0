"""Project-level checks: dependency lists agree, the catalogue is complete."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import engagement as eg
from engagement import catalog

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"python-duckdb": "duckdb", "ibis-framework-core": "ibis-framework"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_runtime = {_name(r) for r in project["dependencies"]}
    pip_dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {
        CONDA_TO_PYPI.get(_name(d), _name(d))
        for d in env["dependencies"]
        if isinstance(d, str) and _name(d) not in {"python", "pip"}
    }
    assert pip_runtime - conda == set(), "runtime dependencies missing from environment.yml"
    assert conda - pip_runtime - pip_dev == set(), "environment.yml lists packages pyproject does not"
    assert {"pandas", "numpy", "scipy", "statsmodels", "seaborn", "matplotlib", "jupyterlab", "papermill",
            "nbval", "ipykernel", "pyarrow", "duckdb"} <= pip_runtime


def test_catalog_functions_exist_and_ids_are_unique():
    ids = [s.id for s in catalog.CATALOG.values()]
    assert len(ids) == len(set(ids))
    for spec in catalog.CATALOG.values():
        assert callable(getattr(eg, spec.function)), spec.id
        assert spec.unit in {"fraction", "points", "seconds", "currency", "ratio", "count", "score"}
        assert spec.definition and spec.formula and spec.latex and spec.needs
        if spec.benchmark:
            assert spec.benchmark_source, f"{spec.id}: a benchmark needs its source"


def test_every_seed_metric_is_covered():
    seeds = {
        "nps", "csat", "ces", "churn_rate", "retention_rate", "clv", "aov", "cac", "clv_cac_ratio",
        "purchase_frequency", "engagement_rate", "engagement_score", "dau", "mau", "stickiness",
        "first_week_engagement", "product_usage_rate", "website_visits", "page_views", "pages_per_session",
        "average_session_duration", "bounce_rate", "conversion_rate", "click_through_rate", "email_open_rate",
        "email_click_rate", "unsubscribe_rate", "social_engagement_rate", "follower_growth_rate",
        "first_response_time", "resolution_time", "referral_rate", "review_rating",
    }
    assert seeds <= set(catalog.CATALOG)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["python3 tasks.py report", "python3 tasks.py test"]
    assert "python3 tasks.py test" in (ROOT / ".ci" / "run").read_text()
    # and the test command type-checks the package before the tests run
    tasks = (ROOT / "tasks.py").read_text()
    assert tasks.index('"mypy"') < tasks.index('"pytest"') and "[tool.mypy]" in (ROOT / "pyproject.toml").read_text()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_the_lock_pins_every_dependency_with_hashes_and_environment_yml_matches_it():
    from packaging.requirements import Requirement

    text = (ROOT / "requirements.lock").read_text()
    pins = _lock()
    entries = re.findall(r"^[A-Za-z0-9_.\-]+==[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, flags=re.M)
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, flags=re.M)) > 100  # every pin has hashes
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        r = Requirement(req)
        assert r.name.lower() in pins, f"{r.name} is not in requirements.lock: run `python3 tasks.py lock`"
        assert r.specifier.contains(pins[r.name.lower()]), f"the lock's {r.name} {pins[r.name.lower()]} breaks {req}"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    for dep in env["dependencies"]:
        if isinstance(dep, str) and _name(dep) not in {"python", "pip"}:
            name = CONDA_TO_PYPI.get(_name(dep), _name(dep))
            assert dep.split("==", 1)[1].split()[0] == pins[name], f"environment.yml {dep} differs from the lock"


def test_the_spark_lock_keeps_every_pin_and_adds_the_spark_extra_and_ci_runs_it():
    from packaging.requirements import Requirement

    text = (ROOT / "requirements-spark.lock").read_text()
    spark = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if m:
            spark[m.group(1).lower()] = m.group(2)
    pins = _lock()
    assert {k: spark.get(k) for k in pins} == pins  # the same versions as the main lock
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spark"]
    for req in extra:
        r = Requirement(req)
        assert r.specifier.contains(spark[r.name.lower()])
    assert {"py4j", "grpcio", "grpcio-status", "googleapis-common-protos"} <= set(spark) - set(pins)
    entries = re.findall(r"^[A-Za-z0-9_.\-]+==[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, flags=re.M)
    assert len(entries) == len(spark)
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("\npython3 tasks.py test\n") < ci.index("\npython3 tasks.py test-spark\n")
    assert "-m 'not spark'" in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "addopts"]


def test_the_command_line_and_loading_data_do_not_load_the_statistics():
    # scipy and statsmodels cost about a second and a half of every start; the command line and loading data (01)
    # do not need them, and the metric functions load them on first use
    import subprocess
    import sys

    code = ("import sys, engagement as eg, engagement.cli, engagement.catalog, engagement.present, engagement.workspace\n"
            "from engagement.data import CONTRACT, load\n"
            "print(sorted(m for m in ('scipy', 'statsmodels') if m in sys.modules))\n"
            "print(eg.nps([10, 9, 3, 8]).value, eg.churn_rate(10, 100).value)\n"
            "print(sorted(m for m in ('scipy', 'statsmodels') if m in sys.modules))\n"
            # the report's warm-up imports the submodule engagement.plan.findings by name; the function of the
            # same name must still be what the package gives
            "import importlib; importlib.import_module('engagement.plan.findings')\n"
            "from engagement.plan import findings\n"
            "print(callable(findings))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:4] == ["[]", "25.0 0.1", "['scipy', 'statsmodels']", "True"]


def test_the_report_runner_checks_its_parameters_without_the_statistics_or_the_iri_checker():
    # before the first notebook the runner checks the parameters and reads the notebooks' parameter cells; the
    # statistics (scipy, statsmodels: 1.3 s of imports) and jsonschema's IRI checker (rfc3987_syntax builds some
    # thirty Lark parsers at import: 1.2 s) were on that path, ahead of every notebook
    import subprocess
    import sys

    code = ("import sys\n"
            "from engagement import report\n"
            "values = report._given('2024Q4', None, None, None, 'duckdb')\n"
            "declared = report._declared_checked(report.notebook_paths())\n"
            "print(sorted(m for m in ('scipy', 'statsmodels', 'rfc3987_syntax', 'lark') if sys.modules.get(m)))\n"
            "print('papermill' in sys.modules, 'jsonschema' in sys.modules, len(declared))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "True True 6"]


def test_the_warm_up_imports_what_a_notebook_will_need_and_no_more():
    # 02 (planning) imports engagement.plan but not the statistics; 05 (findings) uses them on first use, and its
    # kernel imports them ahead (findings' __warm_up__): 05 took 3.0 s instead of 1.0 s while it imported them
    # itself, 02 2.3 s instead of 1.0 s while its warm-up imported them for nothing
    import subprocess
    import sys

    from engagement.report import notebook_imports, notebook_paths

    for stem, expected in (("02_select", "[]"), ("05_interpret", "['engagement.analysis.segments', 'statsmodels']")):
        path = next(p for p in notebook_paths() if p.stem == stem)
        code = ("import sys\nfrom engagement.report import _warm_up\n"
                f"exec(_warm_up({notebook_imports(path)!r}))\n"
                "print(sorted(m for m in ('statsmodels', 'engagement.analysis.segments') if m in sys.modules))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == expected, stem
