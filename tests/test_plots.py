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


def test_a_segment_value_measured_over_nobody_keeps_its_place_and_says_n_0():
    nobody = pd.DataFrame({"metric": "churn_rate", "segment": "plan", "segment_value": ["new", "new"],
                           "period_role": ["current", "previous"], "period": ["2024Q4", "2024Q3"],
                           "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0, "status": "unavailable"})
    table = pd.concat([_table().assign(n=100), nobody], ignore_index=True)
    ax = plot_comparison(table, metric="churn_rate", segment="plan")
    assert [x.get_text() for x in ax.get_xticklabels()] == ["basic", "new", "premium"]
    assert [(t.get_text(), t.get_position()[0]) for t in ax.texts] == [("n = 0", 1)]
    # the estimates stay at their own places: basic at 0, premium at 2
    current = {c.get_label(): c for c in ax.containers}["2024Q4 (this period)"]
    assert [round(float(x)) for x in current.lines[0].get_xdata()] == [0, 1, 2]
    assert np.isnan(current.lines[0].get_ydata()[1])


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


def test_labels_from_the_data_are_drawn_as_their_literal_text():
    """matplotlib typesets text between two dollars as mathematics: a plan called ``$\\frac$`` stopped the figure
    from drawing, and ``$x^2$ b`` lost its dollars. Long labels are slanted so that they do not run into each other."""
    labels = ["$\\frac$ a", "$x^2$ b", "c & <b>d</b>"]
    t = pd.DataFrame({"metric": "churn_rate", "segment": "plan $", "segment_value": labels, "period_role": "current",
                      "period": "2024Q4", "value": [0.1, 0.2, 0.3], "ci_low": [0.05, 0.1, 0.2],
                      "ci_high": [0.15, 0.3, 0.4], "status": "ok"})
    ax = plot_comparison(t, metric="churn_rate", segment="plan $")
    ax.figure.canvas.draw()  # raised ValueError (a mathtext parse error) before
    shown = [x._preprocess_math(x.get_text()) for x in ax.get_xticklabels()]
    assert shown == [(label, False) for label in labels]  # drawn as text, not as mathematics
    assert ax.title._preprocess_math(ax.title.get_text()) == ("Customer churn rate by plan $", False)
    assert all(x.get_rotation() == 0 for x in ax.get_xticklabels())  # short: side by side
    # a long label is wrapped at its spaces to its share of the panel (60 characters / 3 values, less 2); one that
    # cannot be (a long word) slants every label
    long = t.assign(segment_value=["Enterprise annual plan billed in euros", "basic", "pro"])
    ax = plot_comparison(long, metric="churn_rate", segment="plan $")
    assert ax.get_xticklabels()[0].get_text() == "Enterprise annual\nplan billed in\neuros"
    assert all(x.get_rotation() == 0 for x in ax.get_xticklabels())
    ax = plot_comparison(long.assign(segment_value=["Enterprise_annual_plan_billed_in_euros", "basic", "pro"]),
                         metric="churn_rate", segment="plan $")
    assert ax.get_xticklabels()[0].get_text() == "Enterprise_annual_plan_billed_in_euros"
    assert all(x.get_rotation() == 20 for x in ax.get_xticklabels())
    tests = pd.DataFrame({"metric": "churn_rate", "segment": "plan", "segment_value": labels,
                          "difference": [0.01, 0.02, -0.01], "ci_low": [0.0, 0.01, -0.02],
                          "ci_high": [0.02, 0.03, 0.0], "significant": [False, True, False]})
    ax = plot_segment_differences(tests, metric="churn_rate")
    ax.figure.canvas.draw()
    assert sorted(x._preprocess_math(x.get_text())[0] for x in ax.get_yticklabels()) == sorted(
        f"plan: {v}" for v in labels)
