"""Objections (异议) and credit repair (信用修复).

An objection is filed against one stored score row with its grounds. A reviewer reads it with the full
explanation snapshot that produced the tier and decides:

- ``uphold``: the row stands;
- ``correct``: the data were wrong; the corrected history is rescored as of the same date with the same
  model version and the policy text stored with the run, and the new row (a ``correction`` run) is linked
  to the objection and supersedes the old row;
- ``repair``: named records are repaired (``repaired_on`` set); the history is rescored with the same model
  and policy as of the repair date (or the original date, if later), linked the same way.

Decisions use optimistic concurrency: the reviewer sends the ``version`` they read, and the decision is
one conditional UPDATE (``WHERE version = :read AND status = 'open'``) in the same transaction as the new
score row and the audit row. Two reviewers deciding at once: one wins, the other gets 409, nothing is
half-written.

Duties are separated: whoever filed an objection never decides it (``Forbidden``, 403: not the same
token, nor a token of the same name). Only the entity's current row can be objected to or decided on:
once a newer row supersedes it (a later run, a decision), filing or deciding is ``Conflict`` (409)
naming the newer row. One open objection per row is a unique index, so two filings at once give one 201
and one 409, never a 500. A region-scoped token sees only objections about its region's entities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from features.dataset import DatasetError, load_dataset
from features.errors import Conflict, Forbidden, InvalidInput, NotFound
from features.evidence import EntityHistory
from features.ledger import AMENDABLE, overlay_dataset, overlay_frames
from features.schema import WITHDRAWN_ON
from models.policy import Policy
from serving import explanations, ledger, scoring, traces
from serving.audit import record_change
from serving.auth import Principal
from serving.db import entities, objections, scores
from serving.schemas import DecisionIn
from serving.scorers import Scorers
from serving.store import ScoreRunRecord, run_row, save_score_run, score_row

# The status an objection is left in by each decision.
STATUS_AFTER = {"uphold": "upheld", "correct": "corrected", "repair": "repaired"}


def _view(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "id"}
    out["objection_id"] = row["id"]
    out["changes"] = json.loads(row["changes"]) if row.get("changes") else None
    return out


def file_objection(engine: Engine, score_id: int, grounds: str, principal: Principal) -> dict[str, Any]:
    """File an objection against a stored score row; ``Conflict`` if one is already open against it or a
    newer row supersedes it, ``NotFound`` for a row the caller may not see."""
    try:
        with engine.begin() as conn:
            row = score_row(conn, score_id)
            if row is None or not principal.sees(_region(conn, row["entity_id"])):
                raise NotFound(f"score row {score_id} not found")
            _check_current(conn, row)
            open_ = conn.execute(
                select(objections.c.id).where(objections.c.score_id == score_id, objections.c.status == "open")
            ).scalar()
            if open_ is not None:
                raise Conflict(f"objection {open_} is already open against score row {score_id}")
            objection_id = conn.execute(
                objections.insert()
                .values(
                    score_id=score_id,
                    entity_id=row["entity_id"],
                    grounds=grounds,
                    filed_by=principal.actor,
                    filed_at=datetime.now(UTC),
                    status="open",
                    version=1,
                )
                .returning(objections.c.id)
            ).scalar_one()
            record_change(conn, principal, "objection.file", f"objection/{objection_id}", {"score_id": score_id})
            return get_objection(conn, objection_id)
    except IntegrityError as exc:  # the unique index: another filing against this row won the race
        raise Conflict(f"an objection against score row {score_id} was filed meanwhile; reload it") from exc


def _region(conn: Connection, entity_id: str) -> str | None:
    return conn.execute(select(entities.c.region).where(entities.c.entity_id == entity_id)).scalar()


def _check_current(conn: Connection, row: dict[str, Any]) -> None:
    """``Conflict`` naming the newer row when ``row`` is no longer the entity's current score row."""
    current = conn.execute(select(entities.c.score_id).where(entities.c.entity_id == row["entity_id"])).scalar()
    if current is not None and current != row["id"]:
        raise Conflict(
            f"score row {row['id']} is superseded by score row {current} of entity {row['entity_id']}: "
            f"object to (or decide on) the current row {current}"
        )


def _filer(objection: dict[str, Any]) -> tuple[str, str]:
    """The filer's token name and ``name#id`` as recorded."""
    filed_by = objection.get("filed_by") or ""
    return filed_by.rsplit("#", 1)[0], filed_by


