"""Render the quarterly report into ``reports/<period>/``.

This first version renders what exists: the metric catalogue. The papermill
pipeline over notebooks 01-06 replaces it as the notebooks land.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engagement import catalog

__all__ = ["render_report"]


def render_report(
    period: str,
    data: str | None = None,
    out: str = "reports",
    params: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> int:
    """Render the report for ``period``; return a process exit code."""
    target = Path(out) / period
    if target.exists() and any(target.iterdir()) and not force:
        print(f"A report for {period} already exists in {target}; pass --force to overwrite it.", file=sys.stderr)
        return 1
    target.mkdir(parents=True, exist_ok=True)
    frame = catalog.catalog_frame()
    frame.to_csv(target / "catalog.csv", index=False)
    print(f"Wrote the metric catalogue ({len(frame)} metrics) to {target / 'catalog.csv'}.")
    return 0
