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

Unknown parameter names are refused before anything runs. A failing notebook
stops the run with a non-zero exit, the partial run is kept in
``reports/<period>.failed/`` and the failing notebook and cell are named; an
existing report is only replaced with ``force=True``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

__all__ = ["render_report", "notebook_paths", "workspace", "REPO_ROOT", "refresh_notebooks"]

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
RUNNER_PARAMETERS = ("period", "data_source", "out_dir", "history_dir")
REMOVE_TAGS = ("parameters", "injected-parameters", "papermill-error-cell-tag", "remove-cell")
WORK = "work"
KERNEL = "python3"


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    """The report's notebooks, in order (``NN_name.ipynb``)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def workspace(out_dir: str | Path | None) -> Path:
    """Where notebooks exchange their tables: ``out_dir``, or ``reports/_work`` when exploring.

    Examples
    --------
    >>> from engagement.report import workspace
    >>> workspace(None).name
    '_work'
    """
    path = Path(out_dir) if out_dir else REPO_ROOT / "reports" / "_work"
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def _declared(paths: list[Path]) -> dict[Path, set[str]]:
    """Each notebook's parameter names; refuses a parameters cell papermill cannot fully read.

    papermill skips (with only a log line) an assignment it cannot parse, e.g. one
    whose comment holds an ``=``; the runner would then silently not pass that
    parameter. Every assignment of the cell must be seen.
    """
    import nbformat
    import papermill as pm

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


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _merge_html(executed: list[Path], target: Path, title: str) -> None:
    """One self-contained HTML page of all notebooks: no code, a TOC, images embedded, no CDN."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    cells = []
    toc = [f"# {title}", "", "## Contents", ""]
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
    merged.cells = [nbformat.v4.new_markdown_cell("\n".join(toc)), *cells]
    c = Config()
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.HTMLExporter.mathjax_url = ""
    c.HTMLExporter.require_js_url = ""
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": title}})
    body = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*></script>', "", body)
    target.write_text(body, encoding="utf-8")


def _collect_outputs(work: Path, staging: Path) -> list[str]:
    import pandas as pd

    written = []
    if (work / "metrics.parquet").exists():
        pd.read_parquet(work / "metrics.parquet").to_csv(staging / "metrics.csv", index=False)
        written.append("metrics.csv")
    for name in ("findings.json", "action_plan.csv"):
        if (work / name).exists():
            shutil.copy(work / name, staging / name)
            written.append(name)
    return written


def render_report(
    period: str,
    data: str | None = None,
    out: str = "reports",
    params: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
    notebooks: list[Path] | None = None,
) -> int:
    """Render the report for ``period``; return a process exit code (0 on success)."""
    import papermill as pm

    from engagement import __version__
    from engagement.measure import parse_period

    try:
        parse_period(period)
        extra = _parse_params(params or [])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = notebooks if notebooks is not None else notebook_paths()
    if not paths:
        print(f"error: no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 2
    try:
        declared = _declared(paths)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    known = set().union(*declared.values())
    clash = sorted(set(extra) & set(RUNNER_PARAMETERS))
    unknown = sorted(set(extra) - known)
    if clash or unknown:
        if unknown:
            print(f"error: unknown parameter(s) {unknown}; the notebooks declare {sorted(known - set(RUNNER_PARAMETERS))}",
                  file=sys.stderr)
        if clash:
            print(f"error: {clash} are set by the runner (--period/--data/--out), not -p", file=sys.stderr)
        return 2
    root = Path(out).resolve()
    target = root / period
    if target.exists() and not force:
        print(f"error: a report for {period} already exists in {target}; pass --force to replace it.",
              file=sys.stderr)
        return 1
    staging = root / f".{period}.partial"
    failed = root / f"{period}.failed"
    for leftover in (staging, failed):
        if leftover.exists():
            shutil.rmtree(leftover)
    work = staging / WORK
    work.mkdir(parents=True)
    source = str(Path(data).resolve()) if data else None
    base = {"period": period, "data_source": source, "out_dir": str(work), "history_dir": str(root), **extra}
    executed = []
    _say(progress, f"Rendering the {period} report ({len(paths)} notebooks) ...")
    for i, nb in enumerate(paths, start=1):
        started = time.perf_counter()
        _say(progress, f"  [{i}/{len(paths)}] {nb.stem} ...")
        target_nb = staging / nb.name
        try:
            pm.execute_notebook(str(nb), str(target_nb), parameters={k: v for k, v in base.items() if k in
                                                                     declared[nb]},
                                kernel_name=KERNEL, cwd=str(staging), progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as err:
            staging.rename(failed)
            print(f"error: {nb.name} failed at cell {err.exec_count}: {err.ename}: {err.evalue}", file=sys.stderr)
            print(f"The partially executed notebooks are in {failed}.", file=sys.stderr)
            return 1
        except Exception as err:  # kernel start, I/O: report it and keep the partial run
            staging.rename(failed)
            print(f"error: {nb.name} could not run: {type(err).__name__}: {err}", file=sys.stderr)
            print(f"The partial run is in {failed}.", file=sys.stderr)
            return 1
        executed.append(target_nb)
        _say(progress, f"  [{i}/{len(paths)}] {nb.stem} done in {time.perf_counter() - started:.1f} s")
    _say(progress, "  building report.html ...")
    _merge_html(executed, staging / "report.html", f"Customer engagement report, {period}")
    written = _collect_outputs(work, staging)
    quality = json.loads((work / "data_quality.json").read_text()) if (work / "data_quality.json").exists() else {}
    manifest = {
        "period": period,
        "parameters": {k: v for k, v in base.items() if k not in ("out_dir", "history_dir")},
        "package_version": __version__,
        "notebooks": [p.name for p in executed],
        "outputs": ["report.html", *written],
        "data_fingerprint": quality.get("fingerprint"),
        "row_counts": quality.get("tables", []),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(work)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    _say(progress, f"Report written to {target}")
    return 0


def refresh_notebooks(paths: list[Path] | None = None) -> int:
    """Re-execute the committed notebooks in place with their default parameters (for nbval)."""
    import papermill as pm

    for nb in paths or notebook_paths():
        print(f"refreshing {nb.name} ...", flush=True)
        pm.execute_notebook(str(nb), str(nb), kernel_name=KERNEL, cwd=str(nb.parent), progress_bar=False)
        _strip_papermill_metadata(nb)
    return 0


def _strip_papermill_metadata(path: Path) -> None:
    """Drop run timestamps and durations papermill records, so committed notebooks stay stable."""
    import nbformat

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
