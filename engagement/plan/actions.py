"""The action plan: playbook actions for the findings, with owners, outcomes and measurable targets,
and progress tracking against earlier reports' targets."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from engagement import catalog
from engagement.present import format_value

__all__ = ["load_playbook", "action_plan", "progress", "PLAN_COLUMNS"]

PLAN_COLUMNS = ["priority", "finding", "metric", "segment", "segment_value", "also_in", "action", "owner",
                "strategy", "expected_outcome", "current", "forecast", "target", "target_value", "unit", "severity"]


def load_playbook(path: str | Path | None = None) -> pd.DataFrame:
    """The playbook as a table (``engagement/plan/playbook.yaml`` by default; pass your own YAML).

    Examples
    --------
    >>> from engagement.plan import load_playbook
    >>> pb = load_playbook()
    >>> {"csat", "nps", "churn_rate", "cac", "referral_rate"} <= set(pb.metric)
    True
    """
    text = Path(path).read_text() if path else resources.files("engagement.plan").joinpath("playbook.yaml").read_text()
    entries = yaml.safe_load(text)
    need = {"metric", "kinds", "direction", "owner", "strategy", "action", "expected_outcome"}
    for i, e in enumerate(entries):
        missing = need - set(e)
        if missing:
            raise ValueError(f"playbook entry {i} ({e.get('metric', '?')}) lacks {sorted(missing)}")
    return pd.DataFrame(entries)


def _match(playbook: pd.DataFrame, metric: str, kind: str, direction: str) -> pd.Series | None:
    for candidate in dict.fromkeys((metric, catalog.family(metric), "*")):
        fits = ((playbook.metric == candidate)
                & playbook.kinds.map(lambda ks: kind in ks or "any" in ks).astype(bool)
                & playbook.direction.isin([direction, "any"]))
        rows = playbook.loc[fits]
        if len(rows):
            specific = rows.loc[rows.kinds.map(lambda ks: kind in ks).astype(bool)]
            return (specific if len(specific) else rows).iloc[0]
    return None


def _target(f: pd.Series, unit: str) -> tuple[float, str]:
    """A measurable target for next period: recover half of a deterioration or close half of a gap."""
    if f.kind in ("change_vs_previous", "change_vs_last_year", "segment_gap", "level_vs_target"):
        value = f.value + 0.5 * (f.reference - f.value)
        verb = {"change_vs_previous": "recover half the change", "change_vs_last_year": "recover half the change",
                "segment_gap": "close half the gap", "level_vs_target": "halve the distance to target"}[f.kind]
        return value, f"{format_value(value, unit)} ({verb})"
    return math.nan, "hold the improvement; re-test next period"


def action_plan(found: pd.DataFrame, *, table: pd.DataFrame, forecasts: pd.DataFrame | None = None,
                playbook: pd.DataFrame | None = None, max_actions: int = 12) -> pd.DataFrame:
    """One prioritised action per metric that got worse (its top-ranked finding leads; the other
    segments where it also got worse are listed in ``also_in``), plus relationship levers.

    Each row: the finding's sentence, the playbook's action, owner team, strategy
    and expected outcome, the metric's current value, its forecast for next
    period (all customers), and a measurable target for next period.
    """
    playbook = load_playbook() if playbook is None else playbook
    rows: list[dict] = []
    seen: set[str] = set()
    worse = found[found.direction == "worse"].copy()
    worse["base_metric"] = worse.metric.map(catalog.family)
    # within a metric, the all-customers finding leads when there is one, then the rank order
    worse["lead"] = (worse.segment != "all").astype(int)
    worse["first"] = worse.groupby("base_metric")["rank"].transform("min")
    worse = worse.sort_values(["first", "lead", "rank"], kind="stable")
    for f in worse.itertuples():
        if f.base_metric in seen or len(rows) >= max_actions:
            continue  # one action per metric: its leading finding; the other segments are listed
        entry = _match(playbook, f.metric, f.kind, "worse")
        if entry is None:
            continue
        seen.add(f.base_metric)
        same = worse[(worse.base_metric == f.base_metric) & (worse.segment != "all")
                     & ~((worse.segment == f.segment) & (worse.segment_value == f.segment_value))]
        places = list(dict.fromkeys(f"{s.replace('_', ' ')} {v}" for s, v in
                                    zip(same.segment, same.segment_value, strict=True)))
        also = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
        unit = f.unit
        fc = forecasts[forecasts.metric == f.metric] if forecasts is not None and len(forecasts) else None
        forecast_text = (f"{format_value(fc.value.iloc[0], unit)} ({format_value(fc.ci_low.iloc[0], unit)} to "
                         f"{format_value(fc.ci_high.iloc[0], unit)})") if fc is not None and len(fc) and \
            f.segment == "all" else ""
        target_value, target_text = _target(pd.Series(f._asdict()), unit)
        current = table[(table.metric == f.metric) & (table.segment == f.segment)
                        & (table.segment_value == f.segment_value) & (table.period_role == "current")]
        rows.append({
            "finding": f.sentence, "metric": f.metric, "segment": f.segment, "segment_value": f.segment_value,
            "also_in": also, "action": entry.action, "owner": entry.owner, "strategy": entry.strategy,
            "expected_outcome": entry.expected_outcome,
            "current": format_value(current.value.iloc[0], current.unit.iloc[0]) if len(current) else "",
            "forecast": forecast_text, "target": target_text, "target_value": target_value, "unit": unit,
            "severity": f.severity,
        })
    # then up to two levers: customer-level relationships that involve a metric that got worse
    levers = found[(found.kind == "relationship")]
    levers = levers[levers.metric.map(catalog.family).isin(seen) | levers.other_metric.map(catalog.family).isin(seen)]
    levers = levers.assign(size=levers.effect.abs()).sort_values("size", ascending=False).head(2)
    for f in levers.itertuples():
        entry = _match(playbook, f.metric, "relationship", "any")
        if entry is None:
            continue
        rows.append({"finding": f.sentence, "metric": f.metric, "segment": "all", "segment_value": "all",
                     "also_in": "", "action": entry.action, "owner": entry.owner, "strategy": entry.strategy,
                     "expected_outcome": entry.expected_outcome, "current": "", "forecast": "",
                     "target": "run an experiment on the driver", "target_value": math.nan, "unit": "",
                     "severity": f.severity})
    plan = pd.DataFrame(rows, columns=[c for c in PLAN_COLUMNS if c != "priority"])
    plan.insert(0, "priority", range(1, len(plan) + 1))
    return plan


def progress(reports_dir: str | Path, metrics: list[str], *, current: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each selected metric over the reports found in ``reports_dir``, with the earlier plans' targets.

    Reads every ``<period>/metrics.csv`` and ``<period>/action_plan.csv`` under
    ``reports_dir`` (and ``current``, this run's measure table). A target set in
    one report is judged against the next report's value: ``met`` is True when
    the value reached the target in the metric's better direction.

    Returns
    -------
    DataFrame
        ``period, metric, value, target, met`` (all customers; segments for
        targets set on a segment).
    """
    frames = []
    base = Path(reports_dir) if reports_dir else None
    if base is not None and base.exists():
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and (p / "metrics.csv").exists()):
            m = pd.read_csv(folder / "metrics.csv")
            m = m[m.period_role == "current"]
            plan = pd.read_csv(folder / "action_plan.csv") if (folder / "action_plan.csv").exists() else None
            frames.append((m, plan))
    if current is not None:
        frames.append((current[current.period_role == "current"], None))
    rows = []
    previous_plan: pd.DataFrame | None = None
    for m, plan in sorted(frames, key=lambda fp: str(fp[0].period.iloc[0]) if len(fp[0]) else ""):
        if not len(m):
            continue
        period = str(m.period.iloc[0])
        for metric in metrics:
            hit = m[(m.metric == metric) & (m.segment == "all")]
            if not len(hit):
                continue
            value = float(hit.value.iloc[0])
            target, met = math.nan, None
            if previous_plan is not None and len(previous_plan):
                t = previous_plan[(previous_plan.metric == metric) & (previous_plan.segment == "all")]
                if len(t) and not pd.isna(t.target_value.iloc[0]):
                    target = float(t.target_value.iloc[0])
                    hib = catalog.higher_is_better(metric) is not False
                    met = bool(value >= target) if hib else bool(value <= target)
            rows.append({"period": period, "metric": metric, "value": value, "target": target, "met": met})
        previous_plan = plan
    return pd.DataFrame(rows, columns=["period", "metric", "value", "target", "met"])
