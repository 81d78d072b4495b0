"""Activity metrics: active users, stickiness, usage, first-week engagement,
engagement rate and score, and referral rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from engagement._result import MetricResult
from engagement._validate import (
    check_argument,
    check_confidence,
    check_count,
    check_nonnegative,
    check_range,
    check_whole,
    numeric_values,
)
from engagement.intervals import NAN, mean_result, proportion_result

__all__ = [
    "active_users",
    "stickiness",
    "product_usage_rate",
    "engagement_rate",
    "first_week_engagement",
    "engagement_scores",
    "engagement_score",
    "referral_rate",
]


def active_users(ids: Any) -> MetricResult:
    """Distinct active customers among the ids of their activity (DAU, WAU, MAU).

    Pass the customer ids of the value events in a window: one day for DAU, the
    trailing 7 or 30 days for WAU and MAU (PostHog, GA4), or a calendar month.
    Missing ids (anonymous activity) are counted in ``n_missing``.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.active_users(["a", "b", "a", None]).value
    2.0
    """
    if isinstance(ids, (str, bytes)):
        raise ValueError("`ids` must be a sequence of customer ids, not one string.")
    s = pd.Series(list(ids) if not isinstance(ids, (pd.Series, np.ndarray, pd.Index)) else ids)
    missing = int(s.isna().sum())
    distinct = int(s.dropna().nunique())
    return MetricResult(
        metric="active_users", value=float(distinct), ci_low=NAN, ci_high=NAN, n=len(s) - missing,
        n_missing=missing, method="distinct customer ids with a value event in the window", unit="count",
    )


def stickiness(dau: Any, mau: int) -> MetricResult:
    """Stickiness: daily actives / monthly actives (DAU/MAU).

    Parameters
    ----------
    dau : int or array-like of int
        One day's actives, or the daily actives of every day of the month; with a
        sequence the ratio is mean DAU / MAU (Mixpanel's definition), which does
        not depend on which day is picked.
    mau : int
        Distinct actives over the month (or trailing 30 days).

    Notes
    -----
    A figure of population counts, not a sample estimate (no interval). A partial
    month biases it. DAU/MAU of 0.2 means the average monthly user is active on
    about 6 days of 30.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.stickiness(200, 1000).value
    0.2
    >>> eg.stickiness([100, 300, 200], 1000).value
    0.2
    """
    m = check_count(mau, "mau")
    if np.ndim(dau) == 0:
        daily = np.array([check_count(dau, "dau")], dtype=float)
        n_missing = 0
        how = "DAU / MAU"
    else:
        daily, n_missing = numeric_values(dau, "dau")
        check_range(daily, "dau", 0, np.inf, "Daily active counts cannot be negative.")
        check_whole(daily, "dau", "Daily active counts are whole numbers.")
        how = "mean daily actives / monthly actives"
    over = daily > m
    if over.any():
        raise ValueError(
            f"`dau`: {int(over.sum())} of {len(daily)} days have more actives than `mau` ({m:,}) "
            f"(e.g. {daily[over][0]:g}); a day's actives are a subset of the month's."
        )
    value = float(daily.mean()) / m if m and len(daily) else NAN
    return MetricResult(
        metric="stickiness", value=value, ci_low=NAN, ci_high=NAN, n=m, n_missing=n_missing, method=how,
        numerator=float(daily.mean()) if len(daily) else NAN, denominator=m, unit="fraction",
        details={"days": len(daily)},
    )


def product_usage_rate(active: int, customers: int, *, confidence: float = 0.95) -> MetricResult:
    """Share of customers who used the product (any value event) in the period.

    Measure it over the customers present from the period's start (the
    measurement layer does): customers who joined mid-period had less time to
    use it, and mixing them in makes the rate move with the acquisition rate.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.product_usage_rate(640, 1000).value
    0.64
    """
    return proportion_result(
        "product_usage_rate", active, customers, successes_name="active", trials_name="customers",
        confidence=confidence, method_note="customers with a value event / customers",
    )


def engagement_rate(engaged: int, customers: int, *, confidence: float = 0.95) -> MetricResult:
    """Customer engagement rate: share of customers engaged on any channel in the period.

    "Engaged" is the analyst's declared rule (e.g. a product event, an email
    click, a survey answer or a purchase); :func:`engagement_score` measures depth.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.engagement_rate(300, 400).value
    0.75
    """
    return proportion_result(
        "engagement_rate", engaged, customers, successes_name="engaged", trials_name="customers",
        confidence=confidence, method_note="engaged customers / customers",
    )


def first_week_engagement(
    active_days: Any,
    *,
    min_active_days: int = 1,
    window_days: int = 7,
    confidence: float = 0.95,
) -> MetricResult:
    """Share of new customers active on at least ``min_active_days`` of their first week.

    Parameters
    ----------
    active_days : array-like of int
        For each new customer whose first ``window_days`` days are complete, the
        number of distinct days (0..window_days) with a value event, day 0 being
        the sign-up day.
    min_active_days : int, default 1
        Days of activity that count as engaged (activation threshold).
    window_days : int, default 7

    Notes
    -----
    Customers whose first week is not yet over must be left out, not counted as
    not engaged; the measurement layer does so. Missing values count in ``n_missing``.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.first_week_engagement([0, 1, 3, 7], min_active_days=2).value
    0.5
    """
    confidence = check_confidence(confidence)
    k = check_count(min_active_days, "min_active_days")
    w = check_count(window_days, "window_days")
    x, n_missing = numeric_values(active_days, "active_days")
    check_range(x, "active_days", 0, w, f"A customer is active on 0 to {w} days of a {w}-day window.")
    check_whole(x, "active_days")
    res = proportion_result(
        "first_week_engagement", int((x >= k).sum()), len(x), successes_name="engaged",
        trials_name="new_customers", confidence=confidence,
        method_note=f"new customers active on >= {k} of the first {w} days",
        details={"mean_active_days": float(x.mean()) if len(x) else NAN, "min_active_days": k},
    )
    return MetricResult(**{**res.to_dict(), "n_missing": n_missing})


def engagement_scores(
    activity: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    normalize: str | None = None,
    reference: float | None = None,
) -> pd.Series:
    """Per-customer engagement score: the weighted sum of activity counts.

    Parameters
    ----------
    activity : DataFrame
        One row per customer, one column per activity count (sessions, purchases,
        email clicks, survey answers, ...). Missing counts are refused: a customer
        with no activity has 0, not NaN.
    weights : mapping of column -> weight
        Non-negative weights, the analyst's parameters.
    normalize : {None, "p90"}, default None
        ``None`` returns the raw weighted sum. ``"p90"`` rescales linearly so that
        ``reference`` (default: this data's 90th percentile) scores 100, capped at
        100 (Accoil's convention, linear instead of exponential).
    reference : float, optional
        Raw score mapped to 100. Freeze it from a base period: a score normalised
        on each period's own distribution is not comparable across periods.

    Returns
    -------
    Series
        Scores aligned with ``activity``'s index.

    Examples
    --------
    >>> import pandas as pd
    >>> import engagement as eg
    >>> df = pd.DataFrame({"sessions": [1, 4], "orders": [0, 2]})
    >>> eg.engagement_scores(df, {"sessions": 1, "orders": 5}).tolist()
    [1.0, 14.0]
    """
    check_argument("normalize", [None, "p90"], normalize)
    if not isinstance(activity, pd.DataFrame):
        raise ValueError("`activity` must be a DataFrame with one column per activity count.")
    if not weights:
        raise ValueError("`weights` must name at least one activity column.")
    missing_cols = [c for c in weights if c not in activity.columns]
    if missing_cols:
        raise ValueError(
            f"`weights` names columns not in `activity`: {missing_cols}; columns are {list(activity.columns)}."
        )
    total = np.zeros(len(activity))
    for col, w in weights.items():
        w = check_nonnegative(w, f"weights[{col!r}]")
        x = activity[col]
        values, n_missing = numeric_values(x, f"activity[{col!r}]")
        if n_missing:
            raise ValueError(
                f"`activity[{col!r}]`: {n_missing:,} of {len(x):,} values are missing; "
                "a customer with no activity has a count of 0."
            )
        check_range(values, f"activity[{col!r}]", 0, np.inf, "Activity counts cannot be negative.")
        total += w * values
    scores = pd.Series(total, index=activity.index, name="engagement_score")
    if normalize == "p90":
        ref = float(np.quantile(total, 0.9)) if reference is None else check_nonnegative(reference, "reference")
        scores = (100 * scores / ref).clip(upper=100) if ref > 0 else scores * 0.0
    return scores


def engagement_score(
    activity: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    normalize: str | None = None,
    reference: float | None = None,
    confidence: float = 0.95,
) -> MetricResult:
    """Mean customer engagement score with a t interval (see :func:`engagement_scores`).

    Examples
    --------
    >>> import pandas as pd
    >>> import engagement as eg
    >>> df = pd.DataFrame({"sessions": [1, 4], "orders": [0, 2]})
    >>> eg.engagement_score(df, {"sessions": 1, "orders": 5}).value
    7.5
    """
    scores = engagement_scores(activity, weights, normalize=normalize, reference=reference)
    how = "weighted activity sum" + (" rescaled to 100 at the reference" if normalize else "")
    return mean_result(
        "engagement_score", scores, name="scores", confidence=check_confidence(confidence), unit="score",
        method_prefix=how, details={"weights": dict(weights)},
    )


def referral_rate(
    count: int,
    base: int,
    *,
    definition: str = "referred_share_of_new",
    confidence: float = 0.95,
) -> MetricResult:
    """Referral rate under one of its two legitimate, explicitly named definitions.

    Parameters
    ----------
    count : int
        ``"referred_share_of_new"``: new customers who came through a referral.
        ``"referrer_participation"``: customers who referred at least one person.
    base : int
        ``"referred_share_of_new"``: all new customers of the period.
        ``"referrer_participation"``: customers eligible to refer (active in the period).
    definition : {"referred_share_of_new", "referrer_participation"}

    Notes
    -----
    "Referral rate" means different things in different sources; the two
    answer different questions (how much growth comes from referrals vs. how many
    customers advocate), so the definition is a required choice, reported in the
    result.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.referral_rate(30, 200).value
    0.15
    """
    check_argument("definition", ["referred_share_of_new", "referrer_participation"], definition)
    if definition == "referred_share_of_new":
        names = ("referred_new", "new_customers")
        note = "referred new customers / all new customers"
    else:
        names = ("referrers", "eligible_customers")
        note = "customers who referred / eligible customers"
    return proportion_result(
        "referral_rate", count, base, successes_name=names[0], trials_name=names[1],
        confidence=confidence, method_note=note, details={"definition": definition},
    )
