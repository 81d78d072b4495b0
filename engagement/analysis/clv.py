"""Predictive customer lifetime value: BG/NBD purchases and Gamma-Gamma spend.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
while alive a customer buys as a Poisson process with rate lambda ~ Gamma(r,
alpha); after each purchase they drop out with probability p ~ Beta(a, b).
Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999):
a customer's spend per transaction is Gamma(p, nu) with nu ~ Gamma(q, gamma),
independent of the purchase process.

Both are fitted by maximum likelihood on log-parameters with scipy's
trust-region Newton method (``trust-exact``) using the analytic gradient and
Hessian of the log-likelihood, written with ``gammaln``/``logaddexp`` so it
stays finite for large counts. The optimiser stops when the gradient is below
1e-10, so the estimates do not depend on the BLAS or the platform beyond the
last few digits; standard errors come from the analytic Hessian (observed
information) in the natural parameters. Customers with the same histories are
pooled with weights (a groupby), which makes fitting a million customers take
well under a second.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

__all__ = [
    "BGNBD",
    "GammaGamma",
    "ModelFitError",
    "customer_lifetime_value",
    "holdout_by_frequency",
    "cumulative_repeat_transactions",
]


class ModelFitError(ValueError):
    """The optimiser did not converge, or the data cannot identify the model."""


def _rfm_arrays(rfm: Any, need_monetary: bool = False) -> dict[str, np.ndarray]:
    if not isinstance(rfm, pd.DataFrame):
        raise ValueError("`rfm` must be a DataFrame with columns frequency, recency, T (see `rfm_summary`).")
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if need_monetary else [])
    missing = [c for c in cols if c not in rfm.columns]
    if missing:
        raise ValueError(f"`rfm` has no column(s) {missing}; columns are {list(rfm.columns)}.")
    out = {c: rfm[c].to_numpy(dtype="float64", na_value=np.nan) for c in cols}
    for c, v in out.items():
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise ValueError(
                f"`rfm[{c!r}]`: {int(bad.sum()):,} of {len(v):,} values are missing, negative or infinite "
                f"(e.g. {v[bad][0]!r})."
            )
    x, tx, T = out["frequency"], out["recency"], out["T"]
    bad = x != np.floor(x)
    if bad.any():
        raise ValueError(f"`rfm['frequency']`: {int(bad.sum()):,} values are not whole numbers (e.g. {x[bad][0]!r}).")
    bad = tx > T + 1e-9
    if bad.any():
        raise ValueError(
            f"`rfm`: {int(bad.sum()):,} customers have recency > T (e.g. recency {tx[bad][0]!r}, T {T[bad][0]!r})."
        )
    bad = (x == 0) & (tx > 0)
    if bad.any():
        raise ValueError(f"`rfm`: {int(bad.sum()):,} customers have no repeat purchase but a recency > 0.")
    return out


def _of_frequency(x: np.ndarray, shifts: tuple[float, ...]
                  ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """log-gamma, digamma and trigamma of ``x + s`` for each shift ``s``, evaluated once per distinct ``x``.

    The frequencies of a million histories take a few dozen values, and the trigamma (a Hurwitz zeta) is
    the costliest step of a Newton iteration: evaluated per history it took two thirds of the fit.
    """
    xs, back = np.unique(x, return_inverse=True)
    gl = tuple(special.gammaln(xs + s)[back] for s in shifts)
    dg = tuple(special.digamma(xs + s)[back] for s in shifts)
    tg = tuple(special.polygamma(1, xs + s)[back] for s in shifts)
    return gl, dg, tg


def _pool(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the columns (sorted) and how many customers share each."""
    frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    counts = frame.groupby(list(frame.columns), sort=True).size()
    keys = counts.index.to_frame(index=False)
    return [keys[c].to_numpy(dtype="float64") for c in frame.columns], counts.to_numpy(dtype="float64")


