"""The workspace: the named artefacts the report's notebooks hand to each other.

Each notebook opens the workspace with the parameters it uses and, if it reads
data, the dataset; it reads and writes only the artefacts of :data:`ARTEFACTS`.
Every artefact is stored with the notebook that wrote it, the fingerprint of the
data it came from and the parameters it was made with. So:

* a missing artefact names the notebook to run first;
* an artefact from other data, or made with a different value of a parameter the
  reader also uses, is refused with both values named (never silently mixed);
* opening a notebook's workspace removes what that notebook and every later one
  wrote before: a notebook that fails half-way leaves nothing older behind for
  the next one to read, and nothing is recomputed with defaults.

Examples
--------
>>> import tempfile, pandas as pd
>>> from engagement.workspace import Workspace
>>> folder = tempfile.mkdtemp()
>>> ws = Workspace.open(folder, "03_measure", period="2024Q4", confidence=0.95)
>>> ws.write("metrics", pd.DataFrame({"metric": ["nps"], "value": [31.0]})).name
'metrics.parquet'
>>> Workspace.open(folder, "04_analyse", period="2024Q4").read("metrics").value.tolist()
[31.0]
>>> Workspace.open(folder, "05_interpret", confidence=0.9).read("metrics")
Traceback (most recent call last):
...
engagement.workspace.StaleArtefact: metrics was made by 03_measure with confidence=0.95, but this notebook has \
confidence=0.9: re-run 03_measure with the same parameters (or run the whole report with `engagement report`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engagement.parameters import validate

__all__ = ["ARTEFACTS", "NOTEBOOK_ORDER", "Artefact", "Workspace", "WorkspaceError", "MissingArtefact",
           "StaleArtefact", "scratch_folder"]

#: The report's notebooks, in the order they run.
NOTEBOOK_ORDER = ("01_define", "02_select", "03_measure", "04_analyse", "05_interpret", "06_action_plan")
#: parameters that locate things rather than change them: never compared
_LOCATORS = ("data_source", "out_dir", "history_dir")


@dataclass(frozen=True)
class Artefact:
    """A named table or document, the notebook that writes it, and how it is stored."""

    name: str
    notebook: str
    format: str  # "parquet" (a DataFrame) or "json" (records or a document)
    description: str

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format}"


ARTEFACTS: dict[str, Artefact] = {a.name: a for a in [
    Artefact("selection", "02_select", "json", "the selected metric ids and the objectives"),
    Artefact("data_quality", "03_measure", "json", "fingerprint, row counts, problems and missing tables"),
    Artefact("metrics", "03_measure", "parquet", "the measure table: current, previous and year-ago periods"),
    Artefact("series", "04_analyse", "parquet", "the measure table over the trend periods"),
    Artefact("forecasts", "04_analyse", "parquet", "next-period forecasts of the selected metrics"),
    Artefact("changes", "04_analyse", "parquet", "change tests against the previous period and a year earlier"),
    Artefact("segments", "04_analyse", "parquet", "segment tests: each segment value against the rest"),
    Artefact("trends", "04_analyse", "parquet", "trend slopes of the series"),
    Artefact("relations", "04_analyse", "parquet", "customer-level rank correlations"),
    Artefact("clv", "04_analyse", "parquet", "predicted CLV per customer (with P(alive) and plan)"),
    Artefact("findings", "05_interpret", "parquet", "the ranked findings (the report exports them as findings.json)"),
    Artefact("action_plan", "06_action_plan", "parquet", "the action plan"),
]}


class WorkspaceError(RuntimeError):
    """An artefact cannot be read as asked."""


class MissingArtefact(WorkspaceError, FileNotFoundError):
    """The artefact has not been written: run its notebook first."""


class StaleArtefact(WorkspaceError):
    """The artefact was made from other data or with other parameters."""


def scratch_folder() -> Path:
    """The workspace of notebooks opened one by one: ``$ENGAGEMENT_WORK_DIR``, else ``engagement/work`` under the
    user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``); never inside the package or the checkout."""
    if os.environ.get("ENGAGEMENT_WORK_DIR"):
        return Path(os.environ["ENGAGEMENT_WORK_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "engagement" / "work"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class Workspace:
    """A folder of named artefacts, opened by one notebook with its parameters (see the module docstring)."""

    def __init__(self, folder: Path, notebook: str, parameters: dict[str, Any], fingerprint: str | None):
        self.folder = folder
        self.notebook = notebook
        self.parameters = parameters
        self.fingerprint = fingerprint

    @classmethod
    def open(cls, out_dir: str | Path | None, notebook: str, *, data: Any = None, **parameters: Any) -> Workspace:
        """Open the workspace ``out_dir`` (None: :func:`scratch_folder`) for ``notebook``.

        ``parameters`` are the report parameters the notebook uses (validated
        here); ``data`` the :class:`~engagement.data.Dataset` it reads, whose
        fingerprint every artefact it reads must carry. The artefacts this
        notebook and the later ones wrote before are removed.
        """
        if notebook not in NOTEBOOK_ORDER:
            raise ValueError(f"Unknown notebook {notebook!r}; the report's notebooks are {list(NOTEBOOK_ORDER)}.")
        validate(parameters)
        folder = Path(out_dir) if out_dir else scratch_folder()
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint = data.fingerprint() if data is not None else None
        ws = cls(folder, notebook, _jsonable(parameters), fingerprint)
        later = NOTEBOOK_ORDER[NOTEBOOK_ORDER.index(notebook):]
        for a in ARTEFACTS.values():
            if a.notebook in later:
                for path in (folder / a.filename, folder / f"{a.name}.meta.json"):
                    path.unlink(missing_ok=True)
        return ws

    def _artefact(self, name: str) -> Artefact:
        try:
            return ARTEFACTS[name]
        except KeyError:
            raise ValueError(f"Unknown artefact {name!r}; the workspace holds {sorted(ARTEFACTS)}.") from None

    def path(self, name: str) -> Path:
        """Where the artefact ``name`` is stored."""
        return self.folder / self._artefact(name).filename

    def write(self, name: str, value: Any) -> Path:
        """Store ``value`` (a DataFrame for parquet artefacts, a JSON-able document for json) with its provenance.

        Only the notebook that owns an artefact writes it.
        """
        a = self._artefact(name)
        if a.notebook != self.notebook:
            raise WorkspaceError(f"{name} is written by {a.notebook}, not by {self.notebook}.")
        target = self.folder / a.filename
        if a.format == "parquet":
            if not isinstance(value, pd.DataFrame):
                raise TypeError(f"{name} is a table: pass a DataFrame, not {type(value).__name__}.")
            value.to_parquet(target, index=False)
        else:
            target.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
        meta = {"artefact": name, "notebook": self.notebook, "fingerprint": self.fingerprint,
                "parameters": {k: v for k, v in self.parameters.items() if k not in _LOCATORS}}
        (self.folder / f"{name}.meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        return target

    def read(self, name: str) -> Any:
        """The artefact ``name``: a DataFrame (parquet) or the stored document (json).

        Raises
        ------
        MissingArtefact
            When it has not been written (names the notebook to run first).
        StaleArtefact
            When it comes from other data, or a parameter both notebooks use differs.
        """
        a = self._artefact(name)
        target, meta_path = self.folder / a.filename, self.folder / f"{name}.meta.json"
        if not target.exists() or not meta_path.exists():
            raise MissingArtefact(f"{name} is missing from the workspace {self.folder}: run {a.notebook} first "
                                  "(the notebooks run in order; `engagement report` runs them all).")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        theirs = meta.get("fingerprint")
        if self.fingerprint is not None and theirs is not None and theirs != self.fingerprint:
            raise StaleArtefact(f"{name} was made by {a.notebook} from other data (fingerprint {theirs}; this "
                                f"notebook's data has {self.fingerprint}): re-run {a.notebook} on this data.")
        if self.fingerprint is None and theirs is not None:
            self.fingerprint = theirs  # a notebook without data of its own carries its inputs' data forward
        for key, mine in self.parameters.items():
            if key in _LOCATORS or key not in meta.get("parameters", {}):
                continue
            if meta["parameters"][key] != mine:
                raise StaleArtefact(
                    f"{name} was made by {a.notebook} with {key}={meta['parameters'][key]!r}, but this notebook has "
                    f"{key}={mine!r}: re-run {a.notebook} with the same parameters (or run the whole report with "
                    "`engagement report`).")
        if a.format == "parquet":
            return pd.read_parquet(target)
        return json.loads(target.read_text(encoding="utf-8"))
