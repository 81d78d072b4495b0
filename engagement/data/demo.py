"""A deterministic demo dataset with known ground truth.

A fictional subscription + e-commerce business, 2022-01-01 to 2024-12-31 (twelve
quarters), generated from a documented latent model:

* **Customers** arrive at a slowly growing rate through five acquisition
  channels, each with its own cost per acquisition; they pick a plan (basic,
  standard, premium) and live in one of four regions. Each has a latent
  satisfaction ``s`` and engagement ``e`` (standard normal, correlation 0.5).
* **Subscription churn**: a monthly cancellation hazard of 2%, lowered by
  satisfaction (x exp(-0.6 s)).
* **Purchases** follow a buy-till-you-die process: the first order at sign-up,
  then Poisson purchasing (weekly rate ~ Gamma(1.5, 0.08) x exp(0.3 e + 0.3 s))
  while alive, with a dropout chance after every purchase (~ Beta(1.2, 8) x
  exp(-1.2 s)), and no orders after cancellation. Spend per order follows the
  Gamma-Gamma model (p = 6, q = 4, gamma = 30: mean $60).
* **Surveys**: a share of active customers answers NPS each quarter (driven by
  ``s``); CSAT (1-5) and CES (1-7) follow support tickets and depend on ``s``
  and on how fast the ticket was answered and resolved.
* **Product events** on a customer's active days (more likely in the first
  week and with higher ``e``); **pageviews** in sessions on some active days
  plus anonymous visitors; monthly **email** campaigns; **social posts**;
  monthly **marketing spend** per channel; **referrals** for the referral
  channel, the referrer chosen among earlier, more satisfied customers.

Effects planted on purpose (``mode="planted"``, written to ``ground_truth.json``),
mirroring the trend table of the seed article:

1. NPS rises steadily through Q3 of the last year and dips in Q4; it is higher
   for customers of more than a year's tenure; it correlates with CLV.
2. Churn rises in Q4 of the last year, concentrated in the basic plan; it falls
   as satisfaction rises.
3. AOV grows steadily through the last year, is higher for premium customers and
   relates positively to CLV.
4. Support first-response time worsens in Q4 of the last year and CSAT drops in
   the same quarter.
5. The paid_social channel's CAC is three times the others'.

``mode="null"`` keeps the structure but plants nothing: every latent
coefficient, time effect, plan effect and channel difference is zero, so the
analysis should find (almost) nothing.

Same seed and size give byte-identical Parquet files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DemoData", "generate_demo", "write_demo", "GROUND_TRUTH_FILE"]

START = pd.Timestamp("2022-01-01")
END = pd.Timestamp("2025-01-01")  # exclusive
N_DAYS = (END - START).days
LAST_YEAR = 2024
GROUND_TRUTH_FILE = "ground_truth.json"
PLANS = ("basic", "standard", "premium")
CHANNELS = ("organic", "paid_search", "paid_social", "email", "referral")
REGIONS = ("north", "south", "east", "west")
PAGES = ("/", "/pricing", "/product", "/blog", "/help", "/checkout")
EVENTS = ("view_item", "search", "add_to_cart", "share", "feature_use")
FEATURES = ("reports", "dashboard", "export", "alerts")
BATCH = 100_000

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Effects:
    """Coefficients of the latent model; all zero in null mode."""

    churn_satisfaction: float = 0.6
    churn_q4_basic: float = 2.5
    dropout_satisfaction: float = 1.2
    rate_engagement: float = 0.3
    rate_satisfaction: float = 0.3
    spend_satisfaction: float = 0.15
    aov_premium: float = 1.4
    aov_growth_last_year: float = 0.25
    nps_satisfaction: float = 1.2
    nps_tenure: float = 0.8
    nps_last_year: tuple[float, float, float, float] = (0.0, 0.4, 0.8, 0.35)
    csat_satisfaction: float = 0.5
    csat_response: float = 0.45
    ces_satisfaction: float = 0.4
    ces_resolution: float = 0.35
    response_q4_multiplier: float = 3.0
    activity_engagement: float = 0.7
    first_week_boost: float = 1.5
    email_engagement: float = 0.5
    referral_satisfaction: bool = True
    cac: tuple[float, ...] = (20.0, 60.0, 180.0, 25.0, 30.0)

    @classmethod
    def null(cls) -> Effects:
        return cls(
            churn_satisfaction=0.0, churn_q4_basic=1.0, dropout_satisfaction=0.0, rate_engagement=0.0,
            rate_satisfaction=0.0, spend_satisfaction=0.0,
            aov_premium=1.0, aov_growth_last_year=0.0, nps_satisfaction=0.0, nps_tenure=0.0,
            nps_last_year=(0.0, 0.0, 0.0, 0.0), csat_satisfaction=0.0, csat_response=0.0, ces_satisfaction=0.0,
            ces_resolution=0.0, response_q4_multiplier=1.0, activity_engagement=0.0, first_week_boost=0.0,
            email_engagement=0.0, referral_satisfaction=False, cac=(60.0,) * 5,
        )


@dataclass(frozen=True)
class DemoData:
    """The generated tables (pandas) and the ground truth."""

    tables: dict[str, pd.DataFrame]
    ground_truth: dict[str, Any]


def _ts(day_float: np.ndarray) -> np.ndarray:
    """Days since START (float) -> datetime64[us], rounded to the second."""
    ns = START.value + np.round(day_float * 86_400).astype("int64") * 10**9
    return ns.astype("datetime64[ns]").astype("datetime64[us]")


def _quarter_index(day: np.ndarray) -> np.ndarray:
    dates = (START.value + (np.asarray(day) * DAY_NS).astype("int64")).astype("datetime64[ns]")
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    months = dates.astype("datetime64[M]").astype(int) % 12
    return (years - 2022) * 4 + months // 3


def _month_start_days() -> np.ndarray:
    months = pd.date_range(START, END, freq="MS")
    return np.array([(m - START).days for m in months])


def _customers(n: int, rng: np.random.Generator, fx: Effects) -> pd.DataFrame:
    weights = 1.0 + np.arange(N_DAYS) / N_DAYS
    day = rng.choice(N_DAYS, size=n, p=weights / weights.sum()) + rng.uniform(8 / 24, 22 / 24, size=n)
    day = np.sort(day)
    s = rng.standard_normal(n)
    e = 0.5 * s + np.sqrt(0.75) * rng.standard_normal(n)
    plan = rng.choice(len(PLANS), size=n, p=[0.5, 0.3, 0.2])
    channel = rng.choice(len(CHANNELS), size=n, p=[0.30, 0.25, 0.20, 0.10, 0.15])
    channel[:20] = 0  # the first customers cannot have been referred
    region = rng.choice(len(REGIONS), size=n)
    # monthly churn hazard
    month_days = _month_start_days()
    cancel = np.full(n, np.inf)
    base = 0.02 * np.exp(-fx.churn_satisfaction * s) / np.exp(fx.churn_satisfaction**2 / 2)
    for m in range(len(month_days) - 1):
        lo, hi = month_days[m], month_days[m + 1]
        at_risk = (day < hi) & ~np.isfinite(cancel)
        q4_last = m >= 33
        hazard = base * np.where(q4_last & (plan == 0), fx.churn_q4_basic, 1.0)
        u = rng.uniform(size=n)
        t = np.maximum(day, lo) + rng.uniform(size=n) * (hi - np.maximum(day, lo))
        hit = at_risk & (u < hazard * (hi - np.maximum(day, lo)) / (hi - lo))
        cancel[hit] = t[hit]
    return pd.DataFrame({"day": day, "cancel": cancel, "s": s, "e": e, "plan": plan, "channel": channel,
                         "region": region})


def _orders(c: pd.DataFrame, ids: np.ndarray, rng: np.random.Generator, fx: Effects) -> pd.DataFrame:
    n = len(c)
    s, e = c["s"].to_numpy(), c["e"].to_numpy()
    rate = rng.gamma(1.5, 0.08, size=n) * np.exp(fx.rate_engagement * e + fx.rate_satisfaction * s) / 7  # per day
    dropout = np.clip(rng.beta(1.2, 8.0, size=n) * np.exp(-fx.dropout_satisfaction * s), 0, 1)
    nu = rng.gamma(4.0, 1 / 30.0, size=n)  # Gamma-Gamma: nu ~ Gamma(q, rate gamma)
    stop = np.minimum(c["cancel"].to_numpy(), N_DAYS)
    t = c["day"].to_numpy().copy()
    who, when = [np.arange(n)], [t.copy()]
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        active[idx[rng.uniform(size=len(idx)) < dropout[idx]]] = False  # dropout after a purchase
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1 / rate[idx])
        alive = t[idx] < stop[idx]
        active[idx[~alive]] = False
        idx = idx[alive]
        who.append(idx)
        when.append(t[idx].copy())
    who_a, when_a = np.concatenate(who), np.concatenate(when)
    order = np.lexsort((when_a, who_a))
    who_a, when_a = who_a[order], when_a[order]
    spend = rng.gamma(6.0, 1.0, size=len(who_a)) / nu[who_a]
    plan = c["plan"].to_numpy()[who_a]
    year_frac = np.clip((when_a - (pd.Timestamp(f"{LAST_YEAR}-01-01") - START).days) / 366, 0, 1)
    spend *= np.where(plan == 2, fx.aov_premium, 1.0) * (1 + fx.aov_growth_last_year * year_frac)
    spend *= np.exp(fx.spend_satisfaction * s[who_a])
    revenue = np.round(spend, 2)
    cost = np.round(revenue * rng.uniform(0.55, 0.65, size=len(revenue)), 2)
    seq = np.concatenate([[0], np.cumsum(who_a[1:] != who_a[:-1])])  # per-customer order number
    first_idx = np.r_[0, np.flatnonzero(who_a[1:] != who_a[:-1]) + 1]
    number = np.arange(len(who_a)) - first_idx[seq]
    return pd.DataFrame({
        "order_id": [f"O{cid[1:]}-{k:03d}" for cid, k in zip(ids[who_a], number, strict=True)],
        "customer_id": ids[who_a], "ordered_at": _ts(when_a), "revenue": revenue, "cost": cost,
    })


def _active_days(c: pd.DataFrame, rng: np.random.Generator, fx: Effects) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, day index) of every day with product activity."""
    day0 = np.floor(c["day"].to_numpy()).astype(int)
    last = np.minimum(np.floor(np.minimum(c["cancel"].to_numpy(), N_DAYS - 1e-9)), N_DAYS - 1).astype(int)
    logit_base = -3.2 + fx.activity_engagement * c["e"].to_numpy()
    who, days = [], []
    for d in range(N_DAYS):
        alive = (day0 <= d) & (last >= d)
        idx = np.flatnonzero(alive)
        if not len(idx):
            continue
        logit = logit_base[idx] + np.where(d - day0[idx] < 7, fx.first_week_boost + 1.0, 0.0)
        hit = rng.uniform(size=len(idx)) < 1 / (1 + np.exp(-logit))
        who.append(idx[hit])
        days.append(np.full(hit.sum(), d))
    who_a = np.concatenate(who) if who else np.zeros(0, int)
    days_a = np.concatenate(days) if days else np.zeros(0, int)
    order = np.lexsort((days_a, who_a))
    return who_a[order], days_a[order]


