"""Plan: metric selection, findings and the action plan.

The three parts load on first use: selecting metrics (notebook 02) or writing the action plan (06) does not load
the statistics the findings build on (scipy, statsmodels: about a second and a half of a notebook's start).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazily loaded names, for type checkers and linters
    from engagement.plan.actions import action_plan, load_playbook, progress
    from engagement.plan.findings import DEFAULT_TARGETS, findings, no_change_summary
    from engagement.plan.selection import OBJECTIVES, select_metrics

_LAZY = {
    "action_plan": "engagement.plan.actions",
    "load_playbook": "engagement.plan.actions",
    "progress": "engagement.plan.actions",
    "DEFAULT_TARGETS": "engagement.plan.findings",
    "findings": "engagement.plan.findings",
    "no_change_summary": "engagement.plan.findings",
    "OBJECTIVES": "engagement.plan.selection",
    "select_metrics": "engagement.plan.selection",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engagement.plan' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TARGETS",
    "OBJECTIVES",
    "action_plan",
    "findings",
    "load_playbook",
    "no_change_summary",
    "progress",
    "select_metrics",
]
