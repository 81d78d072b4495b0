"""The report's one parameter set: every name, its default, and the check it must pass.

The runner (:func:`engagement.report.render_report`) validates the whole set once,
before any notebook runs, and hands each notebook every parameter it declares; a
notebook opened by hand validates the ones it uses when it opens its
:class:`~engagement.workspace.Workspace`. The notebooks' parameters cells carry
these defaults (a test holds them to it), so a parameter means the same thing,
with the same default, in every notebook that declares it.

Examples
--------
>>> from engagement.parameters import validate
>>> validate({"period": "2024Q3", "confidence": 0.9})["confidence"]
0.9
>>> validate({"confidence": 95})
Traceback (most recent call last):
...
ValueError: Parameter `confidence` must be a level strictly between 0 and 1 (0.95 for 95%), got 95.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Parameter", "PARAMETERS", "RUNNER", "defaults", "validate"]


@dataclass(frozen=True)
class Parameter:
    """One report parameter: its default, what it means, and a check that returns a reason or ""."""

    name: str
    default: Any
    help: str
    check: Callable[[Any], str]


def _period(v: Any) -> str:
    from engagement.measure.periods import parse_period

    try:
        parse_period(v)
    except (ValueError, TypeError) as err:
        return str(err).removeprefix("`period` ")
    return ""


def _optional_path(v: Any) -> str:
    return "" if v is None or (isinstance(v, str) and v.strip()) else "must be a path (text) or None"


def _engine(v: Any) -> str:
    from engagement.engine import check_engine

    return "must be \"duckdb\", \"spark\" or a Spark Connect address sc://HOST:PORT" if check_engine(v) else ""


def _level(v: Any) -> str:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1 and math.isfinite(v)
    return "" if ok else "must be a level strictly between 0 and 1 (0.95 for 95%)"


def _whole(low: int, high: int | None = None) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
        return "" if ok else f"must be a whole number from {low}" + (f" to {high}" if high else " up")
    return check


def _rate(v: Any) -> str:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1
    return "" if ok else "must be a rate per month from 0 (no discounting) to below 1"


def _names(kind: str, known: Callable[[], set[str]] | None = None,
           at_least_one: bool = False) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
            return f"must be a list of {kind} names"
        if at_least_one and not v:
            return f"must name at least one {kind}"
        if known is not None:
            unknown = sorted(set(v) - known())
            if unknown:
                return f"names unknown {kind}(s) {unknown}; choose from {sorted(known())}"
        return ""
    return check


def _objectives() -> set[str]:
    from engagement.catalog import OBJECTIVES

    return set(OBJECTIVES)


def _metric_ids() -> set[str]:
    from engagement.catalog import CATALOG

    return set(CATALOG)


def _targets(v: Any) -> str:
    if not isinstance(v, Mapping):
        return "must be a mapping of metric id to target value"
    unknown = sorted(set(v) - _metric_ids())
    if unknown:
        return f"names unknown metric(s) {unknown}"
    bad = [k for k, x in v.items() if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x)]
    return f"has targets that are not numbers: {bad}" if bad else ""


_OBJECTIVES = ["retention", "satisfaction", "revenue", "acquisition", "engagement"]
_TARGETS = {"email_open_rate": 0.21, "email_click_rate": 0.026, "unsubscribe_rate": 0.0026, "clv_cac_ratio": 3.0}

_LIST = [
    Parameter("period", "2024Q4", 'the report period: "2024Q4", "2024-11" or "2024"', _period),
    Parameter("data_source", None, "a folder of Parquet/CSV files or a DuckDB file; None: the embedded demo data",
              _optional_path),
    Parameter("mapping", None, "a column-mapping YAML file for exports without the contract's names "
              "(engagement.data.mapping); None: the files carry the contract's names", _optional_path),
    Parameter("engine", "duckdb", 'where the aggregations run: "duckdb" (embedded), "spark" (a local session) or '
              '"sc://HOST:PORT" (a Spark Connect server); see engagement.engine', _engine),
    Parameter("out_dir", None, "the workspace where the notebooks exchange their tables; None: a scratch folder",
              _optional_path),
    Parameter("history_dir", None, "folder of earlier reports (<period>/) for progress tracking; None: none",
              _optional_path),
    Parameter("confidence", 0.95, "level of every interval", _level),
    Parameter("alpha", 0.05, "largest corrected q-value that counts as significant (and makes a finding)", _level),
    Parameter("fiscal_start_month", 1, "first month of the fiscal year (1: calendar year)", _whole(1, 12)),
    Parameter("segments", None, "customer columns and derived segments to measure by; None: the default segments "
              "the data has (plan, acquisition_channel, region, tenure_band, new_vs_returning, value_tier)",
              lambda v: "" if v is None else _names("segment")(v)),
    Parameter("business_model", "auto", 'subscription churn needs cancellations: "auto" reads a '
              'customers.cancelled_at column as subscriptions, "subscription" or "non_contractual" decide',
              lambda v: "" if v in ("auto", "subscription", "non_contractual") else
              'must be "auto", "subscription" or "non_contractual"'),
    Parameter("inactivity_days", 365, "days without an order after which a customer of a non-contractual business "
              "has lapsed (inactivity churn)", _whole(1)),
    Parameter("objectives", _OBJECTIVES, "business objectives the metrics are selected for",
              _names("objective", _objectives, at_least_one=True)),
    Parameter("n_metrics", 9, "how many metrics to select", _whole(1)),
    Parameter("required_metrics", [], "metric ids always selected (if measurable)", _names("metric", _metric_ids)),
    Parameter("excluded_metrics", [], "metric ids never selected", _names("metric", _metric_ids)),
    Parameter("trend_periods", 8, "how many periods the trends span", _whole(3)),
    Parameter("clv_horizon_months", 12, "horizon of the predicted customer lifetime value", _whole(1)),
    Parameter("monthly_discount_rate", 0.01, "discount rate per month of the predicted CLV", _rate),
    Parameter("targets", _TARGETS, "metric id -> target value for the level findings", _targets),
    Parameter("max_shown", 15, "findings listed in full", _whole(1)),
    Parameter("max_actions", 12, "actions in the plan", _whole(1)),
]

#: Every report parameter by name.
PARAMETERS: dict[str, Parameter] = {p.name: p for p in _LIST}
#: Set by the runner from its own options (--period, --data, --mapping, --engine, --out), never with -p.
RUNNER = ("period", "data_source", "mapping", "engine", "out_dir", "history_dir")


def defaults() -> dict[str, Any]:
    """Every parameter at its default (fresh copies: lists and mappings may be changed freely)."""
    import copy

    return {name: copy.deepcopy(p.default) for name, p in PARAMETERS.items()}


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` (any subset of the parameters); return them, or raise naming every bad one.

    Raises
    ------
    ValueError
        For an unknown name or a value that fails its check; the message lists
        each problem with the parameter's name and the value given.
    """
    problems = []
    for name, value in values.items():
        p = PARAMETERS.get(name)
        if p is None:
            problems.append(f"Parameter `{name}` is not a report parameter; known: {sorted(PARAMETERS)}.")
            continue
        why = p.check(value)
        if why:
            problems.append(f"Parameter `{name}` {why}, got {value!r}.")
    if problems:
        raise ValueError(" ".join(problems))
    return dict(values)