def _events(ids: np.ndarray, who: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    per_day = 1 + rng.poisson(0.3, size=len(who))
    cw, cd = np.repeat(who, per_day), np.repeat(days, per_day)
    secs = rng.uniform(7 / 24, 23 / 24, size=len(cw))  # time of day
    order = np.lexsort((secs, cd, cw))
    cw, cd, secs = cw[order], cd[order], secs[order]
    first = np.r_[True, (cw[1:] != cw[:-1]) | (cd[1:] != cd[:-1])]  # the day's first event is the login
    # whole seconds, strictly increasing within a customer-day (no two events at the same instant)
    rank = np.arange(len(cw)) - np.maximum.accumulate(np.where(first, np.arange(len(cw)), 0))
    secs = (np.floor(secs * 86_400) + rank) / 86_400
    name = np.where(first, "login", np.array(EVENTS)[rng.integers(0, len(EVENTS), size=len(cw))])
    features = np.array(FEATURES, dtype=object)[rng.integers(0, len(FEATURES), size=len(cw))]
    feature = np.where(name == "feature_use", features, np.array(None, dtype=object))
    frame = pd.DataFrame({"customer_id": ids[cw], "occurred_at": _ts(cd + secs), "event": name,
                          "feature": pd.array(feature, dtype="str")})
    return frame.sort_values(["customer_id", "occurred_at", "event"], kind="stable").reset_index(drop=True)


def _sessions(visitor: np.ndarray, customer: np.ndarray | None, start_day: np.ndarray, rng: np.random.Generator,
              convert_p: float) -> pd.DataFrame:
    n = len(visitor)
    pages = np.where(rng.uniform(size=n) < 0.4, 1, 2 + rng.poisson(2.0, size=n))
    sv = np.repeat(np.arange(n), pages)
    step = np.arange(len(sv)) - np.repeat(np.cumsum(pages) - pages, pages)
    gaps = np.where(step == 0, 0.0, (1.0 + rng.exponential(70.0, size=len(sv))) / 86_400)
    start = start_day + rng.uniform(8 / 24, 22 / 24, size=n)
    running = np.cumsum(gaps)
    cum = running - np.repeat(running[np.cumsum(pages) - pages], pages)  # time since the session's first view
    last = step == np.repeat(pages - 1, pages)
    page = np.where(step == 0, rng.choice(len(PAGES) - 1, size=len(sv)), rng.choice(len(PAGES), size=len(sv)))
    converted = last & (rng.uniform(size=len(sv)) < convert_p)
    page = np.where(converted, len(PAGES) - 1, page)
    return pd.DataFrame({
        "visitor_id": visitor[sv],
        "customer_id": pd.array(customer[sv] if customer is not None else [None] * len(sv), dtype="str"),
        "viewed_at": _ts(start[sv] + cum),
        "page": np.array(PAGES)[page],
        "converted": converted,
    })


def _pageviews(ids: np.ndarray, who: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    visit = rng.uniform(size=len(who)) < 0.35
    w, d = who[visit], days[visit]
    visitors = np.char.add("V", np.char.lstrip(ids[w].astype(str), "C"))
    return _sessions(visitors.astype(object), ids[w], d.astype(float), rng, 0.05)


def _anonymous_pageviews(n_customers: int, offset: int, rng: np.random.Generator) -> pd.DataFrame:
    n_anon = n_customers
    sessions = rng.poisson(2.0, size=n_anon)
    owner = np.repeat(np.arange(n_anon), sessions)
    day = rng.integers(0, N_DAYS, size=len(owner)).astype(float)
    visitor = np.array([f"A{offset + i:07d}" for i in owner], dtype=object)
    frame = _sessions(visitor, None, day, rng, 0.02)
    return frame


def _surveys_and_support(
    c: pd.DataFrame, ids: np.ndarray, rng: np.random.Generator, fx: Effects, batch: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(c)
    day, cancel, s = c["day"].to_numpy(), np.minimum(c["cancel"].to_numpy(), N_DAYS), c["s"].to_numpy()
    rows = []
    # NPS: each quarter a share of the customers active in it answers once.
    q_starts = [(pd.Timestamp(f"{y}-{m:02d}-01") - START).days for y in (2022, 2023, 2024) for m in (1, 4, 7, 10)]
    q_starts.append(N_DAYS)
    for q in range(12):
        lo, hi = q_starts[q], q_starts[q + 1]
        a, b = np.maximum(day, lo), np.minimum(cancel, hi)
        ok = (b > a) & (rng.uniform(size=n) < 0.6)
        idx = np.flatnonzero(ok)
        when = a[idx] + rng.uniform(size=len(idx)) * (b[idx] - a[idx])
        tenure = when - day[idx]
        time_eff = fx.nps_last_year[q - 8] if q >= 8 else 0.0
        latent = 7.6 + fx.nps_satisfaction * s[idx] + fx.nps_tenure * (tenure > 365) + time_eff
        score = np.clip(np.round(latent + rng.normal(0, 1.6, size=len(idx))), 0, 10)
        rows.append(pd.DataFrame({"customer_id": ids[idx], "responded_at": _ts(when), "survey": "nps",
                                  "score": score, "touchpoint": "quarterly_relationship"}))
    # Support tickets: Poisson(0.12) a month while subscribed.
    months = _month_start_days()
    t_who, t_open = [], []
    for m in range(len(months) - 1):
        lo, hi = months[m], months[m + 1]
        a, b = np.maximum(day, lo), np.minimum(cancel, hi)
        span = np.clip(b - a, 0, None)
        k = rng.poisson(0.12 * span / (hi - lo))
        idx = np.repeat(np.arange(n), k)
        t_who.append(idx)
        t_open.append(a[idx] + rng.uniform(size=len(idx)) * span[idx])
    who, opened = np.concatenate(t_who), np.concatenate(t_open)
    order = np.lexsort((opened, who))
    who, opened = who[order], opened[order]
    q4_last = _quarter_index(opened) == 11
    median_h = 2.0 * np.where(q4_last, fx.response_q4_multiplier, 1.0)
    response_h = median_h * np.exp(rng.normal(0, 0.8, size=len(who)))
    resolve_h = response_h + 20.0 * np.exp(rng.normal(0, 1.0, size=len(who)))
    first_response = opened + response_h / 24
    resolved = opened + resolve_h / 24
    answered, done = first_response < N_DAYS, resolved < N_DAYS
    channel = np.array(["email", "chat", "phone"])[rng.choice(3, size=len(who), p=[0.5, 0.35, 0.15])]
    tickets = pd.DataFrame({
        # unique across batches: batch b numbers its tickets from b * 10^7 (batch 0 as before)
        "ticket_id": [f"T{batch * 10_000_000 + i:08d}" for i in range(len(who))],
        "customer_id": ids[who],
        "opened_at": _ts(opened),
        "first_response_at": pd.Series(_ts(first_response)).where(answered),
        "resolved_at": pd.Series(_ts(resolved)).where(done),
        "channel": channel,
    })
    # CSAT after resolved tickets, CES after some.
    csat_idx = np.flatnonzero(done & (rng.uniform(size=len(who)) < 0.5))
    csat_latent = (4.0 + fx.csat_satisfaction * s[who[csat_idx]]
                   - fx.csat_response * np.log2(response_h[csat_idx] / 2.0))
    csat = np.clip(np.round(csat_latent + rng.normal(0, 0.8, size=len(csat_idx))), 1, 5)
    rows.append(pd.DataFrame({"customer_id": ids[who[csat_idx]], "responded_at": _ts(resolved[csat_idx] + 0.05),
                              "survey": "csat", "score": csat, "touchpoint": "support"}))
    ces_idx = np.flatnonzero(done & (rng.uniform(size=len(who)) < 0.3))
    ces_latent = (5.2 + fx.ces_satisfaction * s[who[ces_idx]]
                  - fx.ces_resolution * np.log2(resolve_h[ces_idx] / 22.0))
    ces = np.clip(np.round(ces_latent + rng.normal(0, 1.0, size=len(ces_idx))), 1, 7)
    rows.append(pd.DataFrame({"customer_id": ids[who[ces_idx]], "responded_at": _ts(resolved[ces_idx] + 0.06),
                              "survey": "ces", "score": ces, "touchpoint": "support"}))
    surveys = pd.concat(rows, ignore_index=True)
    surveys = surveys[surveys["responded_at"] < np.datetime64(END)]
    surveys = surveys.sort_values(["customer_id", "responded_at", "survey"], kind="stable").reset_index(drop=True)
    return surveys, tickets


def _email(c: pd.DataFrame, ids: np.ndarray, rng: np.random.Generator, fx: Effects, offset: int) -> pd.DataFrame:
    n = len(c)
    day, cancel, e = c["day"].to_numpy(), np.minimum(c["cancel"].to_numpy(), N_DAYS), c["e"].to_numpy()
    months = _month_start_days()
    parts = []
    unsubscribed = np.zeros(n, dtype=bool)
    for m in range(len(months) - 1):
        send = months[m] + 1 + 10 / 24
        idx = np.flatnonzero((day < send) & (cancel > send) & ~unsubscribed & (rng.uniform(size=n) < 0.4))
        k = len(idx)
        bounce = rng.uniform(size=k) < 0.02
        p_open = 1 / (1 + np.exp(-(-1.1 + fx.email_engagement * e[idx])))
        opened = ~bounce & (rng.uniform(size=k) < p_open)
        clicked = opened & (rng.uniform(size=k) < 0.12 * np.exp(0.3 * fx.email_engagement * e[idx]))
        unsub = ~bounce & (rng.uniform(size=k) < 0.003)
        unsubscribed[idx[unsub]] = True
        t_open = send + rng.exponential(0.3, size=k)
        t_click = t_open + rng.exponential(0.01, size=k)
        campaign = f"CMP{2022 + m // 12}{m % 12 + 1:02d}"
        for name, mask, t in (("sent", np.ones(k, bool), np.full(k, send)),
                              ("bounce", bounce, np.full(k, send + 0.001)),
                              ("delivered", ~bounce, np.full(k, send + 0.001)),
                              ("open", opened, t_open), ("click", clicked, t_click),
                              ("unsubscribe", unsub, t_open + 0.02)):
            sel = idx[mask]
            parts.append(pd.DataFrame({"campaign_id": campaign, "customer_id": pd.array(ids[sel], dtype="str"),
                                       "occurred_at": _ts(t[mask]), "event": name}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["occurred_at"] < np.datetime64(END)]
    return frame.sort_values(["customer_id", "occurred_at", "event"], kind="stable").reset_index(drop=True)


def _social(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for p, platform in enumerate(("instagram", "facebook", "linkedin")):
        followers = 5000.0 * (p + 1)
        for week in range(N_DAYS // 7):
            followers *= 1 + rng.normal(0.004, 0.002)
            for k in range(2):
                imp = int(followers * rng.uniform(0.8, 2.0))
                reach = int(imp * rng.uniform(0.5, 0.9))
                rows.append((f"P{p}{week:03d}{k}", platform, week * 7 + 2 + 3 * k + rng.uniform(0.4, 0.8), imp, reach,
                             int(rng.binomial(reach, 0.03)), int(rng.binomial(reach, 0.004)),
                             int(rng.binomial(reach, 0.002)), int(followers)))
    frame = pd.DataFrame(rows, columns=["post_id", "platform", "day", "impressions", "reach", "likes", "comments",
                                        "shares", "followers"])
    frame.insert(2, "posted_at", _ts(frame.pop("day").to_numpy()))
    return frame


def _spend(c: pd.DataFrame, rng: np.random.Generator, fx: Effects) -> pd.DataFrame:
    months = pd.date_range(START, END, freq="MS")[:-1]
    signup_month = _ts(c["day"].to_numpy()).astype("datetime64[M]")
    counts = pd.crosstab(signup_month, c["channel"].to_numpy()).reindex(
        index=months.to_numpy().astype("datetime64[M]"), columns=range(len(CHANNELS)), fill_value=0)
    rows = []
    for mi, month in enumerate(months):
        for ch, name in enumerate(CHANNELS):
            new = int(counts.iloc[mi, ch])
            spend = round(fx.cac[ch] * new * rng.uniform(0.9, 1.1), 2)
            impressions = int(spend * 40 * rng.uniform(0.8, 1.2)) if name.startswith("paid") else None
            clicks = int(rng.binomial(impressions, 0.02)) if impressions is not None else None
            rows.append((month.date(), name, spend, impressions, clicks))
    frame = pd.DataFrame(rows, columns=["period_start", "channel", "spend", "impressions", "clicks"])
    frame["impressions"] = frame["impressions"].astype("Int64")
    frame["clicks"] = frame["clicks"].astype("Int64")
    return frame


def _referrals(c: pd.DataFrame, ids: np.ndarray, rng: np.random.Generator, fx: Effects) -> pd.DataFrame:
    referred = np.flatnonzero(c["channel"].to_numpy() == CHANNELS.index("referral"))
    s = c["s"].to_numpy()
    cand = np.floor(rng.uniform(size=(len(referred), 3)) * referred[:, None]).astype(int)  # earlier customers
    pick = cand[np.arange(len(referred)), np.argmax(s[cand], axis=1)] if fx.referral_satisfaction else cand[:, 0]
    return pd.DataFrame({"referrer_id": ids[pick], "referred_customer_id": ids[referred],
                         "referred_at": _ts(c["day"].to_numpy()[referred])})


def _ground_truth(mode: str, seed: int, n: int, fx: Effects) -> dict[str, Any]:
    effects = [] if mode == "null" else [
        {"id": "nps_rises_through_q3", "metric": "nps", "kind": "trend", "periods": ["2024Q1", "2024Q2", "2024Q3"],
         "direction": "up", "segment": "all", "segment_value": "all"},
        {"id": "nps_dips_in_q4", "metric": "nps", "kind": "change_vs_previous", "period": "2024Q4",
         "direction": "down", "segment": "all", "segment_value": "all"},
        {"id": "nps_higher_with_tenure", "metric": "nps", "kind": "segment_gap", "segment": "tenure_band",
         "segment_value": "more than 1 year", "direction": "higher"},
        {"id": "nps_correlates_with_clv", "metric": "nps", "kind": "relationship", "with": "clv",
         "direction": "positive"},
        {"id": "churn_rises_in_q4_basic", "metric": "churn_rate", "kind": "change_vs_previous", "period": "2024Q4",
         "direction": "up", "segment": "plan", "segment_value": "basic"},
        {"id": "churn_falls_with_satisfaction", "metric": "churn_rate", "kind": "relationship", "with": "nps",
         "direction": "negative"},
        {"id": "aov_grows_through_the_year", "metric": "aov", "kind": "trend",
         "periods": ["2024Q1", "2024Q2", "2024Q3", "2024Q4"], "direction": "up", "segment": "all",
         "segment_value": "all"},
        {"id": "aov_higher_for_premium", "metric": "aov", "kind": "segment_gap", "segment": "plan",
         "segment_value": "premium", "direction": "higher"},
        {"id": "aov_correlates_with_clv", "metric": "aov", "kind": "relationship", "with": "clv",
         "direction": "positive"},
        {"id": "response_time_worsens_in_q4", "metric": "first_response_time", "kind": "change_vs_previous",
         "period": "2024Q4", "direction": "up", "segment": "all", "segment_value": "all"},
        {"id": "csat_drops_in_q4", "metric": "csat", "kind": "change_vs_previous", "period": "2024Q4",
         "direction": "down", "segment": "all", "segment_value": "all"},
        {"id": "paid_social_cac_high", "metric": "cac", "kind": "segment_gap", "segment": "acquisition_channel",
         "segment_value": "paid_social", "direction": "higher"},
    ]
    return {
        "mode": mode, "seed": seed, "n_customers": n, "start": str(START.date()),
        "end": str((END - pd.Timedelta(days=1)).date()), "effects": effects,
        "model": {k: (list(v) if isinstance(v, tuple) else v) for k, v in fx.__dict__.items()},
        "channels_cac": dict(zip(CHANNELS, fx.cac, strict=True)),
    }


def _batch_tables(c: pd.DataFrame, ids: np.ndarray, rng: np.random.Generator, fx: Effects,
                  offset: int) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    out["orders"] = _orders(c, ids, rng, fx)
    who, days = _active_days(c, rng, fx)
    out["events"] = _events(ids, who, days, rng)
    out["pageviews"] = pd.concat([_pageviews(ids, who, days, rng),
                                  _anonymous_pageviews(len(c), offset, rng)], ignore_index=True)
    out["pageviews"] = out["pageviews"].sort_values(["visitor_id", "viewed_at"], kind="stable").reset_index(drop=True)
    out["survey_responses"], out["support_tickets"] = _surveys_and_support(c, ids, rng, fx, offset // BATCH)
    out["email_events"] = _email(c, ids, rng, fx, offset)
    return out


def _customer_frame(c: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    cancel = c["cancel"].to_numpy()
    return pd.DataFrame({
        "customer_id": ids,
        "signup_at": _ts(c["day"].to_numpy()),
        "plan": np.array(PLANS)[c["plan"].to_numpy()],
        "acquisition_channel": np.array(CHANNELS)[c["channel"].to_numpy()],
        "region": np.array(REGIONS)[c["region"].to_numpy()],
        "cancelled_at": pd.Series(_ts(np.where(np.isfinite(cancel), cancel, 0))).where(np.isfinite(cancel)),
    })


def _iter_batches(n_customers: int, seed: int, mode: str):
    fx = Effects() if mode == "planted" else Effects.null()
    root = np.random.SeedSequence(seed)
    base_rng, *batch_seeds = [np.random.default_rng(s) for s in root.spawn(1 + -(-n_customers // BATCH))]
    c = _customers(n_customers, base_rng, fx)
    ids = np.array([f"C{i:07d}" for i in range(1, n_customers + 1)], dtype=object)
    yield "customers", _customer_frame(c, ids)
    yield "social_posts", _social(base_rng)
    yield "marketing_spend", _spend(c, base_rng, fx)
    yield "referrals", _referrals(c, ids, base_rng, fx)
    for b, rng in enumerate(batch_seeds):
        lo, hi = b * BATCH, min((b + 1) * BATCH, n_customers)
        yield from _batch_tables(c.iloc[lo:hi].reset_index(drop=True), ids[lo:hi], rng, fx, lo).items()
    yield "ground_truth", _ground_truth(mode, seed, n_customers, fx)


def generate_demo(n_customers: int = 4000, *, seed: int = 2024, mode: str = "planted") -> DemoData:
    """Generate the demo tables in memory (see the module docstring for the model).

    Parameters
    ----------
    n_customers : int, default 4000
    seed : int, default 2024
    mode : {"planted", "null"}

    Examples
    --------
    >>> from engagement.data.demo import generate_demo
    >>> d = generate_demo(300, seed=1)
    >>> sorted(d.tables)[:3], d.ground_truth["mode"]
    (['customers', 'email_events', 'events'], 'planted')
    """
    if mode not in ("planted", "null"):
        raise ValueError(f"`mode` must be 'planted' or 'null', got {mode!r}.")
    if not isinstance(n_customers, int) or n_customers < 50:
        raise ValueError(f"`n_customers` must be a whole number >= 50, got {n_customers!r}.")
    parts: dict[str, list[pd.DataFrame]] = {}
    truth: dict[str, Any] = {}
    for name, frame in _iter_batches(n_customers, seed, mode):
        if name == "ground_truth":
            truth = frame
        else:
            parts.setdefault(name, []).append(frame)
    tables = {k: pd.concat(v, ignore_index=True) if len(v) > 1 else v[0] for k, v in parts.items()}
    return DemoData(tables=tables, ground_truth=truth)


def write_demo(out: str | Path, n_customers: int = 4000, *, seed: int = 2024, mode: str = "planted") -> Path:
    """Write the demo tables as Parquet files plus ``ground_truth.json`` into ``out``.

    Tables are written batch by batch (bounded memory at a million customers);
    the same seed and size give byte-identical files.
    """
    if mode not in ("planted", "null"):
        raise ValueError(f"`mode` must be 'planted' or 'null', got {mode!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for name, frame in _iter_batches(n_customers, seed, mode):
            if name == "ground_truth":
                (out / GROUND_TRUTH_FILE).write_text(json.dumps(frame, indent=2, sort_keys=True) + "\n")
                continue
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            if name not in writers:
                writers[name] = pq.ParquetWriter(out / f"{name}.parquet", table.schema, compression="zstd")
            writers[name].write_table(table.cast(writers[name].schema), row_group_size=1_000_000)
    finally:
        for w in writers.values():
            w.close()
    return out
