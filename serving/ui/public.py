"""The public pages (一公开): lists in force, the draws register with results, a draw and its
verification. No sign-in; the same functions as ``/v1/public/...``, so never a score or a tier."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request

from serving import register
from serving.deps import EngineDep
from serving.routers import public as api
from serving.schemas import PublicList
from serving.ui.render import render

router = APIRouter(prefix="/ui/public", include_in_schema=False)
PAGE = 100
Offset = Annotated[int, Query(ge=0, le=10**9)]
LISTS = (
    ("red", "守信激励名单（红名单）", "red list"),
    ("serious_violation", "严重违法失信名单", "serious violation list"),
    ("untrustworthy", "失信名单", "untrustworthy list"),
)


@router.get("/lists")
def lists_page(
    request: Request,
    engine: EngineDep,
    list: Annotated[PublicList, Query()] = "red",
    on: Annotated[date | None, Query()] = None,
    offset: Offset = 0,
):
    """Entries in force on a date, with their legal basis (``GET /v1/public/lists``)."""
    answer = api.public_lists(engine, list=list, on=on, limit=PAGE, offset=offset)
    return render(request, "public_lists.html", answer=answer, lists=LISTS, offset=offset, page=PAGE)


@router.get("/draws")
def register_page(request: Request, engine: EngineDep, offset: Offset = 0):
    """The register of every draw, newest first (``GET /v1/public/draws``)."""
    with engine.connect() as conn:
        answer = register.public_register(conn, limit=PAGE, offset=offset)
    return render(request, "public_draws.html", answer=answer, offset=offset, page=PAGE)


@router.get("/draws/{draw_id}")
def draw_page(request: Request, draw_id: str, engine: EngineDep, offset: Offset = 0):
    """A published draw: its record and its selected entities with results (``GET /v1/public/draws/{id}``)."""
    with engine.connect() as conn:
        answer = register.public_draw(conn, draw_id, limit=PAGE, offset=offset)
    return render(request, "public_draw.html", draw=answer, offset=offset, page=PAGE, verification=None)


@router.get("/draws/{draw_id}/verify")
async def verify_page(request: Request, draw_id: str, engine: EngineDep):
    """The draw re-checked from what is published (``GET /v1/public/draws/{id}/verify``), bounded the same."""
    async with request.app.state.verifications.admit():
        verification = await anyio.to_thread.run_sync(api._verify, engine, draw_id)
    with engine.connect() as conn:
        answer = register.public_draw(conn, draw_id, limit=PAGE, offset=0)
    return render(request, "public_draw.html", draw=answer, offset=0, page=PAGE, verification=verification)
