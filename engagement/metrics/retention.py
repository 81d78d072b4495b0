"""Churn and retention."""

from __future__ import annotations

import numbers
from typing import Any

from engagement._result import MetricResult
from engagement._validate import check_confidence, check_count
from engagement.intervals import NAN, proportion_result, wilson_interval

__all__ = ["churn_rate", "retention_rate", "compound_churn_rate"]


def churn_rate(lost: int, at_start: int, *, confidence: float = 0.95) -> MetricResult:
    """Customer churn rate: customers lost in the period / customers at its start.

    Parameters
    ----------
    lost : int
        Customers present at the start of the period who left during it.
    at_start : int
        Customers at the start of the period. Customers acquired during the period
        are excluded from both counts.
    confidence : float, default 0.95
        Level of the Wilson interval.

    Returns
    -------
    MetricResult
        A fraction in [0, 1].

    Notes
    -----
    * "(customers at end - customers at start) / customers at start" is **not**
      churn: it nets new customers against lost ones, so a business losing 10% of
      its customers while adding 10% shows 0% churn.
    * The start-of-period base ignores customers who join and leave inside the
      period; with fast growth use shorter periods or an exposure base.
    * Convert a monthly rate to a yearly one with :func:`compound_churn_rate`
      (``1 - (1 - c)^12``), never by multiplying by 12.

    Examples
    --------
    The seed example, 100 of 1,000 customers lost in a month:

    >>> import engagement as eg
    >>> eg.churn_rate(100, 1000).value
    0.1
    """
    return proportion_result(
        "churn_rate", lost, at_start, successes_name="lost", trials_name="at_start",
        confidence=confidence, method_note="lost / customers at start",
    )


def retention_rate(
    at_end: int | None,
    new: int | None,
    at_start: int,
    *,
    retained: int | None = None,
    confidence: float = 0.95,
) -> MetricResult:
    """Customer retention rate over a period.

    Parameters
    ----------
    at_end : int or None
        Customers at the end of the period (E).
    new : int or None
        Customers acquired during the period (N).
    at_start : int
        Customers at the start of the period (S).
    retained : int, optional
        Customers present at the start who are still customers at the end
        (``|S ∩ active at end|``). When given, it is the estimate (the cohort
        method); E and N, if given too, give the ``(E - N) / S`` figure in
        ``details`` for comparison.
    confidence : float, default 0.95
        Level of the Wilson interval.

    Returns
    -------
    MetricResult
        A fraction in [0, 1].

    Notes
    -----
    The practitioners' formula ``CRR = (E - N) / S`` equals ``1 - churn`` only when
    no customer acquired during the period has already left by its end. A
    customer acquired and lost inside the period is counted in N but not in E, so
    ``(E - N)`` undercounts the retained starters and the rate is biased low; it
    can even go negative. Count the retained starters directly (``retained=``)
    where the data allows. ``(E - N) < 0`` is refused.

    Examples
    --------
    The seed example: 1,000 at start, 200 new, 1,100 at end:

    >>> import engagement as eg
    >>> eg.retention_rate(1100, 200, 1000).value
    0.9
    >>> eg.retention_rate(None, None, 1000, retained=900).value
    0.9
    """
    confidence = check_confidence(confidence)
    s = check_count(at_start, "at_start")
    details: dict[str, Any] = {}
    ena = None
    if at_end is not None or new is not None:
        if at_end is None or new is None:
            raise ValueError("`at_end` and `new` must be given together (or both None with `retained`).")
        e = check_count(at_end, "at_end")
        nn = check_count(new, "new")
        ena = e - nn
        if ena > s:
            raise ValueError(
                f"`at_end` - `new` ({ena:,}) exceeds `at_start` ({s:,}): more starters retained than there were."
            )
        details.update(at_end=e, new=nn, ena_value=(ena / s if s else NAN))
    if retained is not None:
        r = check_count(retained, "retained")
        res = proportion_result(
            "retention_rate", r, s, successes_name="retained", trials_name="at_start",
            confidence=confidence, method_note="cohort: retained starters / customers at start",
            details=details,
        )
        return res
    if ena is None:
        raise ValueError("Give `at_end` and `new`, or `retained`.")
    if ena < 0:
        raise ValueError(
            f"`at_end` - `new` is negative ({ena:,}): more customers were acquired than remain at the end, "
            "so some new customers left within the period and (E - N) / S is meaningless. "
            "Pass `retained=` (starters still customers at the end) instead."
        )
    low, high = wilson_interval(ena, s, confidence)
    return MetricResult(
        metric="retention_rate", value=ena / s if s else NAN, ci_low=low, ci_high=high, n=s,
        method="(E - N) / S, Wilson interval (biased low if new customers left within the period)",
        numerator=ena, denominator=s, confidence=confidence, unit="fraction", details=details,
    )


def compound_churn_rate(rate: float, periods: float) -> float:
    """Churn over ``periods`` consecutive periods at a constant per-period ``rate``.

    ``1 - (1 - rate) ** periods``: 5% monthly churn is 46%, not 60%, a year.

    Examples
    --------
    >>> import engagement as eg
    >>> round(eg.compound_churn_rate(0.05, 12), 4)
    0.4596
    """
    if isinstance(rate, MetricResult):
        rate = rate.value
    if not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"`rate` must be a fraction in [0, 1], got {rate!r}.")
    if not isinstance(periods, numbers.Real) or periods < 0:
        raise ValueError(f"`periods` must be a non-negative number, got {periods!r}.")
    return 1 - (1 - float(rate)) ** float(periods)
