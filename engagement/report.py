"""Render the quarterly report: run the notebooks with papermill, merge them into one HTML.

``engagement report --period 2024Q4`` runs every ``notebooks/NN_*.ipynb`` in order
into a staging folder, each with the parameters it declares, and on success
renames the folder to ``reports/<period>/`` holding:

* the executed notebooks;
* ``report.html``: one self-contained page (no code, a table of contents, images
  embedded, no network needed);
* the tables the notebooks wrote (``metrics.csv``, and ``findings.json`` and
  ``action_plan.csv`` once those notebooks exist);
* ``manifest.json``: parameters, data fingerprint, package version, row counts.

The report has one parameter set (:mod:`engagement.parameters`): it is validated
once, before anything runs (unknown names and bad values are refused), and each
notebook gets every parameter it declares. The notebooks hand their tables to
each other through the workspace (:mod:`engagement.workspace`). A failing notebook
stops the run with a non-zero exit, the partial run is kept in
``reports/<period>.failed/`` and the failing notebook and cell are named; an
existing report is only replaced with ``force=True``.
"""

from __future__ import annotations

import importlib
import json
import queue
import re
import shutil
import sys
import threading
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["render_report", "notebook_paths", "refresh_notebooks", "NOTEBOOKS"]

#: The report's notebooks ship inside the package (``notebooks/`` in a checkout links to them).
NOTEBOOKS = Path(str(resources.files("engagement").joinpath("notebooks")))
REMOVE_TAGS = ("parameters", "injected-parameters", "papermill-error-cell-tag", "remove-cell")
WORK = "work"
KERNEL = "python3"
_DAY = timedelta(days=1)


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    """The report's notebooks, in order (``NN_name.ipynb``)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"Parameter {pair!r} must look like name=value.")
        name, raw = pair.split("=", 1)
        name = name.strip()
        if not name.isidentifier():
            raise ValueError(f"Parameter name {name!r} is not a valid name.")
        out[name] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def _skip_iri_checker() -> None:
    """Keep jsonschema from loading its IRI checker in this process, before nbformat or papermill is imported.

    nbformat imports jsonschema, whose format checks import ``rfc3987_syntax`` if it is installed (JupyterLab's
    dependencies install it), and that builds some thirty Lark parsers at import: 1.2 of the 1.6 s papermill took
    to import, on the report's path before the first notebook (python-jsonschema/jsonschema#1428). No notebook
    schema has an IRI, so the runner goes without it; a process that imported jsonschema before keeps what it has.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "cannot be imported"


def _imported(name: str) -> Any:
    """Module ``name`` (papermill, nbformat, ...), imported without jsonschema's IRI checker
    (:func:`_skip_iri_checker`)."""
    _skip_iri_checker()
    return importlib.import_module(name)


def _declared(paths: list[Path]) -> dict[Path, set[str]]:
    """Each notebook's parameter names; refuses a parameters cell papermill cannot fully read.

    papermill skips (with only a log line) an assignment it cannot parse, e.g. one
    whose comment holds an ``=``; the runner would then silently not pass that
    parameter. Every assignment of the cell must be seen.
    """
    nbformat = _imported("nbformat")
    pm = _imported("papermill")

    out = {}
    for p in paths:
        names = set(pm.inspect_notebook(str(p)))
        nb = nbformat.read(p, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        if len(cells) != 1:
            raise ValueError(f"{p.name} must have exactly one cell tagged 'parameters' (has {len(cells)}).")
        assigned = set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=", cells[0].source, flags=re.M))
        if assigned != names:
            raise ValueError(f"{p.name}: papermill cannot read parameter(s) {sorted(assigned - names)}; "
                             "keep '=' out of their comments.")
        out[p] = names
    return out


#: The kernel's own log stays out of the console: ipykernel 7 warns at every start that it "is running over
#: TCP without encryption" (true of every local kernel), and on a loaded machine it can log "KeyboardInterrupt
#: caught in kernel" at shutdown after every cell has run. A failing cell is reported by papermill, not this log.
QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]


