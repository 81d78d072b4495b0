"""The report command: refusals, failure handling and an end-to-end render on the demo data."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from engagement.cli import main
from engagement.report import notebook_imports, notebook_paths, render_report

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


def test_the_page_is_the_same_bytes_every_time(rendered, tmp_path):
    # the two cells the runner adds (title and contents) once had random ids: two renders of one run differed
    from engagement.report import _merge_html

    executed = [rendered / p.name for p in notebook_paths()]
    for name in ("a.html", "b.html"):
        _merge_html(executed, tmp_path / name, "Customer engagement report, 2024Q4", "summary")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_no_customer_identifiers_anywhere(rendered):
    texts = _outputs(rendered)
    assert {"report.html", "metrics.csv", "findings.json", "03_measure.ipynb"} <= set(texts)
    for name, text in texts.items():
        assert not ID_PATTERN.search(text), name


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


def _notebook(path, parameters: str, *cells: str):
    """A notebook at ``path`` with a parameters cell and code cells, for the runner's own tests."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    p = nbformat.v4.new_code_cell(parameters)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


def test_a_failing_notebook_keeps_the_partial_run_and_names_the_cell(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_fail.ipynb", "period = 'x'\nout_dir = None", "x = 1", "raise RuntimeError('boom')")
    out = tmp_path / "out"
    rc = render_report("2024Q4", out=str(out), progress=False, notebooks=[folder / "01_fail.ipynb"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "01_fail.ipynb failed at cell" in err and "RuntimeError: boom" in err
    assert not (out / "2024Q4").exists() and (out / "2024Q4.failed" / "01_fail.ipynb").exists()


def test_what_a_kernel_writes_outside_the_notebook_stays_off_the_console(tmp_path, capfd):
    # a C library writing to the kernel's own stderr (as libzmq's shutdown assertion does) is not the report's output
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_noise.ipynb", "period = 'x'\nout_dir = None",
              "import os\nos.write(2, b'c-level noise\\n')\nos.write(1, b'c-level out\\n')", "print('in the notebook')")
    out = tmp_path / "out"
    assert render_report("2024Q4", out=str(out), progress=False, notebooks=[folder / "01_noise.ipynb"]) == 0
    console = capfd.readouterr()
    assert "c-level" not in console.out + console.err
    assert "in the notebook" in (out / "2024Q4" / "01_noise.ipynb").read_text()
    assert not list((out / "2024Q4").rglob("*.log"))  # the log goes with the work folder


def test_each_notebook_has_its_own_fresh_kernel_and_none_outlives_the_run(tmp_path):
    # the runner starts the next notebook's kernel while the current one runs: each must still be a new process,
    # started in the run folder, that knows nothing of the notebook before, and all of them end with the run
    folder = tmp_path / "nbs"
    folder.mkdir()
    for i in (1, 2, 3):
        _notebook(folder / f"0{i}_k.ipynb", "period = 'x'\nout_dir = None",
                  "import os, pathlib\nleft = 'mark' in globals()\nmark = 1\n"
                  f"pathlib.Path('pid_{i}').write_text(f'{{os.getpid()}} {{left}} {{os.getcwd()}}')")
    out = tmp_path / "out"
    paths = sorted(folder.glob("*.ipynb"))
    assert render_report("2024Q4", out=str(out), progress=False, notebooks=paths) == 0
    seen = [(out / "2024Q4" / f"pid_{i}").read_text().split(" ", 2) for i in (1, 2, 3)]
    pids = {int(pid) for pid, _, _ in seen}
    assert len(pids) == 3 and {left for _, left, _ in seen} == {"False"}
    assert {Path(cwd).name for _, _, cwd in seen} == {".2024Q4.partial"}  # the staging folder, renamed after
    assert not _alive(list(pids))


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()
            and "zombie" not in Path(f"/proc/{pid}/status").read_text()]


def _recorded_kernels(monkeypatch) -> list[int]:
    """The process ids of the kernels the runner starts from now on (the list fills as they start)."""
    import engagement.report as report

    pids: list[int] = []

    class Recorded(report._Kernel):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            pids.append(self.km.provisioner.process.pid)

    monkeypatch.setattr(report, "_Kernel", Recorded)
    return pids


def test_an_interrupted_run_leaves_no_kernel_running(tmp_path, monkeypatch):
    # Ctrl-C while the first notebook runs: its kernel and those already started ahead of it are all shut down
    import papermill as pm

    import engagement.report as report

    folder = tmp_path / "nbs"
    folder.mkdir()
    paths = [_notebook(folder / f"0{i}_k.ipynb", "period = 'x'\nout_dir = None", "x = 1") for i in (1, 2, 3, 4)]
    pids = _recorded_kernels(monkeypatch)

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(pm, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_report("2024Q4", out=str(tmp_path / "out"), progress=False, notebooks=paths)
    # the first notebook's kernel and the KERNELS_AHEAD started ahead of it; the last was never started
    assert len(pids) == 1 + report.KERNELS_AHEAD == 3
    assert not _alive(pids)


def test_kernels_started_while_the_data_are_checked_end_with_a_refusal(tmp_path, monkeypatch, capsys):
    # with --period given, the first kernels start before the data are checked; a period outside the data is still
    # refused (exit 2), and neither a kernel nor a folder is left behind
    import engagement.report as report

    pids = _recorded_kernels(monkeypatch)
    assert render_report("1990Q1", out=str(tmp_path), progress=False) == 2
    assert "period 1990Q1 (1990-01-01 to 1990-03-31) is outside the data" in capsys.readouterr().err
    assert len(pids) == report.KERNELS_AHEAD and not _alive(pids)
    assert list(tmp_path.iterdir()) == []


def test_a_kernel_started_ahead_has_the_notebooks_modules_and_nothing_else(tmp_path):
    # the warm-up imports what the notebook imports (so its first cell need not), silently: no name in the
    # notebook's namespace, no output, and the notebook's cells are still counted from 1
    folder = tmp_path / "nbs"
    folder.mkdir()
    paths = [_notebook(folder / "01_first.ipynb", "period = 'x'\nout_dir = None", "x = 1"),
             _notebook(folder / "02_second.ipynb", "period = 'x'\nout_dir = None",
                       "import sys\nalready = 'xml.dom.minidom' in sys.modules and 'tomllib' in sys.modules\n"
                       "names = sorted(k for k in globals() if not k.startswith('_') and k not in "
                       "('In', 'Out', 'get_ipython', 'exit', 'quit', 'open', 'sys', 'period', 'out_dir', 'already'))\n"
                       "print(already, names)",
                       "import xml.dom.minidom\nfrom os import sep, path\nfrom tomllib import loads")]
    out = tmp_path / "out"
    assert render_report("2024Q4", out=str(out), progress=False, notebooks=paths) == 0
    nb = nbformat.read(out / "2024Q4" / "02_second.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4]  # the injected parameters cell first
    assert [o.get("text") for o in code[2].outputs] == ["True []\n"]
    assert notebook_imports(paths[1]) == ["sys", "xml.dom.minidom", "os", "os.sep", "os.path", "tomllib",
                                          "tomllib.loads"]


def test_a_notebook_waits_for_its_kernels_warm_up(tmp_path, monkeypatch):
    # on a loaded machine the warm-up's request can be sent after the notebook has started (CI, stop 28): the
    # notebook then raced its own imports. Here the request is held back five seconds, longer than papermill
    # takes to send the first cell; the notebook still runs after the imports, with nothing of them in its names
    import engagement.report as report

    made = report._warm_up
    monkeypatch.setattr(report, "_warm_up", lambda modules: (time.sleep(5), made(modules))[1])
    folder = tmp_path / "nbs"
    folder.mkdir()
    path = _notebook(folder / "01_only.ipynb", "period = 'x'\nout_dir = None",
                     "import sys\nprint('xml.dom.minidom' in sys.modules, 'minidom' in globals())",
                     "import xml.dom.minidom")
    out = tmp_path / "out"
    assert render_report("2024Q4", out=str(out), progress=False, notebooks=[path]) == 0
    nb = nbformat.read(out / "2024Q4" / "01_only.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [o.get("text") for o in code[2].outputs] == ["True False\n"]


def test_a_kernel_that_dies_is_named_with_its_last_words(tmp_path, capfd):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_dies.ipynb", "period = 'x'\nout_dir = None",
              "import os\nos.write(2, b'last words before the crash\\n')\nos.abort()")
    out = tmp_path / "out"
    assert render_report("2024Q4", out=str(out), progress=False, notebooks=[folder / "01_dies.ipynb"]) == 1
    err = capfd.readouterr().err
    assert "01_dies.ipynb could not run: DeadKernelError" in err
    log = out / "2024Q4.failed" / "work" / "kernels" / "01_dies.log"
    assert f"The kernel's own output ({log}) ends with:\nlast words before the crash" in err
    assert log.read_text().splitlines()[0] == "last words before the crash"


def test_parameters_papermill_cannot_read_are_refused(tmp_path, capsys):
    nb = _notebook(tmp_path / "01_x.ipynb", "period = '2024Q4'  # 1 = one\nout_dir = None")
    assert render_report("2024Q4", out=str(tmp_path / "o"), progress=False, notebooks=[nb]) == 2
    assert "cannot read parameter(s) ['period']" in capsys.readouterr().err


def test_a_notebook_declaring_an_unknown_parameter_is_refused(tmp_path, capsys):
    nb = _notebook(tmp_path / "01_x.ipynb", "period = '2024Q4'\ncolour = 'blue'")
    assert render_report("2024Q4", out=str(tmp_path / "o"), progress=False, notebooks=[nb]) == 2
    assert "01_x.ipynb declares ['colour'], which are not report parameters" in capsys.readouterr().err


def test_planted_effects_are_stated_among_the_reports_findings(rendered):
    from tests.test_findings import matches

    found = pd.read_json(rendered / "findings.json", orient="records")
    truth = json.loads((Path(__file__).resolve().parents[1] / "data" / "demo" / "ground_truth.json").read_text())
    assert [e["id"] for e in truth["effects"] if matches(found, e).empty] == []
    html = (rendered / "report.html").read_text()
    assert "Customer churn rate in the basic plan rose" in html
    plan = pd.read_csv(rendered / "action_plan.csv")
    assert len(plan) >= 5 and plan.loc[0, "metric"] == "churn_rate"


# --- safe to share ---------------------------------------------------------------------------------------------

HOSTILE = [
    '<img src=x onerror=alert(1)>',
    '[click](javascript:alert(1))',
    '=HYPERLINK("http://x.example","y")',
    '@cmd',
    '<script>alert(2)</script>',
    '+1-2',
    '**bold** <a href="javascript:alert(3)">a</a>',
]


def _hostile(values: pd.Series) -> pd.Series:
    """Each distinct label gets a payload appended (distinct labels stay distinct)."""
    labels = sorted(values.dropna().unique())
    mapping = {v: f"{v} {HOSTILE[i % len(HOSTILE)]}" if i % 2 else f"{HOSTILE[i % len(HOSTILE)]}{v}"
               for i, v in enumerate(labels)}
    return values.map(mapping)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    from engagement.data.load import default_demo_path

    tables = {p.stem: pd.read_parquet(p) for p in default_demo_path().glob("*.parquet")}
    c = tables["customers"]
    channel = dict(zip(sorted(c.acquisition_channel.unique()), _hostile(pd.Series(sorted(c.acquisition_channel.unique()))),
                       strict=True))
    # and a plan whose label matplotlib would typeset as mathematics (a parse error stopped the charts' cells)
    plan = _hostile(c.plan).map(lambda v: f"{v} $\\frac$ $x^2$" if "standard" in v else v)
    c = c.assign(plan=plan, region=_hostile(c.region), acquisition_channel=c.acquisition_channel.map(channel),
                 email=[f"person{i}@example.org" for i in range(len(c))])
    tables["customers"] = c
    tables["marketing_spend"] = tables["marketing_spend"].assign(
        channel=tables["marketing_spend"].channel.map(lambda v: channel.get(v, v)))
    tables["social_posts"] = tables["social_posts"].assign(platform=_hostile(tables["social_posts"].platform))
    tables["email_events"] = tables["email_events"].assign(campaign_id=_hostile(tables["email_events"].campaign_id))
    tables["events"] = tables["events"].assign(feature=_hostile(tables["events"].feature))
    tables["support_tickets"] = tables["support_tickets"].assign(channel=_hostile(tables["support_tickets"].channel))
    tables["survey_responses"] = tables["survey_responses"].assign(
        touchpoint=_hostile(tables["survey_responses"].touchpoint))
    o = tables["orders"]
    bad = o.head(3).assign(order_id=["X1", "X2", "X3"], customer_id=["C9999991", "C9999992", c.customer_id.iloc[5]],
                           revenue=[10.0, 12.0, -5.0])
    tables["orders"] = pd.concat([o, bad], ignore_index=True)
    folder = tmp_path_factory.mktemp("hostile_data")
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    out = tmp_path_factory.mktemp("hostile_reports")
    # a confidence level other than the default, so that the test below sees every interval honour it
    assert main(["report", "--period", "2024Q4", "--data", str(folder), "--out", str(out), "--quiet",
                 "-p", "confidence=0.9"]) == 0
    return out / "2024Q4", tables


def _outputs(folder: Path) -> dict[str, str]:
    texts = {}
    for path in folder.rglob("*"):
        if path.suffix in {".html", ".csv", ".json", ".ipynb"}:
            text = path.read_text()
            if path.suffix == ".ipynb":  # outputs only: the code may name columns but never values
                nb = nbformat.reads(text, as_version=4)
                text = json.dumps([c.get("outputs", []) for c in nb.cells])
            texts[path.name] = text
    return texts


def test_hostile_labels_never_become_live_markup(hostile):
    folder, _ = hostile
    html = (folder / "report.html").read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"<img\b[^>]*onerror", html, flags=re.I)
    assert not re.search(r"""href=["']?\s*javascript:""", html, flags=re.I)
    assert not re.search(r"<a\b[^>]*>click</a>", html)  # the Markdown link stayed text
    assert "<strong>bold</strong>" not in html  # Markdown emphasis from a label stayed text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the labels are shown, as text
    assert "$\\frac$ $x^2$" in html.replace("\\$", "$")
    for name in sorted(folder.glob("*.ipynb")):  # every cell ran, the charts of the plans included
        cells = nbformat.read(name, as_version=4).cells
        assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"], name
    assert 'http-equiv="Content-Security-Policy"' in html and "script-src" not in html  # default-src 'none'


def test_csv_outputs_neutralise_formulas_and_keep_numbers(hostile):
    folder, _ = hostile
    for name in ("metrics.csv", "action_plan.csv"):
        frame = pd.read_csv(folder / name)
        for col in frame.columns:
            if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
                starts = frame[col].dropna().astype(str).str[:1]
                assert not starts.isin(["=", "+", "-", "@", "\t", "\r"]).any(), (name, col)
    metrics = pd.read_csv(folder / "metrics.csv")
    assert pd.api.types.is_float_dtype(metrics["value"])
    assert (metrics.segment_value.astype(str).str.startswith("'=HYPERLINK")).any()
    raw = (folder / "metrics.csv").read_text()
    assert '"=HYPERLINK' not in raw and '"@cmd' not in raw


def test_one_confidence_level_is_honoured_everywhere(hostile):
    """Rendered with ``-p confidence=0.9``: no text, table or chart says 95%, and the 90% level is stated."""
    folder, _ = hostile
    texts = _outputs(folder)
    html = texts["report.html"]
    assert "90%" in html
    for name, text in texts.items():
        assert "95%" not in text and "95 %" not in text, name
    json_findings = json.loads((folder / "findings.json").read_text())
    assert all("95%" not in json.dumps(f) for f in json_findings)


def test_no_identifier_or_email_in_any_output_even_with_rejected_rows(hostile):
    folder, tables = hostile
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sum(r["rows_rejected"] for r in manifest["row_counts"]) == 3  # the planted bad orders were rejected
    for name, text in _outputs(folder).items():
        assert not ID_PATTERN.search(text), name
        assert "@example.org" not in text, name
        assert "C9999991" not in text and "X1" not in re.findall(r"\bX\d\b", text), name


def test_manifest_records_the_environment(rendered):
    env = json.loads((rendered / "manifest.json").read_text())["environment"]
    from importlib import metadata

    assert env["packages"]["pandas"] == metadata.version("pandas")
    assert env["packages"]["duckdb"] == metadata.version("duckdb") and env["python"].count(".") == 2


# --- a real browser --------------------------------------------------------------------------------------------

def _browser():
    from tests.browser import Browser, chromium_path

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return Browser()


def test_the_browser_check_sees_overflow_requests_and_broken_images(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><head><meta name="viewport" content="width=device-width"></head><body>'
                    '<div style="width:2000px">wide</div><img src="missing.png">'
                    '<img src="https://example.invalid/x.png"><script>console.error("boom")</script></body></html>')
    with _browser() as browser:
        r = browser.check(page.as_uri(), 390, tmp_path / "bad.png")
    assert r.page_width >= 2000 and r.broken_images == 2 and r.images == 2
    assert any(u.startswith("https://example.invalid") for u in r.requests)
    assert any("boom" in m for m in r.console)


def test_report_in_headless_chromium_offline(rendered, tmp_path):
    url = (rendered / "report.html").as_uri()
    with _browser() as browser:
        checks = [browser.check(url, width, tmp_path / f"report_{width}px.png") for width in (1280, 390)]
    for r in checks:
        assert r.console == [], (r.width, r.console)
        assert {u.split(":", 1)[0] for u in r.requests} <= {"file", "data"}, r.requests
        assert [u for u in r.requests if u.startswith("file:")] == [url]  # nothing beyond the file itself
        assert r.images >= 5 and r.broken_images == 0
        assert r.page_width <= r.width, f"the page scrolls sideways at {r.width} px ({r.page_width} px wide)"
        assert r.screenshot.stat().st_size > 10_000
    print(f"screenshots: {[str(r.screenshot) for r in checks]}")


def test_live_progress_rewrites_one_cleared_line(capsys):
    from engagement.report import _cell_count, _cell_progress, notebook_paths

    nb = notebook_paths()[0]
    hook = _cell_progress("  [1/6] 01_define", _cell_count(nb))
    hook(cell=None, cell_index=2, execute_reply=None)
    import nbformat as nbf

    total = len(nbf.read(nb, as_version=4).cells) + 1  # papermill injects the parameters cell
    assert capsys.readouterr().out == f"\r\x1b[K  [1/6] 01_define: cell 3 of {total}"


def test_no_text_is_cut_short(rendered):
    """pandas cuts a table cell at 50 characters with "..." unless told not to: no sentence, action or
    conclusion of the report loses its end."""
    html = (rendered / "report.html").read_text()
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S))
    cut = [text[max(m.start() - 60, 0):m.end()] for m in re.finditer(r"\.\.\.|…|&hellip;", text)]
    assert cut == []


