"""Which segments really differ: each segment value against the rest of the customers.

The "rest" is rebuilt from the other values of the same segment column (they
partition the customers), from the measure table's sufficient statistics:
counts for proportions, NPS promoter and detractor shares recovered from the
score and its standard error, and moments (n, mean, SD) for means. Every test
of one call is corrected together with Benjamini-Hochberg.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from engagement.analysis.trends import correct, difference_test, figure_kind

__all__ = ["segment_tests", "corrected_family", "explained_gaps", "explained_summary", "apart_from_rest",
           "shift_share", "NOT_TESTED", "EXPLAINED_COLUMNS"]

#: why a segment value was not tested, beside the stated exclusions of :data:`NOT_TESTED`
NOT_POOLABLE = ("none (a median, ratio or total: the rest of the customers cannot be rebuilt from the segments' "
                "summaries)")
_POOLABLE = ("proportion", "net_score", "mean", "clustered_mean")


def _too_few(min_n: int) -> str:
    return f"none (fewer than {min_n} observations)"
#: Segment comparisons left out of the tests, and so out of the false-discovery family, with the reason:
#: ``(metric, segment)``, where a metric of ``None`` means every metric across that segment.
NOT_TESTED: dict[tuple[str | None, str], str] = {
    ("referral_rate", "acquisition_channel"): "holds by construction: referred customers come through the "
                                              "referral channel",
    (None, "value_tier"): "value tiers are cut by last year's spending: a gap across them is the metric's "
                          "relationship with spending, tested customer by customer",
}


def _pool(cols: dict[str, np.ndarray], methods: np.ndarray, keep: np.ndarray, kind: str, metric: str,
          unit: str) -> dict | None:
    """Combine the segment values selected by ``keep`` into one estimate with value, se, n (and counts), as
    :func:`_pooled` does; ``cols`` holds one group's value, se, n, numerator and denominator as arrays."""
    keep = keep & ~np.isnan(cols["value"]) & (cols["n"] > 0)
    if not keep.any():
        return None
    pooled = _pooled(kind, *(cols[c][keep] for c in _STATISTICS))
    if pooled is None:
        return None  # medians, ratios and population figures cannot be pooled from their summaries
    out = {"metric": metric, "unit": unit, "n": float(cols["n"][keep].sum()), "method": methods[keep][0],
           "kind": kind, "sampled": True, "value": pooled[0], "se": math.sqrt(pooled[1])}
    if kind in ("proportion", "clustered_mean"):
        out.update(numerator=float(cols["numerator"][keep].sum()),
                   denominator=float(cols["denominator"][keep].sum()))
    return out


_STATISTICS = ("value", "se", "n", "numerator", "denominator")


def _arrays(g: pd.DataFrame) -> dict[str, np.ndarray]:
    """A group's sufficient statistics as float arrays (NaN for a missing column or value)."""
    return {c: g[c].to_numpy(dtype=float, na_value=np.nan) if c in g else np.full(len(g), np.nan)
            for c in _STATISTICS}