def _logged_kernel(log: Path) -> type:
    """A kernel manager class whose kernel writes its process-level stdout and stderr to ``log``.

    What a cell prints reaches the notebook through the kernel's messages; what lands on the kernel process's
    own file descriptors does not, and would otherwise go straight to the console: C libraries' warnings, and
    an occasional ``Assertion failed: pfd.revents & POLLIN (src/signaler.cpp:238)`` from libzmq as the kernel
    exits after its last cell (a known libzmq race at context shutdown; the notebook is complete by then).
    The log is kept with a failed run and named in the error, and removed with the work folder on success.
    The manager remembers the clients it hands out, so that whoever shuts the kernel down closes them too.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        clients: list[Any]

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:  # the child holds its own copy of the descriptor
                await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": out, "stderr": out})

        def client(self, **kw: Any) -> Any:
            kc = super().client(**kw)
            self.clients = [*getattr(self, "clients", []), kc]
            return kc

    return LoggedKernelManager


def notebook_imports(path: Path) -> list[str]:
    """The modules a notebook imports, in order: ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a``
    and ``a.b`` (``b`` may be a module). Cells that are not Python (a magic) are skipped.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> cells = [{"cell_type": "code", "source": "import pandas as pd\\nfrom engagement import catalog"},
    ...          {"cell_type": "code", "source": "%matplotlib inline"}]
    >>> nb = Path(tempfile.mkdtemp()) / "nb.ipynb"
    >>> _ = nb.write_text(json.dumps({"cells": cells}))
    >>> notebook_imports(nb)
    ['pandas', 'engagement', 'engagement.catalog']
    """
    import ast

    modules: list[str] = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules += [node.module, *(f"{node.module}.{a.name}" for a in node.names if a.name != "*")]
    return list(dict.fromkeys(modules))


def _warm_up(modules: list[str]) -> str:
    """Code that imports ``modules`` (skipping a name that is not a module) in a namespace of its own, leaving the
    kernel's user namespace untouched; and what a module names in its ``__warm_up__`` (the modules it imports on
    first use, such as the statistics the findings use, so that importing it stays light where they are not used).

    Examples
    --------
    >>> namespace = {}
    >>> exec(_warm_up(["engagement.plan.findings", "engagement.plan.findings.no_such_name"]), namespace)
    >>> sorted(namespace)  # nothing is left in the namespace it runs in
    ['__builtins__']
    """
    body = ("import importlib\nfor m in modules:\n    try:\n        module = importlib.import_module(m)\n"
            "    except Exception:\n        continue\n    for w in getattr(module, '__warm_up__', ()):\n"
            "        try:\n            importlib.import_module(w)\n        except Exception:\n            pass")
    return f"exec({body!r}, {{'modules': {modules!r}}})"


def _kernel_log(staging: Path, nb: Path) -> Path:
    return staging / WORK / "kernels" / f"{nb.stem}.log"


class _Kernel:
    """A notebook's own kernel, started ahead of its turn, with the notebook's modules already imported.

    Each notebook still gets a fresh kernel of its own (it runs alone in JupyterLab and under nbval just the
    same); the runner starts the next notebook's kernel while the current one runs, and has it import the
    modules that notebook imports, so that the kernel's start and those imports (about three seconds: pandas,
    matplotlib, Ibis, statsmodels) overlap the current notebook's work instead of adding to it. An import
    changes nothing the notebook computes: its cells still run in order in a clean namespace, and the warm-up
    runs silently (no output, no execution count). One difference shows: what a module prints or warns when it
    is first imported is said during the warm-up, so it is not in the notebook.
    """

    def __init__(self, log: Path, cwd: Path, imports: list[str] | None = None) -> None:
        from jupyter_core.utils import run_sync

        self.log = log
        self.km = _logged_kernel(log)(kernel_name=KERNEL)
        self.warmed = threading.Event()
        # what nbclient passes when it starts a kernel itself: no IPython history file in the report folder
        run_sync(self.km.start_kernel)(extra_arguments=[*QUIET_KERNEL, "--HistoryManager.hist_file=:memory:"],
                                       cwd=str(cwd))
        if imports:
            threading.Thread(target=self._warm, args=(imports,), daemon=True).start()
        else:
            self.warmed.set()

    @classmethod
    def of(cls, nb: Path, staging: Path) -> _Kernel:
        """The kernel of notebook ``nb`` in the run folder ``staging``, its log beside the run's work."""
        return cls(_kernel_log(staging, nb), staging, notebook_imports(nb))

    def _warm(self, imports: list[str]) -> None:
        """Import ``imports`` in the kernel once it is ready (a request sent before then can hang ipykernel 7).

        The notebook's cells must come after the imports, not race them, so ``warmed`` is set once the kernel has
        taken the request (it says it is busy with it): requests sent later queue behind it. Until then the
        client stays open, since its sockets close without lingering and would drop a request still queued.
        """
        from jupyter_client.blocking import BlockingKernelClient

        kc = BlockingKernelClient()
        kc.load_connection_info(self.km.get_connection_info())
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            msg_id = kc.execute(_warm_up(imports), silent=True, store_history=False)
            while kc.is_alive():  # the heartbeat: a kernel that dies first is the notebook's to report
                try:
                    msg = kc.get_iopub_msg(timeout=1)
                except queue.Empty:
                    continue
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
                    break
        except RuntimeError:  # the kernel did not come up: the notebook's run says so
            pass
        finally:
            kc.stop_channels()
            self.warmed.set()

    def close(self) -> None:
        """Shut the kernel down (it may have died already) and close every client's channels."""
        from jupyter_core.utils import run_sync

        km = self.km
        try:
            if run_sync(km.is_alive)():
                run_sync(km.shutdown_kernel)(now=False)
        except RuntimeError as err:
            if "No kernel is running" not in str(err):
                raise
        finally:
            run_sync(km.cleanup_resources)()
            for kc in getattr(km, "clients", []):
                kc.stop_channels()


