"""Web metrics: conversion, click-through, bounce, pages per session, session duration."""

from __future__ import annotations

from typing import Any

import numpy as np

from engagement._result import MetricResult
from engagement._validate import aligned_clusters, check_confidence, check_range, numeric_values
from engagement.intervals import (
    NONNEGATIVE,
    cluster_moments,
    mean_result,
    proportion_result,
    ratio_from_moments,
    ratio_of_totals,
)

__all__ = [
    "conversion_rate",
    "click_through_rate",
    "bounce_rate",
    "pages_per_session",
    "average_session_duration",
]


def conversion_rate(conversions: int, visitors: int, *, confidence: float = 0.95) -> MetricResult:
    """Conversion rate: visitors (or sessions) with a conversion / visitors (or sessions).

    Notes
    -----
    Count each visitor (user base) or session (session base) once however many
    times it converted; GA4 reports both as "key event rate". Say which base.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.conversion_rate(25, 1000).value
    0.025
    """
    return proportion_result(
        "conversion_rate", conversions, visitors, successes_name="conversions", trials_name="visitors",
        confidence=confidence, method_note="converting visitors / visitors",
    )


def click_through_rate(clicks: int, impressions: int, *, confidence: float = 0.95) -> MetricResult:
    """Click-through rate: clicks / impressions.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.click_through_rate(30, 1000).value
    0.03
    """
    return proportion_result(
        "click_through_rate", clicks, impressions, successes_name="clicks", trials_name="impressions",
        confidence=confidence, method_note="clicks / impressions",
    )


def bounce_rate(bounces: int, sessions: int, *, confidence: float = 0.95) -> MetricResult:
    """Bounce rate: bounced sessions / sessions.

    Notes
    -----
    Three definitions are in use, and their numbers are not comparable:
    Universal Analytics (single-hit sessions), GA4 (1 - engaged sessions, where
    engaged = > 10 s, a key event or >= 2 pageviews) and PostHog (<= 1 pageview,
    no interaction and < 10 s). The measurement layer sessionises with a
    30-minute timeout and counts a session with a single pageview as bounced
    (UA); pass the counts of your own definition here.

    Examples
    --------
    The seed example, 400 of 500 sessions leave after one page:

    >>> import engagement as eg
    >>> eg.bounce_rate(400, 500).value
    0.8
    """
    return proportion_result(
        "bounce_rate", bounces, sessions, successes_name="bounces", trials_name="sessions",
        confidence=confidence, method_note="bounced sessions / sessions",
    )


def pages_per_session(pageviews: Any, sessions: int | None = None, *, visitors: Any = None,
                      confidence: float = 0.95) -> MetricResult:
    """Pages per session: pageviews / sessions.

    Either totals (``pageviews``, ``sessions``) or one pageview count per session
    (``sessions`` None; t interval). With one count per session, ``visitors`` says whose session each
    is: one visitor's sessions are alike, so the interval is then the ratio estimator's over visitors
    (a t interval over sessions is too narrow when visitors differ).

    Examples
    --------
    >>> import engagement as eg
    >>> eg.pages_per_session(4500, 1500).value
    3.0
    >>> eg.pages_per_session([1, 2, 6]).value
    3.0
    >>> eg.pages_per_session([1, 2, 6], visitors=["v1", "v1", "v2"]).n
    2
    """
    if sessions is not None:
        return ratio_of_totals(
            "pages_per_session", pageviews, sessions, numerator_name="pageviews", denominator_name="sessions",
            unit="ratio", method="pageviews / sessions", count_numerator=True, confidence=confidence,
        )
    x, n_missing = numeric_values(pageviews, "pageviews")
    check_range(x, "pageviews", 1, np.inf, "A session has at least one pageview.")
    if visitors is not None:
        c, sy, sx, syy, sxx, sxy = cluster_moments(x, aligned_clusters(pageviews, visitors, "pageviews",
                                                                       "visitors"))
        res = ratio_from_moments("pages_per_session", c, sy, sx, syy, sxx, sxy,
                                 confidence=check_confidence(confidence), unit="ratio",
                                 method="mean pageviews per session, clustered by visitor", bounds=(1, np.inf))
        return MetricResult(**{**res.to_dict(), "n_missing": n_missing})
    return mean_result(
        "pages_per_session", pageviews, name="pageviews", confidence=check_confidence(confidence), unit="ratio",
        clean=(x, n_missing), method_prefix="mean pageviews per session", bounds=(1, np.inf),
    )


def average_session_duration(
    durations: Any,
    *,
    statistic: str = "mean",
    confidence: float = 0.95,
) -> MetricResult:
    """Average session duration in seconds (first to last event of each session).

    Parameters
    ----------
    durations : array-like of seconds or Timedeltas
        One duration per session; single-page sessions have 0 s.
    statistic : {"mean", "median"}, default "mean"

    Notes
    -----
    UA and PostHog measure from the first to the last event, so the last page's
    reading time is never counted and bounced sessions count 0 s: the figure
    understates time on site. Durations are skewed; the median is often the
    better summary.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.average_session_duration([0, 60, 120]).value
    60.0
    """
    x, n_missing = numeric_values(durations, "durations")
    check_range(x, "durations", 0, np.inf, "A session cannot last a negative time.")
    return mean_result(
        "average_session_duration", durations, name="durations", confidence=check_confidence(confidence),
        unit="seconds", statistic=statistic, clean=(x, n_missing), method_prefix="first to last event",
        bounds=NONNEGATIVE,
    )