def get_objection(conn: Connection, objection_id: int, principal: Principal | None = None) -> dict[str, Any]:
    """The objection; ``NotFound`` when there is none (or none about an entity ``principal`` may see)."""
    row = conn.execute(select(objections).where(objections.c.id == objection_id)).mappings().first()
    if row is None or (principal is not None and not principal.sees(_region(conn, row["entity_id"]))):
        raise NotFound(f"objection {objection_id} not found")
    return _view(dict(row))


def objection_detail(conn: Connection, objection_id: int, principal: Principal | None = None) -> dict[str, Any]:
    """The objection with the full explanation snapshot it is about, the run, and the result row."""
    objection = get_objection(conn, objection_id, principal)
    row = score_row(conn, objection["score_id"], full=True)
    run = run_row(conn, row["run_id"], with_policy=True)
    policy = scoring.policy_from_text(run["policy_text"])
    result = None
    if objection["result_score_id"]:
        result = explanations.risk_row(score_row(conn, objection["result_score_id"]))
    run_view = {k: v for k, v in run.items() if k not in ("policy_text", "id")} | {"run_id": run["id"]}
    explanation = explanations.explanation(row, policy, traces.trace_row(conn, row))
    return {**objection, "explanation": explanation, "run": run_view, "result": result}


def list_objections(
    conn: Connection, *, status: str | None, limit: int, offset: int, region: str | None = None
) -> list[dict[str, Any]]:
    """A page of objections (paged in the database), oldest first; ``region``: about entities whose
    region starts with it."""
    stmt = select(objections).order_by(objections.c.id).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(objections.c.status == status)
    if region is not None:
        in_region = select(entities.c.entity_id).where(entities.c.region.startswith(region, autoescape=True))
        stmt = stmt.where(objections.c.entity_id.in_(in_region))
    return [_view(dict(r)) for r in conn.execute(stmt).mappings()]


