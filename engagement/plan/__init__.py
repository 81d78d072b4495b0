"""Plan: metric selection, findings and the action plan."""

from engagement.plan.selection import OBJECTIVES, select_metrics

__all__ = ["OBJECTIVES", "select_metrics"]
