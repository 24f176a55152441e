"""The request models follow the input contract of ``features.schema``: same columns, same code lists."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from features import uscc
from features.schema import ENTITIES, EVENT_CODES, EVENTS, INDUSTRIES, INSPECTION_OUTCOMES, KINDS, LIST_NAMES, LISTS
from models.policy import TIERS
from serving import schemas
from serving.auth import ROLES


@pytest.mark.parametrize(
    ("model", "table"), [(schemas.EntityIn, ENTITIES), (schemas.EventIn, EVENTS), (schemas.ListIn, LISTS)]
)
def test_the_history_models_have_exactly_the_contract_columns(model, table):
    assert list(model.model_fields) == table.column_names


def test_the_code_lists_are_the_contracts():
    assert get_args(schemas.Kind) == KINDS
    assert get_args(schemas.Industry) == INDUSTRIES
    assert get_args(schemas.EventType) == EVENT_CODES
    assert get_args(schemas.ListName) == LIST_NAMES
    assert get_args(schemas.TierName) == TIERS
    assert get_args(schemas.RoleName) == ROLES
    assert set(get_args(schemas.PublicList)) <= set(LIST_NAMES)
    assert get_args(schemas.Outcome) == tuple(INSPECTION_OUTCOMES)
    assert set(get_args(schemas.InspectionEventType)) <= set(EVENT_CODES)


def test_a_code_added_to_the_contract_is_what_the_models_accept():
    base = {
        "entity_id": "91210600MA0QC0K819",
        "name": "x",
        "industry": "C",
        "region": "210600",
        "registered_on": "2020-01-01",
    }
    for kind in KINDS:
        assert schemas.EntityIn(**base, kind=kind).kind == kind
    with pytest.raises(ValidationError) as info:
        schemas.EntityIn(**base, kind="bank")
    assert info.value.errors()[0]["loc"] == ("kind",)


def test_the_entity_id_check_says_the_same_in_a_body_and_in_a_path():
    bad = "91210600MA0QC0K81X"
    assert not uscc.is_valid(bad)
    problem = schemas.entity_id_problem(bad)
    assert problem and problem.startswith("entity_id check character must be")
    with pytest.raises(ValidationError, match="entity_id check character must be"):
        schemas.BatchRiskRequest(entity_ids=[bad])
    assert schemas.entity_id_problem("91210600MA0QC0K819") is None
