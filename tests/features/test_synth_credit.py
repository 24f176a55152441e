"""The credit profile: a credit platform's export, with a migration, a backlog and frequent repair."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.dataset import Dataset
from features.schema import ADVERSE_CODES
from features.synth_credit import PLATFORM_OPENED, generate_credit
from features.validate import validate_dataset
from tests.features.test_synth_sparse import trait_auc


@pytest.fixture(scope="module")
def world():
    return generate_credit(4000, seed=5)


def test_the_credit_world_holds_what_a_credit_platform_publishes(world):
    types = set(world.events["event_type"])
    assert not types & {"patent_filed", "trademark_filed", "inspection_passed", "inspection_failed"}
    assert not types & {"complaint_received", "platform_takedown"}
    assert {"infringement_penalty", "refusal_to_comply", "commitment_breach", "annual_report_late"} <= types
    assert world.entities["industry"].nunique() >= 5 and world.entities["region"].nunique() == 6
    assert set(world.lists["list"]) == {"red", "untrustworthy", "serious_violation", "abnormal_operation"}
    grounded = world.lists[world.lists["list"].isin(["untrustworthy", "serious_violation"])]
    assert grounded["basis"].notna().all()
    assert world.relations.empty
    # most entities have little or nothing recorded against them
    adverse = world.events[world.events["event_type"].isin(ADVERSE_CODES)]
    assert adverse["entity_id"].nunique() < 0.4 * len(world.entities)


def test_records_are_known_only_from_the_migration_and_some_much_later(world):
    occurred = pd.to_datetime(world.events["occurred_on"])
    recorded = pd.to_datetime(world.events["recorded_on"])
    assert recorded.min() == pd.Timestamp(PLATFORM_OPENED)
    assert occurred.min() < pd.Timestamp(PLATFORM_OPENED) - pd.Timedelta(days=3 * 365)
    after = occurred >= pd.Timestamp(PLATFORM_OPENED)
    lag = (recorded - occurred).dt.days[after]
    assert lag.min() >= 5 and lag.median() < 45
    assert 0.02 < (lag > 60).mean() < 0.12  # the backlog


def test_repairs_end_records_and_untrustworthy_entries(world):
    events = world.events
    repaired = events[events["repaired_on"].notna()]
    assert len(repaired) > 0.2 * events["event_type"].isin(["infringement_penalty", "commitment_breach"]).sum()
    assert (pd.to_datetime(repaired["repaired_on"]) >= pd.to_datetime(repaired["recorded_on"])).all()
    assert (pd.to_datetime(repaired["repaired_on"]) <= pd.Timestamp("2025-12-31")).all()
    listed = world.lists[world.lists["list"] == "untrustworthy"]
    stay = (pd.to_datetime(listed["removed_on"]) - pd.to_datetime(listed["entered_on"])).dt.days
    assert stay.max() <= 410 and (stay < 365).any()  # a year, or until repaired


def test_the_hidden_trait_predicts_next_year_adverse_records(world):
    assert trait_auc(world, 2022, "occurred_on") > 0.7


def test_short_spans_and_no_entities():
    late = generate_credit(300, seed=1, start=date(2020, 1, 1))
    assert pd.to_datetime(late.events["occurred_on"]).min() >= pd.Timestamp("2020-01-01")
    assert validate_dataset(Dataset.from_frames(late.entities, late.events, late.lists)).ok
    empty = generate_credit(0)
    assert empty.entities.empty and empty.events.empty and empty.lists.empty
    with pytest.raises(ValueError, match="end must be after start"):
        generate_credit(10, start=date(2020, 1, 1), end=date(2019, 1, 1))
