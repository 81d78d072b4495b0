"""Seaborn plot helpers: tidy data in, an Axes out, one style, readable in print.

Every helper takes its data first and everything else by keyword, draws on
``ax`` (a new one when None) and returns the Axes. Statistics are computed
elsewhere (:mod:`engagement.measure`, :mod:`engagement.analysis`); these only draw.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

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
    "plot_segment_differences",
    "plot_correlations",
    "plot_survival",
    "plot_cohort_heatmap",
]

ROLE_ORDER = ("year_ago", "previous", "current")
ROLE_LABELS = {"current": "this period", "previous": "previous period", "year_ago": "a year earlier"}


def set_style() -> None:
    """The house style: white grid, colour-blind palette, print-friendly sizes; tables show their text whole.

    pandas cuts a table's text at 50 characters with "..." by default: a finding, an action or a test's
    conclusion would lose its end (its q-value, its owner) in the report, so the limit is lifted.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from engagement.plots import set_style
    >>> set_style()
    >>> plt.rcParams["axes.titleweight"], plt.rcParams["svg.hashsalt"], pd.get_option("display.max_colwidth")
    ('bold', 'engagement', None)
    """
    pd.set_option("display.max_colwidth", None)
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.figsize": (8.0, 4.5), "figure.dpi": 100, "savefig.dpi": 150,
                         "axes.titleweight": "bold", "axes.titlesize": 12, "svg.hashsalt": "engagement"})


def _plain(text: object) -> str:
    """Text from the data, drawn as the literal text it is: matplotlib typesets what stands between two ``$`` as
    mathematics, so a label ``$x^2$ plan`` would lose its dollars and ``$\\frac$`` would stop the figure from
    drawing at all (a parse error). Escaped dollars are drawn as dollars.

    Examples
    --------
    >>> from engagement.plots import _plain
    >>> print(_plain("$5 plan, $10 plan"))
    \\$5 plan, \\$10 plan
    """
    text = str(text)
    return text.replace("$", r"\$") if plt.rcParams["text.parse_math"] else text


def _ticks(values: Sequence[object]) -> tuple[list[str], dict[str, Any]]:
    """Tick labels for ``values`` along a panel's x axis, and their layout. A panel of a grid holds some 60
    characters of labels across: a value longer than its share is wrapped at its spaces, and the labels slant when
    they still would not fit side by side (or there are more than four)."""
    width = max(10, 60 // max(len(values), 1) - 2)
    lines = [textwrap.wrap(str(v), width, break_long_words=False) if len(str(v)) > width else [str(v)]
             for v in values]
    longest = max((len(line) for wrapped in lines for line in wrapped), default=0)
    slant = len(values) > 4 or longest * len(values) > 60
    labels = [_plain("\n".join(wrapped)) for wrapped in lines]
    return labels, ({"rotation": 20, "ha": "right"} if slant else {"rotation": 0, "ha": "center"})


def _ax(ax: plt.Axes | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _unit_axis(ax: plt.Axes, metric: str, axis: str = "y") -> str:
    spec = catalog.CATALOG.get(metric)
    unit, name = (spec.unit if spec is not None else ""), catalog.name(metric)
    target = ax.yaxis if axis == "y" else ax.xaxis
    if unit == "fraction":
        target.set_major_formatter(mticker.PercentFormatter(1.0, decimals=None))
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

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_comparison
    >>> t = pd.DataFrame({"metric": "churn_rate", "segment": "plan", "segment_value": ["basic", "premium"] * 2,
    ...                   "period_role": ["current"] * 2 + ["previous"] * 2, "period": ["2024Q4"] * 2 + ["2024Q3"] * 2,
    ...                   "value": [0.09, 0.04, 0.06, 0.04], "ci_low": [0.08, 0.03, 0.05, 0.03],
    ...                   "ci_high": [0.10, 0.05, 0.07, 0.05], "status": "ok"})
    >>> ax = plot_comparison(t, metric="churn_rate", segment="plan")
    >>> ax.get_ylabel(), [x.get_text() for x in ax.get_xticklabels()]
    ('Customer churn rate (%)', ['basic', 'premium'])
    """
    ax = _ax(ax)
    rows = table[(table.metric == metric) & (table.segment == segment)]
    d = rows[rows.status == "ok"].copy()
    if d.empty:
        ax.text(0.5, 0.5, f"no data for {metric}", ha="center", va="center", transform=ax.transAxes)
        return ax
    # a segment value measured over nobody keeps its place on the axis (the panels of a grid line up) and says so
    nobody = rows[(rows.status == "unavailable") & (rows.n == 0)] if "n" in rows.columns else rows.iloc[:0]
    values = sorted(set(d.segment_value) | set(nobody.segment_value))
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
    measured = set(d.segment_value)
    for i, v in enumerate(values):
        if v not in measured:
            ax.text(i, 0.5, "n = 0", ha="center", va="center", color="0.4", transform=ax.get_xaxis_transform())
    labels, layout = _ticks(values)
    ax.set_xticks(range(len(values)), labels, **layout)
    ax.set_ylabel(_unit_axis(ax, metric))
    ax.set_xlabel(_plain(segment.replace("_", " ")) if segment != "all" else "")
    ax.set_title(f"{catalog.name(metric)} by {_plain(segment.replace('_', ' '))}" if segment != "all"
                 else catalog.name(metric))
    ax.legend(frameon=False, fontsize=9)
    return ax


