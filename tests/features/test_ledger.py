"""Decisions that last: the ledger laid over a delivery, the same in SQL and in pandas, point in time."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, build_features_from_frames
from features.dataset import Dataset
from features.errors import InvalidInput
from features.ledger import check_ledger, empty_ledger, overlay_dataset, overlay_frames
from features.snapshots import build_outcomes
from features.synth import generate

D = date(2023, 6, 30)


def _ledger(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{"seq": i + 1, **row} for i, row in enumerate(rows)])


def _row(ds: Dataset, entity_id: str, as_of: date = D) -> pd.Series:
    return build_features(ds, as_of).set_index("entity_id").loc[entity_id]


def test_a_repair_counts_until_its_date_and_never_after(history):
    eid = history.entity()
    event = history.event(eid, "infringement_penalty", date(2022, 1, 10), date(2022, 2, 1))
    ledger = _ledger({"kind": "repair", "event_id": event, "decided_on": "2023-01-15", "repaired_on": "2023-01-15"})
    ds = history.dataset()
    report = overlay_dataset(ds, ledger)
    assert report.seq == 1 and report.conflicts.empty
    assert _row(ds, eid, date(2023, 1, 14))["adverse_all"] == 1
    assert _row(ds, eid, date(2023, 1, 15))["adverse_all"] == 0


def test_a_correction_holds_from_its_decision_on_and_the_past_stays_as_it_was(history):
    eid = history.entity()
    event = history.event(eid, "infringement_penalty", date(2022, 1, 10), date(2022, 2, 1))
    ledger = _ledger(
        {"kind": "correct", "event_id": event, "decided_on": "2023-03-01", "event_type": "complaint_received"}
    )
    ds = history.dataset()
    overlay_dataset(ds, ledger)
    before, after = _row(ds, eid, date(2023, 2, 28)), _row(ds, eid, date(2023, 3, 1))
    assert (before["adverse_all"], before["complaint_received_12m"]) == (1, 0)
    assert (after["adverse_all"], after["complaint_received_12m"]) == (0, 0)  # occurred over a year before
    assert _row(ds, eid, date(2023, 3, 1))["complaints_decayed"] > 0


def test_a_withdrawn_record_stops_counting_and_is_never_an_outcome(history):
    eid = history.entity()
    event = history.event(eid, "infringement_penalty", date(2022, 9, 1), date(2022, 9, 5))
    ds = history.dataset()
    overlay_dataset(ds, _ledger({"kind": "withdraw", "event_id": event, "decided_on": "2023-01-10"}))
    assert _row(ds, eid, date(2023, 1, 9))["adverse_all"] == 1
    assert _row(ds, eid, date(2023, 1, 10))["adverse_all"] == 0
    assert build_outcomes(ds, date(2022, 6, 30)).set_index("entity_id").loc[eid, "outcome"] == 0


def test_new_records_and_early_removals(history):
    eid = history.entity()
    history.listing(eid, "untrustworthy", date(2022, 9, 1))
    ds = history.dataset()
    ledger = _ledger(
        {
            "kind": "add_event",
            "event_id": "L1",
            "entity_id": eid,
            "event_type": "inspection_failed",
            "occurred_on": "2023-02-01",
            "recorded_on": "2023-02-03",
            "quantity": 1,
            "decided_on": "2023-02-03",
        },
        {
            "kind": "remove_listing",
            "entity_id": eid,
            "list": "untrustworthy",
            "entered_on": "2022-09-01",
            "removed_on": "2023-04-01",
            "decided_on": "2023-04-01",
        },
    )
    overlay_dataset(ds, ledger)
    row = _row(ds, eid, date(2023, 3, 31))
    assert row["inspection_failed_36m"] == 1 and row["on_untrustworthy_list"]
    assert not _row(ds, eid, date(2023, 4, 1))["on_untrustworthy_list"]
    assert build_outcomes(ds, date(2022, 6, 30)).set_index("entity_id").loc[eid, "outcome"] == 1


def _withdrawal(entity_id: str, list_name: str, entered_on: str, decided_on: str) -> dict:
    """A ``withdraw_listing`` decision: the entry ends, and leaves the entries ever made, on ``decided_on``."""
    return {
        "kind": "withdraw_listing",
        "entity_id": entity_id,
        "list": list_name,
        "entered_on": entered_on,
        "removed_on": decided_on,
        "decided_on": decided_on,
    }


def test_a_withdrawn_list_entry_ends_on_its_decision_and_the_past_stays_as_it_was(history):
    # An untrustworthy entry annulled on review ten weeks after it was made: gone from the decision on,
    # whatever the delivery says; a score as of an earlier date still sees what was in force then.
    eid = history.entity()
    history.listing(eid, "untrustworthy", date(2022, 9, 1))
    ds = history.dataset()
    withdrawal = _withdrawal(eid, "untrustworthy", "2022-09-01", "2022-11-15")
    report = overlay_dataset(ds, _ledger(withdrawal))
    assert report.conflicts.empty
    assert _row(ds, eid, date(2022, 11, 14))["on_untrustworthy_list"]
    assert not _row(ds, eid, date(2022, 11, 15))["on_untrustworthy_list"]
    assert ds.table("lists").set_index("entity_id").loc[eid, "removed_on"] == pd.Timestamp("2022-11-15")
    # an entry the delivery does not hold is said, not an error
    other = history.dataset()
    missing = overlay_dataset(other, _ledger(withdrawal | {"entered_on": "2022-09-02"}))
    assert "no untrustworthy entry of 2022-09-02 in this delivery" in missing.conflicts["message"].iloc[0]


def test_a_withdrawn_red_entry_leaves_the_entries_ever_made_from_its_decision_on(history):
    # An honour that ran its term, annulled on review years later (it rested on false materials): until the
    # decision it counted among the red entries ever made, from the decision on it does not, in SQL as in
    # pandas. An entry that merely ended keeps counting.
    eid = history.entity()
    history.listing(eid, "red", date(2020, 3, 1), removed_on=date(2021, 3, 1))
    history.listing(eid, "red", date(2022, 1, 1))
    ds = history.dataset()
    ledger = _ledger(_withdrawal(eid, "red", "2020-03-01", "2023-05-01"))
    overlay_dataset(ds, ledger)
    events, lists, _ = overlay_frames(ds.table("events_delivered"), ds.table("lists_delivered"), ledger)
    entities = ds.table("entities")
    for as_of, entries in ((date(2023, 4, 30), 2), (date(2023, 5, 1), 1)):
        row = _row(ds, eid, as_of)
        frames = build_features_from_frames(entities, events, lists, as_of).set_index("entity_id").loc[eid]
        assert row["red_list_entries"] == frames["red_list_entries"] == entries, as_of
        assert row["on_red_list"] and frames["on_red_list"]
    # the removal date of an entry that had ended stays its own
    assert ds.table("lists").set_index("entered_on").loc[pd.Timestamp("2020-03-01"), "removed_on"] == pd.Timestamp(
        "2021-03-01"
    )


def test_where_delivery_and_ledger_disagree_the_ledger_wins_and_says_so(history):
    eid = history.entity()
    agrees = history.event(eid, "infringement_penalty", date(2021, 1, 1), repaired_on=date(2022, 1, 1))
    differs = history.event(eid, "infringement_penalty", date(2021, 2, 1), repaired_on=date(2022, 6, 1))
    ds = history.dataset()
    report = overlay_dataset(
        ds,
        _ledger(
            {"kind": "repair", "event_id": agrees, "decided_on": "2022-01-01", "repaired_on": "2022-01-01"},
            {"kind": "repair", "event_id": differs, "decided_on": "2022-03-01", "repaired_on": "2022-03-01"},
            {"kind": "withdraw", "event_id": "E999999", "decided_on": "2022-03-01"},
        ),
    )
    messages = dict(zip(report.conflicts["target"], report.conflicts["message"], strict=True))
    assert agrees not in messages  # a later delivery that already carries the repair is no conflict
    assert "the earlier date holds" in messages[differs]
    assert "not in this delivery" in messages["E999999"]
    assert _row(ds, eid, date(2022, 4, 1))["adverse_all"] == 0


def test_sql_and_pandas_overlays_give_the_same_features_and_outcomes():
    world = generate(400, seed=3)
    events = world.events
    rng = np.random.default_rng(0)
    picked = events.sample(60, random_state=1).reset_index(drop=True)
    rows = []
    for i, e in picked.iterrows():
        decided = (pd.Timestamp(e["recorded_on"]) + pd.Timedelta(days=int(rng.integers(1, 900)))).date()
        kind = ["repair", "withdraw", "correct"][i % 3]
        row = {"kind": kind, "event_id": e["event_id"], "decided_on": decided}
        if kind == "repair":
            row["repaired_on"] = decided
        if kind == "correct":
            row["quantity"] = int(e["quantity"]) + 2
            row["event_type"] = "complaint_received" if i % 2 else None
        rows.append(row)
    some = world.entities["entity_id"].iloc[:5]
    rows += [
        {
            "kind": "add_event",
            "event_id": f"L{i}",
            "entity_id": eid,
            "event_type": "inspection_failed",
            "occurred_on": "2023-05-01",
            "recorded_on": "2023-05-02",
            "quantity": 1,
            "decided_on": "2023-05-02",
        }
        for i, eid in enumerate(some)
    ]
    for kind, entry in zip(("remove_listing", "withdraw_listing"), world.lists.head(2).itertuples(), strict=False):
        rows.append(
            {
                "kind": kind,
                "entity_id": entry.entity_id,
                "list": entry.list,
                "entered_on": entry.entered_on,
                "removed_on": pd.Timestamp(entry.entered_on) + pd.Timedelta(days=30),
                "decided_on": pd.Timestamp(entry.entered_on) + pd.Timedelta(days=30),
            }
        )
    ledger = _ledger(*rows)
    assert check_ledger(ledger) == []
    ds = Dataset.from_frames(world.entities, world.events, world.lists)
    overlay_dataset(ds, ledger)
    overlaid_events, overlaid_lists, _ = overlay_frames(
        ds.table("events_delivered"), ds.table("lists_delivered"), ledger
    )
    for as_of in (date(2021, 12, 31), date(2023, 6, 30), date(2024, 12, 31)):
        sql = build_features(ds, as_of)
        frames = build_features_from_frames(world.entities, overlaid_events, overlaid_lists, as_of)
        pd.testing.assert_frame_equal(sql.reset_index(drop=True), frames.reset_index(drop=True), check_dtype=False)
    plain = Dataset.from_frames(world.entities, world.events, world.lists)
    assert not build_features(plain, D).equals(build_features(ds, D))


def test_an_empty_ledger_changes_nothing(history):
    eid = history.entity()
    history.event(eid, "infringement_penalty", date(2022, 1, 10))
    plain, ds = history.dataset(), history.dataset()
    assert overlay_dataset(ds, empty_ledger()).seq == 0
    pd.testing.assert_frame_equal(build_features(plain, D), build_features(ds, D))
    with pytest.raises(InvalidInput, match="already has a ledger"):
        overlay_dataset(ds, empty_ledger())


def test_an_invalid_ledger_is_refused_with_its_rows_and_columns():
    ledger = pd.DataFrame(
        [
            {"seq": 1, "kind": "repair", "event_id": "E1", "decided_on": "2023-01-01"},  # no repaired_on
            {"seq": 1, "kind": "explode", "decided_on": "2023-01-01"},
            {
                "seq": 3,
                "kind": "add_event",
                "event_id": "L1",
                "entity_id": "X",
                "event_type": "party",
                "occurred_on": "2023-02-01",
                "recorded_on": "2023-01-01",
                "quantity": 0,
                "decided_on": "2023-02-01",
            },
            {"seq": 4, "kind": "correct", "event_id": "E2", "decided_on": "2023-01-01"},
        ]
    )
    paths = {p.loc for p in check_ledger(ledger)}
    assert ("ledger", 1, "repaired_on") in paths
    assert ("ledger", 2, "kind") in paths and ("ledger", 2, "seq") in paths
    assert {("ledger", 3, "event_type"), ("ledger", 3, "recorded_on"), ("ledger", 3, "quantity")} <= paths
    assert ("ledger", 4, "kind") in paths


def test_the_overlaid_views_keep_the_typed_views_column_types(history):
    eid = history.entity()
    event = history.event(eid, "infringement_penalty", date(2022, 1, 10), date(2022, 2, 1))
    history.listing(eid, "red", date(2022, 3, 1))
    ds = history.dataset()
    types = {t: ds.con.execute(f"DESCRIBE {t}").fetchall() for t in ("events", "lists")}
    overlay_dataset(
        ds,
        _ledger(
            {"kind": "correct", "event_id": event, "decided_on": "2023-01-01", "amount": 5.0},
            {"kind": "repair", "event_id": event, "decided_on": "2023-02-01", "repaired_on": "2023-02-01"},
            {
                "kind": "add_event",
                "event_id": "N1",
                "entity_id": eid,
                "event_type": "inspection_failed",
                "occurred_on": "2023-01-01",
                "recorded_on": "2023-01-02",
                "quantity": 1,
                "decided_on": "2023-01-03",
            },
            {
                "kind": "remove_listing",
                "entity_id": eid,
                "list": "red",
                "entered_on": "2022-03-01",
                "removed_on": "2023-03-01",
                "decided_on": "2023-03-01",
            },
        ),
    )
    for table, before in types.items():
        after = ds.con.execute(f"DESCRIBE {table}").fetchall()
        assert [(c[0], c[1]) for c in after] == [(c[0], c[1]) for c in before], table