def test_the_first_screen_is_the_answer(rendered):
    """Before the table of contents: the top findings with the money at stake, the headline action, the data."""
    html = (rendered / "report.html").read_text()
    first = html[: html.index('id="Contents"')]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", first))
    assert "The answer for 2024Q4" in text and "What matters most" in text and "at stake in what got worse" in text
    found = json.loads((rendered / "findings.json").read_text())
    top = sorted(found, key=lambda f: f["rank"])[:5]
    assert 3 <= len(top) and all(f["sentence"][:40].replace("$", "") in text.replace("$", "") for f in top[:3])
    assert "Customer churn rate" in text and "The headline action" in text and "What the data covered" in text
    # what the period's figures rest on, from the period's own counts
    metrics = pd.read_csv(rendered / "metrics.csv")
    now = metrics[(metrics.period_role == "current") & (metrics.segment == "all")].set_index("metric")
    assert (f"in 2024Q4, {now.loc['active_customers', 'value']:,.0f} customers "
            f"({now.loc['churn_rate', 'denominator']:,.0f} at its start") in text
    assert f"{now.loc['orders', 'value']:,.0f} orders" in text
    # the money at stake counts each effect once: the overall findings', not their segments' again
    stake = sum(f["impact"] or 0 for f in found if f["direction"] == "worse" and f["segment"] == "all")
    assert f"${stake:,.0f}"[:4] in text and "at stake in what got worse for all customers" in text
    assert len(found) <= 30  # one finding per effect: the demo plants 12


@pytest.mark.slow
def test_progress_judges_the_earlier_reports_targets_and_never_its_own(rendered, tmp_path):
    import shutil

    out = tmp_path / "reports"
    shutil.copytree(rendered, out / "2024Q4")  # an earlier render of this very period: re-rendered with --force,
    # it must not be judged against its own plan
    assert main(["report", "--period", "2024Q3", "--out", str(out), "--quiet"]) == 0
    assert main(["report", "--period", "2024Q4", "--out", str(out), "--quiet", "--force"]) == 0
    plan = pd.read_csv(out / "2024Q3" / "action_plan.csv")
    targets = plan[plan.target_value.notna()]
    nb = nbformat.read(out / "2024Q4" / "06_action_plan.ipynb", as_version=4)
    said = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "No earlier report" not in said
    judged = re.search(r"Targets of the plan before met: 2024Q4: (\d+)% of (\d+)\.", said)
    assert judged, said[:2000]
    assert int(judged.group(2)) == len(targets.drop_duplicates(["metric", "segment", "segment_value"]))
    assert "2024Q4: " in said and "2025" not in said
