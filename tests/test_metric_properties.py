"""Property tests (hypothesis) and interval coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engagement as eg

nps_answers = st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=300)


@given(nps_answers)
def test_nps_is_promoter_share_minus_detractor_share(scores):
    r = eg.nps(scores)
    x = np.asarray(scores)
    expected = 100 * ((x >= 9).mean() - (x <= 6).mean())
    assert r.value == pytest.approx(expected)
    assert r.value == pytest.approx(100 * (r.details["promoter_share"] - r.details["detractor_share"]))
    assert -100 <= r.ci_low <= r.value <= r.ci_high <= 100


@given(nps_answers, st.sampled_from(["adjusted-wald", "wald"]))
def test_nps_interval_contains_estimate(scores, method):
    r = eg.nps(scores, method=method)
    assert r.ci_low <= r.value <= r.ci_high


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_churn_plus_retention_is_one_for_a_closed_cohort(a, b):
    at_start, lost = max(a, b), min(a, b)
    churn = eg.churn_rate(lost, at_start)
    retention = eg.retention_rate(at_start - lost, 0, at_start)
    if at_start == 0:
        assert math.isnan(churn.value) and math.isnan(retention.value)
    else:
        assert churn.value + retention.value == pytest.approx(1.0)
        assert 0 <= churn.ci_low <= churn.value <= churn.ci_high <= 1


@given(st.integers(1, 5_000), st.integers(0, 5_000))
def test_churn_is_monotone_in_lost(at_start, lost):
    lost = min(lost, at_start - 1)
    assert eg.churn_rate(lost + 1, at_start).value > eg.churn_rate(lost, at_start).value


@given(st.lists(st.integers(1, 5), min_size=1, max_size=200))
def test_csat_bounds(ratings):
    box = eg.csat(ratings)
    mean = eg.csat(ratings, method="mean")
    assert 0 <= box.value <= 1 and 1 <= mean.value <= 5
    assert box.ci_low <= box.value <= box.ci_high
    if len(ratings) > 1:
        assert mean.ci_low <= mean.value <= mean.ci_high


@given(st.lists(st.integers(0, 10), min_size=1, max_size=100), st.integers(0, 10))
def test_raising_one_answer_never_lowers_nps(scores, i):
    i = i % len(scores)
    raised = list(scores)
    raised[i] = min(10, raised[i] + 1)
    assert eg.nps(raised).value >= eg.nps(scores).value


@settings(deadline=None)
@given(st.integers(1, 100_000), st.integers(0, 100_000))
def test_proportion_interval_contains_estimate(n, k):
    k = min(k, n)
    r = eg.conversion_rate(k, n)
    assert 0 <= r.ci_low <= r.value <= r.ci_high <= 1


# --- coverage: the 95% interval covers the truth in 93-97% of 2,000 draws ------------------

DRAWS = 2000


def test_nps_interval_coverage():
    rng = np.random.default_rng(20241)
    probs = np.array([0.45, 0.30, 0.25])  # promoters, passives, detractors
    truth = 100 * (probs[0] - probs[2])
    counts = rng.multinomial(120, probs, size=DRAWS)
    covered = 0
    for pro, pas, det in counts:
        r = eg.nps_from_counts(int(pro), int(pas), int(det))
        covered += r.ci_low <= truth <= r.ci_high
    assert 0.93 <= covered / DRAWS <= 0.97


def test_rate_interval_coverage():
    rng = np.random.default_rng(20242)
    truth, n = 0.07, 400
    lost = rng.binomial(n, truth, size=DRAWS)
    covered = sum(eg.churn_rate(int(k), n).ci_low <= truth <= eg.churn_rate(int(k), n).ci_high for k in lost)
    assert 0.93 <= covered / DRAWS <= 0.97


@pytest.mark.parametrize("method", ["top2box", "mean"])
def test_csat_interval_coverage(method):
    rng = np.random.default_rng(20243)
    levels = np.arange(1, 6)
    probs = np.array([0.05, 0.10, 0.20, 0.35, 0.30])
    truth = probs[3:].sum() if method == "top2box" else float((levels * probs).sum())
    covered = 0
    for _ in range(DRAWS):
        r = eg.csat(rng.choice(levels, size=80, p=probs), method=method)
        covered += r.ci_low <= truth <= r.ci_high
    assert 0.93 <= covered / DRAWS <= 0.97