def _log_tail(log: Path, lines: int = 5) -> str:
    """The last few lines of a kernel log, or '' when the kernel wrote nothing."""
    if not log.exists():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:])


def _cell_progress(step: str, total: int) -> Any:
    """An nbclient hook that rewrites one terminal line: ``[3/6] 03_measure: cell 5 of 14``."""

    def hook(cell: Any = None, cell_index: int = 0, execute_reply: Any = None, **_: Any) -> None:
        print(f"\r\x1b[K{step}: cell {cell_index + 1} of {total}", end="", flush=True)

    return hook


def _cell_count(path: Path) -> int:
    """Cells papermill will run: the notebook's own plus the injected parameters cell."""
    return len(_imported("nbformat").read(path, as_version=4).cells) + 1


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _merge_html(executed: list[Path], target: Path, title: str, summary: str = "") -> None:
    """One self-contained HTML page of all notebooks: the executive summary first, then a TOC, no code, images
    embedded, no CDN."""
    nbformat = _imported("nbformat")
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    cells = []
    toc = ["## Contents", ""]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & set(REMOVE_TAGS):
                continue
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    m = re.match(r"^(#{1,2})\s+(.*)$", line)
                    if m:
                        text = m.group(2).strip()
                        anchor = re.sub(r"\s", "-", text)
                        indent = "" if len(m.group(1)) == 1 else "    "
                        toc.append(f"{indent}- [{text}](#{anchor})")
            cells.append(cell)
    merged = nbformat.v4.new_notebook()
    merged.metadata = nbformat.read(executed[0], as_version=4).metadata
    head = [f"# {title}", ""] + ([summary, ""] if summary else [])
    # fixed ids: nbformat gives a new cell a random one, which would make two renders of the same data differ
    merged.cells = [nbformat.v4.new_markdown_cell("\n".join(head), id="report-title"),
                    nbformat.v4.new_markdown_cell("\n".join(toc), id="report-contents"), *cells]
    c = Config()
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.HTMLExporter.mathjax_url = ""
    c.HTMLExporter.require_js_url = ""
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": title}})
    target.write_text(_lock_down(body), encoding="utf-8")


CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; "
       "form-action 'none'")


def _lock_down(page: str) -> str:
    """The report needs no script: drop every ``<script>`` element and forbid scripts by Content-Security-Policy.

    Data-derived text is escaped where it is placed; this is the second line of defence.
    """
    page = re.sub(r"<script\b[^>]*>.*?</script\s*>", "", page, flags=re.S | re.I)
    meta = (f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n' + READABLE_CSS)
    return re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + "\n" + meta, page, count=1, flags=re.I)


