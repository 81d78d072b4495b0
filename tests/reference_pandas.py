"""The pandas reference for ``engagement.measure``: the same aggregations, written the straightforward way.

This is what an analyst would write without the package: read every table into
pandas, filter the period, ``groupby`` per customer, merge, ``groupby`` per
segment. It computes the value, the count, the standard error and the interval
behind every metric that ``measure(data, period, compare=False)`` gives, for
``all`` and each segment, with the textbook formulas written out here (Wilson's
closed form, the t interval, the trinomial and adjusted-Wald NPS variance, the
ratio estimator's linearised variance, the median's order-statistic interval
from the raw values), and no validation.

It serves twice: ``tests/test_measure.py`` checks that both give the same
numbers on the demo, so it is a second, independent implementation of every
definition and interval; ``benchmarks/bench_measure.py`` times it against the
package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

Z = float(stats.norm.ppf(0.975))
NAN = float("nan")

SEGMENTS = ["plan", "acquisition_channel", "region", "tenure_band", "new_vs_returning", "value_tier"]
TABLES = ["customers", "orders", "survey_responses", "events", "email_events", "pageviews", "referrals",
          "support_tickets", "social_posts", "marketing_spend"]


#: the per-customer facts summed per segment value, which :func:`_metrics` turns into figures
SUMS = [
    "buyers", "c_yy", "c_xx", "c_xy", "at_start", "new", "lost", "at_end", "retained", "active", "n_orders",
    "revenue", "revenue_sq", "cost", "n_cost", "nps_pro", "nps_pas", "nps_det", "csat_n", "csat_top2", "csat_sum",
    "ces_n", "ces_sum", "csat_people", "csat_cust_sq", "csat_n_sq", "csat_n_sum", "ces_people", "ces_cust_sq",
    "ces_n_sq", "ces_n_sum", "n_events", "active_days", "active_weeks", "active_months", "users_at_start",
    "engaged", "fw_n", "fw_engaged", "delivered", "opened", "clicked", "unsubscribed", "n_sessions", "n_pageviews",
    "bounces", "dur_sum", "converting", "referred_new", "web_clusters", "web_s_sq", "web_pv_sq", "web_s_pv",
    "web_dur_sq", "web_s_dur", "web_b_sq", "web_s_b", "web_c_sq", "web_s_c", "nps_people", "nps_z_sq", "nps_n_sq",
    "nps_n_z", "csat_t_sq", "csat_n_t", "em_people", "em_openers", "em_dd", "em_oo", "em_cc", "em_uu", "em_do",
    "em_dc", "em_oc", "em_du",
]


def read_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a demo folder, read whole into pandas."""
    return {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in TABLES}


#: What :func:`measure_reference` reads of each table: its columns, the time column a period filter can use and
#: how far before the period's start and after its end that column is read (None: every row), and the text
#: columns read as categoricals.
NEEDED: dict[str, tuple[list[str] | None, str | None, tuple[pd.Timedelta, pd.Timedelta] | None, list[str]]] = {
    "customers": (["customer_id", "signup_at", "plan", "acquisition_channel", "region", "cancelled_at"], None, None,
                  ["plan", "acquisition_channel", "region"]),
    "orders": (["customer_id", "ordered_at", "revenue", "cost"], "ordered_at",
               (pd.Timedelta(days=365), pd.Timedelta(0)), []),
    "survey_responses": (["customer_id", "responded_at", "survey", "score"], "responded_at",
                         (pd.Timedelta(0), pd.Timedelta(0)), ["survey"]),
    "events": (["customer_id", "occurred_at"], "occurred_at", (pd.Timedelta(0), pd.Timedelta(days=8)), []),
    "email_events": (["campaign_id", "customer_id", "occurred_at", "event"], None, None, ["event"]),
    # a session belongs to the period of its first view; views a day either side sessionise its edges exactly
    "pageviews": (["visitor_id", "customer_id", "viewed_at", "converted"], "viewed_at",
                  (pd.Timedelta(days=1), pd.Timedelta(days=1)), []),
    "referrals": (["referred_customer_id"], None, None, []),
    "support_tickets": (["customer_id", "opened_at", "first_response_at", "resolved_at"], "opened_at",
                        (pd.Timedelta(0), pd.Timedelta(0)), []),
    "social_posts": (None, None, None, ["platform"]),
    "marketing_spend": (None, None, None, ["channel"]),
}


