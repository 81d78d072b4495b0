"""Survey metrics: NPS, CSAT, CES and review rating."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engagement._result import MetricResult
from engagement._validate import (
    aligned_clusters,
    check_argument,
    check_confidence,
    check_count,
    check_range,
    check_whole,
    numeric_values,
)
from engagement.intervals import (
    NAN,
    bootstrap_interval,
    cluster_moments,
    clustered_share_result,
    design_effect,
    mean_result,
    proportion_result,
    ratio_from_moments,
)

__all__ = [
    "nps",
    "nps_from_counts",
    "nps_difference",
    "csat",
    "ces",
    "review_rating",
]

NPS_METHODS = ("adjusted-wald", "wald", "bootstrap")


def _scores(values: Any, name: str, low: int, high: int, what: str) -> tuple[np.ndarray, int]:
    x, n_missing = numeric_values(values, name)
    check_range(x, name, low, high, what)
    check_whole(x, name, what)
    return x, n_missing


def _net_interval(pos: float, neg: float, n: float, confidence: float, adjusted: bool) -> tuple[float, float]:
    """Wald or adjusted-Wald interval of (pos - neg)/n, each answer scored +1/0/-1.

    The per-answer variance of a +1/0/-1 variable is ``p + d - (p - d)^2``.
    Adjusted-Wald adds 3/4 to each of the two outer counts and 3 to n before
    applying the same formula (Rocks 2016; MeasuringU), which keeps the interval
    from collapsing to zero width at small n or extreme shares.
    """
    from scipy import stats  # on first use (see engagement.intervals)
    if n == 0:
        return NAN, NAN
    if adjusted:
        pos, neg, n = pos + 0.75, neg + 0.75, n + 3
    p, d = pos / n, neg / n
    centre = p - d
    var = p + d - centre**2
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(max(var, 0.0) / n)
    return max(-1.0, centre - half), min(1.0, centre + half)


def nps_from_counts(
    promoters: int,
    passives: int,
    detractors: int,
    *,
    confidence: float = 0.95,
    method: str = "adjusted-wald",
    n_missing: int = 0,
    design_effect: float = 1.0,
) -> MetricResult:
    """Net Promoter Score from the counts of promoters, passives and detractors.

    Parameters
    ----------
    promoters, passives, detractors : int
        Respondents answering 9-10, 7-8 and 0-6.
    confidence : float, default 0.95
        Confidence level of the interval.
    method : {"adjusted-wald", "wald"}
        Interval method (see :func:`nps`). The bootstrap needs the answers: use
        :func:`nps`.
    n_missing : int, default 0
        Non-answers already excluded, carried into the result.
    design_effect : float, default 1
        Variance inflation from answers that cluster in their respondent (one customer answering several
        surveys answers alike): the interval and ``se`` are those of the effective sample size,
        answers / design effect, and ``n`` is that size (rounded). :func:`engagement.intervals.design_effect`
        computes it from each respondent's totals; :func:`nps` does so when given ``respondents``.

    Returns
    -------
    MetricResult
        ``value`` in points (-100..100); ``details`` holds the three counts and shares.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.nps_from_counts(50, 40, 10).value
    40.0
    """
    confidence = check_confidence(confidence)
    check_argument("method", ["adjusted-wald", "wald"], method)
    pro = check_count(promoters, "promoters")
    pas = check_count(passives, "passives")
    det = check_count(detractors, "detractors")
    n = pro + pas + det
    value = 100 * (pro - det) / n if n else NAN
    deff = float(design_effect)
    if not deff >= 1.0:
        raise ValueError(f"`design_effect` must be 1 or more, got {design_effect!r}.")
    low, high = _net_interval(pro / deff, det / deff, n / deff, confidence, adjusted=method == "adjusted-wald")
    low, high = 100 * low, 100 * high
    if n:
        # Adjusted-Wald shrinks toward 0; at n of 1 or 2 with unanimous answers the
        # shrunken interval can miss the raw estimate. Widen it to include it.
        low, high = min(low, value), max(high, value)
    p_, d_ = (pro / n, det / n) if n else (NAN, NAN)
    shares = {
        "promoters": pro,
        "passives": pas,
        "detractors": det,
        "promoter_share": pro / n if n else NAN,
        "passive_share": pas / n if n else NAN,
        "detractor_share": det / n if n else NAN,
    }
    clustered = ", clustered by respondent (at the effective sample size)" if deff > 1 else ""
    return MetricResult(
        metric="nps",
        value=value,
        ci_low=low,
        ci_high=high,
        n=max(int(round(n / deff)), 1) if n and deff > 1 else n,
        n_missing=n_missing,
        method=f"% promoters - % detractors over respondents, {method} interval{clustered}",
        numerator=pro - det,
        denominator=n,
        confidence=confidence,
        unit="points",
        se=100 * math.sqrt(max(p_ + d_ - (p_ - d_) ** 2, 0.0) * deff / n) if n else NAN,
        details={**shares, "design_effect": deff},
    )


def nps(
    scores: Any,
    *,
    confidence: float = 0.95,
    method: str = "adjusted-wald",
    seed: int | None = 0,
    respondents: Any = None,
) -> MetricResult:
    """Net Promoter Score of survey answers on the 0-10 scale, in points.

    Promoters answer 9-10, passives 7-8, detractors 0-6;
    NPS = 100 x (promoters - detractors) / respondents.

    Parameters
    ----------
    scores : list, array or Series of int
        One answer per respondent, whole numbers 0 to 10. Missing answers are
        excluded and counted in ``n_missing``.
    confidence : float, default 0.95
        Confidence level of the interval.
    method : {"adjusted-wald", "wald", "bootstrap"}, default "adjusted-wald"
        ``"adjusted-wald"`` adds 3/4 to the promoter and detractor counts and 3 to
        n, then uses the trinomial variance ``p + d - (p - d)^2``; it has the best
        coverage of the simple methods (Rocks 2016, MeasuringU). ``"wald"`` is the
        unadjusted form; ``"bootstrap"`` is a BCa bootstrap of the +1/0/-1 scores.
    seed : int, default 0
        Seed of the bootstrap.
    respondents : array-like, optional
        Who gave each answer. One customer's answers to several surveys are alike, so answers are not
        independent: the interval is then that of the effective sample size, answers / design effect
        (:func:`engagement.intervals.design_effect`), and ``n`` is that size. Without it every answer
        counts as independent, which overstates the precision when customers answer more than once.

    Returns
    -------
    MetricResult
        ``value`` in points, ``details`` with counts and shares of the three groups (and ``design_effect``).

    Notes
    -----
    Several popular write-ups get NPS wrong:

    * The denominator is the **respondents** (passives included), never the whole
      customer base; dividing by all customers understates both shares.
    * Answers run from **0 to 10** (11 points); "1-10" scales lose the 0 and
      shift every detractor threshold.
    * Non-integer answers (7.5) are not NPS answers and are refused, not binned.

    Examples
    --------
    The seed article's example, 50 promoters and 10 detractors of 100 respondents:

    >>> import engagement as eg
    >>> scores = [10] * 50 + [8] * 40 + [3] * 10
    >>> eg.nps(scores).value
    40.0

    The same 100 answers from 20 customers, five each, every customer answering alike: they carry
    the information of about 20 answers, not 100 (the design effect is 5 with small-sample factors).

    >>> r = eg.nps(scores, respondents=[i // 5 for i in range(100)])
    >>> r.value, r.n, round(r.details["design_effect"], 2)
    (40.0, 19, 5.21)
    """
    check_argument("method", NPS_METHODS, method)
    confidence = check_confidence(confidence)
    x, n_missing = _scores(scores, "scores", 0, 10, "NPS answers are whole numbers from 0 to 10.")
    pro = int((x >= 9).sum())
    det = int((x <= 6).sum())
    pas = len(x) - pro - det
    deff = 1.0
    if respondents is not None:
        if method == "bootstrap":
            raise ValueError("`respondents` needs an interval from counts: use method='adjusted-wald' or 'wald'.")
        signed = np.where(x >= 9, 1.0, np.where(x <= 6, -1.0, 0.0))
        c, sy, sx, syy, sxx, sxy = cluster_moments(signed, aligned_clusters(scores, respondents, "scores",
                                                                            "respondents"))
        p_, d_ = (pro / len(x), det / len(x)) if len(x) else (0.0, 0.0)
        deff = design_effect(c, sy, sx, syy, sxx, sxy, p_ + d_ - (p_ - d_) ** 2)
    if method != "bootstrap":
        return nps_from_counts(pro, pas, det, confidence=confidence, method=method, n_missing=n_missing,
                               design_effect=deff)
    base = nps_from_counts(pro, pas, det, confidence=confidence, method="wald", n_missing=n_missing)
    signed = np.where(x >= 9, 1.0, np.where(x <= 6, -1.0, 0.0))
    low, high = bootstrap_interval(signed, np.mean, confidence, seed) if len(x) else (NAN, NAN)
    return MetricResult(
        **{
            **base.to_dict(),
            "ci_low": 100 * low,
            "ci_high": 100 * high,
            "method": "% promoters - % detractors over respondents, BCa bootstrap interval",
        }
    )


def nps_difference(
    scores_a: Any,
    scores_b: Any,
    *,
    confidence: float = 0.95,
) -> MetricResult:
    """Difference of two independent NPS figures (a - b) in points, with a z test.

    The variance of each NPS is the trinomial ``(p + d - (p - d)^2) / n``; the
    difference's standard error is the root of their sum. The interval uses the
    adjusted-Wald counts (+3/4, +3/4, +3) of each group, the two-sided p-value the
    unadjusted variances (``details["p_value"]``, ``details["z"]``).

    Parameters
    ----------
    scores_a, scores_b : array-like or MetricResult
        Answers 0-10 of the two groups, or results of :func:`nps`.
    confidence : float, default 0.95

    Returns
    -------
    MetricResult
        ``value`` = NPS(a) - NPS(b) in points.

    Examples
    --------
    >>> import engagement as eg
    >>> d = eg.nps_difference([10] * 60 + [0] * 40, [10] * 40 + [0] * 60)
    >>> round(d.value, 1)
    40.0
    """
    from scipy import stats  # on first use (see engagement.intervals)
    confidence = check_confidence(confidence)
    a = scores_a if isinstance(scores_a, MetricResult) else nps(scores_a)
    b = scores_b if isinstance(scores_b, MetricResult) else nps(scores_b)
    if a.metric != "nps" or b.metric != "nps":
        raise ValueError("`scores_a` and `scores_b` must be NPS answers or results of `nps`.")
    if a.n == 0 or b.n == 0:
        return MetricResult(
            metric="nps_difference", value=NAN, ci_low=NAN, ci_high=NAN, n=a.n + b.n,
            method="difference of NPS, trinomial variance", confidence=confidence, unit="points",
            details={"p_value": NAN, "z": NAN, "n_a": a.n, "n_b": b.n},
        )

    def parts(r: MetricResult, adjusted: bool) -> tuple[float, float]:
        deff = float(r.details.get("design_effect", 1.0))
        pro, det = r.details["promoters"] / deff, r.details["detractors"] / deff
        n = (r.details["promoters"] + r.details["passives"] + r.details["detractors"]) / deff
        if adjusted:
            pro, det, n = pro + 0.75, det + 0.75, n + 3
        p, d = pro / n, det / n
        return p - d, (p + d - (p - d) ** 2) / n

    ca, va = parts(a, True)
    cb, vb = parts(b, True)
    zq = stats.norm.ppf(0.5 + confidence / 2)
    half = zq * math.sqrt(va + vb)
    value = a.value - b.value
    low = 100 * max(-2.0, ca - cb - half)
    high = 100 * min(2.0, ca - cb + half)
    low, high = min(low, value), max(high, value)
    _, ua = parts(a, False)
    _, ub = parts(b, False)
    se = math.sqrt(ua + ub)
    z = (value / 100) / se if se > 0 else (0.0 if value == 0 else math.copysign(math.inf, value))
    p_value = float(2 * stats.norm.sf(abs(z)))
    return MetricResult(
        metric="nps_difference",
        value=value,
        ci_low=low,
        ci_high=high,
        n=a.n + b.n,
        method="difference of NPS, trinomial variance (adjusted-Wald interval, z test)",
        confidence=confidence,
        unit="points",
        se=100 * se,
        details={"p_value": p_value, "z": float(z), "n_a": a.n, "n_b": b.n},
    )


def csat(
    ratings: Any,
    scale: int = 5,
    *,
    method: str = "top2box",
    satisfied_min: int | None = None,
    confidence: float = 0.95,
    respondents: Any = None,
) -> MetricResult:
    """Customer satisfaction: share of satisfied respondents (top-2-box) or mean rating.

    Parameters
    ----------
    ratings : list, array or Series
        Answers on a 1..``scale`` scale; missing answers are excluded and counted.
    scale : int, default 5
        Number of points of the scale (5 for the usual 1-5).
    method : {"top2box", "topbox", "mean"}, default "top2box"
        ``"top2box"`` is the reported CSAT: the share answering one of the two
        highest points (4-5 on a 1-5 scale), Wilson interval. ``"topbox"`` counts
        only the highest point. ``"mean"`` is the average rating, t interval.
    satisfied_min : int, optional
        Lowest answer counted as satisfied; overrides the box method's threshold.
    confidence : float, default 0.95
    respondents : array-like, optional
        Who gave each answer: a customer's answers are alike, so the share's interval is Wilson's at the
        effective sample size (:func:`engagement.intervals.clustered_share_result`) and the mean's the
        ratio estimator over respondents. Without it every answer counts as independent.

    Returns
    -------
    MetricResult
        A fraction in [0, 1] for the box methods; a rating in [1, scale] for ``"mean"``.

    Notes
    -----
    The CSAT most tools report (Zendesk, Delighted, Intercom) is the top-2-box
    share; a 3 on a 1-5 scale is *not* satisfied. The mean rating is a different
    statistic ("average satisfaction"). A common seed example states
    ``(4+5+3+4+5)/5 = 4``: the mean of those ratings is **4.2**, and their CSAT is
    4 satisfied of 5 = **80%**.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.csat([4, 5, 3, 4, 5], method="mean").value
    4.2
    >>> eg.csat([4, 5, 3, 4, 5]).value
    0.8
    """
    check_argument("method", ["top2box", "topbox", "mean"], method)
    confidence = check_confidence(confidence)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 3:
        raise ValueError(f"`scale` must be a whole number of points >= 3, got {scale!r}.")
    x, n_missing = _scores(ratings, "ratings", 1, scale, f"CSAT answers are whole numbers from 1 to {scale}.")
    groups = None if respondents is None else aligned_clusters(ratings, respondents, "ratings", "respondents")
    if method == "mean" and groups is not None:
        c, sy, sx, syy, sxx, sxy = cluster_moments(x, groups)
        return MetricResult(**{**ratio_from_moments(
            "csat_mean", c, sy, sx, syy, sxx, sxy, confidence=confidence, unit="score",
            method=f"mean rating on 1-{scale}, clustered by respondent", bounds=(1, scale)).to_dict(),
            "n_missing": n_missing})
    if method == "mean":
        return mean_result(
            "csat_mean", ratings, name="ratings", confidence=confidence, unit="score",
            clean=(x, n_missing), method_prefix=f"mean rating on 1-{scale}", bounds=(1, scale),
        )
    threshold = satisfied_min if satisfied_min is not None else (scale - 1 if method == "top2box" else scale)
    if not 1 <= threshold <= scale:
        raise ValueError(f"`satisfied_min` must be within 1..{scale}, got {threshold!r}.")
    k = int((x >= threshold).sum())
    res = proportion_result(
        "csat", k, len(x), successes_name="satisfied", trials_name="respondents",
        confidence=confidence,
        method_note=f"share answering {threshold}-{scale} on 1-{scale} ({method})",
        details={"satisfied_min": threshold, "scale": scale},
    )
    if groups is not None:
        c, _sy, _sx, syy, sxx, sxy = cluster_moments((x >= threshold).astype("float64"), groups)
        res = clustered_share_result(res, c, syy, sxx, sxy, of="respondent")
    return MetricResult(**{**res.to_dict(), "n_missing": n_missing})


def ces(
    ratings: Any,
    scale: int = 7,
    *,
    method: str = "mean",
    higher_is_better: bool | None = None,
    confidence: float = 0.95,
) -> MetricResult:
    """Customer Effort Score: mean answer, share of low-effort answers, or net effort.

    Parameters
    ----------
    ratings : list, array or Series
        Answers 1..``scale``.
    scale : int, default 7
        An odd number of points. 7 is CES 2.0 ("[Company] made it easy to handle
        my issue", agreement, higher is better); 5 is the original CEB question
        ("how much effort did you personally put forth", lower is better).
    method : {"mean", "low_effort_share", "net"}, default "mean"
        ``"low_effort_share"``: share of answers on the easy side of the midpoint
        (5-7 on the 7-point agreement scale), Wilson interval. ``"net"``: share easy
        minus share hard, in points, trinomial adjusted-Wald interval.
    higher_is_better : bool, optional
        Direction of the scale; defaults to True for 7 points and False for 5.
    confidence : float, default 0.95

    Notes
    -----
    Two incompatible scales share the name. Mixing a 1-5 "effort" scale (low is
    good) with a 1-7 "ease" scale (high is good) silently inverts a trend, so the
    direction is explicit here and reported in ``details``. One seed article says
    "a higher CES indicates more challenge": true only of the original 5-point
    effort question.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.ces([7, 6, 5, 4, 2]).value
    4.8
    >>> eg.ces([7, 6, 5, 4, 2], method="low_effort_share").value
    0.6
    """
    check_argument("method", ["mean", "low_effort_share", "net"], method)
    confidence = check_confidence(confidence)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 3 or scale % 2 == 0:
        raise ValueError(f"`scale` must be an odd whole number of points >= 3 (5 or 7), got {scale!r}.")
    hib = (scale != 5) if higher_is_better is None else bool(higher_is_better)
    x, n_missing = _scores(ratings, "ratings", 1, scale, f"CES answers are whole numbers from 1 to {scale}.")
    mid = (scale + 1) / 2
    easy = int(((x > mid) if hib else (x < mid)).sum())
    hard = int(((x < mid) if hib else (x > mid)).sum())
    details = {"scale": scale, "higher_is_better": hib, "low_effort": easy, "high_effort": hard}
    if method == "mean":
        return mean_result(
            "ces", ratings, name="ratings", confidence=confidence, unit="score",
            clean=(x, n_missing), details=details, bounds=(1, scale),
            method_prefix=f"mean answer on 1-{scale} ({'higher' if hib else 'lower'} is easier)",
        )
    if method == "low_effort_share":
        res = proportion_result(
            "ces_low_effort_share", easy, len(x), successes_name="low_effort", trials_name="respondents",
            confidence=confidence, method_note=f"share of low-effort answers on 1-{scale}", details=details,
        )
        return MetricResult(**{**res.to_dict(), "n_missing": n_missing})
    n = len(x)
    low, high = _net_interval(easy, hard, n, confidence, adjusted=True)
    value = 100 * (easy - hard) / n if n else NAN
    low, high = 100 * low, 100 * high
    if n:
        low, high = min(low, value), max(high, value)
    return MetricResult(
        metric="ces_net", value=value, ci_low=low, ci_high=high, n=n, n_missing=n_missing,
        method=f"% low effort - % high effort on 1-{scale}, adjusted-Wald interval",
        numerator=easy - hard, denominator=n, confidence=confidence, unit="points", details=details,
    )


def review_rating(ratings: Any, scale: int = 5, *, confidence: float = 0.95) -> MetricResult:
    """Average review rating (stars), t interval, with the share of positive reviews.

    Parameters
    ----------
    ratings : list, array or Series
        Star ratings 1..``scale`` (whole or half stars).
    scale : int, default 5

    Notes
    -----
    A mean of a few reviews is noisy: compare products by the interval, not the
    point value. ``details["positive_share"]`` is the share rated ``scale - 1`` or
    more.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.review_rating([5, 4, 4, 2, 5]).value
    4.0
    """
    confidence = check_confidence(confidence)
    x, n_missing = numeric_values(ratings, "ratings")
    check_range(x, "ratings", 1, scale, f"Ratings run from 1 to {scale} stars.")
    half_stars = 2 * x != np.floor(2 * x)
    if half_stars.any():
        raise ValueError(
            f"`ratings`: {int(half_stars.sum()):,} of {len(x):,} values are not whole or half stars "
            f"(e.g. {x[half_stars][0]!r})."
        )
    positive = float((x >= scale - 1).mean()) if len(x) else NAN
    return mean_result(
        "review_rating", ratings, name="ratings", confidence=confidence, unit="score",
        clean=(x, n_missing), details={"positive_share": positive, "scale": scale},
        method_prefix=f"mean stars on 1-{scale}", bounds=(1, scale),
    )
