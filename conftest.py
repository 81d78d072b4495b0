"""pytest configuration shared by the unit tests and the notebook regression tests (nbval)."""

from __future__ import annotations


def pytest_collectstart(collector):
    # nbval compares stderr too; kernel warnings there are not the notebooks' output
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)
