"""Which metrics are really moving: trend slopes, period-over-period changes with the right test,
seasonal decomposition and exponential-smoothing forecasts. statsmodels and scipy do the statistics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from engagement.measure.declarations import SAMPLED_KINDS, declaration

__all__ = ["trend_tests", "change_tests", "forecast", "bounds", "short_history", "seasonal_components",
           "difference_test", "correct", "figure_kind", "MIN_TREND_PERIODS", "MIN_FORECAST_PERIODS",
           "RECUT_SEGMENTS", "effective_fraction"]

KEY = ["segment", "segment_value", "metric"]
Z95 = 1.959963984540054


def correct(p_values: pd.Series, alpha: float = 0.05) -> pd.Series:
    """Benjamini-Hochberg q-values (statsmodels ``fdr_bh``); NaN p-values stay NaN."""
    q = pd.Series(np.nan, index=p_values.index, dtype="float64")
    ok = p_values.notna()
    if ok.any():
        q[ok] = multipletests(p_values[ok].to_numpy(dtype=float), alpha=alpha, method="fdr_bh")[1]
    return q


def figure_kind(row: Mapping[str, Any]) -> tuple[str, bool]:
    """``(kind, sampled)`` of a measure-table row: its own columns, else its metric's declaration.

    Examples
    --------
    >>> from engagement.analysis.trends import figure_kind
    >>> figure_kind({"metric": "nps"}), figure_kind({"metric": "x", "kind": "mean", "sampled": True})
    (('net_score', True), ('mean', True))
    """
    kind = row.get("kind")
    if isinstance(kind, str) and kind:
        return kind, bool(row.get("sampled", kind in SAMPLED_KINDS))
    d = declaration(str(row["metric"]))
    return d.kind, d.sampled


def effective_fraction(row: Mapping[str, Any]) -> float:
    """For a share, its effective sample size over its counted items: 1 unless its items cluster (``n`` below
    ``denominator``, as :func:`engagement.intervals.clustered_share_result` leaves it).

    Examples
    --------
    >>> from engagement.analysis.trends import effective_fraction
    >>> effective_fraction({"n": 50, "denominator": 200}), effective_fraction({"n": 200, "denominator": 200})
    (0.25, 1.0)
    """
    n, d = row.get("n"), row.get("denominator")
    if n is None or d is None or pd.isna(n) or pd.isna(d) or not 0 < float(n) < float(d):
        return 1.0
    return float(n) / float(d)


def difference_test(a: Mapping[str, Any], b: Mapping[str, Any], confidence: float = 0.95) -> dict[str, float | str]:
    """Test the difference a - b of two independent estimates (rows of the measure table, as mappings).

    The test follows the rows' ``kind`` (:data:`engagement.measure.declarations.KINDS`):

    * ``proportion`` (a share of counted units): two-proportion z-test (statsmodels
      ``proportions_ztest``), Newcombe interval for the difference;
    * ``net_score`` (NPS): z-test with the trinomial variance of each score;
    * ``mean``: Welch's t-test from the summary statistics (scipy);
    * ``clustered_mean``, ``ratio``, ``median``: z-test with each estimate's standard
      error (for medians the one their distribution-free interval implies: approximate);
    * ``count`` and ``population_figure`` (no sampling error): no test (p is NaN).

    Examples
    --------
    30 of 100 against 20 of 100 (pooled share 0.25, z = 0.1 / sqrt(0.25 x 0.75 x 2 / 100) = 1.63):

    >>> from engagement.analysis import difference_test
    >>> a = {"metric": "churn_rate", "value": 0.3, "n": 100, "numerator": 30, "denominator": 100, "se": 0.046}
    >>> b = {"metric": "churn_rate", "value": 0.2, "n": 100, "numerator": 20, "denominator": 100, "se": 0.04}
    >>> r = difference_test(a, b)
    >>> r["test"], round(r["p_value"], 4)
    ('two-proportion z-test', 0.1025)
    """
    kind, sampled = figure_kind(a)
    diff = float(a["value"] - b["value"])
    out: dict[str, float | str] = {"difference": diff, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                                   "test": "none (figure without sampling error)"}
    if not sampled:
        return out
    if any(pd.isna(v) for v in (a["value"], b["value"])) or min(a["n"], b["n"]) < 2:
        out["test"] = "none (too few observations)"
        return out
    if kind == "proportion" and not pd.isna(a.get("numerator")) and not pd.isna(b.get("numerator")):
        k = np.array([a["numerator"], b["numerator"]], dtype=float).round()
        n = np.array([a["denominator"], b["denominator"]], dtype=float)
        # a share whose items cluster (emails in customers) carries its effective sample size in n: its counts
        # are scaled to it (the first-order Rao-Scott correction), so the test sees the clustered variance
        scale = np.array([effective_fraction(a), effective_fraction(b)])
        k, n = k * scale, n * scale
        if (k.sum() == 0) or (k.sum() == n.sum()):
            out.update(p_value=1.0, test="two-proportion z-test (no variation)")
            return out
        _, p = proportions_ztest(k, n)
        low, high = confint_proportions_2indep(k[0], n[0], k[1], n[1], method="newcomb", alpha=1 - confidence)
        out.update(ci_low=float(low), ci_high=float(high), p_value=float(p), test="two-proportion z-test")
        return out
    se_a, se_b = float(a.get("se", np.nan)), float(b.get("se", np.nan))
    if math.isnan(se_a) or math.isnan(se_b):
        out["test"] = "none (no standard error)"
        return out
    se = math.hypot(se_a, se_b)
    if kind == "mean":
        sd_a, sd_b = se_a * math.sqrt(a["n"]), se_b * math.sqrt(b["n"])
        res = stats.ttest_ind_from_stats(a["value"], sd_a, a["n"], b["value"], sd_b, b["n"], equal_var=False)
        df = (se_a**2 + se_b**2) ** 2 / (se_a**4 / (a["n"] - 1) + se_b**4 / (b["n"] - 1)) if se > 0 else np.inf
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
        out.update(ci_low=diff - half, ci_high=diff + half, p_value=float(res.pvalue), test="Welch t-test")
        return out
    if se == 0:
        out.update(p_value=1.0 if diff == 0 else 0.0, test="z-test (zero variance)")
        return out
    z = diff / se
    half = stats.norm.ppf(0.5 + confidence / 2) * se
    name = {"net_score": "z-test, trinomial NPS variance", "median": "z-test, SE from the median's interval",
            "ratio": "z-test, ratio-estimator SE"}.get(kind, "z-test, cluster-robust SE")
    out.update(ci_low=diff - half, ci_high=diff + half, p_value=float(2 * stats.norm.sf(abs(z))), test=name)
    return out


#: Segments whose members are chosen again every period by a relative cut: a change "within" one compares
#: different customers (last year's low spenders who spent more move up a tier), so it is not tested.
RECUT_SEGMENTS: dict[str, str] = {
    "value_tier": "value tiers are re-cut every period by the year before's spending: a change within a tier is "
                  "customers moving between tiers",
}


def change_tests(table: pd.DataFrame, *, metrics: list[str] | None = None, alpha: float = 0.05,
                 confidence: float = 0.95) -> pd.DataFrame:
    """The current period against the previous period and against a year earlier, every metric and segment.

    ``table`` is :func:`engagement.measure.measure` output. Each metric is tested
    as its ``kind`` says (:func:`difference_test`), with ``confidence``-level
    intervals for the differences. All tests are corrected together
    (Benjamini-Hochberg); ``q_value`` is the adjusted p. Segments re-cut every
    period (:data:`RECUT_SEGMENTS`: value tiers) are left out before the
    correction, with the reason in ``test``: their "change" compares different
    customers.

    Returns
    -------
    DataFrame
        ``segment, segment_value, metric, comparison, period, against, value,
        reference, difference, ci_low, ci_high, relative_change, p_value, test,
        q_value, significant``, and for segment rows whether the segment changed
        apart from the rest of the customers (``rest_change, vs_rest, vs_rest_p,
        vs_rest_q, apart``: :func:`~engagement.analysis.segments.apart_from_rest`).

    Examples
    --------
    Churn of 100 starters went from 10 to 25 between two quarters:

    >>> import pandas as pd
    >>> from engagement.analysis import change_tests
    >>> rows = [{"period": p, "period_role": r, "segment": "all", "segment_value": "all", "metric": "churn_rate",
    ...          "value": k / 100, "n": 100, "numerator": k, "denominator": 100, "se": (k / 100 * (1 - k / 100) / 100) ** 0.5,
    ...          "unit": "fraction", "kind": "proportion", "sampled": True, "status": "ok"}
    ...         for p, r, k in (("2024Q4", "current", 25), ("2024Q3", "previous", 10))]
    >>> out = change_tests(pd.DataFrame(rows))
    >>> out[["comparison", "difference", "test", "significant"]].values.tolist()
    [['previous period', 0.15, 'two-proportion z-test', True]]
    """
    ok = table[table.status == "ok"]
    if metrics is not None:
        ok = ok[ok.metric.isin(metrics)]
    cur = ok[ok.period_role == "current"].set_index(KEY).to_dict("index")
    rows = []
    for role, label in (("previous", "previous period"), ("year_ago", "a year earlier")):
        ref = ok[ok.period_role == role].set_index(KEY).to_dict("index")
        for key in sorted(cur.keys() & ref.keys()):
            a, b = {**cur[key], "metric": key[2]}, {**ref[key], "metric": key[2]}
            why = RECUT_SEGMENTS.get(key[0])
            # left out before the correction, as segment_tests leaves out what holds by construction
            res = {"difference": float(a["value"] - b["value"]), "ci_low": np.nan, "ci_high": np.nan,
                   "p_value": np.nan, "test": f"none ({why})"} if why else difference_test(a, b, confidence)
            rows.append({
                "segment": key[0], "segment_value": key[1], "metric": key[2], "comparison": label,
                "period": a["period"], "against": b["period"], "value": a["value"], "reference": b["value"],
                "unit": a["unit"], **res,
                "relative_change": res["difference"] / abs(b["value"]) if b["value"] else np.nan,
            })
    out = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["segment", "segment_value", "metric", "comparison", "period", "against",
                                      "value", "reference", "unit", "difference", "ci_low", "ci_high", "p_value",
                                      "test", "relative_change"])
    if out.empty:
        return out.assign(q_value=pd.Series(dtype="float64"), significant=pd.Series(dtype="bool"))
    out["q_value"] = correct(out["p_value"], alpha)
    out["significant"] = out["q_value"] < alpha
    from engagement.analysis.segments import apart_from_rest  # segments builds on this module's tests

    out = apart_from_rest(out, table, alpha=alpha)
    return out.sort_values(["metric", "segment", "segment_value", "comparison"], kind="stable").reset_index(drop=True)


def trend_tests(series: pd.DataFrame, *, metrics: list[str] | None = None, segment: str = "all",
                periods: list[str] | None = None, alpha: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """Slope per period of each metric's series, with its interval and p-value.

    Where each period's estimate has a standard error, weighted least squares
    (statsmodels) with the known variances as weights, so noisier periods count
    less, and the residual dispersion as a floor: the slope's variance is scaled
    by max(1, estimated scale), so extra period-to-period noise widens the
    interval but a short series is not penalised for having few residual degrees
    of freedom (normal reference). Ordinary least squares with a t reference for
    figures without standard errors. With fewer than 6 periods the Theil-Sen
    slope (scipy, robust to one odd period) is reported as well. All slopes of
    the call are corrected together (Benjamini-Hochberg).

    ``series`` is :func:`engagement.measure.measure_series` output; ``periods``
    restricts the window (e.g. the last year's quarters); slopes' intervals are at
    ``confidence``, significance is q < ``alpha``.
    """
    ok = series[(series.status == "ok") & (series.segment == segment)]
    if metrics is not None:
        ok = ok[ok.metric.isin(metrics)]
    if periods is not None:
        ok = ok[ok.period.isin(periods)]
    order = {p: i for i, p in enumerate(dict.fromkeys(series.period))}
    rows = []
    for (value, metric), g in ok.groupby(["segment_value", "metric"], sort=True):
        g = g.assign(t=g.period.map(order)).sort_values("t").dropna(subset=["value"])
        if len(g) < MIN_TREND_PERIODS:
            continue
        x = sm.add_constant(g.t.to_numpy(dtype=float))
        y = g.value.to_numpy(dtype=float)
        se = g.se.to_numpy(dtype=float)
        weighted = np.all(np.isfinite(se)) and np.all(se > 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if weighted:
                scale = max(1.0, float(sm.WLS(y, x, weights=1 / se**2).fit().scale))
                fit = sm.WLS(y, x, weights=1 / se**2).fit(cov_type="fixed scale", cov_kwds={"scale": scale})
            else:
                fit = sm.OLS(y, x).fit()
        low, high = fit.conf_int(alpha=1 - confidence)[1]
        row = {"segment": segment, "segment_value": value, "metric": metric, "periods": len(g),
               "first_period": g.period.iloc[0], "last_period": g.period.iloc[-1], "slope": float(fit.params[1]),
               "ci_low": float(low), "ci_high": float(high), "p_value": float(fit.pvalues[1]),
               "method": "WLS on known variances, dispersion floor 1" if weighted else "OLS",
               "unit": g.unit.iloc[0],
               "mean_level": float(np.mean(y))}
        if len(g) < 6:
            ts = stats.theilslopes(y, g.t.to_numpy(dtype=float), alpha=confidence)  # scipy's alpha is the level
            row.update(theil_sen_slope=float(ts.slope), theil_sen_low=float(ts.low_slope),
                       theil_sen_high=float(ts.high_slope))
        rows.append(row)
    out = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["segment", "segment_value", "metric", "periods", "first_period", "last_period",
                                      "slope", "ci_low", "ci_high", "p_value", "method", "unit", "mean_level"])
    if out.empty:
        return out.assign(q_value=pd.Series(dtype="float64"), significant=pd.Series(dtype="bool"),
                          direction=pd.Series(dtype="str"))
    out["q_value"] = correct(out["p_value"], alpha)
    out["significant"] = out["q_value"] < alpha
    out["direction"] = np.where(~out["significant"], "flat", np.where(out["slope"] > 0, "up", "down"))
    return out


#: Fewest periods with data a trend slope (3) and a forecast (4) are computed from.
MIN_TREND_PERIODS = 3
MIN_FORECAST_PERIODS = 4


def bounds(metric: str) -> tuple[float | None, float | None]:
    """The range a metric's values can take: (0, 1) for a share, (-100, 100) for a net score, (0, None) for
    amounts, counts, durations and ratios; (None, None) for a growth rate, which can be negative.

    Examples
    --------
    >>> bounds("churn_rate"), bounds("nps"), bounds("revenue"), bounds("follower_growth_rate")
    ((0.0, 1.0), (-100.0, 100.0), (0.0, None), (None, None))
    """
    from engagement.measure.declarations import DECLARATIONS

    d = DECLARATIONS.get(metric)
    kind = d.kind if d is not None else ""
    if kind == "proportion":
        return 0.0, 1.0
    if kind == "net_score":
        return -100.0, 100.0
    if kind == "population_figure" and metric.endswith("growth_rate"):
        return None, None
    return 0.0, None


def short_history(series: pd.DataFrame, metrics: list[str], segment: str = "all") -> str:
    """One line per history length that is too short for a trend or a forecast, naming the metrics; "" when none.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"metric": ["aov"] * 2 + ["orders"] * 3, "segment": "all", "status": "ok",
    ...                   "value": 1.0, "period": ["2024-01", "2024-02", "2024-01", "2024-02", "2024-03"]})
    >>> print(short_history(s, ["aov", "orders"]))
    No trend or forecast for Average order value (ATV): 2 periods with figures, and a trend needs 3 (a forecast 4).
    No forecast for Orders: 3 periods with figures, and a forecast needs 4.
    """
    from engagement import catalog

    ok = series[(series.segment == segment) & (series.status == "ok") & series.value.notna()]
    counts = ok.groupby("metric").period.nunique()
    lines = []
    by_n: dict[int, list[str]] = {}
    for m in metrics:
        n = int(counts.get(m, 0))
        if n < MIN_FORECAST_PERIODS:
            by_n.setdefault(n, []).append(catalog.name(m) if m in catalog.CATALOG else m)
    for n in sorted(by_n):
        names = ", ".join(by_n[n])
        had = f"{n} period{'s' if n != 1 else ''} with figures"
        if n < MIN_TREND_PERIODS:
            lines.append(f"No trend or forecast for {names}: {had}, and a trend needs {MIN_TREND_PERIODS} "
                         f"(a forecast {MIN_FORECAST_PERIODS}).")
        else:
            lines.append(f"No forecast for {names}: {had}, and a forecast needs {MIN_FORECAST_PERIODS}.")
    return "\n".join(lines)


def forecast(series: pd.DataFrame, *, metric: str, horizon: int = 1, confidence: float = 0.95,
             segment: str = "all", value: str = "all",
             limits: tuple[float | None, float | None] | None = None) -> pd.DataFrame:
    """Forecast the next ``horizon`` periods with exponential smoothing and a prediction interval.

    statsmodels' ETS model: additive errors with a damped additive trend when
    there are at least 8 periods, simple exponential smoothing otherwise, from
    :data:`MIN_FORECAST_PERIODS` (4) periods with data; fewer give no rows.

    A quantity that cannot be negative (or a share, bounded by 0 and 1) is
    modelled on the log (logit) scale and transformed back, so neither the
    forecast nor its interval leaves the quantity's range (``limits``, default
    :func:`bounds` of the metric); the point is then the forecast median. When a
    value sits on a limit (a 0 in the series) the model runs on the original
    scale and the forecast and interval are clipped to the range.

    Returns ``period, value, ci_low, ci_high, method`` for the periods ahead.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"metric": "orders", "segment": "all", "segment_value": "all", "status": "ok",
    ...                   "period": [f"2023Q{q}" for q in range(1, 5)] + [f"2024Q{q}" for q in range(1, 5)],
    ...                   "value": [90.0, 70, 55, 40, 30, 20, 12, 6]})
    >>> f = forecast(s, metric="orders", horizon=2)
    >>> bool((f[["value", "ci_low"]] > 0).all().all()), f["period"].tolist()
    (True, ['2025Q1', '2025Q2'])
    """
    from scipy.special import expit, logit
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    g = series[(series.metric == metric) & (series.segment == segment) & (series.segment_value == value)
               & (series.status == "ok")].dropna(subset=["value"])
    if len(g) < MIN_FORECAST_PERIODS:
        return pd.DataFrame(columns=["period", "value", "ci_low", "ci_high", "method"])
    y = g.value.to_numpy(dtype=float)
    lo, hi = bounds(metric) if limits is None else limits
    inside = (lo is None or bool(np.all(y > lo))) and (hi is None or bool(np.all(y < hi)))
    scale = ""
    if inside and lo is not None and hi is not None:
        def back(z: np.ndarray) -> np.ndarray:
            return lo + (hi - lo) * expit(z)
        z, scale = logit((y - lo) / (hi - lo)), " on the logit scale"
    elif inside and lo is not None:
        def back(z: np.ndarray) -> np.ndarray:
            return lo + np.exp(z)
        z, scale = np.log(y - lo), " on the log scale"
    else:
        def back(z: np.ndarray) -> np.ndarray:
            return np.clip(z, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        z = y
        if lo is not None or hi is not None:
            scale = ", clipped to the range"
    trend = len(g) >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ETSModel(pd.Series(z), error="add", trend="add" if trend else None, damped_trend=trend)
        fit = model.fit(disp=False)
        frame = fit.get_prediction(start=len(z), end=len(z) + horizon - 1).summary_frame(alpha=1 - confidence)
    from engagement.measure.periods import parse_period

    last = parse_period(g.period.iloc[-1])
    return pd.DataFrame({
        "period": [last.shift(k).label for k in range(1, horizon + 1)],
        "value": back(frame["mean"].to_numpy()), "ci_low": back(frame["pi_lower"].to_numpy()),
        "ci_high": back(frame["pi_upper"].to_numpy()),
        "method": ("ETS, damped additive trend" if trend else "simple exponential smoothing") + scale,
    })


def seasonal_components(monthly: pd.DataFrame, *, metric: str, segment: str = "all",
                        value: str = "all") -> pd.DataFrame | None:
    """Trend, seasonal and residual parts of a monthly series (statsmodels ``seasonal_decompose``).

    Needs two full years (24 months) or more; returns None otherwise.
    """
    from statsmodels.tsa.seasonal import seasonal_decompose

    g = monthly[(monthly.metric == metric) & (monthly.segment == segment) & (monthly.segment_value == value)
                & (monthly.status == "ok")].dropna(subset=["value"])
    if len(g) < 24:
        return None
    res = seasonal_decompose(g.value.to_numpy(dtype=float), period=12, model="additive")
    return pd.DataFrame({"period": g.period.to_numpy(), "observed": res.observed, "trend": res.trend,
                         "seasonal": res.seasonal, "residual": res.resid})