#: On a phone (390 px) the page itself never scrolls sideways: wide tables scroll inside their own box and
#: charts shrink to the width of the screen.
READABLE_CSS = """<style>
  .jp-OutputArea-output, .jp-RenderedHTMLCommon { max-width: 100%; overflow-x: auto; }
  .jp-RenderedHTMLCommon table { display: block; max-width: 100%; overflow-x: auto; }
  .jp-RenderedImage img, .jp-RenderedHTMLCommon img { max-width: 100%; height: auto; }
  .jp-Cell, .jp-OutputArea, .jp-OutputArea-child { min-width: 0; max-width: 100%; }
  @media (max-width: 600px) { body { padding: 4px; } .jp-Notebook { padding: 0; } }
</style>"""


def _summary(work: Path, period: str) -> str:
    """The executive summary from the workspace's findings, action plan and data quality ("" without findings)."""
    import pandas as pd

    from engagement.plan.summary import executive_summary

    if not (work / "findings.parquet").exists():
        return ""
    plan = pd.read_parquet(work / "action_plan.parquet") if (work / "action_plan.parquet").exists() else None
    quality = json.loads((work / "data_quality.json").read_text()) if (work / "data_quality.json").exists() else {}
    table = pd.read_parquet(work / "metrics.parquet") if (work / "metrics.parquet").exists() else None
    return executive_summary(pd.read_parquet(work / "findings.parquet"), plan, quality, period, table=table)


def _collect_outputs(work: Path, staging: Path) -> list[str]:
    """Copy the notebooks' tables into the report; CSVs are written spreadsheet-safe (no live formulas)."""
    import pandas as pd

    from engagement.present import write_csv

    written = []
    for table in ("metrics", "action_plan"):
        if (work / f"{table}.parquet").exists():
            write_csv(pd.read_parquet(work / f"{table}.parquet"), staging / f"{table}.csv")
            written.append(f"{table}.csv")
    if (work / "findings.parquet").exists():
        found = pd.read_parquet(work / "findings.parquet")
        (staging / "findings.json").write_text(found.to_json(orient="records", indent=2), encoding="utf-8")
        written.append("findings.json")
    return written


def _environment() -> dict[str, Any]:
    """Python and the version of every package the project depends on (for the manifest)."""
    import platform
    from importlib import metadata

    names = {"engagement"}
    for req in metadata.requires("engagement") or []:
        if "extra ==" not in req:
            names.add(re.split(r"[\s<>=!\[;~]", req, maxsplit=1)[0].lower())
    versions: dict[str, str | None] = {}
    for name in sorted(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "packages": versions}


def _parameters(period: str | None, data: str | None, params: list[str] | None,
                paths: list[Path], mapping: str | None = None,
                engine: str = "duckdb") -> tuple[dict[str, Any], dict[Path, set[str]]]:
    """The report's one parameter set, validated once (every problem named), and each notebook's declared names.

    The data are loaded and checked here too, before any notebook runs: an unusable source, or a period outside
    the data, is refused in seconds. Without ``period`` the latest complete quarter of the data is used
    (``values["period_chosen"]`` says so).
    """
    values = _given(period, data, params, mapping, engine)
    declared = _declared_checked(paths)
    return _in_data(values, period), declared


def _given(period: str | None, data: str | None, params: list[str] | None, mapping: str | None,
           engine: str) -> dict[str, Any]:
    """The parameters as given, validated without reading the data or the notebooks (a period's form included)."""
    from engagement.parameters import PARAMETERS, RUNNER, defaults, validate

    extra = _parse_params(params or [])
    clash = sorted(set(extra) & set(RUNNER))
    if clash:
        raise ValueError(f"{clash} are set by the runner (--period/--data/--mapping/--engine/--out), not -p.")
    unknown = sorted(set(extra) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the report's parameters are "
                         f"{sorted(set(PARAMETERS) - set(RUNNER))}.")
    from engagement.engine import is_uri

    source = None if not data else data if is_uri(data) else str(Path(data).resolve())
    values = {**defaults(), **extra, "data_source": source,
              "mapping": str(Path(mapping).resolve()) if mapping else None, "engine": engine}
    validate({k: v for k, v in values.items() if k != "period"} | ({} if period is None else {"period": period}))
    return values