def segment_tests(table: pd.DataFrame, *, metrics: list[str] | None = None, period_role: str = "current",
                  alpha: float = 0.05, min_n: int = 30, confidence: float = 0.95,
                  exclude: dict[tuple[str | None, str], str] | None = None) -> pd.DataFrame:
    """Each segment value against the rest of the customers, for every metric, with BH-corrected q-values.

    Comparisons whose answer is known before the data is read (the referral channel against the referral
    rate) are left out *before* the Benjamini-Hochberg correction: counted in the family, such a
    certain discovery loosens the threshold for every other test, and removing it from the findings
    afterwards leaves the others corrected for a family that was not the one reported. They stay in the
    output, untested, with the reason in ``test``.

    Parameters
    ----------
    table : DataFrame
        :func:`engagement.measure.measure` output.
    metrics : list of str, optional
    period_role : str, default "current"
    alpha : float, default 0.05
    min_n : int, default 30
        Segment values with fewer observations are reported but not tested.
    confidence : float, default 0.95
        Level of the differences' intervals.
    exclude : dict, optional
        ``{(metric or None, segment): reason}`` comparisons not to test; None means :data:`NOT_TESTED`,
        ``{}`` tests everything.

    Returns
    -------
    DataFrame
        ``segment, segment_value, metric, value, rest, difference, ci_low,
        ci_high, relative_difference, n, n_rest, p_value, test, q_value,
        significant``. The family corrected together is the rows with a p-value.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"metric": m, "segment": "acquisition_channel", "segment_value": v, "period": "2024Q4",
    ...          "period_role": "current", "status": "ok", "unit": "fraction", "method": "Wilson",
    ...          "value": k / 200, "numerator": k, "denominator": 200, "n": 200, "se": None}
    ...         for m, counts in {"referral_rate": (200, 0), "churn_rate": (30, 50)}.items()
    ...         for v, k in zip(("referral", "search"), counts)]
    >>> out = segment_tests(pd.DataFrame(rows))
    >>> out.test.tolist()[2:]  # doctest: +NORMALIZE_WHITESPACE
    ['none (holds by construction: referred customers come through the referral channel)',
     'none (holds by construction: referred customers come through the referral channel)']
    >>> int(out.p_value.notna().sum()), out.test.iloc[0]
    (2, 'two-proportion z-test')
    """
    exclude = NOT_TESTED if exclude is None else exclude
    d = table[(table.status == "ok") & (table.period_role == period_role) & (table.segment != "all")]
    if metrics is not None:
        d = d[d.metric.isin(metrics)]
    rows = []
    d = d.sort_values(["segment", "metric", "segment_value"], kind="stable")
    records = d.to_dict("records")
    for (segment, metric), where in sorted(d.groupby(["segment", "metric"], sort=True).indices.items()):
        if len(where) < 2:
            continue
        g = d.iloc[where]
        group = [records[i] for i in where]
        unit = group[0]["unit"]
        kind, _ = figure_kind(group[0])
        cols, methods = _arrays(g), g["method"].to_numpy(dtype=object)
        why = exclude.get((metric, segment), exclude.get((None, segment)))
        for j, row in enumerate(group):
            rest = _pool(cols, methods, np.arange(len(group)) != j, kind, metric, unit)
            base = {"segment": segment, "segment_value": row["segment_value"], "metric": metric, "unit": unit,
                    "period": row["period"], "value": row["value"], "n": row["n"]}
            if why is not None:
                rows.append({**base, "rest": rest["value"] if rest is not None else np.nan,
                             "n_rest": rest["n"] if rest is not None else 0, "difference": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "p_value": np.nan, "test": f"none ({why})"})
                continue
            if rest is None or row["n"] < min_n or rest["n"] < min_n:
                rows.append({**base, "rest": rest["value"] if rest is not None else np.nan,
                             "n_rest": rest["n"] if rest is not None else 0, "difference": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "p_value": np.nan,
                             "test": NOT_POOLABLE if kind not in _POOLABLE else _too_few(min_n)})
                continue
            res = difference_test({**row, "metric": metric}, rest, confidence)
            rows.append({**base, "rest": rest["value"], "n_rest": rest["n"], **res})
    out = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["segment", "segment_value", "metric", "unit", "period", "value", "n", "rest",
                                      "n_rest", "difference", "ci_low", "ci_high", "p_value", "test"])
    if out.empty:
        return out.assign(relative_difference=pd.Series(dtype="float64"), q_value=pd.Series(dtype="float64"),
                          significant=pd.Series(dtype="bool"))
    out["relative_difference"] = out["difference"] / out["rest"].abs()
    out["q_value"] = correct(out["p_value"], alpha)
    out["significant"] = out["q_value"] < alpha
    return out.reset_index(drop=True)


