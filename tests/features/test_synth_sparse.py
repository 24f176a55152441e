"""The sparse profile: yearly inspections of one industry, a gap of years, no lists, agencies or sellers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.dataset import Dataset
from features.schema import ADVERSE_CODES
from features.synth_credit import generate_credit
from features.synth_sparse import GAP_YEARS, generate_sparse
from features.validate import validate_dataset


@pytest.fixture(scope="module")
def world():
    return generate_sparse(3000, seed=5)


@pytest.mark.parametrize("make", [generate_sparse, generate_credit])
def test_a_world_with_a_hidden_trait_follows_the_contract(make):
    world = make(3000, seed=5)
    report = validate_dataset(Dataset.from_frames(world.entities, world.events, world.lists))
    assert report.ok, report.problems.head()


def test_the_sparse_world_is_what_its_profile_says(world):
    assert world.entities["industry"].nunique() == 1
    assert set(world.entities["kind"]) == {"enterprise"}
    assert not world.entities["online_seller"].any()
    assert world.lists.empty
    assert world.entities["registered_capital"].isna().mean() > 0.5
    years = pd.to_datetime(world.events["recorded_on"]).dt.year
    occurred = pd.to_datetime(world.events["occurred_on"]).dt.year
    in_gap = lambda y: (y >= GAP_YEARS[0]) & (y <= GAP_YEARS[1])  # noqa: E731
    assert not in_gap(years).any() and not in_gap(occurred).any()
    per_entity_year = len(world.events[world.events["event_type"].str.startswith("inspection")]) / (3000 * 16)
    assert 0.3 < per_entity_year < 1.0  # about one inspection per entity-year


@pytest.mark.parametrize("make", [generate_sparse, generate_credit])
def test_a_world_with_a_hidden_trait_is_determined_by_its_seed(make):
    a, b = make(300, seed=9), make(300, seed=9)
    for table in ("entities", "events", "lists"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert not make(300, seed=10).events.equals(a.events)


def trait_auc(world, year: int, date_column: str = "recorded_on") -> float:
    """How well the hidden trait of ``year`` ranks the entities with an adverse record the year after."""
    events = world.events[world.events["event_type"].isin(ADVERSE_CODES)]
    adverse = set(events.loc[pd.to_datetime(events[date_column]).dt.year == year + 1, "entity_id"])
    z = world.truth[world.truth["year"] == year].set_index("entity_id")["z"]
    return roc_auc_score(np.array([eid in adverse for eid in z.index]), z.to_numpy())


def test_the_hidden_trait_predicts_next_year_findings(world):
    """The truth is learnable: z in a year ranks next year's adverse records well above chance."""
    assert trait_auc(world, 2021) > 0.65


def test_no_gap_and_no_entities():
    world = generate_sparse(200, seed=1, start=date(2018, 1, 1), gap_years=None)
    assert pd.to_datetime(world.events["recorded_on"]).dt.year.nunique() == 8
    empty = generate_sparse(0)
    assert empty.entities.empty and empty.events.empty
