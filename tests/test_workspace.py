"""The report's one parameter set and the workspace of named artefacts between the notebooks."""

from __future__ import annotations

import ast

import nbformat
import pandas as pd
import papermill as pm
import pytest

from engagement.parameters import PARAMETERS, RUNNER, defaults, validate
from engagement.report import _parameters, notebook_paths, render_report
from engagement.workspace import (
    ARTEFACTS,
    NOTEBOOK_ORDER,
    MissingArtefact,
    StaleArtefact,
    Workspace,
    WorkspaceError,
)


class _Data:
    """What the workspace needs of a Dataset: its fingerprint."""

    def __init__(self, fingerprint: str):
        self._f = fingerprint

    def fingerprint(self) -> str:
        return self._f


# --- one parameter set --------------------------------------------------------------------------


def test_every_notebook_parameter_is_a_report_parameter_with_the_same_default():
    seen: set[str] = set()
    for nb in notebook_paths():
        declared = pm.inspect_notebook(str(nb))
        for name, info in declared.items():
            assert name in PARAMETERS, (nb.name, name)
            assert ast.literal_eval(info["default"]) == PARAMETERS[name].default, (nb.name, name)
            seen.add(name)
    assert seen == set(PARAMETERS)  # and every report parameter reaches some notebook


def test_shared_parameters_reach_every_notebook_that_uses_them():
    declared = {nb.stem: set(pm.inspect_notebook(str(nb))) for nb in notebook_paths()}
    # 05 states the level of the intervals its findings quote
    assert [nb for nb, names in declared.items() if "confidence" in names] == ["03_measure", "04_analyse",
                                                                               "05_interpret"]
    # every notebook that loads the data reads it through the same column mapping, on the same engine
    loads = [nb.stem for nb in notebook_paths()
             if "eg.load(data_source, mapping=mapping, engine=engine)" in nb.read_text()]
    assert [nb for nb, names in declared.items() if {"data_source", "mapping", "engine"} <= names] == loads == [
        "01_define", "02_select", "03_measure", "04_analyse"]
    assert {"fiscal_start_month", "period"} <= declared["03_measure"] & declared["04_analyse"]
    assert "alpha" in declared["04_analyse"] & declared["05_interpret"]  # significance is decided once, in 04


def test_the_runner_validates_the_whole_set_once_and_names_every_problem(tmp_path):
    with pytest.raises(ValueError) as err:
        _parameters("2024Q4", None, ["confidence=95", "objectives=[growth]", "trend_periods=2"], notebook_paths())
    text = str(err.value)
    assert "`confidence` must be a level strictly between 0 and 1" in text
    assert "`objectives` names unknown objective(s) ['growth']" in text
    assert "`trend_periods` must be a whole number from 3 up, got 2" in text
    shop = _shop_folder(tmp_path)
    values, declared = _parameters("2024-02", str(shop), ["alpha=0.01"], notebook_paths())
    assert values["alpha"] == 0.01 and values["period"] == "2024-02" and values["data_source"] == str(shop)
    assert set(values) == set(PARAMETERS) | {"period_chosen"}


def test_runner_parameters_cannot_be_set_with_p(tmp_path, capsys):
    assert render_report("2024Q4", out=str(tmp_path), params=["out_dir=/tmp"], progress=False) == 2
    assert "set by the runner" in capsys.readouterr().err
    assert set(RUNNER) <= set(PARAMETERS)


def test_defaults_are_fresh_copies():
    a = defaults()
    a["objectives"].append("x")
    assert "x" not in defaults()["objectives"] and validate(defaults()) == defaults()


# --- the workspace -------------------------------------------------------------------------------


def test_missing_artefact_names_the_notebook_to_run_first(tmp_path):
    ws = Workspace.open(tmp_path, "05_interpret", alpha=0.05)
    with pytest.raises(MissingArtefact, match="run 04_analyse first"):
        ws.read("changes")
    with pytest.raises(MissingArtefact, match="run 02_select first"):
        ws.read("selection")


