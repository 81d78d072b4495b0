"""Metric selection (notebook 02's framework)."""

from __future__ import annotations

import pytest

from engagement.data.schema import CONTRACT
from engagement.plan import select_metrics

ALL = set(CONTRACT)


def test_default_selects_nine_measurable_metrics_across_the_journey():
    sel = select_metrics(ALL)
    chosen = sel[sel.selected]
    assert len(chosen) == 9 and chosen.measurable.all()
    assert chosen["rank"].tolist() == list(range(1, 10))
    assert chosen.journey_stage.nunique() >= 7
    assert {"nps", "churn_rate", "clv", "csat", "aov"} <= set(chosen.id)


def test_unmeasurable_metrics_are_never_selected():
    sel = select_metrics({"customers", "survey_responses"}, ["satisfaction", "retention"], n=9)
    chosen = set(sel[sel.selected].id)
    assert "first_response_time" not in chosen and "aov" not in chosen
    row = sel.set_index("id").loc["first_response_time"]
    assert row.reason == "not measurable here: the dataset has no support_tickets table"


def test_required_and_excluded():
    sel = select_metrics(ALL, ["satisfaction"], n=3, required=["cac"], excluded=["nps"])
    chosen = sel[sel.selected].sort_values("rank").id.tolist()
    assert chosen[0] == "cac" and "nps" not in chosen and len(chosen) == 3


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Unknown objective"):
        select_metrics(ALL, ["happiness"])
    with pytest.raises(ValueError, match="Unknown metric"):
        select_metrics(ALL, required=["nope"])


def test_selection_is_deterministic():
    assert select_metrics(ALL).equals(select_metrics(ALL))
