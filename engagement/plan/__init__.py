"""Plan: metric selection, findings and the action plan."""

from engagement.plan.actions import action_plan, load_playbook, progress
from engagement.plan.findings import DEFAULT_TARGETS, findings, no_change_summary
from engagement.plan.selection import OBJECTIVES, select_metrics

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