def read_tables_competent(folder: str | Path, period: str = "2024Q4") -> tuple[dict[str, pd.DataFrame], pd.Timestamp]:
    """The tables as a competent pandas user reads them: only the columns needed, only the rows of the period's
    windows (pyarrow filters), segment and category text as categoricals; and the data's as-of time from the
    Parquet statistics. Returns the tables and the as-of time for :func:`measure_reference`."""
    import pyarrow.parquet as pq

    s, e = quarter_bounds(period)
    out = {}
    for name, (columns, time_col, window, categorical) in NEEDED.items():
        filters = None
        if time_col is not None and window is not None:
            filters = [(time_col, ">=", s - window[0]), (time_col, "<", e + window[1])]
        table = pq.read_table(Path(folder) / f"{name}.parquet", columns=columns, filters=filters,
                              read_dictionary=categorical or None)
        out[name] = table.to_pandas()
    as_of = max(_column_max(Path(folder) / f"{t}.parquet", c) for t, c in (
        ("events", "occurred_at"), ("orders", "ordered_at"), ("pageviews", "viewed_at"), ("customers", "signup_at")))
    return out, as_of


def _column_max(path: Path, column: str) -> pd.Timestamp:
    """The largest value of a column from the Parquet file's row-group statistics (no data read)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    i = meta.schema.to_arrow_schema().get_field_index(column)
    return max(pd.Timestamp(meta.row_group(g).column(i).statistics.max) for g in range(meta.num_row_groups))


def quarter_bounds(period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Period(period, freq="Q").start_time
    return start, start + pd.offsets.QuarterBegin(1, startingMonth=1)


def _ntile3(n: int) -> np.ndarray:
    """SQL ``NTILE(3)`` over n ordered rows: the first n % 3 buckets get one row more."""
    q, r = divmod(n, 3)
    sizes = [q + 1 if b < r else q for b in range(3)]
    return np.repeat(np.arange(3), sizes)


def sessions(pv: pd.DataFrame, timeout_minutes: float = 30.0) -> pd.DataFrame:
    """One row per session of the given pageviews: customer, pageviews, duration, converted."""
    pv = pv.sort_values(["visitor_id", "viewed_at"], kind="stable")
    gap = pv["viewed_at"].diff()
    new = (pv["visitor_id"] != pv["visitor_id"].shift()) | (gap > pd.Timedelta(minutes=timeout_minutes))
    sid = new.cumsum().to_numpy()
    return pv.assign(_sid=sid).groupby("_sid").agg(
        visitor_id=("visitor_id", "first"), customer_id=("customer_id", "max"), pageviews=("viewed_at", "size"),
        first=("viewed_at", "min"), last=("viewed_at", "max"), converted=("converted", "max"),
    ).assign(duration=lambda d: (d["last"] - d["first"]).dt.total_seconds())


def measure_reference(d: dict[str, pd.DataFrame], period: str = "2024Q4",
                      segments: list[str] | None = None, timeout_minutes: float = 30.0,
                      as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """``segment, segment_value, metric, value, n`` for the period, computed in pandas.

    ``d`` is every table read whole (:func:`read_tables`), or only what is needed (:func:`read_tables_competent`,
    which gives ``as_of`` too: the tables it reads are cut to the period's windows).
    """
    segments = SEGMENTS if segments is None else segments
    s, e = quarter_bounds(period)
    days = (e - s).days
    months = 3
    weeks = len(pd.date_range(s - pd.Timedelta(days=s.weekday()), e - pd.Timedelta(days=1), freq="W-MON"))
    if as_of is None:
        as_of = max(d["events"]["occurred_at"].max(), d["orders"]["ordered_at"].max(),
                    d["pageviews"]["viewed_at"].max(), d["customers"]["signup_at"].max())

    # customers and their flags
    c = d["customers"]
    c = c[c["signup_at"] < e].copy()
    cancelled = c["cancelled_at"]
    c["at_start"] = ((c["signup_at"] < s) & (cancelled.isna() | (cancelled >= s))).astype(int)
    c["new"] = (c["signup_at"] >= s).astype(int)
    c["lost"] = ((c["at_start"] == 1) & (cancelled < e)).astype(int)
    c["at_end"] = (cancelled.isna() | (cancelled >= e)).astype(int)
    c["retained"] = ((c["at_start"] == 1) & (c["lost"] == 0)).astype(int)
    c["active"] = ((c["at_start"] == 1) | (c["new"] == 1)).astype(int)

    # segments
    c["tenure_band"] = np.where(c["signup_at"] >= s, "new this period",
                                np.where(c["signup_at"] >= s - pd.Timedelta(days=365), "under 1 year",
                                         "more than 1 year"))
    c["new_vs_returning"] = np.where(c["signup_at"] >= s, "new", "returning")
    o = d["orders"]
    prior = o[(o["ordered_at"] >= s - pd.Timedelta(days=365)) & (o["ordered_at"] < s)]
    spend = prior.groupby("customer_id")["revenue"].sum().round(6)  # in millionths, as measure sums exactly
    spend = spend[spend > 0].reset_index().sort_values(["revenue", "customer_id"])
    spend["tier"] = np.array(["low", "mid", "high"])[_ntile3(len(spend))]
    c["value_tier"] = c["customer_id"].map(spend.set_index("customer_id")["tier"]).fillna("none")
    for col in ("plan", "acquisition_channel", "region"):
        if isinstance(c[col].dtype, pd.CategoricalDtype):  # read as a categorical: keep it one
            if "(missing)" not in c[col].cat.categories:
                c[col] = c[col].cat.add_categories("(missing)")
            c[col] = c[col].fillna("(missing)")
        else:
            c[col] = c[col].astype("string").fillna("(missing)")

    # per-customer facts
    ow = o[(o["ordered_at"] >= s) & (o["ordered_at"] < e)]
    f_orders = ow.assign(rsq=ow["revenue"] ** 2, has_cost=ow["cost"].notna().astype(int)).groupby("customer_id").agg(
        n_orders=("revenue", "size"), revenue=("revenue", "sum"), revenue_sq=("rsq", "sum"),
        cost=("cost", "sum"), n_cost=("has_cost", "sum"))
    sv = d["survey_responses"]
    sv = sv[(sv["responded_at"] >= s) & (sv["responded_at"] < e)]
    sc = sv["score"]
    is_nps, is_csat, is_ces = sv["survey"] == "nps", sv["survey"] == "csat", sv["survey"] == "ces"
    f_surveys = sv.assign(
        nps_pro=is_nps & (sc >= 9), nps_pas=is_nps & (sc >= 7) & (sc <= 8), nps_det=is_nps & (sc <= 6),
        csat_n=is_csat, csat_top2=is_csat & (sc >= 4), csat_sum=sc.where(is_csat, 0),
        ces_n=is_ces, ces_sum=sc.where(is_ces, 0),
        responses=1,
    ).groupby("customer_id")[["nps_pro", "nps_pas", "nps_det", "csat_n", "csat_top2", "csat_sum", "ces_n",
                              "ces_sum", "responses"]].sum()
    ev = d["events"]
    evq = ev[(ev["occurred_at"] >= s) & (ev["occurred_at"] < e)]
    day = evq["occurred_at"].dt.floor("D")
    f_events = pd.DataFrame({
        "n_events": evq.groupby("customer_id").size(),
        "active_days": day.groupby(evq["customer_id"]).nunique(),
        "active_weeks": (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).groupby(evq["customer_id"]).nunique(),
        "active_months": day.dt.to_period("M").groupby(evq["customer_id"]).nunique(),
    })
    new_c = c.loc[c["new"] == 1, ["customer_id", "signup_at"]].assign(day0=lambda x: x["signup_at"].dt.floor("D"))
    new_c["fw_complete"] = (new_c["day0"] + pd.Timedelta(days=7) <= as_of).astype(int)
    evw = ev[(ev["occurred_at"] >= s) & (ev["occurred_at"] < e + pd.Timedelta(days=8))]
    evw = evw.assign(day=evw["occurred_at"].dt.floor("D"))[["customer_id", "day"]].merge(new_c, on="customer_id")
    evw = evw[(evw["day"] >= evw["day0"]) & (evw["day"] < evw["day0"] + pd.Timedelta(days=7))]
    new_c["fw_days"] = new_c["customer_id"].map(evw.groupby("customer_id")["day"].nunique()).fillna(0)
    em = d["email_events"]
    # a campaign belongs to the quarter of its delivery, with what it led to at any time
    sent = em[em["event"] == "delivered"].groupby(["customer_id", "campaign_id"])["occurred_at"].min()
    sent = sent[(sent >= s) & (sent < e)]
    mine = em.merge(sent.index.to_frame(index=False), on=["customer_id", "campaign_id"])  # the period's campaigns
    per_campaign = mine.assign(
        opened=mine["event"].isin(["open", "click"]), clicked=mine["event"] == "click",
        unsubscribed=mine["event"] == "unsubscribe",
    ).groupby(["customer_id", "campaign_id"])[["opened", "clicked", "unsubscribed"]].max()
    per_campaign = per_campaign.loc[sent.index].assign(delivered=1)
    f_email = per_campaign.groupby(level="customer_id").sum()
    clicks_now = em[(em["occurred_at"] >= s) & (em["occurred_at"] < e) & (em["event"] == "click")]
    f_email = f_email.join(clicks_now.groupby("customer_id").size().rename("email_clicks"), how="outer")
    pv = d["pageviews"]
    # the whole history sessionised, then the sessions that start in the period (a session belongs to the period
    # of its first view)
    ss = sessions(pv, timeout_minutes)
    ss = ss[(ss["first"] >= s) & (ss["first"] < e)]
    ss = ss.assign(bounce=ss["pageviews"] == 1,
                   cluster=ss["customer_id"].where(ss["customer_id"].notna(), "visitor " + ss["visitor_id"].astype(str)))
    per = ss.groupby("cluster").agg(customer_id=("customer_id", "max"), n_sessions=("pageviews", "size"),
                                    n_pageviews=("pageviews", "sum"), bounces=("bounce", "sum"),
                                    dur_sum=("duration", "sum"), converting=("converted", "sum"))
    per = per.assign(web_clusters=1, web_s_sq=per["n_sessions"] ** 2, web_pv_sq=per["n_pageviews"] ** 2,
                     web_s_pv=per["n_sessions"] * per["n_pageviews"], web_dur_sq=per["dur_sum"] ** 2,
                     web_s_dur=per["n_sessions"] * per["dur_sum"], web_b_sq=per["bounces"] ** 2,
                     web_s_b=per["n_sessions"] * per["bounces"], web_c_sq=per["converting"] ** 2,
                     web_s_c=per["n_sessions"] * per["converting"])
    web_cols = [c for c in per.columns if c != "customer_id"]
    f_web = per[per["customer_id"].notna()].set_index("customer_id")[web_cols]
    # visits of no customer of the quarter (anonymous, or signed up after it) count for all customers only
    anon = per[~per["customer_id"].isin(c["customer_id"])][web_cols].sum().to_frame().T
    referred = d["referrals"].groupby("referred_customer_id").size().rename("referred")
    tk = d["support_tickets"]
    tk = tk[(tk["opened_at"] >= s) & (tk["opened_at"] < e)]
    f_tickets = tk.groupby("customer_id").size().rename("tickets")

    facts = c.set_index("customer_id")
    for part in (f_orders, f_surveys, f_events, new_c.set_index("customer_id")[["fw_complete", "fw_days"]],
                 f_email, f_web, referred, f_tickets):
        facts = facts.join(part, how="left")
    numeric = [col for col in facts.columns if col not in c.columns or col in
               ("at_start", "new", "lost", "at_end", "retained", "active")]
    facts[numeric] = facts[numeric].fillna(0)
    facts["users_at_start"] = ((facts["n_events"] > 0) & (facts["at_start"] == 1)).astype(int)
    engaged = ((facts["n_events"] > 0) | (facts["n_orders"] > 0) | (facts["email_clicks"] > 0)
               | (facts["responses"] > 0) | (facts["n_sessions"] > 0))
    facts["engaged"] = (engaged & (facts["at_start"] == 1)).astype(int)
    fw_ok = (facts["new"] == 1) & (facts["fw_complete"] == 1)
    facts["fw_n"] = fw_ok.astype(int)
    facts["fw_engaged"] = (fw_ok & (facts["fw_days"] >= 2)).astype(int)
    facts["referred_new"] = ((facts["referred"] > 0) & (facts["new"] == 1)).astype(int)
    # customer-level moments of the shares whose items cluster in their customer (answers, emails)
    net, n_nps = facts["nps_pro"] - facts["nps_det"], facts["nps_pro"] + facts["nps_pas"] + facts["nps_det"]
    facts["nps_people"], facts["nps_z_sq"] = (n_nps > 0).astype(int), net**2
    facts["nps_n_sq"], facts["nps_n_z"] = n_nps**2, n_nps * net
    facts["csat_t_sq"], facts["csat_n_t"] = facts["csat_top2"] ** 2, facts["csat_n"] * facts["csat_top2"]
    dl, op, cl, un = (facts[k] for k in ("delivered", "opened", "clicked", "unsubscribed"))
    facts["em_people"], facts["em_openers"] = (dl > 0).astype(int), (op > 0).astype(int)
    for name, value in {"em_dd": dl * dl, "em_oo": op * op, "em_cc": cl * cl, "em_uu": un * un, "em_do": dl * op,
                        "em_dc": dl * cl, "em_oc": op * cl, "em_du": dl * un}.items():
        facts[name] = value
    for q in ("csat", "ces"):  # customer-level moments of the survey means' ratio estimator over respondents
        facts[f"{q}_people"] = (facts[f"{q}_n"] > 0).astype(int)
        facts[f"{q}_cust_sq"] = facts[f"{q}_sum"] ** 2
        facts[f"{q}_n_sq"] = facts[f"{q}_n"] ** 2
        facts[f"{q}_n_sum"] = facts[f"{q}_n"] * facts[f"{q}_sum"]
    # customer-level moments for AOV's ratio estimator over customers
    facts["buyers"] = (facts["n_orders"] > 0).astype(int)
    facts["c_yy"], facts["c_xx"] = facts["revenue"] ** 2, facts["n_orders"] ** 2
    facts["c_xy"] = facts["n_orders"] * facts["revenue"]
    sums = SUMS
    facts["all"] = "all"

    # per segment: sums, then metric values
    spend_t = d["marketing_spend"]
    spend_t = spend_t.assign(period_start=pd.to_datetime(spend_t["period_start"]))
    spend_t = spend_t[(spend_t["period_start"] >= s) & (spend_t["period_start"] < e)]
    both = spend_t["impressions"].notna() & spend_t["clicks"].notna()
    spend_t = spend_t.assign(impressions=spend_t["impressions"].where(both, 0), clicks=spend_t["clicks"].where(both, 0))
    by_channel = spend_t.groupby("channel")[["spend", "impressions", "clicks"]].sum()
    tk = tk.assign(first_response_time=(tk["first_response_at"] - tk["opened_at"]).dt.total_seconds(),
                   resolution_time=(tk["resolved_at"] - tk["opened_at"]).dt.total_seconds())
    tk = tk.merge(facts[["all", *segments]], left_on="customer_id", right_index=True)
    rows: list[tuple] = []
    for seg in ["all", *segments]:
        g = facts.groupby(seg)[sums].sum()
        if seg == "all" and len(anon):
            g.loc["all", list(anon.columns)] += anon.iloc[0]
        for value, r in g.iterrows():
            rows += _metrics(seg, str(value), r, days, weeks, months)
        for metric in ("first_response_time", "resolution_time"):
            for value, grp in tk.groupby(seg):
                done = grp[grp[metric].notna()]
                x = done[metric].to_numpy(float)
                rows.append((seg, str(value), metric, float(np.median(x)) if len(x) else np.nan, len(x),
                             *_median_interval(x)))
                # the mean clusters each customer's tickets: ratio estimator over customers
                per = done.groupby("customer_id")[metric].agg(["sum", "size"])
                rows.append((seg, str(value), f"{metric}_mean", float(x.mean()) if len(x) else np.nan, len(per),
                             *_ratio_over_customers(len(per), per["sum"].sum(), per["size"].sum(),
                                                    (per["sum"] ** 2).sum(), (per["size"] ** 2).sum(),
                                                    (per["sum"] * per["size"]).sum())))
        if seg in ("all", "acquisition_channel"):
            spend_of = by_channel.sum() if seg == "all" else None
            for value, r in g.iterrows():
                sp = spend_of if seg == "all" else (by_channel.loc[value] if value in by_channel.index else None)
                if sp is None:
                    continue
                cac = sp["spend"] / r["new"] if r["new"] else np.nan
                rows.append((seg, str(value), "cac", cac, int(r["new"]), NAN, NAN, NAN))
                clv = _clv(r)
                if not (np.isnan(clv) or np.isnan(cac) or cac == 0):
                    rows.append((seg, str(value), "clv_cac_ratio", clv / cac, 1, NAN, NAN, NAN))
                if sp["impressions"] > 0:
                    rows.append((seg, str(value), "click_through_rate", sp["clicks"] / sp["impressions"],
                                 int(sp["impressions"]), *_wilson(sp["clicks"], sp["impressions"])))
    posts = d["social_posts"]
    posts = posts[(posts["posted_at"] >= s) & (posts["posted_at"] < e)].sort_values("posted_at")
    posts = posts.assign(eng=posts["likes"] + posts["comments"] + posts["shares"])
    per_platform = posts.groupby("platform").agg(eng=("eng", "sum"), reach=("reach", "sum"),
                                                 f0=("followers", "first"), f1=("followers", "last"),
                                                 n=("eng", "size"))
    for value, r in [*per_platform.iterrows(), ("all", per_platform.sum())]:
        seg = "all" if value == "all" else "platform"
        mine = posts if value == "all" else posts[posts["platform"] == value]
        rows.append((seg, str(value), "social_engagement_rate", r["eng"] / r["reach"], int(r["n"]),
                     *_ratio_interval(mine["eng"].to_numpy(float), mine["reach"].to_numpy(float))))
        rows.append((seg, str(value), "follower_growth_rate", (r["f1"] - r["f0"]) / r["f0"], int(r["f0"]),
                     NAN, NAN, NAN))
    return pd.DataFrame(rows, columns=["segment", "segment_value", "metric", "value", "n", "se", "ci_low", "ci_high"])


# --- intervals, written out -------------------------------------------------------------------


def _wilson(k: float, n: float) -> tuple[float, float, float]:
    """SE sqrt(p(1-p)/n) and Wilson's closed form (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    if not n:
        return NAN, NAN, NAN
    p = k / n
    centre, half = p + Z**2 / (2 * n), Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return np.sqrt(p * (1 - p) / n), (centre - half) / (1 + Z**2 / n), (centre + half) / (1 + Z**2 / n)


def _design_effect(c: float, k: float, n: float, yy: float, xx: float, xy: float, item_var: float) -> float:
    """Clustered variance of k / n (ratio estimator over c clusters) over the variance of n independent items."""
    if c < 2 or n < 2 or c >= n or item_var <= 0:
        return 1.0
    r = k / n
    clustered = max(yy - 2 * r * xy + r * r * xx, 0.0) * c / ((c - 1) * n * n)
    return max(1.0, clustered / (item_var / (n - 1)))


def _clustered_wilson(k: float, n: float, c: float, yy: float, xx: float, xy: float) -> tuple[float, ...]:
    """Wilson at the effective sample size n / deff: (effective n, se, low, high)."""
    if not n:
        return 0, NAN, NAN, NAN
    p = k / n
    deff = _design_effect(c, k, n, yy, xx, xy, p * (1 - p))
    se, low, high = _wilson(k / deff, n / deff)
    return (n if deff == 1.0 else max(round(n / deff), 1)), se, max(0.0, min(low, p)), min(1.0, max(high, p))


def _ratio_over_customers(n: float, y: float, x: float, yy: float, xx: float, xy: float
                          ) -> tuple[float, float, float]:
    """sum(y) / sum(x) over n customers, linearised: var = sum((y - R x)^2) n / ((n - 1) X^2), t on n - 1."""
    if n < 2 or not x:
        return NAN, NAN, NAN
    r = y / x
    se = np.sqrt(max(yy - 2 * r * xy + r * r * xx, 0.0) * n / ((n - 1) * x * x))
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return se, r - half, r + half


def _median_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Order-statistic interval of the median from the raw values (scipy's quantile test); SE = width / 2z."""
    if len(x) < 2:
        return NAN, NAN, NAN
    ci = stats.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(confidence_level=0.95)
    low, high = float(ci.low), float(ci.high)
    return (high - low) / (2 * Z), low, high


def _ratio_interval(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    """sum(y)/sum(x) over n units: linearised variance sum((y - R x)^2) / (n (n - 1) xbar^2), t on n - 1 df."""
    n = len(y)
    if n < 2 or not x.sum():
        return NAN, NAN, NAN
    r = y.sum() / x.sum()
    se = float(np.sqrt(((y - r * x) ** 2).sum() / (n * (n - 1) * x.mean() ** 2)))
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return se, r - half, r + half


def _nps(pro: float, det: float, n: float) -> tuple[float, float, float]:
    """Trinomial SE of the raw score; adjusted-Wald interval (3/4 added to each outer count, 3 to n), in points."""
    if not n:
        return NAN, NAN, NAN
    p, d = pro / n, det / n
    se = 100 * np.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    pa, da, na = (pro + 0.75) / (n + 3), (det + 0.75) / (n + 3), n + 3
    half = Z * np.sqrt(max(pa + da - (pa - da) ** 2, 0.0) / na)
    value = 100 * (p - d)
    low, high = 100 * max(-1.0, pa - da - half), 100 * min(1.0, pa - da + half)
    return se, min(low, value), max(high, value)


def _ratio(a: float, b: float) -> float:
    return a / b if b else np.nan


def _clv(r: pd.Series) -> float:
    if not (r["at_start"] and r["lost"] and r["n_orders"] and r["active"]):
        return np.nan
    margin = 1 - r["cost"] / r["revenue"] if r["n_cost"] == r["n_orders"] and r["revenue"] > 0 else 1.0
    margin = min(max(margin, 0.0), 1.0)
    return (r["revenue"] / r["n_orders"]) * (r["n_orders"] / r["active"]) * (r["at_start"] / r["lost"]) * margin


def _metrics(seg: str, value: str, r: pd.Series, days: int, weeks: int, months: int) -> list[tuple]:
    dau, mau = r["active_days"] / days, r["active_months"] / months
    nps_n = r["nps_pro"] + r["nps_pas"] + r["nps_det"]
    figures = {
        "churn_rate": (_ratio(r["lost"], r["at_start"]), r["at_start"]),
        "retention_rate": (_ratio(r["retained"], r["at_start"]), r["at_start"]),
        "new_customers": (r["new"], r["new"]), "active_customers": (r["active"], r["active"]),
        "orders": (r["n_orders"], r["n_orders"]), "revenue": (r["revenue"], r["n_orders"]),
        "aov": (_ratio(r["revenue"], r["n_orders"]), r["buyers"]),
        "purchase_frequency": (_ratio(r["n_orders"], r["active"]), r["active"]),
        "clv": (_clv(r), 0 if np.isnan(_clv(r)) else 1),
        "nps": (100 * _ratio(r["nps_pro"] - r["nps_det"], nps_n), nps_n),
        "csat": (_ratio(r["csat_top2"], r["csat_n"]), r["csat_n"]),
        "csat_mean": (_ratio(r["csat_sum"], r["csat_n"]), r["csat_people"]),
        "ces": (_ratio(r["ces_sum"], r["ces_n"]), r["ces_people"]),
        "dau": (dau, days), "wau": (r["active_weeks"] / weeks, weeks), "mau": (mau, months),
        "stickiness": (_ratio(dau, mau), round(mau)),
        "product_usage_rate": (_ratio(r["users_at_start"], r["at_start"]), r["at_start"]),
        "first_week_engagement": (_ratio(r["fw_engaged"], r["fw_n"]), r["fw_n"]),
        "engagement_rate": (_ratio(r["engaged"], r["at_start"]), r["at_start"]),
        "website_visits": (r["n_sessions"], r["n_sessions"]), "page_views": (r["n_pageviews"], r["n_pageviews"]),
        "pages_per_session": (_ratio(r["n_pageviews"], r["n_sessions"]), r["web_clusters"]),
        "bounce_rate": (_ratio(r["bounces"], r["n_sessions"]), r["n_sessions"]),
        "average_session_duration": (_ratio(r["dur_sum"], r["n_sessions"]), r["web_clusters"]),
        "conversion_rate": (_ratio(r["converting"], r["n_sessions"]), r["n_sessions"]),
        "email_open_rate": (_ratio(r["opened"], r["delivered"]), r["delivered"]),
        "email_click_rate": (_ratio(r["clicked"], r["delivered"]), r["delivered"]),
        "click_to_open_rate": (_ratio(r["clicked"], r["opened"]), r["opened"]),
        "unsubscribe_rate": (_ratio(min(r["unsubscribed"], r["delivered"]), r["delivered"]), r["delivered"]),
        "referral_rate": (_ratio(r["referred_new"], r["new"]), r["new"]),
    }
    intervals = {
        "churn_rate": _wilson(r["lost"], r["at_start"]), "retention_rate": _wilson(r["retained"], r["at_start"]),
        "aov": _ratio_over_customers(r["buyers"], r["revenue"], r["n_orders"], r["c_yy"], r["c_xx"], r["c_xy"]),
        "nps": _nps(r["nps_pro"], r["nps_det"], nps_n), "csat": _wilson(r["csat_top2"], r["csat_n"]),
        "csat_mean": _ratio_over_customers(r["csat_people"], r["csat_sum"], r["csat_n"], r["csat_cust_sq"],
                                           r["csat_n_sq"], r["csat_n_sum"]),
        "ces": _ratio_over_customers(r["ces_people"], r["ces_sum"], r["ces_n"], r["ces_cust_sq"], r["ces_n_sq"],
                                     r["ces_n_sum"]),
        "product_usage_rate": _wilson(r["users_at_start"], r["at_start"]),
        "first_week_engagement": _wilson(r["fw_engaged"], r["fw_n"]),
        "engagement_rate": _wilson(r["engaged"], r["at_start"]),
        "pages_per_session": _ratio_over_customers(r["web_clusters"], r["n_pageviews"], r["n_sessions"],
                                                   r["web_pv_sq"], r["web_s_sq"], r["web_s_pv"]),
        "bounce_rate": _wilson(r["bounces"], r["n_sessions"]),
        "average_session_duration": _ratio_over_customers(r["web_clusters"], r["dur_sum"], r["n_sessions"],
                                                          r["web_dur_sq"], r["web_s_sq"], r["web_s_dur"]),
        "conversion_rate": _wilson(r["converting"], r["n_sessions"]),
        "email_open_rate": _wilson(r["opened"], r["delivered"]),
        "email_click_rate": _wilson(r["clicked"], r["delivered"]),
        "click_to_open_rate": _wilson(r["clicked"], r["opened"]),
        "unsubscribe_rate": _wilson(min(r["unsubscribed"], r["delivered"]), r["delivered"]),
        "referral_rate": _wilson(r["referred_new"], r["new"]),
    }
    # shares whose items cluster: Wilson at the effective sample size, which is the n they report
    unsub = min(r["unsubscribed"], r["delivered"])
    for m, args in {
        "csat": (r["csat_top2"], r["csat_n"], r["csat_people"], r["csat_t_sq"], r["csat_n_sq"], r["csat_n_t"]),
        "bounce_rate": (r["bounces"], r["n_sessions"], r["web_clusters"], r["web_b_sq"], r["web_s_sq"], r["web_s_b"]),
        "conversion_rate": (r["converting"], r["n_sessions"], r["web_clusters"], r["web_c_sq"], r["web_s_sq"],
                            r["web_s_c"]),
        "email_open_rate": (r["opened"], r["delivered"], r["em_people"], r["em_oo"], r["em_dd"], r["em_do"]),
        "email_click_rate": (r["clicked"], r["delivered"], r["em_people"], r["em_cc"], r["em_dd"], r["em_dc"]),
        "click_to_open_rate": (r["clicked"], r["opened"], r["em_openers"], r["em_cc"], r["em_oo"], r["em_oc"]),
        "unsubscribe_rate": (unsub, r["delivered"], r["em_people"], r["em_uu"], r["em_dd"], r["em_du"]),
    }.items():
        n_eff, *interval = _clustered_wilson(*args)
        figures[m] = (figures[m][0], n_eff)
        intervals[m] = tuple(interval)
    if nps_n:
        p, d = r["nps_pro"] / nps_n, r["nps_det"] / nps_n
        deff = _design_effect(r["nps_people"], r["nps_pro"] - r["nps_det"], nps_n, r["nps_z_sq"], r["nps_n_sq"],
                              r["nps_n_z"], p + d - (p - d) ** 2)
        se, low, high = _nps(r["nps_pro"] / deff, r["nps_det"] / deff, nps_n / deff)
        figures["nps"] = (figures["nps"][0], nps_n if deff == 1.0 else max(round(nps_n / deff), 1))
        score = figures["nps"][0]
        intervals["nps"] = (se, min(low, score), max(high, score))
    return [(seg, value, m, float(v), int(n), *intervals.get(m, (NAN, NAN, NAN))) for m, (v, n) in figures.items()]


def compare(ours: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``ours`` (current period) joined to the reference, with the relative difference of each of value,
    se, ci_low and ci_high (``rel_diff``, ``rel_diff_se``, ...; 0 where both are NaN, inf where one is)."""
    # the figures measured: those with a value, and those measured over nobody (NaN, n = 0, unavailable with the
    # method they were measured by; what the data cannot support at all has no method)
    measured = (ours["status"] == "ok") | ((ours["n"] == 0) & ours["value"].isna() & (ours["method"] != ""))
    cur = ours[measured & (ours["period_role"] == "current")]
    cur = cur[["segment", "segment_value", "metric", "value", "n", "se", "ci_low", "ci_high"]]
    both = cur.merge(reference, on=["segment", "segment_value", "metric"], how="outer", suffixes=("", "_ref"),
                     indicator=True)
    for col, out in (("value", "rel_diff"), ("se", "rel_diff_se"), ("ci_low", "rel_diff_ci_low"),
                     ("ci_high", "rel_diff_ci_high")):
        a, b = both[col].astype(float), both[f"{col}_ref"].astype(float)
        # near zero (a Wilson bound at k = 0 is 0, or 1e-18 from rounding) the difference is absolute
        diff = (a - b).abs() / b.abs().clip(lower=1e-12 if col == "value" else 1e-9)
        diff[a.isna() & b.isna()] = 0.0
        diff[a.isna() != b.isna()] = np.inf
        both[out] = diff
    return both