def test_artefacts_from_other_data_are_refused(tmp_path):
    Workspace.open(tmp_path, "03_measure", data=_Data("aaaa"), period="2024Q4").write(
        "metrics", pd.DataFrame({"x": [1]}))
    with pytest.raises(StaleArtefact, match="from other data"):
        Workspace.open(tmp_path, "04_analyse", data=_Data("bbbb"), period="2024Q4").read("metrics")
    # a notebook without data of its own carries its inputs' fingerprint forward to what it writes
    Workspace.open(tmp_path, "04_analyse", data=_Data("aaaa"), period="2024Q4").write(
        "changes", pd.DataFrame({"y": [2]}))
    ws = Workspace.open(tmp_path, "05_interpret", period="2024Q4")
    ws.read("changes")
    assert ws.fingerprint == "aaaa"


def test_artefacts_made_with_other_parameters_are_refused(tmp_path):
    Workspace.open(tmp_path, "03_measure", period="2024Q4", confidence=0.95, segments=["plan"]).write(
        "metrics", pd.DataFrame({"x": [1]}))
    with pytest.raises(StaleArtefact, match=r"with period='2024Q4', but this notebook has period='2024Q3'"):
        Workspace.open(tmp_path, "04_analyse", period="2024Q3").read("metrics")
    # a parameter only the writer uses does not matter to the reader
    assert Workspace.open(tmp_path, "04_analyse", period="2024Q4", trend_periods=4).read("metrics").x.tolist() == [1]


def test_opening_a_notebook_removes_what_it_and_later_notebooks_wrote(tmp_path):
    Workspace.open(tmp_path, "02_select").write("selection", {"metrics": ["nps"], "objectives": ["retention"]})
    Workspace.open(tmp_path, "03_measure").write("metrics", pd.DataFrame({"x": [1]}))
    Workspace.open(tmp_path, "05_interpret").write("findings", pd.DataFrame({"x": [1]}))
    Workspace.open(tmp_path, "03_measure")  # a re-run of 03 starts: its and later outputs are gone
    assert not (tmp_path / "metrics.parquet").exists() and not (tmp_path / "findings.parquet").exists()
    assert Workspace.open(tmp_path, "04_analyse").read("selection") == {"metrics": ["nps"], "objectives": ["retention"]}


def test_only_the_owner_writes_and_names_are_checked(tmp_path):
    ws = Workspace.open(tmp_path, "04_analyse")
    with pytest.raises(WorkspaceError, match="written by 03_measure"):
        ws.write("metrics", pd.DataFrame())
    with pytest.raises(ValueError, match="Unknown artefact"):
        ws.read("metricz")
    with pytest.raises(ValueError, match="Unknown notebook"):
        Workspace.open(tmp_path, "07_extra")
    with pytest.raises(ValueError, match="`confidence`"):
        Workspace.open(tmp_path, "04_analyse", confidence=2)


def test_every_artefact_is_written_by_a_report_notebook_that_exists():
    stems = [p.stem for p in notebook_paths()]
    assert stems == list(NOTEBOOK_ORDER)
    for a in ARTEFACTS.values():
        source = "".join(c.source for c in nbformat.read(notebook_paths()[stems.index(a.notebook)], 4).cells)
        assert f'ws.write("{a.name}"' in source, a.name


# --- fail fast, before any kernel starts ----------------------------------------------------------


def _shop_folder(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_own_data import _shop

    for name, frame in _shop().items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    return tmp_path


def test_without_a_period_the_latest_complete_quarter_of_the_data_is_used(tmp_path):
    # the shop's last order is on 2024-03-20: 2024Q1 is not complete, 2023Q4 is
    values, _ = _parameters(None, str(_shop_folder(tmp_path)), [], notebook_paths())
    assert values["period"] == "2023Q4" and values["period_chosen"] is True
    values, _ = _parameters("2024-03", str(tmp_path), [], notebook_paths())
    assert values["period"] == "2024-03" and values["period_chosen"] is False


def test_unusable_data_and_periods_outside_it_are_refused_before_any_notebook_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert render_report("2024Q4", data=str(tmp_path / "nowhere"), out=str(out), progress=False) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "shop").mkdir()
    shop = _shop_folder(tmp_path / "shop")
    assert render_report("2022Q1", data=str(shop), out=str(out), progress=False) == 2
    assert "is outside the data, which runs from 2023-11-01 to 2024-03-20" in capsys.readouterr().err
    assert not out.exists()  # no partial or .failed folder: nothing ran