def _history_from_run(data_source: str, entity_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        ds = load_dataset(data_source, threads=1)
    except DatasetError as exc:
        raise InvalidInput.at("history", f"send the history: the run's dataset cannot be read ({exc})") from exc
    # The id is a bound parameter, never text pasted into the SQL.
    entity, events, lists = (
        ds.con.execute(f"SELECT * FROM {table} WHERE entity_id = ?", [entity_id]).df()
        for table in ("entities", "events", "lists")
    )
    return entity, events, lists


def decide(
    engine: Engine,
    scorers: Scorers,
    objection_id: int,
    decision: DecisionIn,
    principal: Principal,
    *,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Apply a reviewer's decision; return the updated objection.

    A ``repair`` or ``correct`` decision is also written to the decision ledger (``serving/ledger.py``) in
    the same transaction, so every later run keeps it: each repair as a ``repair`` decision, checked
    against the repair rules of ``policy`` (the service's; default the run's); a corrected history as the
    ``correct``, ``withdraw``, ``add_event``, ``repair``, ``remove_listing`` and ``withdraw_listing``
    decisions that turn the records the row saw (the delivery with the ledger applied) into the posted ones.

    ``Conflict`` when the objection was decided meanwhile, ``decision.version`` is not its version or a
    newer row supersedes the one objected to; ``Forbidden`` when the caller filed it; ``InvalidInput``
    when the corrected history or the repairs do not fit the objection's entity or break a repair rule.
    """
    with engine.connect() as conn:
        objection = get_objection(conn, objection_id, principal)
        name, filed_by = _filer(objection)
        if principal.actor == filed_by or principal.name == name:
            raise Forbidden(
                f"objection {objection_id} was filed by {filed_by}: separation of duties, another reviewer "
                "must decide it"
            )
        _check_open(objection, decision.version)
        row = score_row(conn, objection["score_id"], full=True)
        _check_current(conn, row)
        run = run_row(conn, row["run_id"], with_policy=True)

    rescored: ScoreRunRecord | None = None
    changes: dict[str, Any] | None = None
    planned: list[Planned] = []
    rules = policy or scoring.policy_from_text(run["policy_text"])
    if decision.decision != "uphold":
        rescored, changes, planned = _rescore(engine, scorers, objection, row, run, decision, principal, rules)

    status = STATUS_AFTER[decision.decision]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        # The decision itself comes first: it takes the row lock (PostgreSQL) or the write lock (SQLite),
        # so of two concurrent decisions exactly one matches.
        result = conn.execute(
            update(objections)
            .where(
                objections.c.id == objection_id,
                objections.c.version == decision.version,
                objections.c.status == "open",
            )
            .values(
                status=status,
                version=objections.c.version + 1,
                decision=decision.decision,
                decision_note=decision.note,
                decided_by=principal.actor,
                decided_at=now,
                changes=json.dumps(changes, ensure_ascii=False, default=str) if changes else None,
            )
        )
        if result.rowcount != 1:
            raise Conflict(_conflict_message(conn, objection_id))
        _check_current(conn, row)  # a run saved since the reading above may have superseded the row
        seqs = [
            ledger.append(
                conn, p.decision, principal, policy=rules, record=p.record, source=f"objection/{objection_id}"
            )
            for p in planned
        ]
        if changes is not None and seqs:
            changes["ledger_seqs"] = seqs
        new_score_id = None
        if rescored is not None:
            if seqs:
                rescored = replace(rescored, ledger_seq=seqs[-1])
            run_id = save_score_run(conn, rescored)
            new_score_id = conn.execute(select(scores.c.id).where(scores.c.run_id == run_id)).scalar_one()
            # With the ledger seqs the decision wrote, known only now.
            conn.execute(
                update(objections)
                .where(objections.c.id == objection_id)
                .values(result_score_id=new_score_id, changes=json.dumps(changes, ensure_ascii=False, default=str))
            )
        record_change(
            conn,
            principal,
            f"objection.{decision.decision}",
            f"objection/{objection_id}",
            {"score_id": row["id"], "result_score_id": new_score_id, "note": decision.note, "changes": changes},
        )
        return get_objection(conn, objection_id)


def _check_open(objection: dict[str, Any], version: int) -> None:
    if objection["status"] != "open":
        raise Conflict(
            f"objection {objection['objection_id']} was already decided ({objection['status']} by "
            f"{objection['decided_by']}, version {objection['version']})"
        )
    if objection["version"] != version:
        raise Conflict(
            f"objection {objection['objection_id']} is at version {objection['version']}; you sent {version}: reload it"
        )


def _conflict_message(conn: Connection, objection_id: int) -> str:
    now = get_objection(conn, objection_id)
    return (
        f"objection {objection_id} was decided by someone else meanwhile "
        f"(now {now['status']} by {now['decided_by']}, version {now['version']}); reload it"
    )


@dataclass(frozen=True)
class Planned:
    """A ledger decision an objection decision makes, with the record it is about."""

    decision: dict[str, Any]
    record: dict[str, Any] | None


def _rescore(
    engine: Engine,
    scorers: Scorers,
    objection: dict[str, Any],
    row: dict[str, Any],
    run: dict[str, Any],
    decision: DecisionIn,
    principal: Principal,
    rules: Policy,
) -> tuple[ScoreRunRecord, dict[str, Any], list[Planned]]:
    """The objection's row rescored after a ``correct`` or ``repair`` decision with the model version
    that produced it and the policy text stored with its run, as the run to save; what changed; and the
    ledger decisions to record (checked here already, before the rescoring)."""
    entity_id = objection["entity_id"]
    planned: list[Planned] = []
    with engine.connect() as conn:
        existing = ledger.ledger_frame(conn)
    if decision.history is not None:
        if decision.history.entity.entity_id != entity_id:
            raise InvalidInput.at(
                ("history", "entity", "entity_id"),
                f"must be the objection's entity {entity_id}",
                decision.history.entity.entity_id,
            )
        entity, events, lists = scoring.history_frames(decision.history)
    else:
        entity, events, lists = _history_from_run(run["data_source"], entity_id)
    as_of: date = row["as_of"]
    changes: dict[str, Any] = {"history": "posted" if decision.history is not None else run["data_source"]}
    if decision.decision == "repair":
        # Only a record that fed the row objected to may be repaired by deciding on it (422 naming the id).
        posted = EntityHistory(entity, events, lists) if decision.history is not None else None
        traces.check_repair_ids(engine, row, [r.event_id for r in decision.repairs], posted)
        planned = _planned_repairs(events, decision, objection["objection_id"], rules)
        events = events.copy()
        events["repaired_on"] = pd.to_datetime(events["repaired_on"])
        known = set(events["event_id"].astype(str))
        for i, repair in enumerate(decision.repairs):
            if repair.event_id not in known:
                raise InvalidInput.at(
                    ("repairs", i, "event_id"), f"no event {repair.event_id} in the entity's history", repair.event_id
                )
            named = events["event_id"].astype(str) == repair.event_id
            recorded = pd.to_datetime(events.loc[named, "recorded_on"]).max()
            if pd.Timestamp(repair.repaired_on) < recorded:
                raise InvalidInput.at(
                    ("repairs", i, "repaired_on"),
                    f"must be on or after the record's recorded_on ({recorded.date()})",
                    repair.repaired_on.isoformat(),
                )
            events.loc[named, "repaired_on"] = pd.Timestamp(repair.repaired_on)
        as_of = max(as_of, *(r.repaired_on for r in decision.repairs))
        changes["repairs"] = [r.model_dump(mode="json") for r in decision.repairs]
    elif decision.history is not None:
        planned, changes["ledger"] = _planned_corrections(run, entity_id, events, lists, existing, decision, rules)
    changes["as_of"] = as_of.isoformat()
    scorer = scorers.version(str(row["model_version"]))
    policy = scoring.policy_from_text(run["policy_text"])
    objection_id = objection["objection_id"]
    try:
        ds = scoring.dataset_from_history(entity, events, lists, source=f"objection/{objection_id}")
    except InvalidInput as exc:
        if decision.history is None:
            raise
        raise exc.under("history") from exc  # the posted history's paths, under the field that holds it
    if decision.decision == "repair":
        # The decisions already in the ledger hold in the rescored row too (a corrected history is the
        # reviewer's whole statement of the records: it is scored as posted).
        overlay_dataset(ds, existing)
    rescored = scoring.score_dataset(scorer, policy, ds, as_of)
    changes["previous"] = {"score": row["score"], "tier": row["tier"]}
    changes["rescored"] = {"score": float(rescored["score"].iloc[0]), "tier": str(rescored["tier"].iloc[0])}
    record = ScoreRunRecord(
        scores=rescored,
        entities=ds.entities,
        as_of=as_of,
        dataset_fingerprint=ds.fingerprint,
        data_source=f"objection/{objection_id}",
        policy_text=run["policy_text"],
        policy_version=policy.version_tag,
        model_version=row["model_version"],
        feature_version=scoring.feature_version_of(rescored),
        kind="correction" if decision.decision == "correct" else "repair",
        created_by=principal.actor,
        parent_run_id=run["id"],
        objection_id=objection_id,
        supersedes={row["entity_id"]: row["id"]},
        data_end=run.get("data_end"),  # the row's delivery, corrected: its span is the parent run's
    )
    return record, changes, planned


def _planned_repairs(events: pd.DataFrame, decision: DecisionIn, objection_id: int, rules: Policy) -> list[Planned]:
    """One ``repair`` ledger decision per repair, checked against the repair rules (problems at
    ``("repairs", i, field)``)."""
    planned = []
    for i, repair in enumerate(decision.repairs or []):
        named = events[events["event_id"].astype(str) == repair.event_id]
        if named.empty:
            raise InvalidInput.at(
                ("repairs", i, "event_id"), f"no event {repair.event_id} in the entity's history", repair.event_id
            )
        record = ledger.plain_record(named.iloc[0])
        wanted = {
            "kind": "repair",
            "event_id": repair.event_id,
            "repaired_on": repair.repaired_on,
            "basis": repair.basis or f"objection {objection_id}",
            "evidence": repair.evidence,
            "note": decision.note,
        }
        try:
            ledger.check_decision(wanted, policy=rules, record=record)
        except InvalidInput as exc:
            raise exc.under("repairs", i) from exc
        planned.append(Planned(wanted, record))
    return planned


def _planned_corrections(
    run: dict[str, Any],
    entity_id: str,
    events: pd.DataFrame,
    lists: pd.DataFrame,
    existing: pd.DataFrame,
    decision: DecisionIn,
    rules: Policy,
) -> tuple[list[Planned], str]:
    """The ledger decisions that turn the records the row saw — the run's delivery with the ledger laid
    over it — into the posted corrected history: an amended record is corrected, a missing one
    withdrawn, a new one added, a newly repaired one repaired, an entry newly removed removed early, a
    missing entry withdrawn (one that should not exist). A correction cannot add a list entry: lists are
    the authorities' to make, the ledger only ends them. When the run's dataset cannot be read, nothing can
    be compared: the rescored row stands alone, and the answer says so."""
    try:
        _, seen_events, seen_lists = _history_from_run(run["data_source"], entity_id)
    except InvalidInput:
        return [], "not recorded: the run's dataset cannot be read, so the correction holds for this row only"
    basis = f"objection on run {run['id']}: corrected history"
    seen_events, seen_lists, current = overlay_frames(seen_events, seen_lists, existing)
    current = current.drop_duplicates("event_id", keep="last").set_index("event_id")
    repaired_now = seen_events.groupby("event_id")["repaired_on"].min()
    posted = events.assign(event_id=events["event_id"].astype(str)).set_index("event_id")
    planned: list[Planned] = []
    for i, (event_id, new) in enumerate(posted.iterrows()):
        if event_id not in current.index:
            fields = {c: new[c] for c in ("event_type", "occurred_on", "recorded_on", "quantity", "amount")}
            wanted = {"kind": "add_event", "event_id": event_id, "entity_id": entity_id, "basis": basis, **fields}
            planned.append(_checked(wanted, None, rules, ("events", i)))
            continue
        old = current.loc[event_id]
        amended = {c: new[c] for c in AMENDABLE if not _same(old[c], new[c])}
        record = ledger.plain_record(old) | {"event_id": event_id}
        if amended:
            planned.append(
                _checked(
                    {"kind": "correct", "event_id": event_id, "basis": basis, **amended}, record, rules, ("events", i)
                )
            )
        repaired = new.get("repaired_on")
        if (
            repaired is not None
            and not pd.isna(repaired)
            and (pd.isna(repaired_now.get(event_id)) or pd.Timestamp(repaired) < repaired_now.get(event_id))
        ):
            wanted = {"kind": "repair", "event_id": event_id, "repaired_on": repaired, "basis": basis}
            planned.append(_checked(wanted, record, rules, ("events", i)))
    for event_id in current.index.difference(posted.index):
        record = ledger.plain_record(current.loc[event_id]) | {"event_id": event_id}
        planned.append(_checked({"kind": "withdraw", "event_id": event_id, "basis": basis}, record, rules, ("events",)))
    key = ["list", "entered_on"]
    seen = seen_lists.assign(entered_on=pd.to_datetime(seen_lists["entered_on"])).set_index(key)
    new_lists = lists.assign(entered_on=pd.to_datetime(lists["entered_on"])).set_index(key)
    for i, (where, entry) in enumerate(new_lists.iterrows()):
        if where not in seen.index:
            raise InvalidInput.at(
                ("history", "lists", i), "a correction cannot add a list entry: the ledger only ends entries"
            )
        before = seen.loc[where]
        before = before.iloc[0] if isinstance(before, pd.DataFrame) else before
        removed = entry.get("removed_on")
        if (
            removed is not None
            and not pd.isna(removed)
            and (pd.isna(before["removed_on"]) or pd.Timestamp(removed) < pd.Timestamp(before["removed_on"]))
        ):
            wanted = {
                "kind": "remove_listing",
                "entity_id": entity_id,
                "list": where[0],
                "entered_on": where[1],
                "removed_on": removed,
                "basis": basis,
            }
            planned.append(_checked(wanted, None, rules, ("lists", i)))
    withdrawn = seen[seen[WITHDRAWN_ON].notna()].index
    for name, entered in seen.index.difference(new_lists.index).difference(withdrawn):  # withdrawn once is enough
        wanted = {
            "kind": "withdraw_listing",
            "entity_id": entity_id,
            "list": name,
            "entered_on": entered,
            "basis": basis,
        }
        planned.append(_checked(wanted, None, rules, ("lists",)))
    return planned, f"{len(planned)} decision(s) recorded in the ledger"


def _same(a: Any, b: Any) -> bool:
    if (a is None or (not isinstance(a, str) and pd.isna(a))) and (
        b is None or (not isinstance(b, str) and pd.isna(b))
    ):
        return True
    if isinstance(a, pd.Timestamp | datetime | date) or isinstance(b, pd.Timestamp | datetime | date):
        return pd.Timestamp(a) == pd.Timestamp(b)
    if isinstance(a, int | float) or isinstance(b, int | float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return str(a) == str(b)


def _checked(wanted: dict[str, Any], record: dict[str, Any] | None, rules: Policy, where: tuple) -> Planned:
    wanted = {k: (v.date() if isinstance(v, pd.Timestamp) else v) for k, v in wanted.items()}
    wanted = {
        k: (None if not isinstance(v, str | list) and v is not None and pd.isna(v) else v) for k, v in wanted.items()
    }
    try:
        ledger.check_decision(wanted, policy=rules, record=record)
    except InvalidInput as exc:
        raise exc.under("history", *where) from exc
    return Planned(wanted, record)
