"""Seaborn plot helpers: tidy data in, an Axes out, one style, readable in print.

Every helper takes its data first and everything else by keyword, draws on
``ax`` (a new one when None) and returns the Axes. Statistics are computed
elsewhere (:mod:`engagement.measure`, :mod:`engagement.analysis`); these only draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from engagement import catalog

__all__ = [
    "set_style",
    "plot_comparison",
    "plot_trend",
    "plot_holdout_by_frequency",
    "plot_cumulative_transactions",
    "plot_clv_by_segment",
    "plot_grid",
]

ROLE_ORDER = ("year_ago", "previous", "current")
ROLE_LABELS = {"current": "this period", "previous": "previous period", "year_ago": "a year earlier"}


def set_style() -> None:
    """The house style: white grid, colour-blind palette, print-friendly sizes."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.figsize": (8.0, 4.5), "figure.dpi": 100, "savefig.dpi": 150,
                         "axes.titleweight": "bold", "axes.titlesize": 12, "svg.hashsalt": "engagement"})


def _ax(ax: plt.Axes | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _unit_axis(ax: plt.Axes, metric: str, axis: str = "y") -> str:
    try:
        spec = catalog.get(metric)
        unit, name = spec.unit, spec.name
    except ValueError:
        unit, name = "", metric.replace("_", " ")
    target = ax.yaxis if axis == "y" else ax.xaxis
    if unit == "fraction":
        target.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
        label = f"{name} (%)"
    elif unit == "points":
        label = f"{name} (points)"
    elif unit == "seconds":
        label = f"{name} (seconds)"
    elif unit == "currency":
        label = f"{name} ($)"
    else:
        label = name
    return label


def plot_comparison(
    table: pd.DataFrame,
    *,
    metric: str,
    segment: str = "all",
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Point estimates with interval bars for each segment value, by period role.

    ``table`` is :func:`engagement.measure.measure` output.
    """
    ax = _ax(ax)
    d = table[(table.metric == metric) & (table.segment == segment) & (table.status == "ok")].copy()
    if d.empty:
        ax.text(0.5, 0.5, f"no data for {metric}", ha="center", va="center", transform=ax.transAxes)
        return ax
    values = sorted(d.segment_value.unique())
    roles = [r for r in ROLE_ORDER if r in set(d.period_role)]
    width = 0.8 / max(len(roles), 1)
    palette = dict(zip(ROLE_ORDER, sns.color_palette("colorblind", 3)[::-1], strict=True))
    for i, role in enumerate(roles):
        r = d[d.period_role == role].set_index("segment_value").reindex(values)
        x = np.arange(len(values)) - 0.4 + width * (i + 0.5)
        err = np.vstack([r.value - r.ci_low, r.ci_high - r.value])
        err = np.where(np.isfinite(err), err, 0)
        label = f"{r.period.dropna().iloc[0] if r.period.notna().any() else ''} ({ROLE_LABELS[role]})"
        ax.errorbar(x, r.value, yerr=err, fmt="o", capsize=3, color=palette[role], label=label)
    ax.set_xticks(range(len(values)), values, rotation=20 if len(values) > 4 else 0, ha="right" if len(values) > 4
                  else "center")
    ax.set_ylabel(_unit_axis(ax, metric))
    ax.set_xlabel(segment.replace("_", " ") if segment != "all" else "")
    ax.set_title(f"{_unit_axis(ax, metric).split(' (')[0]} by {segment.replace('_', ' ')}" if segment != "all"
                 else _unit_axis(ax, metric).split(" (")[0])
    ax.legend(frameon=False, fontsize=9)
    return ax


def plot_trend(
    series: pd.DataFrame,
    *,
    metric: str,
    forecast: pd.DataFrame | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """A metric over periods with its interval band (and a forecast, dashed, if given).

    ``series`` has ``period, value, ci_low, ci_high`` (one row per period, in order);
    ``forecast`` the same columns for the periods ahead.
    """
    ax = _ax(ax)
    d = series.reset_index(drop=True)
    x = np.arange(len(d))
    ax.plot(x, d.value, marker="o", color="C0", label="measured")
    ax.fill_between(x, d.ci_low, d.ci_high, color="C0", alpha=0.2, label="95% interval")
    labels = list(d.period)
    if forecast is not None and len(forecast):
        f = forecast.reset_index(drop=True)
        fx = np.arange(len(d), len(d) + len(f))
        ax.plot(np.r_[x[-1], fx], np.r_[d.value.iloc[-1], f.value], ls="--", marker="o", color="C1",
                label="forecast")
        ax.fill_between(fx, f.ci_low, f.ci_high, color="C1", alpha=0.15, label="prediction interval")
        labels += list(f.period)
    step = max(1, len(labels) // 10)
    ax.set_xticks(np.arange(len(labels))[::step], labels[::step])
    ax.set_ylabel(_unit_axis(ax, metric))
    ax.set_title(_unit_axis(ax, metric).split(" (")[0] + " over time")
    ax.legend(frameon=False, fontsize=9)
    return ax


def plot_holdout_by_frequency(table: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean holdout purchases, actual vs BG/NBD prediction, by calibration frequency."""
    ax = _ax(ax)
    long = table.melt(id_vars=["frequency"], value_vars=["actual", "predicted"], var_name="", value_name="mean")
    sns.barplot(long, x="frequency", y="mean", hue="", order=list(table.frequency), ax=ax)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("BG/NBD holdout check: purchases by calibration frequency")
    ax.legend(frameon=False)
    return ax


def plot_cumulative_transactions(
    cumulative: pd.DataFrame, *, calibration_end: object | None = None, ax: plt.Axes | None = None
) -> plt.Axes:
    """Cumulative repeat purchases over time, actual vs predicted."""
    ax = _ax(ax)
    ax.plot(cumulative.date, cumulative.actual, label="actual", color="C0")
    ax.plot(cumulative.date, cumulative.predicted, label="BG/NBD prediction", color="C1", ls="--")
    if calibration_end is not None:
        ax.axvline(pd.Timestamp(calibration_end), color="grey", ls=":", label="end of calibration")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Cumulative repeat purchases, actual vs predicted")
    ax.legend(frameon=False)
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    return ax


def plot_clv_by_segment(
    data: pd.DataFrame, *, segment: str, value: str = "clv", order: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Distribution of predicted CLV per segment value (empirical CDF, log scale)."""
    ax = _ax(ax)
    d = data[data[value] > 0]
    hue_order = list(order) if order is not None else sorted(d[segment].unique())
    sns.ecdfplot(d, x=value, hue=segment, hue_order=hue_order, log_scale=True, ax=ax)
    ax.set_xlabel("predicted 12-month CLV ($, log scale)")
    ax.set_ylabel("share of customers")
    ax.set_title(f"Predicted CLV by {segment.replace('_', ' ')}")
    return ax


def plot_grid(
    data: pd.DataFrame,
    *,
    metrics: Sequence[str],
    kind: str = "comparison",
    segment: str = "all",
    cols: int = 3,
) -> plt.Figure:
    """A grid of small charts, one per metric that has data.

    ``kind="comparison"`` draws :func:`plot_comparison` of ``segment`` from a
    :func:`~engagement.measure.measure` table; ``kind="trend"`` draws
    :func:`plot_trend` of the ``all`` segment from a
    :func:`~engagement.measure.measure_series` table. Metrics without data are
    left out.
    """
    if kind not in ("comparison", "trend"):
        raise ValueError(f"`kind` must be 'comparison' or 'trend', got {kind!r}.")
    ok = data[data.status == "ok"]
    if kind == "comparison":
        shown = [m for m in metrics if ((ok.metric == m) & (ok.segment == segment)).any()]
    else:
        ok = ok[ok.segment == "all"]
        shown = [m for m in metrics if (ok.metric == m).sum() >= 2]
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, shown, strict=False):
        if kind == "comparison":
            plot_comparison(data, metric=metric, segment=segment, ax=ax)
        else:
            plot_trend(ok[ok.metric == metric], metric=metric, ax=ax)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
