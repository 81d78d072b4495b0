"""The action plan: playbook actions for the findings, with owners, outcomes and measurable targets,
and progress tracking against earlier reports' targets."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from engagement import catalog
from engagement.present import format_value, from_spreadsheet_safe

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
        action, strategy, outcome = entry.action, entry.strategy, entry.expected_outcome
        if isinstance(getattr(f, "composition", ""), str) and f.composition:
            # the figure moved because who makes up the base changed, not within any of its values: the playbook's
            # levers for the figure itself (bundles for an average order) would not move it
            name = str(f.metric_name)
            action = (f"Find out why the base changed ({f.composition}): fewer such customers, or less from each "
                      f"of them. Act on that segment (personalised outreach, a win-back offer) rather than on the "
                      f"{name} of every customer, which did not move within the segment's values.")
            strategy, outcome = "personalisation", f"The base's mix back toward what it was, and the {name} with it."
        rows.append({
            "finding": f.sentence, "metric": f.metric, "segment": f.segment, "segment_value": f.segment_value,
            "also_in": also, "action": action, "owner": entry.owner, "strategy": strategy,
            "expected_outcome": outcome,
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


PROGRESS_COLUMNS = ["period", "metric", "segment", "segment_value", "value", "target", "met"]


def _value_of(m: pd.DataFrame, metric: str, segment: str, segment_value: str) -> float:
    hit = m[(m.metric == metric) & (m.segment == segment) & (m.segment_value == segment_value)]
    return float(hit.value.iloc[0]) if len(hit) and pd.notna(hit.value.iloc[0]) else math.nan


def _period_start(label: str, fiscal_start_month: int) -> pd.Timestamp:
    from engagement.measure.periods import parse_period

    return parse_period(label, fiscal_start_month=fiscal_start_month).start


def progress(reports_dir: str | Path | None, metrics: list[str], *, current: pd.DataFrame | None = None,
             fiscal_start_month: int = 1) -> pd.DataFrame:
    """The selected metrics over the reports found in ``reports_dir``, and every earlier target judged.

    Reads every ``<period>/metrics.csv`` and ``<period>/action_plan.csv`` under ``reports_dir``, in the order of
    their periods, then ``current`` (this run's measure table). Each report's values of ``metrics`` for all
    customers form the history; each target of a report's plan, whatever its metric and segment, is judged
    against the next report's value of that metric and segment: ``met`` is True when the value reached the
    target in the metric's better direction (None when the next report has no value for it).

    Reports of ``current``'s period or later are left out: re-rendering a period (``--force``) never judges it
    against its own plan, nor against a later period's.

    Returns
    -------
    DataFrame
        ``period, metric, segment, segment_value, value, target, met``.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagement.plan import progress
    >>> now = pd.DataFrame({"period": "2024Q4", "period_role": "current", "segment": "all", "segment_value": "all",
    ...                     "metric": ["nps"], "value": [42.0]})
    >>> progress(None, ["nps"], current=now)[["period", "metric", "value", "met"]].to_dict("records")
    [{'period': '2024Q4', 'metric': 'nps', 'value': 42.0, 'met': None}]
    """
    def start(label: str) -> pd.Timestamp:
        return _period_start(label, fiscal_start_month)

    now = current[current.period_role == "current"] if current is not None else None
    here = start(str(now.period.iloc[0])) if now is not None and len(now) else None
    frames: list[tuple[pd.Timestamp, str, pd.DataFrame, pd.DataFrame | None]] = []
    base = Path(reports_dir) if reports_dir else None
    if base is not None and base.exists():
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and (p / "metrics.csv").exists()):
            # the CSVs were written spreadsheet-safe: a label "=x" reads back as "'=x" until restored
            m = from_spreadsheet_safe(pd.read_csv(folder / "metrics.csv", dtype={
                "period": str, "segment": str, "segment_value": str}), ["segment", "segment_value"])
            m = m[m.period_role == "current"]
            if not len(m):
                continue
            label = str(m.period.iloc[0])
            try:
                when = start(label)
            except ValueError:  # not a period this run can place (another fiscal year): not part of its history
                continue
            if here is not None and when >= here:
                continue
            plan = None
            if (folder / "action_plan.csv").exists():
                plan = pd.read_csv(folder / "action_plan.csv", dtype={"segment": str, "segment_value": str})
                for col in ("segment", "segment_value"):
                    if col not in plan.columns:
                        plan[col] = "all"
                plan = from_spreadsheet_safe(plan, ["segment", "segment_value"])
            frames.append((when, label, m, plan))
    if now is not None and len(now) and here is not None:
        frames.append((here, str(now.period.iloc[0]), now, None))
    frames.sort(key=lambda f: f[0])
    rows = []
    previous_plan: pd.DataFrame | None = None
    for _, label, m, plan in frames:
        targets = previous_plan[previous_plan.target_value.notna()] if previous_plan is not None else None
        judged = set()
        if targets is not None:
            for t in targets.drop_duplicates(["metric", "segment", "segment_value"]).itertuples(index=False):
                seg, val = str(t.segment), str(t.segment_value) if pd.notna(t.segment_value) else "all"
                value, target = _value_of(m, str(t.metric), seg, val), float(t.target_value)
                met = None
                if not math.isnan(value):
                    hib = catalog.higher_is_better(str(t.metric)) is not False
                    met = bool(value >= target) if hib else bool(value <= target)
                rows.append({"period": label, "metric": str(t.metric), "segment": seg, "segment_value": val,
                             "value": value, "target": target, "met": met})
                judged.add((str(t.metric), seg, val))
        for metric in metrics:
            value = _value_of(m, metric, "all", "all")
            if (metric, "all", "all") in judged or math.isnan(value):
                continue
            rows.append({"period": label, "metric": metric, "segment": "all", "segment_value": "all",
                         "value": value, "target": math.nan, "met": None})
        previous_plan = plan
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)