def _declared_checked(paths: list[Path]) -> dict[Path, set[str]]:
    """Each notebook's declared parameters, all of them report parameters."""
    from engagement.parameters import PARAMETERS

    declared = _declared(paths)
    for nb, names in declared.items():
        strays = sorted(names - set(PARAMETERS))
        if strays:
            raise ValueError(f"{nb.name} declares {strays}, which are not report parameters "
                             "(engagement.parameters).")
    return declared


def _in_data(values: dict[str, Any], period: str | None) -> dict[str, Any]:
    """``values`` with the period resolved against the data (loaded and checked here): the latest complete quarter
    when none was given; a period outside the data is refused."""
    first, last = _data_range(values["data_source"], values["mapping"], values["engine"])
    from engagement.measure.periods import latest_complete_period, parse_period

    chosen = period is None
    label = latest_complete_period(last, fiscal_start_month=values["fiscal_start_month"]).label if period is None \
        else period
    p = parse_period(label, fiscal_start_month=values["fiscal_start_month"])
    if p.end <= first or p.start > last:
        raise ValueError(f"period {p.label} ({p.start.date()} to {(p.end - _DAY).date()}) is outside the data, "
                         f"which runs from {first.date()} to {last.date()}.")
    return {**values, "period": label, "period_chosen": chosen}


def _data_range(source: str | None, mapping: str | None = None, engine: str = "duckdb") -> tuple[Any, Any]:
    """Load (and validate) the data source once in the runner; its first and last timestamps."""
    from engagement.data import ContractError, load
    from engagement.data.mapping import MappingError
    from engagement.engine import is_uri
    from engagement.measure import data_range

    if source is not None and not is_uri(source) and not Path(source).exists():
        raise ValueError(f"the data source {source} does not exist (a folder of Parquet/CSV files or a DuckDB file).")
    try:
        first, last = data_range(load(source, mapping=mapping, engine=engine))
    except ContractError as err:
        raise ValueError(f"the data cannot be used: {err}") from None
    except MappingError as err:
        raise ValueError(f"the mapping cannot be used: {err}") from None
    except ImportError as err:
        raise ValueError(str(err)) from None
    if first is None or last is None:
        raise ValueError("the data has no dated rows (customers.signup_at is empty): there is nothing to report.")
    return first, last


def _keep_failed(staging: Path, failed: Path, log: Path, where: str) -> None:
    """Keep a failed run, and show what its kernel wrote outside the notebook (a crash's last words)."""
    tail = _log_tail(log)
    staging.rename(failed)
    print(f"{where} {failed}.", file=sys.stderr)
    if tail:
        print(f"The kernel's own output ({failed / log.relative_to(staging)}) ends with:\n{tail}", file=sys.stderr)


def _run_notebooks(paths: list[Path], declared: dict[Path, set[str]], values: dict[str, Any], staging: Path,
                   failed: Path, progress: bool, started: list[_Kernel] | None = None) -> list[Path] | None:
    """Execute the notebooks in order into ``staging``; None (after saying why) when one fails."""
    live = progress and sys.stdout.isatty()  # a terminal gets a live "cell n of N" line; logs get one line a step

    closing: list[threading.Thread] = []
    try:
        return _execute(paths, declared, values, staging, failed, live, progress, closing, started)
    finally:
        for thread in closing:
            thread.join()


#: Kernels started ahead of the notebook that runs: the next notebook's, and the one after (a short notebook such as
#: 02 or 05 ends before the next kernel's imports would otherwise be done).
KERNELS_AHEAD = 2


#: What the page after the last notebook needs (the executive summary's modules; nbconvert, 0.5 s), imported by the
#: runner while notebook ``PAGE_IMPORTS_AT`` runs (the third: the first two are short, and their kernels are still
#: importing their own modules then) rather than after the last
PAGE_IMPORTS = ("engagement.plan.summary", "nbconvert")
PAGE_IMPORTS_AT = 2


