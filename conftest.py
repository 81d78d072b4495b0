"""pytest configuration shared by the unit tests and the notebook regression tests (nbval)."""

from __future__ import annotations


def pytest_collectstart(collector):
    # nbval compares stderr too; kernel warnings there are not the notebooks' output
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_configure(config):
    # validated snapshots (engagement.data._snapshot) go to a fresh folder per test run, not the user's cache;
    # notebook kernels started by nbval inherit it
    import os
    import tempfile

    os.environ["ENGAGEMENT_CACHE_DIR"] = tempfile.mkdtemp(prefix="engagement-test-cache-")
    # the notebooks' scratch folder when nbval runs them one by one (never the user's own)
    os.environ["ENGAGEMENT_WORK_DIR"] = tempfile.mkdtemp(prefix="engagement-test-work-")
