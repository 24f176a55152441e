"""The decision ledger in the service database (serving/ledger.py): gapless seq, append-only, audited,
validated against the record and the policy's repair rules, exported and imported idempotently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from features.errors import InvalidInput, NotFound
from features.ledger import LEDGER_COLUMNS
from models.policy import load_policy
from serving import ledger
from serving.auth import Principal, Role, cli_principal
from serving.dates import pinned
from serving.db import audit_log, list_entries
from tests.serving.conftest import POLICY_PATH, make_entities, make_lists, store_run

TODAY = date(2025, 12, 31)
POLICY = load_policy(POLICY_PATH)


def _record(entity_id: str, event_type: str = "infringement_penalty", recorded: date = date(2025, 1, 10)) -> dict:
    return {
        "event_id": "E1",
        "entity_id": entity_id,
        "event_type": event_type,
        "occurred_on": date(2025, 1, 2),
        "recorded_on": recorded,
        "quantity": 1,
    }


REPAIR = {
    "kind": "repair",
    "event_id": "E1",
    "repaired_on": "2025-08-01",
    "basis": "市监信修〔2025〕12号",
    "evidence": ["penalty_fulfilled", "credit_commitment"],
}


@pytest.fixture
def world(engine):
    frame = make_entities(8)
    store_run(engine, frame, lists=make_lists(frame))
    return frame


def _problems(exc: pytest.ExceptionInfo) -> dict:
    """Each path with every message about it."""
    found: dict = {}
    for p in exc.value.problems:
        found[p.loc] = f"{found.get(p.loc, '')} | {p.msg}"
    return found


def test_decisions_get_gapless_seqs_are_audited_and_read_back(engine, world):
    eid = world["entity_id"].iloc[0]
    with pinned(TODAY):
        first = ledger.append(engine, REPAIR, cli_principal(), policy=POLICY, record=_record(eid))
        added = {
            "kind": "add_event",
            "event_id": "INS-1",
            "entity_id": eid,
            "event_type": "inspection_failed",
            "occurred_on": "2025-11-01",
            "recorded_on": "2025-11-03",
            "quantity": 1,
        }
        second = ledger.append(engine, added, cli_principal(), source="draw/test")
    assert (first, second) == (1, 2)
    with engine.connect() as conn:
        assert ledger.current_seq(conn) == 2
        frame = ledger.ledger_frame(conn)
        assert list(frame.columns) == list(LEDGER_COLUMNS) and frame["seq"].tolist() == [1, 2]
        assert frame.loc[0, "entity_id"] == eid  # taken from the record
        assert frame.loc[1, "decided_on"] == pd.Timestamp(TODAY)  # decided today unless it says otherwise
        assert len(ledger.ledger_frame(conn, upto_seq=1)) == 1
        stored = ledger.get_decision(conn, 1)
        assert stored["rule"] == "REPAIR_PENALTY" and stored["policy_version"] == POLICY.version_tag
        actions = conn.execute(select(audit_log.c.action).where(audit_log.c.resource.like("ledger/%"))).scalars()
        assert sorted(actions) == ["ledger.add_event", "ledger.repair"]


def test_the_ledger_is_append_only(engine, world):
    with pinned(TODAY):
        ledger.append(engine, REPAIR, cli_principal(), policy=POLICY, record=_record(world["entity_id"].iloc[0]))
    for statement in ("UPDATE ledger SET basis = 'x'", "DELETE FROM ledger"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_concurrent_appends_take_distinct_consecutive_seqs(engine, world):
    eid = world["entity_id"].iloc[0]
    decision = {
        "kind": "add_event",
        "entity_id": eid,
        "event_type": "complaint_received",
        "occurred_on": "2025-10-01",
        "recorded_on": "2025-10-01",
        "quantity": 1,
    }

    def add(i: int) -> int:
        with pinned(TODAY):
            return ledger.append(engine, decision | {"event_id": f"C{i}"}, cli_principal())

    with ThreadPoolExecutor(4) as pool:
        seqs = sorted(pool.map(add, range(12)))
    assert seqs == list(range(1, 13))


@pytest.mark.parametrize(
    ("change", "record", "where", "says"),
    [
        ({"repaired_on": "2025-05-01"}, {}, ("repaired_on",), "can be repaired from 2025-07-10 on"),
        ({"evidence": ["credit_commitment"]}, {}, ("evidence",), "requires ['penalty_fulfilled']"),
        ({}, {"event_type": "infringement_judgment"}, ("event_id",), "cannot be repaired"),
        ({}, {"event_type": "patent_granted"}, ("event_id",), "nothing to repair"),
        ({"repaired_on": "2026-01-05"}, {}, ("repaired_on",), "must not be after today"),
        ({"decided_on": "2024-12-01", "repaired_on": "2025-08-01"}, {}, ("decided_on",), "before its record"),
        ({"repaired_on": "2025-01-05"}, {}, ("repaired_on",), "before its record"),
        ({"basis": None}, {}, ("basis",), "must give its basis"),
        ({"removed_on": "2025-08-01"}, {}, ("removed_on",), "has no field removed_on"),
        ({"repaired_on": "01/08/2025"}, {}, ("repaired_on",), "must be a date"),
        ({"entity_id": "91210600MA0QC0K819"}, {}, ("entity_id",), "belongs to entity"),
    ],
)
def test_a_repair_breaking_a_rule_is_refused_naming_the_rule_and_the_date(engine, world, change, record, where, says):
    eid = world["entity_id"].iloc[0]
    with pinned(TODAY), pytest.raises(InvalidInput) as exc:
        ledger.append(engine, REPAIR | change, cli_principal(), policy=POLICY, record=_record(eid) | record)
    problems = _problems(exc)
    assert where in problems and says in problems[where], problems
    with engine.connect() as conn:
        assert ledger.current_seq(conn) == 0


def test_early_removal_follows_its_list_rule_and_ends_the_public_entry(engine, world):
    sv = world["entity_id"].iloc[2]  # serious_violation entered 2024-06-01 (make_lists)
    removal = {
        "kind": "remove_listing",
        "entity_id": sv,
        "list": "serious_violation",
        "entered_on": "2024-06-01",
        "removed_on": "2025-05-01",
        "basis": "市监移出〔2025〕3号",
        "evidence": ["penalty_fulfilled", "credit_commitment", "training"],
    }
    with pinned(TODAY), pytest.raises(InvalidInput) as exc:
        ledger.append(engine, removal, cli_principal(), policy=POLICY)
    assert "can be removed from 2025-06-01 on" in _problems(exc)[("removed_on",)]
    with pinned(TODAY):
        ledger.append(engine, removal | {"removed_on": "2025-06-01"}, cli_principal(), policy=POLICY)
    with engine.connect() as conn:
        removed = conn.execute(select(list_entries.c.removed_on).where(list_entries.c.entity_id == sv)).scalar()
    assert removed == date(2025, 6, 1)


def test_a_withdrawn_entry_needs_its_review_decision_not_a_waiting_period(engine, world):
    # A serious-violation entry annulled on administrative review two months after it was made: no repair
    # rule applies (the early-removal rule would wait a year), the basis is required, and the public entry
    # ends on the decision date.
    sv = world["entity_id"].iloc[2]  # serious_violation entered 2024-06-01 (make_lists)
    withdrawal = {"kind": "withdraw_listing", "entity_id": sv, "list": "serious_violation", "entered_on": "2024-06-01"}
    with pinned(TODAY), pytest.raises(InvalidInput) as exc:
        ledger.append(engine, withdrawal | {"decided_on": "2024-08-01"}, cli_principal(), policy=POLICY)
    assert "must give its basis" in _problems(exc)[("basis",)]
    with pinned(TODAY), pytest.raises(InvalidInput) as exc:
        ledger.append(engine, withdrawal | {"decided_on": "2024-05-01", "basis": "x"}, cli_principal(), policy=POLICY)
    assert "the entry was entered on 2024-06-01" in _problems(exc)[("decided_on",)]
    with pinned(TODAY), pytest.raises(InvalidInput) as exc:
        ledger.append(engine, withdrawal | {"basis": "x", "evidence": ["training"]}, cli_principal(), policy=POLICY)
    assert ("evidence",) in _problems(exc)  # a withdrawal shows its ground, not a repair's evidence
    basis = "某市人民政府行政复议决定书〔2024〕15号：撤销列入决定"
    with pinned(TODAY):
        seq = ledger.append(
            engine, withdrawal | {"decided_on": "2024-08-01", "basis": basis}, cli_principal(), policy=POLICY
        )
    with engine.connect() as conn:
        stored = ledger.get_decision(conn, seq)
        removed = conn.execute(select(list_entries.c.removed_on).where(list_entries.c.entity_id == sv)).scalar()
    assert (stored["kind"], stored["removed_on"], stored["basis"]) == ("withdraw_listing", date(2024, 8, 1), basis)
    assert removed == date(2024, 8, 1)


def test_a_region_scoped_principal_decides_only_in_its_region(engine, world):
    outside = world[world["region"].str.startswith("41")]["entity_id"].iloc[0]
    scoped = Principal(token_id=7, name="dandong", role=Role.REVIEWER, region="210600")
    with pinned(TODAY), pytest.raises(NotFound):
        ledger.append(engine, REPAIR, scoped, policy=POLICY, record=_record(outside))
    inside = world[world["region"].str.startswith("2106")]["entity_id"].iloc[0]
    with pinned(TODAY):
        ledger.append(engine, REPAIR, scoped, policy=POLICY, record=_record(inside))
    with engine.connect() as conn:
        assert [d["entity_id"] for d in ledger.list_decisions(conn, principal=scoped)] == [inside]
        other = Principal(token_id=8, name="zhengzhou", role=Role.REVIEWER, region="410100")
        assert ledger.list_decisions(conn, principal=other) == []
        with pytest.raises(NotFound):
            ledger.get_decision(conn, 1, other)


def test_export_then_import_is_idempotent_and_a_bad_file_names_row_and_column(engine, world, db_url, tmp_path):
    eid = world["entity_id"].iloc[0]
    with pinned(TODAY):
        ledger.append(engine, REPAIR, cli_principal(), policy=POLICY, record=_record(eid))
    with engine.connect() as conn:
        exported = ledger.export_frame(conn)
    # A second environment: a fresh database with the same entities.
    from serving.db import open_store

    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    store_run(other, world)
    with pinned(TODAY):
        first = ledger.import_frame(other, exported, cli_principal())
        again = ledger.import_frame(other, exported, cli_principal())
        assert (first.added, first.skipped) == (1, 0)
        assert (again.added, again.skipped, again.seq) == (0, 1, 1)
        bad = exported.copy()
        bad.loc[0, "kind"] = "forgive"
        second = exported.assign(decision_id="other", seq=2, decided_on="2026-03-01")
        with pytest.raises(InvalidInput) as exc:
            ledger.import_frame(other, pd.concat([bad, second], ignore_index=True), cli_principal())
    locs = {p.loc for p in exc.value.problems}
    assert ("ledger", 1, "kind") in locs and ("ledger", 2, "decided_on") in locs
    with other.connect() as conn:
        assert ledger.current_seq(conn) == 1
        assert ledger.export_frame(conn)["decision_id"].tolist() == exported["decision_id"].tolist()
    other.dispose()


def test_an_older_delivery_never_resurrects_a_removed_entry_nor_moves_its_removal(engine, world):
    from serving.store import save_list_entries

    entry = make_lists(world).iloc[[4]].reset_index(drop=True)  # untrustworthy, entered 2025-02-10, open
    eid = entry.loc[0, "entity_id"]

    def removed_on() -> date | None:
        with engine.connect() as conn:
            return conn.execute(select(list_entries.c.removed_on).where(list_entries.c.entity_id == eid)).scalar()

    with engine.begin() as conn:
        save_list_entries(conn, entry.assign(removed_on="2025-08-01"))  # a delivery removes it
    for older in (entry, entry.assign(removed_on="2025-09-30")):  # deliveries made before, imported again
        with engine.begin() as conn:
            save_list_entries(conn, older)
        assert removed_on() == date(2025, 8, 1)