def _import_quietly(modules: tuple[str, ...]) -> None:
    """Import ``modules`` ahead of their use; one that fails is imported (and fails) again where it is used."""
    for m in modules:
        try:
            _imported(m)
        except Exception:
            pass


def _execute(paths: list[Path], declared: dict[Path, set[str]], values: dict[str, Any], staging: Path,
             failed: Path, live: bool, progress: bool, closing: list[threading.Thread],
             started: list[_Kernel] | None = None) -> list[Path] | None:
    pm = _imported("papermill")

    executed = []
    ahead = list(started or [])  # the kernels of paths[i], paths[i + 1], ... already started, in order

    def start_ahead(i: int) -> bool:
        """Start the kernels of notebooks i to i + KERNELS_AHEAD that are not started yet; False (after saying
        why, and shutting down the others) when one cannot start."""
        while i + len(ahead) < min(len(paths), i + 1 + KERNELS_AHEAD):
            nb = paths[i + len(ahead)]
            try:
                ahead.append(_Kernel.of(nb, staging))
            except Exception as err:
                _close(*ahead, closing=closing)
                print(f"error: {nb.name} could not run: {type(err).__name__}: {err}", file=sys.stderr)
                _keep_failed(staging, failed, _kernel_log(staging, nb), "The partial run is in")
                return False
        return True

    for i, nb in enumerate(paths):
        if not start_ahead(i):
            return None
        if i == min(PAGE_IMPORTS_AT, len(paths) - 1):
            threading.Thread(target=_import_quietly, args=(PAGE_IMPORTS,), daemon=True).start()
        started_at = time.perf_counter()
        step = f"  [{i + 1}/{len(paths)}] {nb.stem}"
        _say(progress, f"{step} ...")
        target_nb = staging / nb.name
        current = ahead.pop(0)
        try:
            current.warmed.wait()  # until its kernel has taken the imports: the cells queue behind them
            pm.execute_notebook(str(nb), str(target_nb), parameters={k: values[k] for k in sorted(declared[nb])},
                                kernel_name=KERNEL, cwd=str(staging), progress_bar=False, log_output=False,
                                km=current.km,
                                on_cell_executed=_cell_progress(step, _cell_count(nb)) if live else None)
        except pm.PapermillExecutionError as err:
            _close(current, *ahead, closing=closing)
            print(f"error: {nb.name} failed at cell {err.exec_count}: {err.ename}: {err.evalue}", file=sys.stderr)
            _keep_failed(staging, failed, current.log, "The partially executed notebooks are in")
            return None
        except Exception as err:  # kernel start or death, I/O: report it and keep the partial run
            _close(current, *ahead, closing=closing)
            print(f"error: {nb.name} could not run: {type(err).__name__}: {err}", file=sys.stderr)
            _keep_failed(staging, failed, current.log, "The partial run is in")
            return None
        except BaseException:  # Ctrl-C: no kernel of ours outlives the run
            _close(current, *ahead, closing=closing)
            raise
        # a graceful shutdown takes about half a second: let it happen while the next notebook runs
        closing.append(threading.Thread(target=current.close, daemon=True))
        closing[-1].start()
        executed.append(target_nb)
        if live:
            print("\r\x1b[K", end="")  # back to the start of the line, and clear it
        _say(progress, f"{step} done in {time.perf_counter() - started_at:.1f} s")
    return executed


def _close(*kernels: _Kernel | None, closing: list[threading.Thread]) -> None:
    """Shut these kernels down and wait for those already closing (before the run folder is renamed)."""
    for k in kernels:
        if k is not None:
            k.close()
    for thread in closing:
        thread.join()


def _exists(target: Path) -> int:
    print(f"error: a report for {target.name} already exists in {target}; pass --force to replace it.",
          file=sys.stderr)
    return 1


def _staging(root: Path, period: str) -> Path:
    """A new, empty run folder for ``period`` (a partial or failed run of it before is removed first)."""
    staging = root / f".{period}.partial"
    for leftover in (staging, root / f"{period}.failed"):
        if leftover.exists():
            shutil.rmtree(leftover)
    (staging / WORK).mkdir(parents=True)
    return staging


