"""Intervals and standard errors: the building blocks every metric function and ``measure`` share.

Public, so that a notebook or a new metric computes its interval the way the
package does. All interval arithmetic is delegated to statsmodels and scipy;
this module chooses the method, handles empty populations (NaN with n = 0) and
packs the result in a :class:`~engagement.MetricResult` whose ``se`` field is the
estimate's standard error (NaN where the figure has no sampling error).

* from raw values: :func:`wilson_interval`, :func:`t_interval`,
  :func:`median_interval`, :func:`ratio_interval`, :func:`mean_result`;
* from the sums an engine returns (so no raw row leaves the engine):
  :func:`proportion_result`, :func:`mean_from_moments`,
  :func:`ratio_from_moments`, :func:`median_rank_bounds`,
  :func:`ratio_of_totals` (no interval: a ratio of known totals).

Examples
--------
>>> from engagement.intervals import mean_from_moments, wilson_interval
>>> [round(b, 4) for b in wilson_interval(30, 100, 0.95)]
[0.2189, 0.3958]
>>> r = mean_from_moments("aov", 4, 10.0, 30.0, confidence=0.95, unit="currency", method="mean")
>>> r.value, round(r.se, 4)
(2.5, 0.6455)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import pandas as pd

# scipy and statsmodels are imported by the functions that use them, so that `import engagement` (the command
# line, a notebook that only loads data) does not load them: about a second and a half of every start
from engagement._result import MetricResult
from engagement._validate import (
    check_argument,
    check_confidence,
    check_count,
    check_counts_le,
    check_nonnegative,
    numeric_values,
)

__all__ = ["NAN", "NONNEGATIVE", "within", "wilson_interval", "t_interval", "median_interval", "ratio_interval",
           "proportion_result", "ratio_of_totals", "mean_result", "mean_from_moments", "ratio_from_moments",
           "median_rank_bounds", "se_from_interval", "bootstrap_interval"]

NAN = float("nan")

#: what a duration, an amount or a count per unit can be: nothing below 0
NONNEGATIVE = (0.0, math.inf)


def within(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """An interval cut to ``bounds``, the values the quantity can take (NaN bounds stay NaN).

    A symmetric interval around a small sample's mean can reach values nobody can have: two customers answered
    after 100 s and 20,000 s give a mean response time whose t interval starts at -116,377 s, five ratings on
    1-5 (4, 5, 3, 4, 5) a mean whose interval ends at 5.24. No value outside ``bounds`` is possible, so cutting
    them off loses no coverage: the interval says only what the data can support.

    Examples
    --------
    >>> within(-116377.0, 136477.0, NONNEGATIVE)
    (0.0, 136477.0)
    >>> within(3.16, 5.24, (1, 5))
    (3.16, 5.0)
    """
    if bounds is None:
        return low, high
    lo, hi = float(bounds[0]), float(bounds[1])
    return (low if math.isnan(low) else min(max(low, lo), hi)), (high if math.isnan(high) else max(min(high, hi), lo))


def se_from_interval(low: float, high: float, confidence: float) -> float:
    """The standard error a symmetric normal interval of this width implies (approximate for medians).

    Examples
    --------
    >>> round(se_from_interval(-1.959963984540054, 1.959963984540054, 0.95), 12)
    1.0
    """
    from scipy import stats
    if math.isnan(low) or math.isnan(high):
        return NAN
    return (high - low) / (2 * float(stats.norm.ppf(0.5 + confidence / 2)))


def wilson_interval(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint
    if trials == 0:
        return NAN, NAN
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    # Rounding leaves ~1e-18 above 0 at k = 0 (and below 1 at k = n); the exact
    # interval contains the estimate and lies in [0, 1].
    p = successes / trials
    return max(0.0, min(float(low), p)), min(1.0, max(float(high), p))


def t_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval for a mean; NaN bounds for fewer than two values."""
    from scipy import stats
    n = len(values)
    if n < 2:
        return NAN, NAN
    mean = float(np.mean(values))
    sem = float(stats.sem(values))
    if sem == 0:
        return mean, mean
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return float(low), float(high)