def plot_trend(
    series: pd.DataFrame,
    *,
    metric: str,
    forecast: pd.DataFrame | None = None,
    confidence: float = 0.95,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """A metric over periods with its ``confidence`` interval band (and a forecast, dashed, if given).

    ``series`` has ``period, value, ci_low, ci_high`` (one row per period, in order);
    ``forecast`` the same columns for the periods ahead.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_trend
    >>> s = pd.DataFrame({"period": ["2024Q2", "2024Q3", "2024Q4"], "value": [31.0, 33.0, 36.0],
    ...                   "ci_low": [28.0, 30.0, 33.0], "ci_high": [34.0, 36.0, 39.0]})
    >>> ax = plot_trend(s, metric="nps")
    >>> ax.get_ylabel(), ax.lines[0].get_ydata().tolist()
    ('Net Promoter Score (points)', [31.0, 33.0, 36.0])
    """
    ax = _ax(ax)
    d = series.reset_index(drop=True)
    x = np.arange(len(d))
    ax.plot(x, d.value, marker="o", color="C0", label="measured")
    level = f"{100 * confidence:g}%"
    ax.fill_between(x, d.ci_low, d.ci_high, color="C0", alpha=0.2, label=f"{level} interval")
    labels = list(d.period)
    if forecast is not None and len(forecast):
        f = forecast.reset_index(drop=True)
        fx = np.arange(len(d), len(d) + len(f))
        ax.plot(np.r_[x[-1], fx], np.r_[d.value.iloc[-1], f.value], ls="--", color="C1")
        ax.errorbar(fx, f.value, yerr=np.vstack([f.value - f.ci_low, f.ci_high - f.value]), fmt="o", color="C1",
                    capsize=4, label=f"forecast, {level} prediction interval")
        labels += list(f.period)
    step = max(1, len(labels) // 10)
    ax.set_xticks(np.arange(len(labels))[::step], labels[::step], rotation=45, ha="right")
    ax.set_ylabel(_unit_axis(ax, metric))
    ax.set_title(catalog.name(metric) + " over time")
    ax.legend(frameon=False, fontsize=9)
    return ax


def plot_holdout_by_frequency(table: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean holdout purchases, actual vs BG/NBD prediction, by calibration frequency.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_holdout_by_frequency
    >>> t = pd.DataFrame({"frequency": [0, 1, 2], "actual": [0.2, 0.6, 1.1], "predicted": [0.25, 0.55, 1.0]})
    >>> ax = plot_holdout_by_frequency(t)
    >>> len(ax.patches) >= 6, ax.get_xlabel()
    (True, 'repeat purchases in the calibration period')
    """
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
    """Cumulative repeat purchases over time, actual vs predicted.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_cumulative_transactions
    >>> c = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=3), "actual": [1, 3, 6],
    ...                   "predicted": [1.5, 3.2, 5.5]})
    >>> ax = plot_cumulative_transactions(c, calibration_end="2024-01-02")
    >>> [line.get_label() for line in ax.lines]
    ['actual', 'BG/NBD prediction', 'end of calibration']
    """
    ax = _ax(ax)
    ax.plot(cumulative.date, cumulative.actual, label="actual", color="C0")
    ax.plot(cumulative.date, cumulative.predicted, label="BG/NBD prediction", color="C1", ls="--")
    if calibration_end is not None:
        ax.axvline(pd.Timestamp(calibration_end), color="grey", ls=":", label="end of calibration")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Cumulative repeat purchases, actual vs predicted")
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(frameon=False)
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    return ax


def plot_clv_by_segment(
    data: pd.DataFrame, *, segment: str, value: str = "clv", order: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Distribution of predicted CLV per segment value (empirical CDF, log scale).

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_clv_by_segment
    >>> d = pd.DataFrame({"plan": ["basic"] * 3 + ["premium"] * 3, "clv": [10.0, 20, 40, 50, 90, 200]})
    >>> ax = plot_clv_by_segment(d, segment="plan")
    >>> ax.get_xscale(), len(ax.lines)
    ('log', 2)
    """
    ax = _ax(ax)
    d = data[data[value] > 0]
    hue_order = list(order) if order is not None else sorted(d[segment].unique())
    d = d.assign(**{segment: d[segment].map(_plain)})  # the legend's labels are the values
    sns.ecdfplot(d, x=value, hue=segment, hue_order=[_plain(v) for v in hue_order], log_scale=True, ax=ax)
    if len(d):
        ax.set_xlim(left=max(float(np.quantile(d[value], 0.01)), 1e-2))
    ax.set_xlabel("predicted 12-month CLV ($, log scale)")
    ax.set_ylabel("share of customers")
    ax.set_title(f"Predicted CLV by {_plain(segment.replace('_', ' '))}")
    return ax


