"""The report command: refusals, failure handling and an end-to-end render on the demo data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from engagement.cli import main
from engagement.report import notebook_paths, render_report

ID_PATTERN = re.compile(r"\b[CVA]\d{7}\b")  # demo customer and visitor ids


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    assert main(["report", "--period", "2024Q4", "--out", str(out), "--quiet"]) == 0
    return out / "2024Q4"


def test_report_has_every_section_and_output(rendered):
    names = {p.name for p in rendered.iterdir()}
    assert {"report.html", "metrics.csv", "manifest.json", "findings.json", "action_plan.csv"} <= names
    assert {p.name for p in notebook_paths()} <= names
    html = (rendered / "report.html").read_text()
    for heading in ["1. Define", "2. Select", "3. Measure", "4. Analyse", "5. Interpret", "6. Act",
                    "Data quality", "Headline figures", "Predictive customer lifetime value", "The action plan",
                    "The trend analysis table", "Contents"]:
        assert heading in html, heading
    assert "import engagement" not in html  # code hidden
    assert 'id="1.-Define:-customer-engagement-and-how-we-measure-it"' in html
    ids = set(re.findall(r'id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert len(links) > 20 and [link for link in links if link not in ids] == []  # every TOC entry resolves


def test_report_html_is_self_contained(rendered):
    html = (rendered / "report.html").read_text()
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', html)
    assert html.count("data:image/png;base64") >= 5


def test_no_customer_identifiers_anywhere(rendered):
    for path in rendered.rglob("*"):
        if path.suffix in {".html", ".csv", ".json", ".ipynb"}:
            text = path.read_text()
            if path.suffix == ".ipynb":  # outputs only: the code may name columns but never values
                nb = nbformat.reads(text, as_version=4)
                text = json.dumps([c.get("outputs", []) for c in nb.cells])
            assert not ID_PATTERN.search(text), path.name


def test_manifest_and_metrics(rendered):
    manifest = json.loads((rendered / "manifest.json").read_text())
    assert manifest["period"] == "2024Q4" and manifest["data_fingerprint"]
    assert {r["table"] for r in manifest["row_counts"]} >= {"customers", "orders", "events"}
    metrics = pd.read_csv(rendered / "metrics.csv")
    assert set(metrics.period_role) == {"current", "previous", "year_ago"}
    churn = metrics.query("metric == 'churn_rate' and segment == 'plan' and segment_value == 'basic'")
    by_role = churn.set_index("period_role").value
    assert by_role["current"] > by_role["previous"]  # the planted Q4 churn rise in the basic plan


def test_existing_report_is_not_overwritten(rendered, capsys):
    assert render_report("2024Q4", out=str(rendered.parent), progress=False) == 1
    assert "--force" in capsys.readouterr().err


def test_unknown_parameters_and_bad_period_are_refused_before_running(tmp_path, capsys):
    assert main(["report", "--period", "2024Q4", "--out", str(tmp_path), "-p", "colour=blue", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) ['colour']" in err and "trend_periods" in err
    assert main(["report", "--period", "Q4-2024", "--out", str(tmp_path), "--quiet"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_failing_notebook_keeps_the_partial_run_and_names_the_cell(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    p = nbformat.v4.new_code_cell("period = 'x'\nout_dir = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    folder = tmp_path / "nbs"
    folder.mkdir()
    nbformat.write(nb, folder / "01_fail.ipynb")
    out = tmp_path / "out"
    rc = render_report("2024Q4", out=str(out), progress=False, notebooks=[folder / "01_fail.ipynb"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "01_fail.ipynb failed at cell" in err and "RuntimeError: boom" in err
    assert not (out / "2024Q4").exists() and (out / "2024Q4.failed" / "01_fail.ipynb").exists()


def test_parameters_papermill_cannot_read_are_refused(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    p = nbformat.v4.new_code_cell("period = '2024Q4'  # 1 = one\nout_dir = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p]
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    assert render_report("2024Q4", out=str(tmp_path / "o"), progress=False, notebooks=[tmp_path / "01_x.ipynb"]) == 2
    assert "cannot read parameter(s) ['period']" in capsys.readouterr().err


def test_planted_effects_are_stated_among_the_reports_findings(rendered):
    from tests.test_findings import matches

    found = pd.read_json(rendered / "findings.json", orient="records")
    truth = json.loads((Path(__file__).resolve().parents[1] / "data" / "demo" / "ground_truth.json").read_text())
    assert [e["id"] for e in truth["effects"] if matches(found, e).empty] == []
    html = (rendered / "report.html").read_text()
    assert "Customer churn rate in the basic plan rose" in html
    plan = pd.read_csv(rendered / "action_plan.csv")
    assert len(plan) >= 5 and plan.loc[0, "metric"] == "churn_rate"
