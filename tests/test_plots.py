"""The plot helpers draw what their data say: positions, interval lengths, labels with units, colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import pytest

from engagement.plots import (
    plot_comparison,
    plot_grid,
    plot_segment_differences,
    plot_trend,
)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "metric": "churn_rate", "segment": "plan", "segment_value": ["basic", "premium", "basic", "premium"],
        "period_role": ["current", "current", "previous", "previous"],
        "period": ["2024Q4", "2024Q4", "2024Q3", "2024Q3"],
        "value": [0.09, 0.04, 0.06, 0.05], "ci_low": [0.07, 0.03, 0.05, 0.03], "ci_high": [0.12, 0.05, 0.07, 0.08],
        "status": "ok"})


def test_comparison_draws_each_estimate_with_its_own_asymmetric_interval():
    ax = plot_comparison(_table(), metric="churn_rate", segment="plan")
    bars = {c.get_label(): c for c in ax.containers}
    assert set(bars) == {"2024Q4 (this period)", "2024Q3 (previous period)"}
    current = bars["2024Q4 (this period)"]
    assert current.lines[0].get_ydata().tolist() == [0.09, 0.04]
    # the vertical bar of "basic" runs from 0.07 to 0.12, not symmetric about 0.09
    segs = current.lines[2][0].get_segments()
    assert [round(float(y), 10) for y in (segs[0][0][1], segs[0][1][1])] == [0.07, 0.12]
    assert isinstance(ax.yaxis.get_major_formatter(), mticker.PercentFormatter)
    assert ax.get_ylabel() == "Customer churn rate (%)" and ax.get_title() == "Customer churn rate by plan"


def test_comparison_of_a_metric_without_data_says_so():
    ax = plot_comparison(_table(), metric="nps")
    assert [t.get_text() for t in ax.texts] == ["no data for nps"]


def test_trend_labels_its_band_with_the_confidence_level_and_draws_the_forecast_dashed():
    s = pd.DataFrame({"period": ["2024Q2", "2024Q3", "2024Q4"], "value": [0.2, 0.22, 0.25],
                      "ci_low": [0.18, 0.2, 0.23], "ci_high": [0.22, 0.24, 0.27]})
    f = pd.DataFrame({"period": ["2025Q1"], "value": [0.26], "ci_low": [0.2], "ci_high": [0.32]})
    ax = plot_trend(s, metric="email_open_rate", forecast=f, confidence=0.9)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "90% interval" in labels and "forecast, 90% prediction interval" in labels
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata().tolist() == [0.25, 0.26]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024Q2", "2024Q3", "2024Q4", "2025Q1"]
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].min(), 0.18) and np.isclose(band[:, 1].max(), 0.27)


def test_segment_differences_colour_only_the_significant_ones():
    t = pd.DataFrame({"metric": "aov", "segment": "plan", "segment_value": ["basic", "premium", "standard"],
                      "difference": [-4.0, 9.0, 1.0], "ci_low": [-6.0, 5.0, -2.0], "ci_high": [-2.0, 13.0, 4.0],
                      "significant": [True, True, False]})
    ax = plot_segment_differences(t, metric="aov")
    red = mcolors.to_rgba("C3")
    coloured = [c for c in ax.containers if mcolors.to_rgba(c.lines[0].get_color()) == red]
    assert len(coloured) == 1 and sorted(coloured[0].lines[0].get_xdata().tolist()) == [-4.0, 9.0]
    assert ax.get_xlabel() == "difference vs the rest ($)"


def test_grid_draws_one_chart_per_metric_with_data_and_hides_the_rest():
    t = pd.concat([_table(), _table().assign(metric="bounce_rate")])
    fig = plot_grid(t, metrics=["churn_rate", "nps", "bounce_rate"], segment="plan", cols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["Customer churn rate by plan", "Bounce rate by plan"]
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="kind"):
        plot_grid(t, metrics=["churn_rate"], kind="pie")