def corrected_family(tests: pd.DataFrame, alpha: float = 0.05) -> str:
    """The family that was corrected together, and what was left out of it and why, in one paragraph.

    Parameters
    ----------
    tests : DataFrame
        :func:`segment_tests` output.
    alpha : float, default 0.05
        The threshold the ``significant`` flags were set against.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"segment": ["plan", "plan", "value_tier"], "metric": ["churn_rate", "aov", "aov"],
    ...                   "p_value": [0.001, 0.2, None], "significant": [True, False, False],
    ...                   "test": ["two-proportion z", "Welch t", "none (cut by spending)"]})
    >>> print(corrected_family(t))
    1 of the 2 segment comparisons tested is significant after the Benjamini-Hochberg correction (q < 0.05); the 2 were corrected together. Not tested, and so outside that family: 1 comparison across value tier (cut by spending).
    """
    tested = tests.p_value.notna()
    n, k = int(tested.sum()), int((tests.significant & tested).sum())
    text = (f"{k:,} of the {n:,} segment comparisons tested {'is' if k == 1 else 'are'} significant after the "
            f"Benjamini-Hochberg correction (q < {alpha:g}); the {n:,} were corrected together.")
    parts = []
    left = tests[~tested]
    # a stated exclusion is named by its segment (and metric); too few observations, and what cannot be pooled,
    # are counted alone
    generic = (left.test == NOT_POOLABLE) | left.test.astype(str).str.startswith("none (fewer than ")
    scope = left.segment.where(~generic, "")
    for (test, segment), g in left.groupby([left.test, scope], sort=True):
        metrics = g.metric.unique()
        what = f" of {metrics[0].replace('_', ' ')}" if segment and len(metrics) == 1 and \
            (metrics[0], segment) in NOT_TESTED else ""
        where = f" across {segment.replace('_', ' ')}" if segment else ""
        why = str(test).removeprefix("none (").removesuffix(")")
        parts.append(f"{len(g):,} comparison{'' if len(g) == 1 else 's'}{what}{where} ({why})")
    if parts:
        text += " Not tested, and so outside that family: " + "; ".join(parts) + "."
    return text


def _share_variance(k: float, d: float) -> float:
    """Variance of a share k / d with one success and one failure added (Agresti-Caffo): a share of 0 or 1
    in a small group is not taken as exact."""
    p = (k + 1) / (d + 2)
    return p * (1 - p) / (d + 2)


def _pooled(kind: str, value: np.ndarray, se: np.ndarray, n: np.ndarray, num: np.ndarray,
            den: np.ndarray) -> tuple[float, float] | None:
    """(value, variance) of several segment values pooled, as :func:`_pool` does, on arrays."""
    keep = ~np.isnan(value) & (n > 0)
    value, se, n, num, den = value[keep], se[keep], n[keep], num[keep], den[keep]
    if not len(value):
        return None
    total = float(n.sum())
    if kind == "proportion":
        k, d = float(num.sum()), float(den.sum())
        if not d or np.isnan(k):
            return None
        f = min(total / d, 1.0)  # items that cluster count at their effective sample size (clustered_share_result)
        return k / d, _share_variance(k * f, d * f)
    if kind == "net_score":
        v, s = value / 100, se / 100
        both = s**2 * n + v**2
        pro, det = float(((v + both) / 2 * n).sum() / total), float(((both - v) / 2 * n).sum() / total)
        return 100 * (pro - det), 100**2 * max(pro + det - (pro - det) ** 2, 0) / total
    if kind == "clustered_mean" and total > 1:
        # a ratio of totals over customers (AOV): pooled totals; the within-value sums of squared residuals
        # add up (ss = var x X^2 x (n - 1) / n); the spread between the pooled values' own ratios is left out
        x = float(den.sum())
        if not x:
            return None
        ss = float((se**2 * den**2 * (n - 1) / n).sum())
        return float(num.sum()) / x, ss * total / ((total - 1) * x**2)
    if kind == "mean" and total > 1:
        mean = float((value * n).sum() / total)
        sumsq = float(((se**2 * n) * (n - 1) + n * value**2).sum())
        return mean, max((sumsq - total * mean**2) / (total - 1), 0.0) / total
    return None


def _group_estimates(g: pd.DataFrame, kind: str, overall: tuple[float, float, float] | None
                     ) -> dict[str, tuple[tuple[float, float, float] | None, tuple[float, float] | None]]:
    """For each segment value of one period, segment and metric: its own (value, variance, n) and the rest's
    (value, variance), pooled from the other values where the kind allows, else approximated from the whole
    base (all = w x segment + (1 - w) x rest, for medians and ratios)."""
    names = g.segment_value.astype(str).to_numpy()
    cols = _arrays(g)
    out = {}
    for j, name in enumerate(names):
        v, se, n = cols["value"][j], cols["se"][j], cols["n"][j]
        own = None if np.isnan(v) or np.isnan(se) or not n else (float(v), float(se) ** 2, float(n))
        if own is not None and kind == "proportion" and not np.isnan(cols["numerator"][j]) \
                and cols["denominator"][j] > 0:
            f = min(n / cols["denominator"][j], 1.0)
            own = (own[0], _share_variance(cols["numerator"][j] * f, cols["denominator"][j] * f), own[2])
        others = np.arange(len(names)) != j
        rest = _pooled(kind, *(cols[c][others] for c in ("value", "se", "n", "numerator", "denominator")))
        if rest is None and own is not None and overall is not None and overall[2] > own[2]:
            w = own[2] / overall[2]
            rest = ((overall[0] - w * own[0]) / (1 - w), max((overall[1] - w**2 * own[1]) / (1 - w) ** 2, 0.0))
        out[name] = (own, rest)
    return out


