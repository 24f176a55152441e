"""The synthetic world follows the input contract, is reproducible, and behaves like credit histories."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features import uscc
from features.schema import (
    ADVERSE_CODES,
    ENTITIES,
    EVENT_CODES,
    EVENTS,
    INDUSTRIES,
    KINDS,
    LIST_NAMES,
    LISTS,
    RELATIONS,
    ColumnType,
)
from features.synth import World, generate, generate_chunks

START, END = date(2016, 1, 1), date(2025, 12, 31)
N = 2_000


@pytest.fixture(scope="module")
def world() -> World:
    return generate(N, seed=7)


def adverse_rates(world: World, as_of: str) -> tuple[float, float, float]:
    """12-month adverse rate at ``as_of`` overall, for entities with an unrepaired adverse record by then,
    and for the others (the population: entities registered by ``as_of``)."""
    d = pd.Timestamp(as_of)
    ev = world.events[world.events.event_type.isin(ADVERSE_CODES)]
    population = world.entities.loc[world.entities.registered_on <= d, "entity_id"]
    future = ev[(ev.recorded_on > d) & (ev.recorded_on <= d + pd.DateOffset(months=12))]
    past = ev[(ev.recorded_on <= d) & (ev.repaired_on.isna() | (ev.repaired_on > d))]
    outcome = population.isin(future.entity_id)
    had = population.isin(past.entity_id)
    return outcome.mean(), outcome[had].mean(), outcome[~had].mean()


# --- reproducibility ---------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_world(world):
    again = generate(N, seed=7)
    for table in ("entities", "events", "lists", "relations"):
        pd.testing.assert_frame_equal(getattr(world, table), getattr(again, table))


def test_another_seed_gives_another_world(world):
    other = generate(N, seed=8)
    assert not set(world.entities.entity_id) & set(other.entities.entity_id)
    assert len(world.events) != len(other.events) or not world.events.equals(other.events)


def test_chunks_do_not_change_the_world_and_keep_entities_whole():
    whole = generate(1_500, seed=3)
    chunks = list(generate_chunks(1_500, seed=3, chunk_size=400))
    assert [len(c.entities) for c in chunks] == [400, 400, 400, 300]
    for c in chunks:
        ids = set(c.entities.entity_id)
        assert set(c.events.entity_id) <= ids and set(c.lists.entity_id) <= ids
        assert set(c.relations.entity_id) <= ids
    for table in ("entities", "events", "lists", "relations"):
        joined = pd.concat([getattr(c, table) for c in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(joined, getattr(whole, table))


def test_zero_entities_gives_empty_typed_tables():
    empty = generate(0)
    assert [len(empty.entities), len(empty.events), len(empty.lists), len(empty.relations)] == [0, 0, 0, 0]
    assert list(empty.events.columns) == EVENTS.column_names


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_entities": -1}, "n_entities must be >= 0"),
        ({"n_entities": 10, "chunk_size": 0}, "chunk_size must be >= 1"),
        ({"n_entities": 10, "start": date(2020, 1, 1), "end": date(2019, 1, 1)}, "end must be after start"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        next(generate_chunks(**kwargs))


# --- the contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", [ENTITIES, EVENTS, LISTS, RELATIONS], ids=lambda t: t.name)
def test_columns_and_dtypes_are_the_contracts(world, table):
    frame = getattr(world, table.name)
    assert list(frame.columns) == table.column_names
    for column in table.columns:
        series = frame[column.name]
        if column.type is ColumnType.STR:
            assert pd.api.types.is_string_dtype(series.dtype), column.name
        elif column.type is ColumnType.DATE:
            assert pd.api.types.is_datetime64_dtype(series.dtype), column.name
            assert (series.dropna() == series.dropna().dt.normalize()).all(), column.name
        elif column.type is ColumnType.INT:
            assert series.dtype == (pd.Int64Dtype() if column.nullable else np.int64), column.name
        elif column.type is ColumnType.FLOAT:
            assert series.dtype == np.float64, column.name
        elif column.type is ColumnType.BOOL:
            assert series.dtype == bool, column.name
        if not column.nullable:
            assert series.notna().all(), column.name


def test_nullable_columns_hold_real_nulls(world):
    assert 0.01 < world.entities.registered_capital.isna().mean() < 0.15
    assert world.events.amount.isna().any() and world.events.amount.notna().any()
    assert 0 < world.events.repaired_on.notna().mean() < 0.05
    serious = world.lists[world.lists.list == "serious_violation"]
    assert serious.removed_on.isna().any() and serious.removed_on.notna().any()
    assert world.lists.basis.isna().any()


def test_entity_ids_are_valid_unique_codes(world):
    ids = world.entities.entity_id
    assert ids.is_unique
    assert ids.map(uscc.is_valid).all()
    assert (ids.str.slice(2, 8) == world.entities.region).all()


def test_entity_attributes_use_the_code_lists(world):
    e = world.entities
    assert set(e.kind) == set(KINDS)
    assert set(e.industry) <= set(INDUSTRIES)
    assert e.region.str.fullmatch(r"\d{6}").all() and {"210600", "410100"} <= set(e.region)
    assert e.name.str.len().gt(4).all()
    assert e.name[e.kind == "agency"].str.contains("知识产权|专利|商标|律师").all()
    assert 0.04 < (e.kind == "agency").mean() < 0.13
    assert 0.15 < e.online_seller.mean() < 0.35
    assert (e.registered_capital.dropna() > 0).all()


def test_event_ids_are_unique_and_every_row_has_its_entity(world):
    assert world.events.event_id.is_unique
    assert world.events.event_id.str.fullmatch(r"E\d{10}").all()
    ids = set(world.entities.entity_id)
    assert set(world.events.entity_id) <= ids
    assert set(world.lists.entity_id) <= ids
    assert set(world.events.event_type) <= set(EVENT_CODES)
    assert set(world.lists.list) == set(LIST_NAMES)


def test_event_dates_are_consistent(world):
    ev = world.events.merge(world.entities[["entity_id", "registered_on"]], on="entity_id")
    assert (ev.recorded_on >= ev.occurred_on).all()
    assert (ev.occurred_on >= ev.registered_on).all()
    assert (ev.occurred_on >= pd.Timestamp(START)).all()
    assert (ev.recorded_on <= pd.Timestamp(END)).all()
    repaired = ev[ev.repaired_on.notna()]
    assert (repaired.repaired_on >= repaired.recorded_on + pd.DateOffset(months=6)).all()
    assert (repaired.repaired_on <= pd.Timestamp(END)).all()
    assert set(repaired.event_type) <= set(ADVERSE_CODES)
    assert (ev.quantity >= 1).all()


def test_amounts_are_fines_damages_and_subsidies(world):
    ev = world.events
    with_amount = set(ev.loc[ev.amount.notna(), "event_type"])
    assert with_amount <= {
        "infringement_penalty",
        "counterfeit_patent_penalty",
        "agency_misconduct",
        "infringement_judgment",
        "honor_advantage",
        "honor_demonstration",
    }
    fines = ev.loc[ev.event_type == "infringement_penalty", "amount"]
    assert fines.notna().all() and fines.between(5_000, 500_000).all()
    single = ev[~ev.event_type.isin(["patent_filed", "patent_granted", "trademark_filed"])]
    assert (single.loc[single.event_type.isin(ADVERSE_CODES), "quantity"] == 1).all()


def test_list_periods_are_consistent(world):
    li = world.lists.merge(world.entities[["entity_id", "registered_on"]], on="entity_id")
    removed = li[li.removed_on.notna()]
    assert (removed.removed_on >= removed.entered_on).all()
    assert (removed.removed_on <= pd.Timestamp(END)).all()
    assert (li.entered_on <= pd.Timestamp(END)).all()
    assert (li.entered_on >= li.registered_on).all()
    # untrustworthy entries last about a year unless repaired earlier
    untrusted = removed[removed.list == "untrustworthy"]
    assert ((untrusted.removed_on - untrusted.entered_on).dt.days <= 420).all()


def test_agency_misconduct_only_for_agencies(world):
    kinds = world.entities.set_index("entity_id").kind
    ev = world.events
    assert (kinds[ev.loc[ev.event_type == "agency_misconduct", "entity_id"]] == "agency").all()
    enterprise_only = ["infringement_penalty", "counterfeit_patent_penalty", "infringement_judgment"]
    assert (kinds[ev.loc[ev.event_type.isin(enterprise_only), "entity_id"]] == "enterprise").all()


def test_commitment_breaches_follow_signed_commitments(world):
    ev = world.events
    signed = ev[ev.event_type == "commitment_signed"].groupby("entity_id").occurred_on.min()
    breaches = ev[ev.event_type == "commitment_breach"]
    assert len(breaches) > 0
    assert (breaches.occurred_on.to_numpy() > signed.reindex(breaches.entity_id).to_numpy()).all()


def test_a_custom_window_is_respected():
    start, end = date(2019, 7, 1), date(2022, 6, 30)
    w = generate(800, seed=1, start=start, end=end)
    assert w.events.occurred_on.min() >= pd.Timestamp(start)
    assert w.events.recorded_on.max() <= pd.Timestamp(end)
    assert w.lists.entered_on.max() <= pd.Timestamp(end)
    assert w.entities.registered_on.max() <= pd.Timestamp(end)


# --- realism -----------------------------------------------------------------------------------------
def test_histories_are_sparse_and_messy(world):
    e, ev = world.entities, world.events
    no_events = ~e.entity_id.isin(ev.entity_id)
    assert 0.15 < no_events.mean() < 0.40
    filers = ev.loc[ev.event_type.isin(["patent_filed", "trademark_filed"]), "entity_id"]
    assert (~e.loc[e.kind == "agency", "entity_id"].isin(filers)).any()
    assert (e.registered_on > pd.Timestamp("2025-06-30")).any()
    assert (e.registered_on < pd.Timestamp(START)).mean() > 0.25
    filings = ev.event_type.isin(["patent_filed", "patent_granted", "trademark_filed"]).mean()
    assert filings > 0.5


def test_the_yearly_adverse_rate_is_in_a_sane_band(world):
    rate, _, _ = adverse_rates(world, "2020-12-31")
    assert 0.04 < rate < 0.16


def test_the_past_predicts_the_future(world):
    _, with_past, without_past = adverse_rates(world, "2021-12-31")
    assert with_past > 2.5 * without_past
    assert with_past < 0.8  # ... but imperfectly


def test_filing_bursts_precede_abnormal_filing_findings(world):
    ev = world.events
    big = ev[(ev.event_type == "patent_filed") & (ev.quantity >= 15)]
    findings = ev[ev.event_type == "abnormal_patent_filing"]
    assert len(findings) > 0
    share_with_burst = findings.entity_id.isin(big.entity_id).mean()
    assert share_with_burst > 0.5


def test_links_are_valid_and_carry_their_true_effect(world):
    from features.dataset import Dataset
    from features.validate import validate_dataset

    links = world.relations
    assert set(links.relation) == {"agency_client", "shared_legal_representative", "shareholder", "shared_address"}
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=links)
    assert validate_dataset(ds).ok
    # Members of a group under one legal representative share risk: a member's 12-month outcome is more
    # likely when another member of its group had one in the same year.
    d = pd.Timestamp("2022-12-31")
    ev = world.events[world.events.event_type.isin(ADVERSE_CODES)]
    hit = set(ev[(ev.recorded_on > d) & (ev.recorded_on <= d + pd.DateOffset(months=12))].entity_id)
    groups = links[links.relation == "shared_legal_representative"]
    pairs = [(a, b) for a, b in zip(groups.entity_id, groups.related_id, strict=True)]
    with_hit = np.mean([b in hit for a, b in pairs if a in hit])
    without_hit = np.mean([b in hit for a, b in pairs if a not in hit])
    assert with_hit > 1.5 * without_hit, (with_hit, without_hit)
