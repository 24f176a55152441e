"""Inspection results: the outcomes of a draw's inspections, kept as events for the next score run.

Each result of a selected entity becomes an ``inspection_passed`` or ``inspection_failed`` event
(CONTRACT section 1); ``export_events`` writes them as an events table to append to the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from features.errors import Conflict, InvalidInput, Problem
from features.schema import EVENTS, INSPECTION_OUTCOMES
from serving import dates
from serving.audit import record_change
from serving.auth import Principal
from serving.db import draw_selections, entities, inspection_results
from serving.draws import draw_record
from serving.register import results_of

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