def apart_from_rest(changes: pd.DataFrame, table: pd.DataFrame, *, alpha: float = 0.05,
                    min_n: int = 30) -> pd.DataFrame:
    """Did each segment value change differently from the rest of the customers? (a difference in differences)

    For every segment row of ``changes`` (:func:`~engagement.analysis.change_tests`), the
    same comparison for the customers outside that value (the other values pooled,
    as :func:`segment_tests` does) and the test of segment change minus rest
    change: z = (d_seg - d_rest) / sqrt(var of the four estimates), the two groups
    and the two periods taken as independent (conservative where the same
    customers appear in both periods); shares' variances add one success and one
    failure to each group (Agresti-Caffo). For medians and ratios, which cannot be
    pooled from their summaries, the rest is approximated from the whole base:
    all = w x segment + (1 - w) x rest, w the segment's share of the observations.
    All these tests are corrected together (Benjamini-Hochberg). A segment value
    with fewer than ``min_n`` observations in either period is not tested (a share
    of 0 of 4 has no variance to speak of).

    A segment whose change is not apart from the rest's is the overall change
    seen in that segment's customers, and is not a finding of its own.

    Returns
    -------
    DataFrame
        ``changes`` with ``rest_change``, ``vs_rest``, ``vs_rest_p``, ``vs_rest_q``
        and ``apart`` (NaN / False for the overall rows).
    """
    out = changes.copy()
    needed = ["period_role", "segment", "segment_value", "metric", "value", "se", "n", "numerator", "denominator",
              "method", "kind"]
    ok = table.loc[table.status == "ok", [c for c in needed if c in table.columns]]
    roles = {"previous period": "previous", "a year earlier": "year_ago"}
    groups = {k: g for k, g in ok.groupby(["period_role", "segment", "metric"], sort=True)}
    overall = {k: g for k, g in ok[ok.segment == "all"].groupby(["period_role", "metric"], sort=True)}
    memo: dict[tuple, dict] = {}

    def estimates(role: str, segment: str, metric: str, value: str) -> tuple:
        key = (role, segment, metric)
        if key not in memo:
            g = groups.get(key)
            if g is None:
                memo[key] = {}
            else:
                kind, _ = figure_kind({"metric": metric, "kind": g.kind.iloc[0] if "kind" in g else None})
                base = overall.get((role, metric))
                whole = None
                if base is not None and len(base) and not pd.isna(base.value.iloc[0]) \
                        and not pd.isna(base.se.iloc[0]) and base.n.iloc[0]:
                    whole = (float(base.value.iloc[0]), float(base.se.iloc[0]) ** 2, float(base.n.iloc[0]))
                memo[key] = _group_estimates(g, kind, whole)
        return memo[key].get(str(value), (None, None))

    rest_change, vs_rest, vs_rest_p = (np.full(len(out), np.nan) for _ in range(3))  # set once, not cell by cell
    for i, r in enumerate(out.itertuples()):
        if r.segment == "all" or pd.isna(r.p_value) or r.comparison not in roles:
            continue
        own1, rest1 = estimates("current", r.segment, r.metric, r.segment_value)
        own0, rest0 = estimates(roles[r.comparison], r.segment, r.metric, r.segment_value)
        if None in (own1, rest1, own0, rest0) or min(own1[2], own0[2]) < min_n:
            continue
        d_seg, d_rest = own1[0] - own0[0], rest1[0] - rest0[0]
        var = own1[1] + own0[1] + rest1[1] + rest0[1]
        diff = d_seg - d_rest
        p = (1.0 if diff == 0 else 0.0) if var <= 0 else float(2 * stats.norm.sf(abs(diff) / math.sqrt(var)))
        rest_change[i], vs_rest[i], vs_rest_p[i] = d_rest, diff, p
    out["rest_change"], out["vs_rest"], out["vs_rest_p"] = rest_change, vs_rest, vs_rest_p
    out["vs_rest_q"] = correct(out["vs_rest_p"], alpha)
    out["apart"] = out["vs_rest_q"] < alpha
    return out


