"""The records behind a fired rule are those of the features whose conditions held (models/reasons.py)."""

from __future__ import annotations

from pathlib import Path

from features.evidence import Evidence
from models.policy import load_policy
from models.reasons import rule_records

POLICY = load_policy(Path(__file__).parents[2] / "models" / "policy.toml")


def test_only_the_conditions_that_held_name_their_records():
    found = {
        "on_untrustworthy_list": Evidence("lists", ("untrustworthy@2025-02-10",)),
        "abnormal_patent_filing_12m": Evidence("events", ()),
        "malicious_trademark_filing_12m": Evidence("events", ("E9", "E7")),
        "age_years": Evidence("entities", ("X",)),
        "adverse_all": Evidence("events", ("E9", "E7", "E1")),
    }
    values = {
        "on_untrustworthy_list": True,
        "abnormal_patent_filing_12m": 0,
        "malicious_trademark_filing_12m": 2,
        "age_years": 0.5,
        "adverse_all": 3,
    }
    traced = rule_records(POLICY, "UNTRUSTWORTHY;NEW_ENTITY_ADVERSE;NO_SUCH_RULE", values, found)
    assert set(traced) == {"UNTRUSTWORTHY", "NEW_ENTITY_ADVERSE"}
    untrustworthy = {e.table: e.ids for e in traced["UNTRUSTWORTHY"]}
    assert untrustworthy == {"lists": ("untrustworthy@2025-02-10",), "events": ("E9", "E7")}
    young = {e.table: e.ids for e in traced["NEW_ENTITY_ADVERSE"]}
    assert young == {"entities": ("X",), "events": ("E9", "E7", "E1")}
    # A missing value fails every comparison but !=, as the rule engine compares a NaN.
    assert rule_records(POLICY, "UNTRUSTWORTHY", {"on_untrustworthy_list": None}, found)["UNTRUSTWORTHY"] == []
    assert rule_records(POLICY, "", values, found) == {}
