"""Social media metrics: engagement rate (with its denominators) and follower growth."""

from __future__ import annotations

from typing import Any

import numpy as np

from engagement._result import MetricResult
from engagement._validate import (
    check_argument,
    check_confidence,
    check_count,
    check_range,
    numeric_values,
)
from engagement.intervals import NAN, NONNEGATIVE, mean_result, ratio_interval, ratio_of_totals

__all__ = ["social_engagement_rate", "follower_growth_rate"]

DENOMINATORS = ("reach", "impressions", "followers")


def social_engagement_rate(
    engagements: Any,
    base: Any,
    *,
    denominator: str = "reach",
    method: str = "pooled",
    confidence: float = 0.95,
) -> MetricResult:
    """Social engagement rate: engagements (likes + comments + shares ...) / base.

    Parameters
    ----------
    engagements : int or array-like
        Total engagements, or one count per post.
    base : int or array-like
        Reach, impressions or followers at post time (see ``denominator``), as a
        total or per post.
    denominator : {"reach", "impressions", "followers"}, default "reach"
        Engagement rate by reach (ERR, the most common), by impressions, or by
        followers (per post). Only the label differs; pass the matching ``base``.
    method : {"pooled", "mean_of_posts"}, default "pooled"
        With per-post arrays: ``"pooled"`` is sum(engagements) / sum(base) with a
        ratio-estimator interval over posts; ``"mean_of_posts"`` is the unweighted
        mean of per-post rates with a t interval (Hootsuite's convention). Posts
        with a zero base have no rate and are counted in ``n_missing``.

    Notes
    -----
    No standard exists: the denominators give different numbers for the same
    posts, and the mean of per-post rates differs from the pooled rate whenever
    post sizes differ. One person can like and comment, so the rate can exceed 1;
    it is a ratio, not a proportion.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.social_engagement_rate(150, 5000).value
    0.03
    >>> round(eg.social_engagement_rate([10, 50], [100, 1000], method="mean_of_posts").value, 4)
    0.075
    """
    check_argument("denominator", DENOMINATORS, denominator)
    check_argument("method", ["pooled", "mean_of_posts"], method)
    confidence = check_confidence(confidence)
    if np.ndim(engagements) == 0 and np.ndim(base) == 0:
        res = ratio_of_totals(
            "social_engagement_rate", engagements, base, numerator_name="engagements",
            denominator_name=denominator, unit="fraction", method=f"engagements / {denominator}",
            count_numerator=True, confidence=confidence,
        )
        return MetricResult(**{**res.to_dict(), "details": {"denominator": denominator}})
    e, e_missing = numeric_values(engagements, "engagements")
    b, b_missing = numeric_values(base, denominator)
    if e_missing or b_missing or len(e) != len(b):
        raise ValueError(
            f"`engagements` and `{denominator}` must be complete per-post arrays of one length "
            f"(got {len(e) + e_missing} and {len(b) + b_missing} values, {e_missing + b_missing} missing)."
        )
    check_range(e, "engagements", 0, np.inf, "Engagement counts cannot be negative.")
    check_range(b, denominator, 0, np.inf, f"{denominator.capitalize()} cannot be negative.")
    details = {"denominator": denominator, "posts": len(e)}
    if method == "mean_of_posts":
        ok = b > 0
        rates = e[ok] / b[ok]
        res = mean_result(
            "social_engagement_rate", rates, name="rates", confidence=confidence, unit="fraction",
            clean=(rates, int((~ok).sum())), method_prefix=f"mean of per-post engagements / {denominator}",
            details=details, bounds=NONNEGATIVE,
        )
        return res
    total_b = float(b.sum())
    value = float(e.sum()) / total_b if total_b else NAN
    low, high = ratio_interval(e, b, confidence)
    return MetricResult(
        metric="social_engagement_rate", value=value, ci_low=low, ci_high=high, n=len(e),
        method=f"pooled engagements / {denominator}, ratio-estimator interval over posts",
        numerator=float(e.sum()), denominator=total_b, confidence=confidence, unit="fraction", details=details,
    )


def follower_growth_rate(followers_start: int, followers_end: int) -> MetricResult:
    """Follower growth rate over a period: (end - start) / start; negative when shrinking.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.follower_growth_rate(2000, 2100).value
    0.05
    """
    s = check_count(followers_start, "followers_start")
    e = check_count(followers_end, "followers_end")
    return MetricResult(
        metric="follower_growth_rate", value=(e - s) / s if s else NAN, ci_low=NAN, ci_high=NAN, n=s,
        method="(followers at end - at start) / at start", numerator=e - s, denominator=s, unit="fraction",
    )