def shift_share(table: pd.DataFrame, *, metric: str, segment: str, against: str = "previous") -> pd.DataFrame:
    """Each segment value's part in the overall change of a share or a mean: its rate change and its mix change.

    With w the value's share of the denominator (customers at the start for
    churn, respondents for CSAT, orders for AOV) and v its figure, the overall
    figure is sum(w v), and its change splits exactly (midpoint weights) into

    * rate: (w1 + w0) / 2 x (v1 - v0), the value's own figure moving;
    * mix: (v1 + v0) / 2 x (w1 - w0), the value's weight in the base moving;

    summed over the values, rate + mix is the overall change when the values
    partition the base. ``against`` is ``"previous"`` or ``"year_ago"``.

    Returns
    -------
    DataFrame
        ``segment_value, weight, reference_weight, value, reference, rate, mix,
        contribution`` (contribution = rate + mix), the largest (in size) first;
        empty when the metric is not a share or a mean.

    Examples
    --------
    Churn 10% -> 20% in basic (half the customers, then half again), premium flat at 4%:

    >>> import pandas as pd
    >>> from engagement.analysis.segments import shift_share
    >>> rows = [("current", "basic", 0.20, 100), ("current", "premium", 0.04, 100),
    ...         ("previous", "basic", 0.10, 100), ("previous", "premium", 0.04, 100)]
    >>> t = pd.DataFrame([{"period_role": r, "segment": "plan", "segment_value": v, "metric": "churn_rate",
    ...                    "value": x, "n": n, "denominator": n, "kind": "proportion", "status": "ok"}
    ...                   for r, v, x, n in rows])
    >>> s = shift_share(t, metric="churn_rate", segment="plan")
    >>> s[["segment_value", "rate", "mix", "contribution"]].round(3).values.tolist()
    [['basic', 0.05, 0.0, 0.05], ['premium', 0.0, 0.0, 0.0]]
    """
    d = table[(table.metric == metric) & (table.segment == segment) & (table.status == "ok")]
    cols = ["segment_value", "weight", "reference_weight", "value", "reference", "rate", "mix", "contribution"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    kind, _ = figure_kind(d.iloc[0].to_dict())
    if kind not in ("proportion", "mean", "clustered_mean"):
        return pd.DataFrame(columns=cols)
    size = "n" if kind == "mean" else "denominator"  # orders, not customers, weigh AOV
    now = d[d.period_role == "current"].set_index("segment_value")
    ref = d[d.period_role == against].set_index("segment_value")
    values = sorted(set(now.index) | set(ref.index))
    w1 = now[size].reindex(values).fillna(0.0)
    w0 = ref[size].reindex(values).fillna(0.0)
    if not w1.sum() or not w0.sum():
        return pd.DataFrame(columns=cols)
    w1, w0 = w1 / w1.sum(), w0 / w0.sum()
    v1, v0 = now.value.reindex(values), ref.value.reindex(values)
    # a value absent in one period has no figure there: its own rate cannot move, only its weight
    v1, v0 = v1.fillna(v0), v0.fillna(v1)
    rate = (w1 + w0) / 2 * (v1 - v0)
    mix = (v1 + v0) / 2 * (w1 - w0)
    out = pd.DataFrame({"segment_value": values, "weight": w1.to_numpy(), "reference_weight": w0.to_numpy(),
                        "value": v1.to_numpy(), "reference": v0.to_numpy(), "rate": rate.to_numpy(),
                        "mix": mix.to_numpy(), "contribution": (rate + mix).to_numpy()})
    out["_size"] = out.contribution.abs()
    return out.sort_values(["_size", "segment_value"], ascending=[False, True], kind="stable").drop(
        columns="_size").reset_index(drop=True)


#: the kinds whose strata can be pooled from their summaries (medians and ratios cannot)
_STRATIFIABLE = ("proportion", "net_score", "mean", "clustered_mean")
EXPLAINED_COLUMNS = ("explained_by", "within_difference", "within_ci_low", "within_ci_high", "within_p")


def explained_gaps(data: Any, period: Any, tests: pd.DataFrame, *, alpha: float = 0.05, shrink: float = 0.5,
                   confidence: float = 0.95, **measure_options: Any) -> pd.DataFrame:
    """Which significant segment gaps another segment explains (a region gap that is only its plan mix).

    A gap of segment value v (of segment D) in a metric may come from another segment E
    whose values differ in the metric and are unevenly spread over D: basic-plan customers
    churn more, and if the south holds more of them, the south churns more with no effect
    of its own. Compared within each value e of E (customers of v against the rest of D's
    values *with the same e*), such a gap all but goes. The within-E difference is the
    strata's differences weighted by v's own spread over E (direct standardisation):
    sum_e w_e (v_e - rest_e), with variance sum_e w_e^2 (var v_e + var rest_e), the strata
    independent. A gap is explained by E when, compared within E, less than ``shrink``
    of it remains (or it changes sign) and what remains is not significant (p >= alpha).

    Only segments that have a significant gap in the same metric can explain one, and they are
    taken strongest gap first (smallest p): a gap that is explained explains nothing, so two
    overlapping segments never explain each other away. The crossed cells come from
    :func:`~engagement.measure.measure` with crossed segments (``"plan*region"``), current
    period only, with the ``measure_options`` the table was measured with. Medians and ratios,
    which cannot be pooled from their summaries, are never explained.

    Parameters
    ----------
    data : Dataset or mapping of DataFrames
    period : str or Period
        The period ``tests`` are about.
    tests : DataFrame
        :func:`segment_tests` output.
    alpha : float, default 0.05
    shrink : float, default 0.5
        The share of the gap that may remain, compared within E, for E to explain it.
    confidence : float, default 0.95
        Level of the within-E interval.
    **measure_options
        Passed to :func:`~engagement.measure.measure` (``fiscal_start_month``, ``business_model``, ...).

    Returns
    -------
    DataFrame
        ``tests`` with :data:`EXPLAINED_COLUMNS`: ``explained_by`` (the segment, or ``""``) and the
        within-E difference, interval and p of the segment that explains it best (NaN when none was
        compared).

    Examples
    --------
    Plan drives churn (basic 30%, premium 10%); the south holds most basic customers:

    >>> import pandas as pd
    >>> import engagement as eg
    >>> from engagement.analysis import explained_gaps, segment_tests
    >>> from engagement.measure import measure
    >>> rows = []
    >>> for plan, region, n, lost in [("basic", "south", 300, 90), ("basic", "north", 100, 30),
    ...                               ("premium", "south", 100, 10), ("premium", "north", 300, 30)]:
    ...     rows += [(plan, region, i < lost) for i in range(n)]
    >>> c = pd.DataFrame(rows, columns=["plan", "region", "lost"])
    >>> c["customer_id"] = [f"c{i}" for i in range(len(c))]
    >>> c["signup_at"] = pd.Timestamp("2023-01-01")
    >>> c["cancelled_at"] = c.lost.map({True: pd.Timestamp("2024-11-01"), False: pd.NaT})
    >>> ds = eg.load({"customers": c.drop(columns="lost")})
    >>> table = measure(ds, "2024Q4", segments=["plan", "region"], compare=False)
    >>> tests = segment_tests(table, metrics=["churn_rate"])
    >>> out = explained_gaps(ds, "2024Q4", tests)
    >>> out.loc[out.significant, ["segment", "segment_value", "explained_by"]].values.tolist()
    [['plan', 'basic', ''], ['plan', 'premium', ''], ['region', 'north', 'plan'], ['region', 'south', 'plan']]
    >>> float(out.loc[out.segment_value == "south", "within_difference"].iloc[0])
    0.0
    """
    from engagement.measure import measure
    from engagement.measure.segments import crossed, split_crossed

    out = tests.copy()
    out["explained_by"] = ""
    for col in EXPLAINED_COLUMNS[1:]:
        out[col] = np.nan
    if out.empty:
        return out
    sig = out[out.significant.fillna(False).astype(bool) & out.p_value.notna()]
    dims = {m: sorted(g.segment.unique()) for m, g in sig.groupby("metric", sort=True)}
    pairs = sorted({(a, b) for ds_ in dims.values() for i, a in enumerate(ds_) for b in ds_[i + 1:]})
    if not pairs:
        return out
    cells = measure(data, period, segments=[crossed(a, b) for a, b in pairs], compare=False, confidence=confidence,
                    **measure_options)
    cells = cells[(cells.status == "ok") & (cells.segment != "all") & cells.metric.isin(list(dims))]
    parsed = {}
    for (segment, metric), g in cells.groupby(["segment", "metric"], sort=True):
        first, second = segment.split("*")
        split = [split_crossed(str(v)) for v in g.segment_value]
        g = g.assign(_a=[a for a, _ in split], _b=[b for _, b in split])
        parsed[(metric, first, second)] = g.rename(columns={"_a": first, "_b": second}) if first != second else g
    z = stats.norm.ppf(0.5 + confidence / 2)
    standing = {(m, d): int(((sig.metric == m) & (sig.segment == d)).sum()) for m in dims for d in dims[m]}
    for i in sig.sort_values(["p_value", "metric", "segment", "segment_value"], kind="stable").index:
        r = out.loc[i]
        best = None
        for other in dims[r.metric]:
            if other == r.segment or not standing[(r.metric, other)]:
                continue
            g = parsed.get((r.metric, *sorted((r.segment, other))))
            if g is None:
                continue
            within = _within(g, r.segment, str(r.segment_value), other, r.metric)
            if within is None:
                continue
            diff, var = within
            p = (1.0 if diff == 0 else 0.0) if var <= 0 else float(2 * stats.norm.sf(abs(diff) / math.sqrt(var)))
            half = z * math.sqrt(max(var, 0.0))
            found = (other, diff, diff - half, diff + half, p)
            explains = p >= alpha and (abs(diff) < shrink * abs(r.difference) or diff * r.difference < 0)
            if explains and (best is None or not best[1] or abs(diff) < abs(best[0][1])):
                best = (found, True)
            elif best is None:
                best = (found, False)
        if best is None:
            continue
        (other, diff, low, high, p), explains = best
        out.loc[i, list(EXPLAINED_COLUMNS)] = [other if explains else "", diff, low, high, p]
        if explains:
            standing[(r.metric, r.segment)] -= 1
    return out


def _within(g: pd.DataFrame, segment: str, value: str, other: str, metric: str) -> tuple[float, float] | None:
    """(difference, variance) of ``value`` against the rest of ``segment`` within each value of ``other``,
    weighted by ``value``'s own spread over ``other``; None when it cannot be compared."""
    kind, sampled = figure_kind({"metric": metric, "kind": g.kind.iloc[0] if "kind" in g else None,
                                 "sampled": bool(g.sampled.iloc[0]) if "sampled" in g else True})
    if kind not in _STRATIFIABLE or not sampled:
        return None
    parts, own_total = [], 0.0
    for _e, s in g.groupby(other, sort=True):
        own_rows, rest_rows = s[s[segment] == value], s[s[segment] != value]
        if own_rows.empty:
            continue
        own_total += float(own_rows.n.iloc[0])
        est = _group_estimates(pd.concat([own_rows, rest_rows]).assign(segment_value=lambda f: f[segment]),
                               kind, None).get(value)
        own, rest = est if est is not None else (None, None)
        if own is None or rest is None:
            continue
        parts.append((own[2], own[0] - rest[0], own[1] + rest[1]))
    covered = sum(n for n, _, _ in parts)
    if not parts or covered < 0.5 * own_total:  # most of the value's customers have no one to compare with
        return None
    diff = sum(n * d for n, d, _ in parts) / covered
    var = sum(n**2 * v for n, _, v in parts) / covered**2
    return diff, var


def explained_summary(tests: pd.DataFrame) -> str:
    """One sentence per segment gap another segment explains (:func:`explained_gaps`); empty when none is.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"metric": ["churn_rate"], "segment": ["region"], "segment_value": ["south"],
    ...                   "unit": ["fraction"], "difference": [0.04], "explained_by": ["plan"],
    ...                   "within_difference": [0.0], "within_p": [1.0]})
    >>> explained_summary(t)
    'Explained by another segment, and so not a finding of its own: the gap in Customer churn rate of region south (+4.0 points against the rest) is +0.0 points compared within each plan (p = 1.00).'
    """
    from engagement import catalog
    from engagement.present import format_delta

    if "explained_by" not in tests or not (tests.explained_by.fillna("") != "").any():
        return ""
    parts = []
    for r in tests[tests.explained_by.fillna("") != ""].itertuples():
        parts.append(f"the gap in {catalog.name(r.metric)} of {str(r.segment).replace('_', ' ')} {r.segment_value} "
                     f"({format_delta(r.difference, r.unit)} against the rest) is "
                     f"{format_delta(r.within_difference, r.unit)} compared within each "
                     f"{str(r.explained_by).replace('_', ' ')} (p = {r.within_p:.2f})")
    return "Explained by another segment, and so not a finding of its own: " + "; ".join(parts) + "."