def median_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Distribution-free interval for the median from order statistics (scipy)."""
    from scipy import stats
    if len(values) < 2:
        return NAN, NAN
    result = stats.quantile_test(values, q=float(np.median(values)), p=0.5)
    ci = result.confidence_interval(confidence_level=confidence)
    low, high = float(ci.low), float(ci.high)
    return low, high


def ratio_interval(numer: np.ndarray, denom: np.ndarray, confidence: float) -> tuple[float, float]:
    """Interval for a pooled ratio sum(y)/sum(x) over independent units.

    Linearised (delta-method) variance of the ratio estimator,
    ``var(R) = sum((y - R x)^2) / (n (n - 1) xbar^2)``, with a t quantile on
    ``n - 1`` degrees of freedom. Used where the numerator is not a count of the
    denominator's members (engagements per reach, pageviews per session).
    """
    r = ratio_from_moments("ratio", len(numer), float(numer.sum()), float(denom.sum()), float((numer**2).sum()),
                           float((denom**2).sum()), float((numer * denom).sum()), confidence=confidence,
                           unit="ratio", method="")
    return r.ci_low, r.ci_high


def proportion_result(
    metric: str,
    successes: Any,
    trials: Any,
    *,
    successes_name: str,
    trials_name: str,
    confidence: float,
    method_note: str = "",
    details: dict[str, Any] | None = None,
) -> MetricResult:
    """A share of a population with a Wilson interval; NaN with n = 0 when empty."""
    confidence = check_confidence(confidence)
    k = check_count(successes, successes_name)
    n = check_count(trials, trials_name)
    check_counts_le(k, successes_name, n, trials_name)
    low, high = wilson_interval(k, n, confidence)
    method = "share of " + trials_name.replace("_", " ") + ", Wilson interval"
    if method_note:
        method = f"{method_note}, Wilson interval"
    return MetricResult(
        metric=metric,
        value=k / n if n else NAN,
        ci_low=low,
        ci_high=high,
        n=n,
        method=method,
        numerator=k,
        denominator=n,
        confidence=confidence,
        unit="fraction",
        se=math.sqrt(k / n * (1 - k / n) / n) if n else NAN,
        details=details or {},
    )


def ratio_of_totals(
    metric: str,
    numerator: Any,
    denominator: Any,
    *,
    numerator_name: str,
    denominator_name: str,
    unit: str,
    method: str,
    count_numerator: bool = False,
    confidence: float = 0.95,
) -> MetricResult:
    """A ratio of two known totals: a figure, not a sample estimate (no interval)."""
    confidence = check_confidence(confidence)
    num = check_count(numerator, numerator_name) if count_numerator else check_nonnegative(numerator, numerator_name)
    den = check_count(denominator, denominator_name)
    return MetricResult(
        metric=metric,
        value=num / den if den else NAN,
        ci_low=NAN,
        ci_high=NAN,
        n=den,
        method=method,
        numerator=num,
        denominator=den,
        confidence=confidence,
        unit=unit,
    )


def mean_result(
    metric: str,
    values: Any,
    *,
    name: str,
    confidence: float,
    unit: str,
    statistic: str = "mean",
    interval: str = "t",
    seed: int | None = 0,
    method_prefix: str = "",
    clean: tuple[np.ndarray, int] | None = None,
    details: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
) -> MetricResult:
    """Mean or median of observations with a t, order-statistic or bootstrap interval; ``bounds``: the values an
    observation can take, where the interval is cut (:func:`within`)."""
    from scipy import stats
    confidence = check_confidence(confidence)
    check_argument("statistic", ["mean", "median"], statistic)
    check_argument("interval", ["t", "bootstrap"], interval)
    x, n_missing = clean if clean is not None else numeric_values(values, name)
    n = len(x)
    extra = dict(details or {})
    se = NAN
    if n == 0:
        value, low, high = NAN, NAN, NAN
        how = f"{statistic}"
    elif statistic == "mean":
        value = float(np.mean(x))
        se = float(stats.sem(x)) if n >= 2 else NAN
        if interval == "t":
            low, high = t_interval(x, confidence)
            how = "mean, t interval"
        else:
            low, high = bootstrap_interval(x, np.mean, confidence, seed)
            how = "mean, BCa bootstrap interval (2,000 resamples)"
        extra.setdefault("median", float(np.median(x)))
    else:
        value = float(np.median(x))
        low, high = median_interval(x, confidence)
        # approximate standard error of the median from its distribution-free interval
        se = se_from_interval(low, high, confidence) if n >= 2 else NAN
        how = "median, order-statistic (binomial) interval"
        extra.setdefault("mean", float(np.mean(x)))
    if method_prefix:
        how = f"{method_prefix}; {how}"
    low, high = within(low, high, bounds)
    return MetricResult(
        metric=metric,
        value=value,
        ci_low=low,
        ci_high=high,
        n=n,
        n_missing=n_missing,
        method=how,
        confidence=confidence,
        unit=unit,
        se=se,
        details=extra,
    )


def bootstrap_interval(x: np.ndarray, statistic: Any, confidence: float, seed: int | None) -> tuple[float, float]:
    """BCa bootstrap interval of ``statistic`` (scipy, 2,000 resamples, seeded: the same bounds on every run).

    Examples
    --------
    >>> import numpy as np
    >>> from engagement.intervals import bootstrap_interval
    >>> low, high = bootstrap_interval(np.arange(20.0), np.mean, 0.95, seed=0)
    >>> bool(low < 9.5 < high)
    True
    """
    from scipy import stats
    if len(x) < 2 or np.ptp(x) == 0:
        v = float(statistic(x))
        return (v, v) if len(x) >= 2 else (NAN, NAN)
    res = stats.bootstrap(
        (x,),
        statistic,
        confidence_level=confidence,
        n_resamples=2000,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_from_moments(
    metric: str,
    n: int,
    total: float,
    total_sq: float,
    *,
    confidence: float,
    unit: str,
    method: str,
    n_missing: int = 0,
    bounds: tuple[float, float] | None = None,
) -> MetricResult:
    """Mean with a t interval from ``n``, sum and sum of squares (what an engine returns).

    Identical to :func:`mean_result` on the raw values (up to rounding), without
    moving them out of the engine; ``bounds`` as there.
    """
    from scipy import stats
    confidence = check_confidence(confidence)
    n = int(n)
    if n == 0:
        return MetricResult(metric=metric, value=NAN, ci_low=NAN, ci_high=NAN, n=0, n_missing=n_missing,
                            method=method, confidence=confidence, unit=unit)
    mean = total / n
    low = high = NAN
    sem = NAN
    if n >= 2:
        var = max((total_sq - n * mean * mean) / (n - 1), 0.0)
        sem = math.sqrt(var / n)
        if sem == 0:
            low = high = mean
        else:
            half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
            low, high = within(mean - half, mean + half, bounds)
    return MetricResult(metric=metric, value=mean, ci_low=low, ci_high=high, n=n, n_missing=n_missing,
                        method=method + ", t interval", numerator=total, denominator=n, confidence=confidence,
                        unit=unit, se=sem)


def ratio_from_moments(
    metric: str,
    n: int,
    sum_y: float,
    sum_x: float,
    sum_yy: float,
    sum_xx: float,
    sum_xy: float,
    *,
    confidence: float,
    unit: str,
    method: str,
    bounds: tuple[float, float] | None = None,
) -> MetricResult:
    """Pooled ratio sum(y)/sum(x) over ``n`` units with the ratio-estimator interval.

    Uses ``sum((y - R x)^2) = Syy - 2 R Sxy + R^2 Sxx``, so it equals
    :func:`ratio_interval` on the raw units. ``bounds``: the values the ratio can take (a mean time:
    :data:`NONNEGATIVE`; a mean rating on 1-5: ``(1, 5)``); the interval is cut there (:func:`within`).

    Examples
    --------
    Two customers' support times, one ticket of 100 s and one of 20,000 s: the t interval on one degree of
    freedom would start far below zero, and no mean time can.

    >>> r = ratio_from_moments("t", 2, 20100.0, 2.0, 100.0**2 + 20000.0**2, 2.0, 20100.0, confidence=0.95,
    ...                        unit="seconds", method="mean", bounds=NONNEGATIVE)
    >>> r.value, r.ci_low, round(r.ci_high)
    (10050.0, 0.0, 136477)
    """
    from scipy import stats
    confidence = check_confidence(confidence)
    n = int(n)
    if n == 0 or sum_x == 0:
        return MetricResult(metric=metric, value=NAN, ci_low=NAN, ci_high=NAN, n=n, method=method,
                            confidence=confidence, unit=unit)
    ratio = sum_y / sum_x
    low = high = se = NAN
    if n >= 2:
        ss = max(sum_yy - 2 * ratio * sum_xy + ratio**2 * sum_xx, 0.0)
        var = ss / (n * (n - 1) * (sum_x / n) ** 2)
        se = math.sqrt(var)
        half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * se
        low, high = within(ratio - half, ratio + half, bounds)
    return MetricResult(metric=metric, value=ratio, ci_low=low, ci_high=high, n=n,
                        method=method + ", ratio-estimator interval", numerator=sum_y, denominator=sum_x,
                        confidence=confidence, unit=unit, se=se)


@functools.lru_cache(maxsize=4096)  # a pure function of two numbers, asked for every segment of every period
def median_rank_bounds(n: int, confidence: float) -> tuple[int, int]:
    """1-based ranks of the order statistics bounding the median's interval.

    The same interval as :func:`median_interval` (scipy's ``quantile_test``),
    expressed as ranks so an engine can pick the two values without returning
    the data. Returns ``(0, 0)`` where no such interval exists (too few values
    for the confidence level: scipy gives NaN bounds there too).
    """
    from scipy import stats
    if n < 2:
        return 0, 0
    x = np.arange(1, n + 1, dtype="float64")
    ci = stats.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(confidence_level=confidence)
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
        return 0, 0
    return int(round(ci.low)), int(round(ci.high))


def design_effect(clusters: float, sum_y: float, sum_x: float, sum_yy: float, sum_xx: float, sum_xy: float,
                  item_variance: float) -> float:
    """Kish's design effect of a per-item mean sum(y) / sum(x) whose items cluster in units (answers in their
    respondent, sessions in their visitor, emails in their customer): the ratio estimator's variance over
    the variance the same items would have if every one were independent, at least 1.

    ``y`` and ``x`` are each unit's total of the item values and its number of items; ``item_variance`` is
    the variance of one item's value (``p (1 - p)`` for a share, ``p + d - (p - d)^2`` for a net score).
    Both variances carry the same small-sample factor, so that a design effect of exactly 1 comes out
    when every unit has one item; one below 1 (units more alike across than within) is not credited.

    Examples
    --------
    Two customers with 10 emails each, one opens all, the other none (open rate 50%): the 20 emails
    say no more than one independent email would (the clustered variance 0.25 against 0.25 / 19):

    >>> from engagement.intervals import design_effect
    >>> round(design_effect(2, 10, 20, 100, 200, 100, 0.25), 2)
    19.0
    >>> design_effect(3, 2, 3, 2, 3, 2, 2 / 9)  # one item each: no clustering
    1.0
    """
    n_items = float(sum_x)
    if clusters < 2 or n_items < 2 or clusters >= n_items or not item_variance > 0:
        return 1.0
    ratio = sum_y / sum_x
    ss = max(sum_yy - 2 * ratio * sum_xy + ratio**2 * sum_xx, 0.0)
    clustered = ss * clusters / ((clusters - 1) * n_items**2)
    independent = item_variance / (n_items - 1)
    return max(1.0, clustered / independent)


def clustered_share_result(result: MetricResult, clusters: float, sum_yy: float, sum_xx: float, sum_xy: float,
                           *, of: str = "customer") -> MetricResult:
    """A share of items (a Wilson-interval :class:`~engagement.MetricResult`) whose items cluster in units:
    the same share, its interval and standard error at the effective sample size, items / design effect.

    With several items per unit (emails per customer, sessions per visitor, answers per respondent) the
    items are not independent: one customer opens most of their emails, another none. Wilson's interval on
    the items would be too narrow. Dividing the counts by the design effect (:func:`design_effect`; Kish
    1965, the first-order Rao-Scott correction) keeps Wilson's behaviour at small counts and near 0 and 1
    while giving the clustered variance. ``n`` becomes the effective sample size (rounded), which is what
    the tests of differences and the pooling of segments read; ``numerator`` and ``denominator`` stay the
    counted items, and ``details`` holds ``design_effect`` and ``clusters``.

    Examples
    --------
    >>> from engagement.intervals import clustered_share_result, proportion_result
    >>> flat = proportion_result("email_open_rate", 10, 20, successes_name="opened", trials_name="delivered",
    ...                          confidence=0.95)
    >>> r = clustered_share_result(flat, 2, 100, 200, 100)
    >>> r.value, r.n, round(r.details["design_effect"], 1), r.ci_high - r.ci_low > 2 * (flat.ci_high - flat.ci_low)
    (0.5, 1, 19.0, True)
    """
    from statsmodels.stats.proportion import proportion_confint
    k, n = float(result.numerator or 0.0), float(result.denominator or 0.0)
    if not n:
        return result
    p = k / n
    deff = design_effect(clusters, k, n, sum_yy, sum_xx, sum_xy, p * (1 - p))
    note = f", clustered by {of} (at the effective sample size)"
    if deff == 1.0:
        return dataclasses.replace(result, method=result.method + note,
                                   details={**result.details, "design_effect": 1.0, "clusters": float(clusters)})
    low, high = proportion_confint(k / deff, n / deff, alpha=1 - result.confidence, method="wilson")
    return dataclasses.replace(
        result, ci_low=max(0.0, min(float(low), p)), ci_high=min(1.0, max(float(high), p)),
        n=max(int(round(n / deff)), 1), se=math.sqrt(p * (1 - p) / n * deff), method=result.method + note,
        details={**result.details, "design_effect": deff, "clusters": float(clusters)})


def cluster_moments(y: np.ndarray, clusters: np.ndarray) -> tuple[int, float, float, float, float, float]:
    """``(clusters, sum_y, sum_x, sum_yy, sum_xx, sum_xy)`` of per-item values ``y`` grouped by ``clusters``:
    each cluster's total ``y`` and its number of items ``x``, the moments :func:`ratio_from_moments` and
    :func:`design_effect` read.

    Examples
    --------
    >>> import numpy as np
    >>> from engagement.intervals import cluster_moments
    >>> cluster_moments(np.array([1.0, 1.0, 0.0]), np.array(["a", "a", "b"]))
    (2, 2.0, 3.0, 4.0, 5.0, 4.0)
    """
    codes, _ = pd.factorize(pd.Series(clusters), sort=True)
    sy = np.bincount(codes, weights=np.asarray(y, dtype="float64"))
    nx = np.bincount(codes).astype("float64")
    return (len(sy), float(sy.sum()), float(nx.sum()), float((sy**2).sum()), float((nx**2).sum()),
            float((nx * sy).sum()))
