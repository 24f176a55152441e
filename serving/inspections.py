"""Inspection results: the outcomes of a draw's inspections, kept as events for the next score run.

Each result of a selected entity becomes an ``inspection_passed`` or ``inspection_failed`` event
(CONTRACT section 1); ``export_events`` writes them as an events table to append to the dataset.

``record_outcomes`` records the full outcome of an inspection — no findings, findings of a kind, or could
not inspect — by entity and inspector, for a draw's selected entity or a plan's targeted task
(``serving/plans.py``). An inspection that took place is also a new record for the next score run
(``inspection_passed`` / ``inspection_failed``), added through the decision ledger (``serving/ledger.py``,
decision ``add_event``) so every later run counts it, and for a draw the result its public page shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, get_args

import pandas as pd
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from features.errors import Conflict, InvalidInput, Problem
from features.schema import EVENTS, INSPECTION_OUTCOMES
from serving import dates, ledger
from serving.audit import record_change
from serving.auth import Principal
from serving.db import draw_selections, entities, inspection_outcomes, inspection_results, lock, plan_tasks
from serving.draws import draw_record
from serving.plans import task_row
from serving.register import results_of
from serving.schemas import FindingKind, InspectionOutcome

# What an inspection found: no findings, findings (with their kind), or the entity could not be inspected
# (closed, absent, refused access): no record is made of the last, and the entity does not rest.
# The code lists are the request models' (serving/schemas.py), named once.
OUTCOMES: tuple[str, ...] = get_args(InspectionOutcome)
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)
_EVENT_OF = {"no_findings": INSPECTION_OUTCOMES["passed"], "findings": INSPECTION_OUTCOMES["failed"]}

# Up to this many named entities are looked up by id; more, and the whole selection is read.
_LOOKUP_LIMIT = 30_000


def record_results(
    engine: Engine, draw_id: str, results: Sequence[dict[str, Any]], principal: Principal | None
) -> list[dict[str, Any]]:
    """Store inspection outcomes of a draw as ``inspection_passed``/``inspection_failed`` events.

    ``InvalidInput`` for an entity the draw did not select or a result recorded before its inspection;
    ``Conflict`` for an entity whose result is already recorded (also when it is recorded meanwhile by a
    concurrent request); ``NotFound`` for a draw the caller may not see.
    """
    try:
        return _record_results(engine, draw_id, results, principal)
    except IntegrityError as exc:  # the unique (draw, entity) key: another request recorded it meanwhile
        raise Conflict(f"results in draw {draw_id} were recorded meanwhile by someone else; reload the draw") from exc


def _record_results(
    engine: Engine, draw_id: str, results: Sequence[dict[str, Any]], principal: Principal | None
) -> list[dict[str, Any]]:
    today = dates.today()
    with engine.begin() as conn:
        draw_record(conn, draw_id, principal)
        wanted = [r["entity_id"] for r in results]
        if len(wanted) != len(set(wanted)):
            raise InvalidInput.at("results", "results must name each entity once")
        stmt = select(draw_selections.c.entity_id).where(draw_selections.c.draw_id == draw_id)
        if len(wanted) <= _LOOKUP_LIMIT:
            stmt = stmt.where(draw_selections.c.entity_id.in_(wanted))
        selected = set(conn.execute(stmt).scalars())
        for i, r in enumerate(results):
            if r["entity_id"] not in selected:
                raise InvalidInput(
                    Problem(("results", i, "entity_id"), f"entity {r['entity_id']} was not selected in draw {draw_id}")
                )
            if (r.get("recorded_on") or today) < r["inspected_on"]:
                raise InvalidInput.at(("results", i, "recorded_on"), "recorded_on must be on or after inspected_on")
        done = set(results_of(conn, draw_id))
        again = [e for e in wanted if e in done]
        if again:
            raise Conflict(f"results for {again[:5]} in draw {draw_id} are already recorded")
        now = datetime.now(UTC)
        events = []
        for r in results:
            event = {
                "event_id": f"INS-{draw_id[:12]}-{r['entity_id']}",
                "entity_id": r["entity_id"],
                "event_type": INSPECTION_OUTCOMES[r["outcome"]],
                "occurred_on": r["inspected_on"],
                "recorded_on": r.get("recorded_on") or today,
                "amount": r.get("amount"),
            }
            events.append(event)
            conn.execute(
                inspection_results.insert().values(
                    **event,
                    draw_id=draw_id,
                    findings=r.get("findings"),
                    recorded_by=principal.actor if principal else None,
                    recorded_at=now,
                )
            )
        record_change(conn, principal, "draw.results", f"draw/{draw_id}", {"results": len(events)})
    return [{**e, "quantity": 1, "repaired_on": None} for e in events]


def record_outcomes(
    engine: Engine,
    outcomes: Sequence[dict[str, Any]],
    principal: Principal | None,
    *,
    draw_id: str | None = None,
    task_id: int | None = None,
) -> list[dict[str, Any]]:
    """Record outcomes of a draw's inspections (``draw_id``: one per selected entity) or of a targeted
    task (``task_id``: one). Each names the inspector, who must be one of those assigned.

    ``InvalidInput`` (with the item's path) for an entity not selected, an inspector not assigned, a
    finding without its kind or a kind without findings, dates out of order; ``Conflict`` for an
    outcome already recorded; ``NotFound`` for a draw or task the caller may not see."""
    try:
        with engine.begin() as conn:
            lock(conn, "ledger")  # the ledger's seq is gapless: its writers take turns from the start
            return _record_outcomes(conn, outcomes, principal, draw_id=draw_id, task_id=task_id)
    except IntegrityError as exc:  # the unique keys: another request recorded it meanwhile
        raise Conflict("an outcome was recorded meanwhile by someone else; reload the draw or task") from exc


def _teams(conn: Connection, draw_id: str | None, task_id: int | None, wanted: list[str]) -> dict[str, set[str]]:
    """The inspectors assigned to each wanted entity of the draw or task."""
    if task_id is not None:
        row = conn.execute(
            select(plan_tasks.c.entity_id, plan_tasks.c.inspectors).where(plan_tasks.c.id == task_id)
        ).one()
        return {row.entity_id: set(row.inspectors.split(";"))}
    stmt = select(draw_selections.c.entity_id, draw_selections.c.inspectors).where(draw_selections.c.draw_id == draw_id)
    if len(wanted) <= _LOOKUP_LIMIT:
        stmt = stmt.where(draw_selections.c.entity_id.in_(wanted))
    return {e: set(team.split(";")) if team else set() for e, team in conn.execute(stmt)}


def _record_outcomes(
    conn: Connection,
    outcomes: Sequence[dict[str, Any]],
    principal: Principal | None,
    *,
    draw_id: str | None,
    task_id: int | None,
) -> list[dict[str, Any]]:
    today = dates.today()
    if (draw_id is None) == (task_id is None):
        raise ValueError("give a draw_id or a task_id")
    if draw_id is not None:
        draw_record(conn, draw_id, principal)
        where, source = f"draw {draw_id}", f"draw/{draw_id}"
    else:
        task_row(conn, task_id, principal)
        where, source = f"task {task_id}", f"task/{task_id}"
        if len(outcomes) != 1:
            raise InvalidInput.at("outcomes", "a task has one outcome")
    wanted = [o["entity_id"] for o in outcomes]
    if len(wanted) != len(set(wanted)):
        raise InvalidInput.at("outcomes", "outcomes must name each entity once")
    teams = _teams(conn, draw_id, task_id, wanted)
    for i, o in enumerate(outcomes):
        if o["entity_id"] not in teams:
            raise InvalidInput.at(("outcomes", i, "entity_id"), f"entity {o['entity_id']} is not inspected in {where}")
        if o["inspector_id"] not in teams[o["entity_id"]]:
            raise InvalidInput.at(
                ("outcomes", i, "inspector_id"),
                f"inspector {o['inspector_id']} is not assigned to entity {o['entity_id']} in {where}",
                o["inspector_id"],
            )
        if (o["outcome"] == "findings") != (o.get("finding_kind") is not None):
            raise InvalidInput.at(
                ("outcomes", i, "finding_kind"), "finding_kind is given exactly when outcome is findings"
            )
        if (o.get("recorded_on") or today) < o["inspected_on"]:
            raise InvalidInput.at(("outcomes", i, "recorded_on"), "recorded_on must be on or after inspected_on")
    key = inspection_outcomes.c.task_id == task_id if task_id is not None else inspection_outcomes.c.draw_id == draw_id
    done = set(conn.execute(select(inspection_outcomes.c.entity_id).where(key)).scalars())
    if draw_id is not None:
        done |= set(results_of(conn, draw_id))
    again = [e for e in wanted if e in done]
    if again:
        raise Conflict(f"outcomes for {again[:5]} in {where} are already recorded")
    now = datetime.now(UTC)
    recorded = []
    for o in outcomes:
        event_type = _EVENT_OF.get(o["outcome"])
        recorded_on = o.get("recorded_on") or today
        event_id = None
        if event_type is not None:
            tag = draw_id[:12] if draw_id is not None else f"T{task_id}"
            event_id = f"INS-{tag}-{o['entity_id']}"
            if draw_id is not None:  # the draw's public page and the events export read these
                conn.execute(
                    inspection_results.insert().values(
                        event_id=event_id,
                        entity_id=o["entity_id"],
                        event_type=event_type,
                        occurred_on=o["inspected_on"],
                        recorded_on=recorded_on,
                        amount=o.get("amount"),
                        draw_id=draw_id,
                        findings=o.get("findings"),
                        recorded_by=principal.actor if principal else None,
                        recorded_at=now,
                    )
                )
        seq = None
        if event_id is not None:  # a new record for the next score run, through the decision ledger
            decision = {
                "kind": "add_event",
                "event_id": event_id,
                "entity_id": o["entity_id"],
                "event_type": event_type,
                "occurred_on": o["inspected_on"],
                "recorded_on": recorded_on,
                "quantity": 1,
                "amount": o.get("amount"),
                "basis": f"{where}: {o.get('finding_kind') or o['outcome']}",
                "note": f"inspected by {o['inspector_id']}",
            }
            seq = ledger.append(conn, decision, principal, source=source)
        row = {
            "draw_id": draw_id,
            "task_id": task_id,
            "entity_id": o["entity_id"],
            "inspector_id": o["inspector_id"],
            "outcome": o["outcome"],
            "finding_kind": o.get("finding_kind"),
            "findings": o.get("findings"),
            "inspected_on": o["inspected_on"],
            "recorded_on": recorded_on,
            "event_id": event_id,
            "ledger_seq": seq,
            "recorded_by": principal.actor if principal else None,
            "recorded_at": now,
        }
        conn.execute(inspection_outcomes.insert(), [row])
        recorded.append({k: v for k, v in row.items() if k not in ("recorded_at",)} | {"event_type": event_type})
    record_change(conn, principal, "inspection.outcomes", source, {"outcomes": len(recorded)})
    return recorded


def export_events(
    conn: Connection,
    *,
    since: date | None = None,
    region: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Inspection results as an events table following CONTRACT section 1 (for the next scoring run):
    recorded on or after ``since``, of entities whose region starts with ``region``, paged in the
    database (``limit``/``offset``, in recorded order)."""
    stmt = select(
        inspection_results.c.event_id,
        inspection_results.c.entity_id,
        inspection_results.c.event_type,
        inspection_results.c.occurred_on,
        inspection_results.c.recorded_on,
        inspection_results.c.amount,
    ).order_by(inspection_results.c.recorded_on, inspection_results.c.event_id)
    if since is not None:
        stmt = stmt.where(inspection_results.c.recorded_on >= since)
    if region is not None:
        stmt = stmt.join(entities, entities.c.entity_id == inspection_results.c.entity_id).where(
            entities.c.region.startswith(region, autoescape=True)
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    frame = pd.DataFrame([dict(r) for r in conn.execute(stmt).mappings()], columns=list(stmt.selected_columns.keys()))
    # Every inspection is one event, never repaired when it is recorded.
    frame["quantity"] = 1
    frame["repaired_on"] = None
    return frame[EVENTS.column_names]
