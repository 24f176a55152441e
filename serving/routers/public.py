"""一公开: published draws and the public lists. No token; never a score or a tier."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from dateutil.relativedelta import relativedelta
from fastapi import APIRouter, Query
from sqlalchemy import and_, or_, select

from features.schema import SERIOUS_VIOLATION_LAPSE_YEARS
from serving import draws
from serving.db import entities, list_entries
from serving.deps import EngineDep
from serving.errors import responses
from serving.schemas import PublicDraw, PublicList, PublicLists

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get("/draws/{draw_id}", response_model=PublicDraw, summary="a published draw", responses=responses(404))
def public_draw(draw_id: str, engine: EngineDep) -> dict:
    """The seed, the population size and hash, and the selected entities' ids and names (with
    inspection results once posted). Never a score or a tier."""
    with engine.connect() as conn:
        return draws.public_draw(conn, draw_id)


@router.get("/lists", response_model=PublicLists, summary="entries in force on a public list", responses=responses(422))
def public_lists(
    engine: EngineDep,
    list: Annotated[PublicList, Query(description="red, serious_violation or untrustworthy")],
    on: Annotated[date | None, Query(description="the date the entries are in force (default today)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict:
    """Entries in force on ``on``: entered by then, not removed, and for the serious-violation list not
    lapsed (an entry lapses 3 years after it was entered, SAMR Order 44). With the legal basis and dates."""
    day = on or datetime.now(UTC).date()
    lapse = relativedelta(years=SERIOUS_VIOLATION_LAPSE_YEARS)
    conditions = [
        list_entries.c.list == list,
        list_entries.c.entered_on <= day,
        or_(list_entries.c.removed_on.is_(None), list_entries.c.removed_on > day),
    ]
    if list == "serious_violation":
        conditions.append(list_entries.c.entered_on > day - lapse - timedelta(days=1))
    stmt = (
        select(
            list_entries.c.entity_id,
            entities.c.name,
            list_entries.c.entered_on,
            list_entries.c.removed_on,
            list_entries.c.basis,
        )
        .select_from(list_entries.outerjoin(entities, entities.c.entity_id == list_entries.c.entity_id))
        .where(and_(*conditions))
        .order_by(list_entries.c.entered_on.desc(), list_entries.c.entity_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    entries = []
    for row in rows:
        lapses_on = row.entered_on + lapse if list == "serious_violation" else None
        if lapses_on is not None and lapses_on <= day:
            continue
        entries.append(
            {
                "entity_id": row.entity_id,
                "name": row.name,
                "list": list,
                "entered_on": row.entered_on,
                "removed_on": row.removed_on,
                "lapses_on": lapses_on,
                "basis": row.basis,
            }
        )
    return {"list": list, "on": day, "total": len(entries), "entries": entries[offset : offset + limit]}