def _fit(
    loglik: Any, start: np.ndarray, names: tuple[str, ...], model: str
) -> tuple[np.ndarray, float, np.ndarray]:
    """Maximise ``loglik(theta) -> (value, gradient, hessian)`` over ``theta = exp(u) * start``.

    Newton steps in the log-parameters u (trust region, exact Hessian), from u = 0.
    Returns the estimate, the log-likelihood and the Hessian at the estimate.
    """

    def parts(u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        theta = np.exp(u) * start
        value, grad, hess = loglik(theta)
        # chain rule for theta_i = start_i exp(u_i)
        g_u = grad * theta
        h_u = hess * np.outer(theta, theta) + np.diag(g_u)
        return value, g_u, h_u, theta

    cache: dict[bytes, tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def at(u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        key = np.asarray(u, dtype="float64").tobytes()
        if key not in cache:
            cache.clear()
            with np.errstate(all="ignore"):
                cache[key] = parts(u)
        return cache[key]

    def fun(u: np.ndarray) -> float:
        v = at(u)[0]
        return -v if np.isfinite(v) else 1e300

    def jac(u: np.ndarray) -> np.ndarray:
        g = at(u)[1]
        return -g if np.all(np.isfinite(g)) else np.zeros_like(g)

    def hess(u: np.ndarray) -> np.ndarray:
        h = at(u)[2]
        return -h if np.all(np.isfinite(h)) else np.eye(len(u))

    res = optimize.minimize(fun, np.zeros(len(start)), jac=jac, hess=hess, method="trust-exact",
                            options={"gtol": 1e-10, "maxiter": 500})
    # The trust region stops once the log-likelihood (a sum of thousands of terms) no longer resolves a
    # step; Newton steps on the gradient alone then take it to the optimum to ~1e-12 (quadratic convergence).
    u = res.x
    for _ in range(8):
        value, g_u, h_u, theta = at(u)
        if not (np.all(np.isfinite(g_u)) and np.all(np.isfinite(h_u))) or np.max(np.abs(g_u)) < 1e-10:
            break
        try:
            step = np.linalg.solve(h_u, g_u)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(at(u - step)[1])) >= np.max(np.abs(g_u)):
            break
        u = u - step
    value, g_u, _, theta = at(u)
    converged = bool(np.isfinite(value) and np.all(np.isfinite(g_u)) and np.max(np.abs(g_u)) < 1e-6)
    if not converged:
        raise ModelFitError(f"{model}: the optimiser did not converge ({res.message}).")
    if np.any(np.abs(u) > 25):
        params = ", ".join(f"{n} = {v:.3g}" for n, v in zip(names, theta, strict=True))
        raise ModelFitError(f"{model}: a parameter ran off to 0 or infinity ({params}); the data cannot identify "
                            "the model.")
    _, _, hess_theta = loglik(theta)
    return theta, float(value), hess_theta


def _standard_errors(hess: np.ndarray, model: str) -> np.ndarray:
    """Square roots of the diagonal of the inverse observed information ``-H``."""
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
    var = np.diag(cov)
    if np.any(~np.isfinite(var)) or np.any(var <= 0):
        warnings.warn(f"{model}: the Hessian is not negative definite; standard errors are NaN.", stacklevel=3)
        return np.full(len(hess), np.nan)
    return np.sqrt(var)


def _summary_frame(names: tuple[str, ...], est: np.ndarray, se: np.ndarray, confidence: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + confidence / 2)
    return pd.DataFrame(
        {"parameter": list(names), "estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}
    )


@dataclass(frozen=True)
class BGNBD:
    """A fitted BG/NBD model. Create it with :meth:`BGNBD.fit`.

    Attributes
    ----------
    params : dict
        ``r, alpha, a, b``.
    standard_errors : dict
        From the inverse observed information (numerical Hessian).
    log_likelihood : float
    n_customers : int
    time_unit : str
        The unit of recency and T the model was fitted in (a label only).

    Examples
    --------
    >>> from engagement.analysis.clv import BGNBD
    >>> from engagement.data import load_cdnow
    >>> from engagement.measure import rfm_summary
    >>> rfm = rfm_summary(load_cdnow("sample").orders, calibration_end="1997-09-30")
    >>> m = BGNBD.fit(rfm)
    >>> {k: round(v, 3) for k, v in m.params.items()}
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """

    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    n_customers: int
    time_unit: str = "W"
    names: tuple[str, ...] = field(default=("r", "alpha", "a", "b"), repr=False)

    @staticmethod
    def _loglik(theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = theta
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0)) - (r + x) * np.log(alpha + tx),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    @staticmethod
    def _loglik_derivatives(
        theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Weighted log-likelihood with its analytic gradient and Hessian in ``(r, alpha, a, b)``.

        ``LL = A1 + A2 + log(exp(A3) + [x > 0] exp(A4))`` (FHL 2005, eq. 6). The
        mixture term's derivatives are the softmax-weighted ones of A3 and A4, its
        Hessian adds ``w3 w4 (g3 - g4)(g3 - g4)^T``.
        """
        r, alpha, a, b = theta
        rep = x > 0
        bx1 = np.where(rep, b + x - 1, 1.0)
        rx = r + x
        l_t, l_tx = np.log(alpha + T), np.log(alpha + tx)
        a3 = -rx * l_t
        a4 = np.where(rep, np.log(a) - np.log(bx1) - rx * l_tx, -np.inf)
        mix = np.logaddexp(a3, a4)
        w3, w4 = np.exp(a3 - mix), np.where(rep, np.exp(a4 - mix), 0.0)
        # the gamma functions depend on the frequency alone: once per distinct frequency, not per history
        gl_x, dg_x, tg_x = _of_frequency(x, (r, b, a + b))
        (gl_r, gl_b, gl_ab), (dg_r, dg_b, dg_ab), (tg_r, tg_b, tg_ab) = gl_x, dg_x, tg_x
        ll = (gl_r - special.gammaln(r) + r * np.log(alpha) + special.gammaln(a + b)
              + gl_b - special.gammaln(b) - gl_ab + mix)
        pg, dg = special.polygamma, special.digamma
        # g3 = (-l_t, -rx / (alpha + T), 0, 0) and g4 = (-l_tx, -rx / (alpha + tx), 1 / a, -1 / bx1) are the
        # gradients of A3 and A4; the mixture's Hessian adds w3 w4 (g3 - g4)(g3 - g4)^T. Each entry is summed
        # over customers directly: per-customer 4 x 4 matrices cost two thirds of an evaluation at 1M histories
        u_t, u_tx = 1 / (alpha + T), 1 / (alpha + tx)
        d = (l_tx - l_t, rx * (u_tx - u_t), np.full(len(x), -1 / a), 1 / bx1)
        v = w * w3 * w4

        def total(values: np.ndarray) -> float:  # numpy's pairwise summation: the same bits on any machine
            return float((w * values).sum())

        def cross(i: int, j: int) -> float:
            return float((v * d[i] * d[j]).sum())

        grad = np.array([
            total(dg_r - dg(r) + np.log(alpha) - w3 * l_t - w4 * l_tx),
            total(r / alpha - rx * (w3 * u_t + w4 * u_tx)),
            total(dg(a + b) - dg_ab + w4 / a),
            total(dg(a + b) + dg_b - dg(b) - dg_ab - w4 / bx1),
        ])
        h = np.empty((4, 4))
        h[0, 0] = total(tg_r - pg(1, r)) + cross(0, 0)
        h[0, 1] = total(1 / alpha - w3 * u_t - w4 * u_tx) + cross(0, 1)
        h[1, 1] = total(-r / alpha**2 + rx * (w3 * u_t**2 + w4 * u_tx**2)) + cross(1, 1)
        h[2, 2] = total(pg(1, a + b) - tg_ab - w4 / a**2) + cross(2, 2)
        h[2, 3] = total(pg(1, a + b) - tg_ab) + cross(2, 3)
        h[3, 3] = total(pg(1, a + b) + tg_b - pg(1, b) - tg_ab + w4 / bx1**2) + cross(3, 3)
        h[0, 2], h[0, 3], h[1, 2], h[1, 3] = cross(0, 2), cross(0, 3), cross(1, 2), cross(1, 3)
        h = np.triu(h) + np.triu(h, 1).T
        return float((w * ll).sum()), grad, h

    @classmethod
    def fit(cls, rfm: pd.DataFrame, *, time_unit: str = "W", confidence: float = 0.95) -> BGNBD:
        """Fit by maximum likelihood to an RFM summary (``frequency, recency, T``).

        Raises
        ------
        ModelFitError
            No repeat buyers (dropout cannot be identified), or no convergence.
        """
        d = _rfm_arrays(rfm)
        if len(d["T"]) == 0:
            raise ModelFitError("BG/NBD: no customers to fit.")
        if not (d["frequency"] > 0).any():
            raise ModelFitError("BG/NBD: no customer made a repeat purchase; the purchase and dropout "
                                "processes cannot be identified.")
        (x, tx, T), w = _pool(d["frequency"], d["recency"], d["T"])
        scale = float(np.average(T, weights=w)) or 1.0  # start alpha on the scale of T
        est, ll, hess = _fit(lambda th: cls._loglik_derivatives(th, x, tx, T, w),
                             np.array([1.0, scale, 1.0, 1.0]), ("r", "alpha", "a", "b"), "BG/NBD")
        se = _standard_errors(hess, "BG/NBD")
        names = ("r", "alpha", "a", "b")
        return cls(
            params=dict(zip(names, map(float, est), strict=True)),
            standard_errors=dict(zip(names, map(float, se), strict=True)),
            log_likelihood=ll,
            n_customers=int(w.sum()),
            time_unit=time_unit,
        )

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Parameters with standard errors and Wald intervals."""
        est = np.array([self.params[n] for n in self.names])
        se = np.array([self.standard_errors[n] for n in self.names])
        return _summary_frame(self.names, est, se, confidence)

    def _theta(self) -> tuple[float, float, float, float]:
        p = self.params
        return p["r"], p["alpha"], p["a"], p["b"]

    def probability_alive(self, rfm: pd.DataFrame) -> np.ndarray:
        """P(still alive | frequency, recency, T) per customer (1 for no repeat purchase).

        ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``
        """
        d = _rfm_arrays(rfm)
        r, alpha, a, b = self._theta()
        x, tx, T = d["frequency"], d["recency"], d["T"]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)

    def expected_purchases(self, t: float, rfm: pd.DataFrame) -> np.ndarray:
        """Expected purchases in the next ``t`` time units, given each customer's history.

        Equation (10) of Fader, Hardie & Lee (2005).
        """
        if t < 0:
            raise ValueError(f"`t` must be non-negative, got {t!r}.")
        d = _rfm_arrays(rfm)
        r, alpha, a, b = self._theta()
        x, T = d["frequency"], d["T"]
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        first = (a + b + x - 1) / (a - 1)
        second = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        out = first * second * self.probability_alive(rfm)
        # P(alive) = 1 / (1 + ...) is exactly the denominator of equation (10).
        if not np.all(np.isfinite(out)):
            raise ModelFitError("BG/NBD: expected purchases are not finite for some customers.")
        return np.maximum(out, 0.0)

    def expected_purchases_population(self, t: Any) -> np.ndarray:
        """E[X(t)]: expected purchases of a new customer in their first ``t`` time units."""
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype="float64")
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return np.maximum((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp), 0.0)


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model. Create it with :meth:`GammaGamma.fit`.

    Attributes
    ----------
    params : dict
        ``p, q, gamma``.
    standard_errors : dict
    log_likelihood : float
    n_customers : int
        Repeat buyers it was fitted on.
    frequency_spend_correlation : float
        Pearson correlation of frequency and mean spend among repeat buyers; the
        model assumes they are independent, so it should be near 0.
    n_excluded : int
        Repeat buyers left out because their mean spend is 0 (or negative after
        returns): the model's spend per order is Gamma-distributed, so positive.
    """

    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    n_customers: int
    frequency_spend_correlation: float
    n_excluded: int = 0
    names: tuple[str, ...] = field(default=("p", "q", "gamma"), repr=False)

    @staticmethod
    def _loglik(theta: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, g = theta
        return (
            special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(g)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(g + x * m)
        )

    @staticmethod
    def _loglik_derivatives(
        theta: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Weighted log-likelihood with its analytic gradient and Hessian in ``(p, q, gamma)``."""
        p, q, g = theta
        px = p * x
        gm = g + x * m
        # the gamma functions depend on the frequency alone: once per distinct frequency
        (gl_pxq, gl_px), (dg_pxq, dg_px), (tg_pxq, tg_px) = _of_frequency(p * x, (q, 0.0))
        ll = (gl_pxq - gl_px - special.gammaln(q) + q * np.log(g) + (px - 1) * np.log(m) + px * np.log(x)
              - (px + q) * np.log(gm))
        lg = np.log(g)

        def total(values: np.ndarray) -> float:  # numpy's pairwise summation: the same bits on any machine
            return float((w * values).sum())

        grad = np.array([
            total(x * (dg_pxq - dg_px + np.log(m) + np.log(x) - np.log(gm))),
            total(dg_pxq - special.digamma(q) + lg - np.log(gm)),
            total(q / g - (px + q) / gm),
        ])
        h = np.empty((3, 3))
        h[0, 0] = total(x**2 * (tg_pxq - tg_px))
        h[0, 1] = h[1, 0] = total(x * tg_pxq)
        h[0, 2] = h[2, 0] = total(-x / gm)
        h[1, 1] = total(tg_pxq - special.polygamma(1, q))
        h[1, 2] = h[2, 1] = total(1 / g - 1 / gm)
        h[2, 2] = total(-q / g**2 + (px + q) / gm**2)
        return float((w * ll).sum()), grad, h

    @classmethod
    def fit(cls, rfm: pd.DataFrame) -> GammaGamma:
        """Fit to repeat buyers' ``frequency`` and ``monetary_value`` (mean repeat spend).

        Customers without a repeat purchase carry no spend information in this
        model and are not used; repeat buyers whose mean spend is not positive
        are left out and counted in ``n_excluded``.
        """
        d = _rfm_arrays(rfm, need_monetary=True)
        repeat = d["frequency"] > 0
        x, m = d["frequency"][repeat], d["monetary_value"][repeat]
        nonpositive = m <= 0  # the model's spend is Gamma, so > 0: such buyers are left out and counted
        x, m = x[~nonpositive], m[~nonpositive]
        if len(x) < 3:
            raise ModelFitError(f"Gamma-Gamma: {len(x)} repeat buyers are too few to fit the spend model.")
        (xu, mu), w = _pool(x, m)
        scale = float(np.mean(m))  # start gamma on the scale of the spend
        est, ll, hess = _fit(lambda th: cls._loglik_derivatives(th, xu, mu, w), np.array([1.0, 1.0, scale]),
                             ("p", "q", "gamma"), "Gamma-Gamma")
        se = _standard_errors(hess, "Gamma-Gamma")
        names = ("p", "q", "gamma")
        corr = float(np.corrcoef(x, m)[0, 1]) if len(x) > 2 and np.ptp(x) > 0 and np.ptp(m) > 0 else math.nan
        return cls(
            params=dict(zip(names, map(float, est), strict=True)),
            standard_errors=dict(zip(names, map(float, se), strict=True)),
            log_likelihood=ll,
            n_customers=len(x),
            frequency_spend_correlation=corr,
            n_excluded=int(nonpositive.sum()),
        )

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Parameters with standard errors and Wald intervals."""
        est = np.array([self.params[n] for n in self.names])
        se = np.array([self.standard_errors[n] for n in self.names])
        return _summary_frame(self.names, est, se, confidence)

    def expected_average_spend(self, rfm: pd.DataFrame) -> np.ndarray:
        """E[spend per transaction | frequency, mean spend]; the population mean for non-repeaters.

        ``(gamma + x m) p / (p x + q - 1)``: a weighted average of the population
        mean ``gamma p / (q - 1)`` and the customer's own mean ``m``.
        """
        d = _rfm_arrays(rfm, need_monetary=True)
        p, q, g = self.params["p"], self.params["q"], self.params["gamma"]
        if q <= 1:
            raise ModelFitError(f"Gamma-Gamma: q = {q:.3g} <= 1, so the mean spend is infinite.")
        x, m = d["frequency"], d["monetary_value"]
        return (g + x * m) * p / (p * x + q - 1)


def customer_lifetime_value(
    bgnbd: BGNBD,
    gamma_gamma: GammaGamma,
    rfm: pd.DataFrame,
    *,
    horizon: int = 12,
    period_length: float = 52 / 12,
    discount_rate: float = 0.01,
    margin: float = 1.0,
) -> np.ndarray:
    """Discounted expected value of each customer over the next ``horizon`` periods.

    ``sum_{i=1..H} (E[Y(i L)] - E[Y((i - 1) L)]) x E[spend] x margin / (1 + d)^i``
    with ``L = period_length`` in the models' time unit (default: a month in weeks).

    Returns
    -------
    ndarray
        One non-negative value per customer, in the spend's currency.
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"`horizon` must be a whole number of periods >= 1, got {horizon!r}.")
    if period_length <= 0 or discount_rate < 0 or not 0 <= margin <= 1:
        raise ValueError("`period_length` must be > 0, `discount_rate` >= 0 and `margin` in [0, 1].")
    spend = gamma_gamma.expected_average_spend(rfm)
    total = np.zeros(len(rfm))
    previous = np.zeros(len(rfm))
    for i in range(1, horizon + 1):
        cumulative = bgnbd.expected_purchases(i * period_length, rfm)
        total += (cumulative - previous) * spend * margin / (1 + discount_rate) ** i
        previous = cumulative
    if not np.all(np.isfinite(total)):
        raise ModelFitError("CLV is not finite for some customers.")
    return np.maximum(total, 0.0)