def plot_grid(
    data: pd.DataFrame,
    *,
    metrics: Sequence[str],
    kind: str = "comparison",
    segment: str = "all",
    cols: int = 3,
    forecasts: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> plt.Figure:
    """A grid of small charts, one per metric that has data.

    ``kind="comparison"`` draws :func:`plot_comparison` of ``segment`` from a
    :func:`~engagement.measure.measure` table; ``kind="trend"`` draws
    :func:`plot_trend` of the ``all`` segment from a
    :func:`~engagement.measure.measure_series` table, with ``forecasts``
    (``metric, period, value, ci_low, ci_high``) drawn dashed. Metrics without
    data are left out, and so are those measured over nobody (``n = 0``: no
    value): an empty panel would look like a chart of nothing.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_grid
    >>> t = pd.DataFrame({"metric": ["nps", "aov"], "segment": "all", "segment_value": "all",
    ...                   "period_role": "current", "period": "2024Q4", "value": [35.0, 48.0],
    ...                   "ci_low": [30.0, 45.0], "ci_high": [40.0, 51.0], "status": "ok"})
    >>> fig = plot_grid(t, metrics=["nps", "aov", "ces"])
    >>> [ax.get_title() for ax in fig.axes if ax.get_visible()]
    ['Net Promoter Score', 'Average order value (ATV)']
    >>> nobody = t.assign(value=[35.0, float("nan")], ci_low=[30.0, float("nan")], ci_high=[40.0, float("nan")])
    >>> [ax.get_title() for ax in plot_grid(nobody, metrics=["nps", "aov"]).axes if ax.get_visible()]
    ['Net Promoter Score']
    """
    if kind not in ("comparison", "trend"):
        raise ValueError(f"`kind` must be 'comparison' or 'trend', got {kind!r}.")
    ok = data[(data.status == "ok") & data.value.notna()]
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
            ahead = forecasts[forecasts.metric == metric] if forecasts is not None else None
            plot_trend(ok[ok.metric == metric], metric=metric, forecast=ahead, confidence=confidence, ax=ax)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_segment_differences(tests: pd.DataFrame, *, metric: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Forest plot: each segment value minus the rest of the customers, with intervals.

    ``tests`` is :func:`engagement.analysis.segment_tests` output; significant
    differences (after the Benjamini-Hochberg correction) are drawn in colour.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_segment_differences
    >>> t = pd.DataFrame({"metric": "churn_rate", "segment": "plan", "segment_value": ["basic", "premium"],
    ...                   "difference": [0.03, -0.01], "ci_low": [0.02, -0.03], "ci_high": [0.04, 0.01],
    ...                   "significant": [True, False]})
    >>> ax = plot_segment_differences(t, metric="churn_rate")
    >>> [x.get_text() for x in ax.get_yticklabels()], ax.get_xlabel()
    (['plan: basic', 'plan: premium'], 'difference vs the rest (%)')
    """
    ax = _ax(ax)
    d = tests[(tests.metric == metric) & tests.difference.notna()].sort_values(["segment", "segment_value"])
    if d.empty:
        ax.text(0.5, 0.5, f"no tests for {metric}", ha="center", va="center", transform=ax.transAxes)
        return ax
    y = np.arange(len(d))[::-1]
    for flag, color in ((False, "0.55"), (True, "C3")):
        m = (d.significant == flag).to_numpy()
        if m.any():
            err = np.vstack([d.difference[m] - d.ci_low[m], d.ci_high[m] - d.difference[m]])
            ax.errorbar(d.difference[m], y[m], xerr=err, fmt="o", color=color, capsize=2)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [_plain(f"{s.replace('_', ' ')}: {v}") for s, v in zip(d.segment, d.segment_value,
                                                                           strict=True)])
    label = _unit_axis(ax, metric, axis="x")
    name = catalog.name(metric)
    suffix = label[len(name):]
    ax.set_xlabel(f"difference vs the rest{suffix}")
    ax.set_title(f"{name}: each segment vs the rest (red: significant after correction)")
    return ax


def plot_correlations(assoc: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Heat map of Spearman correlations (``associations`` output); insignificant cells marked "(n.s.)".

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_correlations
    >>> a = pd.DataFrame({"variable": ["nps"], "other": ["clv"], "rho": [0.31], "significant": [True]})
    >>> ax = plot_correlations(a)
    >>> sorted(t.get_text() for t in ax.texts if t.get_text())
    ['0.31', '0.31']
    """
    ax = _ax(ax)
    names = list(dict.fromkeys([*assoc.variable, *assoc.other]))
    m = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    annot = pd.DataFrame("", index=names, columns=names)
    for r in assoc.itertuples(index=False):
        m.loc[r.variable, r.other] = m.loc[r.other, r.variable] = r.rho
        text = f"{r.rho:.2f}" + ("" if r.significant else "\n(n.s.)")
        annot.loc[r.variable, r.other] = annot.loc[r.other, r.variable] = text
    sns.heatmap(m, annot=annot.to_numpy(), fmt="", vmin=-1, vmax=1, cmap="vlag", cbar_kws={"label": "Spearman rho"},
                ax=ax, square=True)
    ax.set_title("How customer-level measures move together")
    return ax


def plot_survival(curves: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan-Meier curves with interval bands (``kaplan_meier`` output).

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_survival
    >>> c = pd.DataFrame({"segment_value": ["basic"] * 3 + ["premium"] * 3, "time": [0, 6, 12] * 2,
    ...                   "survival": [1.0, 0.8, 0.6, 1.0, 0.9, 0.85], "ci_low": [1.0, 0.7, 0.5, 1.0, 0.8, 0.75],
    ...                   "ci_high": [1.0, 0.9, 0.7, 1.0, 0.95, 0.9]})
    >>> ax = plot_survival(c)
    >>> [line.get_label() for line in ax.lines], [float(y) for y in ax.get_ylim()]
    (['basic', 'premium'], [0.0, 1.02])
    """
    ax = _ax(ax)
    for i, (value, g) in enumerate(curves.groupby("segment_value", sort=True)):
        ax.step(g.time, g.survival, where="post", color=f"C{i}", label=_plain(value))
        ax.fill_between(g.time, g.ci_low, g.ci_high, step="post", color=f"C{i}", alpha=0.15)
    ax.set_xlabel("months since sign-up")
    ax.set_ylabel("share still subscribed")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))  # 0-100%: whole percents
    ax.set_ylim(0, 1.02)
    ax.set_title("Customer survival (Kaplan-Meier)")
    ax.legend(frameon=False)
    return ax


def plot_cohort_heatmap(cohorts: pd.DataFrame, *, max_months: int = 12, ax: plt.Axes | None = None) -> plt.Axes:
    """Retention heat map: cohorts by months since sign-up; immature cells left blank.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plots import plot_cohort_heatmap
    >>> c = pd.DataFrame({"cohort": ["2024-01"] * 3 + ["2024-02"] * 2, "month": [0, 1, 2, 0, 1],
    ...                   "share": [1.0, 0.8, 0.7, 1.0, 0.75]})
    >>> ax = plot_cohort_heatmap(c)
    >>> [t.get_text() for t in ax.get_yticklabels()], int(ax.collections[0].get_array().count())
    (['2024-01', '2024-02'], 5)
    """
    ax = _ax(ax)
    d = cohorts[cohorts.month <= max_months]
    grid = d.pivot_table(index="cohort", columns="month", values="share", aggfunc="first")
    low = float(np.floor(np.nanmin(grid.to_numpy()) * 10) / 10) if grid.notna().any().any() else 0.0
    sns.heatmap(grid, vmin=low, vmax=1, cmap="crest", cbar_kws={"label": "share retained"}, ax=ax)
    ax.set_xlabel("months since sign-up")
    ax.set_ylabel("sign-up month")
    ax.set_title("Cohort retention (blank: month not complete yet)")
    return ax
