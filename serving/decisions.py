"""Decisions recorded through the API (``POST /v1/ledger/decisions``): the record a decision is about is
found, then the decision is checked and appended to the ledger (``serving/ledger.py``).

Where the record comes from: a record the ledger itself added (an inspection result) is its own; a list
entry is the one the service stores (``list_entries``, from the runs) or, failing that, the dataset's; a
delivered event is read from the dataset folder named by ``dataset`` or, by default, from the dataset of
the entity's latest stored run. Paths are confined to the import root like every server-side path
(``serving/runs.py``), and no answer names one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from features.dataset import DatasetError, load_dataset
from features.errors import Conflict, InvalidInput
from features.ledger import ENDS_LISTING, DecisionKind
from features.schema import EVENTS
from models.policy import Policy
from serving import ledger, runs
from serving.auth import Principal
from serving.db import ledger as ledger_table
from serving.db import list_entries
from serving.store import latest_score, run_row


def record_decision(
    engine: Engine, body: dict[str, Any], principal: Principal, policy: Policy, root: Path
) -> dict[str, Any]:
    """Find the record ``body`` is about, append the decision, and return it as stored."""
    body = dict(body)
    dataset = body.pop("dataset", None)
    kind = body.get("kind")
    with engine.connect() as conn:
        record = None
        if kind in ledger.ABOUT_EVENT:
            record = _event_record(conn, body, dataset, root)
        elif kind in ENDS_LISTING:
            record = _list_record(conn, body, dataset, root)
    seq = ledger.append(engine, body, principal, policy=policy, record=record, source="api")
    with engine.connect() as conn:
        return ledger.get_decision(conn, seq)


def _event_record(conn: Connection, body: dict[str, Any], dataset: str | None, root: Path) -> dict[str, Any]:
    event_id = body.get("event_id")
    if not event_id:
        raise InvalidInput.at("event_id", f"a {body['kind']} decision needs event_id: the record it is about")
    added = (
        conn.execute(
            select(*(ledger_table.c[c] for c in EVENTS.column_names if c != "repaired_on"))
            .where(ledger_table.c.event_id == event_id, ledger_table.c.kind == DecisionKind.ADD_EVENT)
            .order_by(ledger_table.c.seq.desc())
        )
        .mappings()
        .first()
    )
    if added is not None:
        return dict(added)
    ds = _dataset(conn, body, dataset, root)
    record = ledger.event_record(ds, event_id)
    if record is None:
        raise InvalidInput.at("event_id", "no such record in the dataset (nor added by the ledger)", event_id)
    return record


def _list_record(conn: Connection, body: dict[str, Any], dataset: str | None, root: Path) -> dict[str, Any]:
    entity_id, list_name, entered_on = body.get("entity_id"), body.get("list"), body.get("entered_on")
    if not (entity_id and list_name and entered_on):
        raise InvalidInput.at("entered_on", f"a {body['kind']} decision needs entity_id, list and entered_on")
    stored = (
        conn.execute(
            select(list_entries).where(
                list_entries.c.entity_id == entity_id,
                list_entries.c.list == list_name,
                list_entries.c.entered_on == entered_on,
            )
        )
        .mappings()
        .first()
    )
    record = dict(stored) if stored is not None else None
    if record is None:
        record = ledger.list_record(_dataset(conn, body, dataset, root), entity_id, list_name, entered_on)
    if record is None:
        raise InvalidInput.at(
            "entered_on", f"entity {entity_id} has no {list_name} entry entered on {entered_on}", str(entered_on)
        )
    entry = f"the {list_name} entry of entity {entity_id} entered on {entered_on}"
    if body["kind"] == DecisionKind.WITHDRAW_LISTING:
        # An entry that ran its term may still be annulled (an honour found to rest on false materials): the
        # withdrawal takes it out of the entries ever made (red_list_entries), which its end did not.
        withdrawn = ledger.withdrawals(conn, entity_id).get((list_name, entered_on))
        if withdrawn is not None:
            raise Conflict(f"{entry} was withdrawn on {withdrawn[0]} already")
        return record
    removed, wanted = record.get("removed_on"), body.get("removed_on") or body.get("decided_on")
    if removed is not None and (wanted is None or removed <= wanted):
        raise Conflict(f"{entry} ended on {removed} already")
    return record


def _dataset(conn: Connection, body: dict[str, Any], dataset: str | None, root: Path):
    """The dataset ``dataset`` names, else that of the entity's latest stored run (both under ``root``)."""
    if dataset is None:
        entity_id = body.get("entity_id")
        if not entity_id:
            raise InvalidInput.at("dataset", "name the dataset holding the record, or the record's entity_id")
        row = latest_score(conn, entity_id)
        run = run_row(conn, row["run_id"]) if row is not None else None
        if run is None:
            raise InvalidInput.at(
                "dataset", f"entity {entity_id} has no stored run: name the dataset holding the record"
            )
        try:
            folder = runs.dataset_folder(run["data_source"], root)
        except InvalidInput:
            raise InvalidInput.at(
                "dataset", "the dataset of the entity's latest run is not under the import root: name the dataset"
            ) from None
    else:
        folder = runs.dataset_folder(dataset, root)
    try:
        return load_dataset(folder, threads=1)
    except DatasetError:
        raise InvalidInput.at("dataset", "cannot be read as a dataset") from None