def holdout_by_frequency(bgnbd: BGNBD, cal_holdout: pd.DataFrame, *, max_frequency: int = 7) -> pd.DataFrame:
    """Predicted vs actual holdout purchases, by calibration frequency (0..max, then "max+").

    ``cal_holdout`` is :func:`engagement.measure.calibration_holdout_summary`'s output.
    Returns one row per frequency group with customers, mean actual and mean
    predicted holdout purchases, and their difference.
    """
    need = {"frequency_holdout", "duration_holdout"}
    if not need <= set(cal_holdout.columns):
        raise ValueError(f"`cal_holdout` needs columns {sorted(need)} (see calibration_holdout_summary).")
    duration = float(cal_holdout["duration_holdout"].iloc[0]) if len(cal_holdout) else 0.0
    predicted = bgnbd.expected_purchases(duration, cal_holdout)
    group = np.minimum(cal_holdout["frequency"].to_numpy(), max_frequency)
    frame = pd.DataFrame(
        {"group": group, "actual": cal_holdout["frequency_holdout"].to_numpy(dtype="float64"), "predicted": predicted}
    )
    out = frame.groupby("group", sort=True).agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    ).reset_index()
    out["frequency"] = [str(int(g)) if g < max_frequency else f"{max_frequency}+" for g in out["group"]]
    out["difference"] = out["predicted"] - out["actual"]
    return out[["frequency", "customers", "actual", "predicted", "difference"]]


