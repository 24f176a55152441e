"""一公开: published draws and the public lists. No token; never a score or a tier."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from sqlalchemy import Engine, func, select

from features import pointintime
from features.pointintime import LIST_IN_FORCE, lapses_on
from serving import dates, register
from serving.bodies import ThreadedBodyRoute
from serving.db import entities, list_entries
from serving.deps import EngineDep
from serving.errors import responses
from serving.schemas import PublicDraw, PublicList, PublicLists, PublicRegister, Verification

router = APIRouter(prefix="/v1/public", tags=["public"], route_class=ThreadedBodyRoute)


Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


@router.get("/draws", response_model=PublicRegister, summary="the register of every draw", responses=responses(422))
def public_register(engine: EngineDep, limit: Limit = 100, offset: Offset = 0) -> dict:
    """Every draw ever made, newest first, paged in the database: its sequence number, the inputs its seed
    was derived from (recompute it: the first 63 bits of the SHA-256 of their canonical JSON), the
    population's size and salted commitment, how many were selected and the record's hash, which the next
    record's inputs carry. ``next_secret_hash`` commits now to the secret the next draw will reveal. A draw
    can never be deleted or changed. Never a score or a tier."""
    with engine.connect() as conn:
        return register.public_register(conn, limit=limit, offset=offset)


@router.get("/draws/{draw_id}", response_model=PublicDraw, summary="a published draw", responses=responses(404, 422))
def public_draw(draw_id: str, engine: EngineDep, limit: Limit = 1000, offset: Offset = 0) -> dict:
    """The draw's register entry and a page of its selected entities' ids and names (by id, with
    inspection results once posted). Never a score or a tier."""
    with engine.connect() as conn:
        return register.public_draw(conn, draw_id, limit=limit, offset=offset)


@router.get(
    "/draws/{draw_id}/verify",
    response_model=Verification,
    summary="check a published draw",
    responses=responses(404, 503),
)
async def public_verify(draw_id: str, request: Request, engine: EngineDep) -> dict:
    """Recomputes the seed from the published inputs, checks the revealed secret against the commitment
    published before the draw, the link to the previous record, the salted population commitment against
    the stored snapshot and the record's hash, and re-runs the selection: ``verified`` when all hold.
    Re-running a draw over a million entities takes about a second of CPU, so only a few run at once (503
    with ``Retry-After`` past them)."""
    async with request.app.state.verifications.admit():
        return await anyio.to_thread.run_sync(_verify, engine, draw_id)


def _verify(engine: Engine, draw_id: str) -> dict:
    with engine.connect() as conn:
        return register.verify(conn, draw_id)


@router.get("/lists", response_model=PublicLists, summary="entries in force on a public list", responses=responses(422))
def public_lists(
    engine: EngineDep,
    list: Annotated[PublicList, Query(description="red, serious_violation or untrustworthy")],
    on: Annotated[date | None, Query(description="the date the entries are in force (default today)")] = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict:
    """Entries in force on ``on``: entered by then, not removed (by the delivery or early, by a ledger
    decision), and not lapsed (a serious-violation entry 3 years after it was entered, SAMR Order 44; an
    untrustworthy entry after its management period of a year): the point-in-time rule the features use
    (``features/pointintime.py``). With the legal basis and dates; paged in the database."""
    day = dates.check_query(on, "on") or dates.today()
    in_force = (list_entries.c.list == list) & pointintime.clause(LIST_IN_FORCE, list_entries, day)
    stmt = (
        select(
            list_entries.c.entity_id,
            entities.c.name,
            list_entries.c.entered_on,
            list_entries.c.removed_on,
            list_entries.c.basis,
        )
        .select_from(list_entries.outerjoin(entities, entities.c.entity_id == list_entries.c.entity_id))
        .where(in_force)
        .order_by(list_entries.c.entered_on.desc(), list_entries.c.entity_id)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(list_entries).where(in_force)).scalar_one()
        rows = conn.execute(stmt).all()
    entries = [
        {
            "entity_id": row.entity_id,
            "name": row.name,
            "list": list,
            "entered_on": row.entered_on,
            "removed_on": row.removed_on,
            "lapses_on": lapses_on(list, row.entered_on),
            "basis": row.basis,
        }
        for row in rows
    ]
    return {"list": list, "on": day, "total": total, "entries": entries}
