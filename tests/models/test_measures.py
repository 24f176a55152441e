"""What a list changes for other departments: measures in force on a date, yes/no with the basis."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from models.measures import EntityState, eligibility, measures_in_force
from models.policy import BENEFITS, parse_policy


def _state(*entries: tuple, broken: tuple = (), tier: str | None = None) -> EntityState:
    lists = pd.DataFrame(
        [
            {
                "list": name,
                "entered_on": pd.Timestamp(e),
                "removed_on": pd.Timestamp(r) if r else pd.NaT,
                "basis": "决定书1号",
            }
            for name, e, r in entries
        ],
        columns=["list", "entered_on", "removed_on", "basis"],
    )
    commitments = pd.DataFrame(
        [{"event_id": i, "recorded_on": pd.Timestamp(d)} for i, d in broken], columns=["event_id", "recorded_on"]
    )
    return EntityState("91210600000000001X", lists, commitments, tier)


def test_a_red_list_entity_gets_the_green_channel_only_while_listed(policy):
    state = _state(("red", "2024-03-01", "2025-03-01"))
    answer = eligibility(policy, state, "fast_track", date(2024, 6, 1))
    assert answer["allowed"] and answer["priority"]
    assert answer["because"][0]["code"] == "RED_GREEN_CHANNEL" and answer["because"][0]["until"] == "2025-03-01"
    assert "国知发保字〔2022〕8号" in answer["because"][0]["basis"]
    later = eligibility(policy, state, "fast_track", date(2025, 3, 1))
    assert later["allowed"] and not later["priority"] and later["because"] == []
    assert not eligibility(policy, state, "fast_track", date(2024, 2, 29))["priority"]


def test_a_serious_violation_entry_refuses_funding_until_it_lapses(policy):
    state = _state(("serious_violation", "2022-05-10", None))
    refused = eligibility(policy, state, "funding", date(2024, 1, 1))
    assert not refused["allowed"]
    measure = refused["because"][0]
    assert measure["code"] == "SV_RESTRICTIONS" and "总局令第44号" in measure["basis"]
    assert measure["until"] == "2025-05-10"  # lapses three years after entry
    assert measure["records"][0]["entered_on"] == "2022-05-10"
    assert eligibility(policy, state, "funding", date(2025, 5, 10))["allowed"]


def test_restrictions_outweigh_incentives(policy):
    state = _state(("red", "2023-01-01", None), ("untrustworthy", "2024-01-01", "2025-01-01"))
    answer = eligibility(policy, state, "funding", date(2024, 6, 1))
    assert not answer["allowed"] and not answer["priority"]
    assert [m["code"] for m in answer["because"]] == ["UNTRUSTWORTHY_RESTRICTIONS", "RED_GREEN_CHANNEL"]


def test_a_broken_commitment_closes_the_commitment_procedure_for_its_period(policy):
    state = _state(broken=(("E9", "2024-02-01"),))
    assert not eligibility(policy, state, "commitment_procedure", date(2024, 12, 1))["allowed"]
    assert eligibility(policy, state, "commitment_procedure", date(2025, 1, 31))["allowed"]
    assert eligibility(policy, state, "funding", date(2024, 12, 1))["allowed"]
    assert measures_in_force(policy, state, date(2024, 3, 1))[0].records[0]["event_id"] == "E9"


def test_unknown_benefits_and_inconsistent_measures_are_refused(policy):
    with pytest.raises(ValueError, match="benefit must be one of"):
        eligibility(policy, _state(), "free_lunch", date(2024, 1, 1))
    assert set(BENEFITS) == {"funding", "fee_reduction", "fast_track", "award_recommendation", "commitment_procedure"}
    text = (
        'version = "t"\n[tiers]\nupper_bounds = { A = 0.03, B = 0.1, C = 0.3 }\n'
        "[sampling]\nratios = { A = 0.03, B = 0.1, C = 0.35, D = 0.8 }\n"
        "bounds = { A = [0.01, 0.05], B = [0.03, 0.2], C = [0.2, 0.6], D = [0.6, 1.0] }\n"
        "min_inclusion_probability = 0.01\n"
        '[[measures]]\ncode = "X"\nname_zh = "x"\nname_en = "x"\neffect = "restriction"\napplies_to = "red_list"\n'
        'priority = ["funding"]\nbasis = "b"\n'
    )
    with pytest.raises(ValueError, match="a restriction blocks benefits"):
        parse_policy(text)