def cumulative_repeat_transactions(
    bgnbd: BGNBD,
    day_counts: pd.DataFrame,
    *,
    start: Any,
    end: Any,
    unit_days: float = 7.0,
) -> pd.DataFrame:
    """Cumulative repeat purchases over time, actual vs BG/NBD-predicted (FHL 2005 fig. 2).

    Parameters
    ----------
    day_counts : DataFrame
        ``day, first_purchases, repeat_occasions`` per day, from
        :func:`engagement.measure.purchase_day_counts` (small whatever the data size).
    start, end : date-like
        Range of the time axis; one point per ``unit_days`` plus ``end``.

    Returns
    -------
    DataFrame
        ``time`` (units since start), ``date``, ``actual``, ``predicted``. The
        prediction sums E[X(t - s)] over the customers who made their first
        purchase on day s.
    """
    need = {"day", "first_purchases", "repeat_occasions"}
    if not need <= set(day_counts.columns):
        raise ValueError(f"`day_counts` needs columns {sorted(need)} (see purchase_day_counts).")
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    grid = pd.date_range(start_ts, end_ts, freq=pd.Timedelta(days=unit_days))
    if grid[-1] != end_ts:
        grid = grid.append(pd.DatetimeIndex([end_ts]))
    days = pd.to_datetime(day_counts["day"]).to_numpy()
    births = day_counts["first_purchases"].to_numpy(dtype="float64")
    repeats = day_counts["repeat_occasions"].to_numpy(dtype="float64")
    actual, predicted = [], []
    for day in grid:
        upto = days <= day.to_datetime64()
        actual.append(float(repeats[upto].sum()))
        age = (day.to_datetime64() - days).astype("timedelta64[s]").astype("float64") / 86_400 / unit_days
        alive = (age > 0) & (births > 0)
        predicted.append(float(np.dot(births[alive], bgnbd.expected_purchases_population(age[alive]))))
    return pd.DataFrame(
        {"time": (grid - start_ts).days / unit_days, "date": grid, "actual": actual, "predicted": predicted}
    )
