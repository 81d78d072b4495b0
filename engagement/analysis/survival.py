"""How long customers stay: Kaplan-Meier curves by segment, log-rank tests, median lifetimes.

Subscription customers are followed from sign-up to cancellation; customers
still subscribed at the end of the data are censored there. statsmodels'
``SurvfuncRight`` estimates the curves and median lifetimes (with intervals),
``survdiff`` runs the log-rank test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from engagement.measure.customers import lifetimes

__all__ = ["lifetimes", "kaplan_meier", "logrank"]



def kaplan_meier(lives: pd.DataFrame, *, confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier curves and median lifetimes per ``segment_value`` (or overall).

    Returns
    -------
    curves : DataFrame
        ``segment_value, time, survival, ci_low, ci_high, at_risk`` (pointwise
        log-log intervals from Greenwood's standard errors).
    medians : DataFrame
        ``segment_value, customers, events, median, ci_low, ci_high`` in months
        (NaN where fewer than half have left).
    """
    lives = lives if "segment_value" in lives.columns else lives.assign(segment_value="all")
    z = stats.norm.ppf(0.5 + confidence / 2)
    curves, medians = [], []
    for value, g in lives.groupby("segment_value", sort=True):
        sf = SurvfuncRight(g.duration.to_numpy(dtype=float), g.event.to_numpy(dtype=float))
        s, se = sf.surv_prob, sf.surv_prob_se
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.log(-np.log(s))
            se_theta = se / (s * np.abs(np.log(s)))
            low = np.exp(-np.exp(theta + z * se_theta))
            high = np.exp(-np.exp(theta - z * se_theta))
        low = np.where(s >= 1, 1.0, np.where(s <= 0, 0.0, low))
        high = np.where(s >= 1, 1.0, np.where(s <= 0, 0.0, high))
        curves.append(pd.DataFrame({"segment_value": value, "time": sf.surv_times, "survival": s,
                                    "ci_low": low, "ci_high": high, "at_risk": sf.n_risk}))
        median = sf.quantile(0.5)
        try:
            with np.errstate(divide="ignore", invalid="ignore"):  # log(-log S) where a curve reaches 0
                mlo, mhi = sf.quantile_ci(0.5, alpha=1 - confidence)
        except (ValueError, IndexError):
            mlo, mhi = np.nan, np.nan
        medians.append({"segment_value": value, "customers": len(g), "events": int(g.event.sum()),
                        "median": float(median) if median is not None else np.nan,
                        "ci_low": float(mlo) if mlo is not None else np.nan,
                        "ci_high": float(mhi) if mhi is not None else np.nan})
    return pd.concat(curves, ignore_index=True), pd.DataFrame(medians)


def logrank(lives: pd.DataFrame) -> dict[str, float]:
    """Log-rank test that the segments' survival curves are equal (statsmodels ``survdiff``)."""
    if "segment_value" not in lives.columns or lives.segment_value.nunique() < 2:
        raise ValueError("logrank needs `lives` with a segment_value column holding at least two groups.")
    chisq, p = survdiff(lives.duration.to_numpy(dtype=float), lives.event.to_numpy(dtype=float),
                        lives.segment_value.to_numpy())
    return {"chi2": float(chisq), "df": int(lives.segment_value.nunique() - 1), "p_value": float(p)}