def render_report(
    period: str | None,
    data: str | None = None,
    out: str = "reports",
    params: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
    notebooks: list[Path] | None = None,
    mapping: str | None = None,
    engine: str = "duckdb",
) -> int:
    """Render the report for ``period`` (None: the latest complete quarter in the data); return a process exit code
    (0 on success, 1 when a notebook fails, 2 for bad arguments or unusable data, refused before any notebook runs)."""
    from engagement import __version__

    begun = time.perf_counter()
    paths = notebooks if notebooks is not None else notebook_paths()
    if not paths:
        print(f"error: no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 2
    try:
        values = _given(period, data, params, mapping, engine)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = Path(out).resolve()
    started: list[_Kernel] = []
    made_root = not root.exists()
    if period is not None:  # the run folder is known: the first kernels start (and import) while the data are checked
        if (root / period).exists() and not force:
            return _exists(root / period)
        staging = _staging(root, period)
        try:
            for nb in paths[:KERNELS_AHEAD]:
                started.append(_Kernel.of(nb, staging))
        except Exception:  # started again by the run, where a failure is reported with the kernel's log
            pass
    try:
        declared = _declared_checked(paths)
        values = _in_data(values, period)
    except BaseException as err:  # refused (or interrupted) before any notebook ran: no kernel, no folder left
        if period is not None:
            _close(*started, closing=[])
            shutil.rmtree(staging)
            if made_root:
                root.rmdir()
        if not isinstance(err, ValueError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    chosen = values.pop("period_chosen")
    period = str(values["period"])
    if chosen:
        _say(progress, f"No --period given: {period}, the latest complete quarter in the data.")
        if (root / period).exists() and not force:
            return _exists(root / period)
        staging = _staging(root, period)
    target = root / period
    failed = root / f"{period}.failed"
    work = staging / WORK
    values = {**values, "out_dir": str(work), "history_dir": str(root)}
    _say(progress, f"Rendering the {period} report ({len(paths)} notebooks) ...")
    executed = _run_notebooks(paths, declared, values, staging, failed, progress, started)
    if executed is None:
        return 1
    _say(progress, "  building report.html ...")
    title = f"Customer engagement report, {period}" + (" (the latest complete quarter in the data)" if chosen else "")
    _merge_html(executed, staging / "report.html", title, _summary(work, period))
    written = _collect_outputs(work, staging)
    quality = json.loads((work / "data_quality.json").read_text()) if (work / "data_quality.json").exists() else {}
    manifest = {
        "period": period,
        "period_chosen_by": "the latest complete quarter in the data" if chosen else "--period",
        "parameters": {k: v for k, v in values.items() if k not in ("out_dir", "history_dir")},
        "package_version": __version__,
        "notebooks": [p.name for p in executed],
        "outputs": ["report.html", *written],
        "data_fingerprint": quality.get("fingerprint"),
        "row_counts": quality.get("tables", []),
        "environment": _environment(),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(work)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    _say(progress, f"Report written to {target} in {time.perf_counter() - begun:.0f} s "
                   f"(open {target / 'report.html'}).")
    return 0


def refresh_notebooks(paths: list[Path] | None = None) -> int:
    """Re-execute the committed notebooks in place with their default parameters (for nbval)."""
    pm = _imported("papermill")

    for nb in paths or notebook_paths():
        print(f"refreshing {nb.name} ...", flush=True)
        pm.execute_notebook(str(nb), str(nb), kernel_name=KERNEL, cwd=str(nb.parent), progress_bar=False,
                            extra_arguments=QUIET_KERNEL)
        _strip_papermill_metadata(nb)
    return 0


def _strip_papermill_metadata(path: Path) -> None:
    """Drop run timestamps and durations papermill records, so committed notebooks stay stable."""
    nbformat = _imported("nbformat")
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


if __name__ == "__main__":  # python -m engagement.report --refresh-notebooks
    if "--refresh-notebooks" in sys.argv:
        sys.exit(refresh_notebooks())
    sys.exit("usage: python -m engagement.report --refresh-notebooks")
