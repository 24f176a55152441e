"""The records behind each feature (features/evidence.py) are exactly the records the feature counted.

Proved against the feature build itself, for every feature of the catalogue on a synthetic world: letting
go (repairing, removing) every record *outside* a feature's evidence leaves the feature's value unchanged,
and letting go every record *in* it gives the value of an entity without any such record. Nothing recorded
after D, repaired by D or out of force at D is ever named.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from features.build import build_features_from_frames
from features.catalogue import FEATURES, ListEntries, Source
from features.evidence import (
    EntityHistory,
    Evidence,
    RecordsAtDate,
    evidence,
    evidence_at,
    list_entry_id,
    parse_list_entry_id,
    records,
    records_evidence,
    union,
    unprovided,
)
from features.synth import generate
from tests.conftest import History
from tests.features.test_single import as_records, histories

DATES = (date(2023, 6, 30), date(2024, 12, 31))


@pytest.fixture(scope="module")
def world():
    return generate(250, seed=5)


@pytest.fixture(scope="module")
def traced(world):
    """Per date: the evidence of every entity (by entity id) and the features built at that date."""
    out = {}
    for day in DATES:
        by_entity = {}
        for entity_id, entity in world.entities.groupby("entity_id"):
            history = EntityHistory(
                entity,
                world.events[world.events.entity_id == entity_id],
                world.lists[world.lists.entity_id == entity_id],
            )
            by_entity[entity_id] = evidence(history, day)
        out[day] = by_entity
    return out


def _features(world, events, lists, day):
    return build_features_from_frames(world.entities, events, lists, day).set_index("entity_id")


def _let_go(world, day, keep_event, keep_entry):
    """The world with every event for which ``keep_event(entity_id, event_id)`` is False repaired on D
    (so it no longer counts at D), and every list entry made by D that ``keep_entry`` rejects taken out (an
    entry removed on D would still be one made: ``red_list_entries`` counts those too)."""
    events = world.events.copy()
    gone = ~np.array([keep_event(e, i) for e, i in zip(events.entity_id, events.event_id, strict=True)], dtype=bool)
    counted_before = pd.to_datetime(events["recorded_on"]) <= pd.Timestamp(day)
    events.loc[gone & counted_before, "repaired_on"] = pd.Timestamp(day)
    lists = world.lists.copy()
    ids = [list_entry_id(n, d) for n, d in zip(lists["list"], lists["entered_on"], strict=True)]
    drop = ~np.array([keep_entry(e, i) for e, i in zip(lists.entity_id, ids, strict=True)], dtype=bool)
    entered = pd.to_datetime(lists["entered_on"]) <= pd.Timestamp(day)
    return events, lists[~(drop & entered)]


def _same(a: pd.Series, b: pd.Series) -> bool:
    if a.dtype.kind in "fc":
        return bool(np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), equal_nan=True, rtol=0, atol=1e-12))
    return a.astype(str).equals(b.astype(str))


def test_every_feature_family_has_a_provider():
    assert unprovided() == []


@pytest.mark.parametrize("day", DATES)
def test_records_outside_the_evidence_do_not_move_the_feature(world, traced, day):
    base = _features(world, world.events, world.lists, day)
    by_entity = traced[day]
    for name, feature in FEATURES.items():
        if feature.source not in (Source.EVENTS, Source.LISTS):
            continue

        def keep_event(entity_id, event_id, name=name):
            found = by_entity.get(entity_id, {}).get(name)
            return found is None or found.table != "events" or event_id in found.ids

        def keep_entry(entity_id, entry_id, name=name):
            found = by_entity.get(entity_id, {}).get(name)
            return found is None or found.table != "lists" or entry_id in found.ids

        events, lists = _let_go(world, day, keep_event, keep_entry)
        after = _features(world, events, lists, day)
        assert _same(base[name], after[name]), name


@pytest.mark.parametrize("day", DATES)
def test_letting_go_the_evidence_leaves_the_value_of_no_records(world, traced, day):
    by_entity = traced[day]
    empty = _features(world, world.events.iloc[:0], world.lists.iloc[:0], day)
    for name, feature in FEATURES.items():
        if feature.source not in (Source.EVENTS, Source.LISTS):
            continue

        def keep_event(entity_id, event_id, name=name):
            found = by_entity.get(entity_id, {}).get(name)
            return found is None or event_id not in found.ids

        def keep_entry(entity_id, entry_id, name=name):
            found = by_entity.get(entity_id, {}).get(name)
            return found is None or entry_id not in found.ids

        events, lists = _let_go(world, day, keep_event, keep_entry)
        after = _features(world, events, lists, day)
        # A feature with records of several families (a ratio) keeps the value of its other records only
        # when some remain; with all its own records gone it equals an entity that never had any.
        assert _same(after[name], empty[name]), name


def test_rows_and_quantities_are_the_counts_of_the_named_records(world, traced):
    day = DATES[-1]
    base = _features(world, world.events, world.lists, day)
    events = world.events.set_index("event_id")
    checked = 0
    for entity_id, found in traced[day].items():
        if entity_id not in base.index:  # registered after D: no features, and no records counted
            assert all(not e.ids for e in found.values() if e.table != "entities")
            continue
        for name in ("adverse_36m", "abnormal_patent_filing_12m", "patent_filed_12m", "fines_36m"):
            ids = list(found[name].ids)
            value = base.loc[entity_id, name]
            if name == "patent_filed_12m":
                assert events.loc[ids, "quantity"].sum() == value
            elif name == "fines_36m":
                assert events.loc[ids, "amount"].sum() == pytest.approx(value)
            else:
                assert len(ids) == value
            checked += len(ids)
    assert checked > 0


def test_nothing_after_d_repaired_or_out_of_force_is_named(world, traced):
    events = world.events.drop_duplicates("event_id").set_index("event_id")
    lists = world.lists
    for day, by_entity in traced.items():
        stamp = pd.Timestamp(day)
        for entity_id, found in by_entity.items():
            for name, ev in found.items():
                if ev.table == "events" and ev.ids:
                    rows = events.loc[list(ev.ids)]
                    assert (pd.to_datetime(rows["recorded_on"]) <= stamp).all(), name
                    repaired = pd.to_datetime(rows["repaired_on"])
                    assert (repaired.isna() | (repaired > stamp)).all(), name
                    assert (rows["entity_id"] == entity_id).all()
                elif ev.table == "lists":
                    for entry in ev.ids:
                        list_name, entered = parse_list_entry_id(entry)
                        assert entered <= day
                        row = lists[
                            (lists.entity_id == entity_id)
                            & (lists["list"] == list_name)
                            & (pd.to_datetime(lists.entered_on) == pd.Timestamp(entered))
                        ]
                        assert len(row) == 1, name
                        if isinstance(FEATURES[name].spec, ListEntries):
                            continue  # entries made by D, in force or ended, by definition
                        removed = pd.to_datetime(row["removed_on"]).iloc[0]
                        assert pd.isna(removed) or removed > stamp


def test_most_recent_first_shown_few_and_counted_all(world, traced):
    day = DATES[-1]
    events = world.events.drop_duplicates("event_id").set_index("event_id")
    busiest = max(traced[day].items(), key=lambda kv: kv[1]["patent_filed_36m"].count)
    found = busiest[1]["patent_filed_36m"]
    occurred = pd.to_datetime(events.loc[list(found.ids), "occurred_on"]).to_numpy()
    assert (np.diff(occurred.astype("int64")) <= 0).all()
    shown = found.shown()
    assert shown["count"] == found.count > len(shown["ids"]) == 5
    assert shown["ids"] == list(found.ids[:5])


def test_ids_and_helpers():
    assert list_entry_id("untrustworthy", "2025-02-10") == "untrustworthy@2025-02-10"
    assert parse_list_entry_id("untrustworthy@2025-02-10") == ("untrustworthy", date(2025, 2, 10))
    for bad in ("untrustworthy", "@2025-01-01", "red@2025-13-01"):
        with pytest.raises(ValueError):
            parse_list_entry_id(bad)
    parts = [Evidence("events", ("a", "b")), Evidence("lists", ("x",)), Evidence("events", ("b", "c"))]
    merged = union("events", parts)
    assert merged.ids == ("a", "b", "c")
    with pytest.raises(KeyError):
        records("no_such_feature", EntityHistory(pd.DataFrame(), pd.DataFrame(), pd.DataFrame()), DATES[0])


# ---- a posted history read from its records (the what-if path) ------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_a_posted_history_read_from_its_records_names_what_its_frames_name(case):
    """``records_evidence`` reads the request's own records on day numbers (``RecordsAtDate``); it names
    the same records, in the same order, as ``evidence`` over the same history as frames."""
    h, as_of = case
    frames = h.frames()
    expected = evidence(EntityHistory(frames["entities"], frames["events"], frames["lists"]), as_of)
    assert records_evidence(*as_records(h), as_of) == expected


def test_a_posted_history_builds_its_frames_only_for_a_provider_that_reads_them():
    h = History()
    e = h.entity(registered_on=date(2019, 1, 1))
    h.event(e, "inspection_failed", date(2024, 1, 5))
    h.listing(e, "abnormal_operation", date(2023, 3, 1))
    at = RecordsAtDate(*as_records(h), date(2024, 6, 30))
    evidence_at(at)
    assert "history" not in vars(at)  # the catalogue's own providers read the records
    assert list(at.history.events["event_id"]) == [h.events[0]["event_id"]]
    assert at.links == (None, None)
