"""Administration: tokens, the inspector roster, the audit log."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from features.errors import NotFound
from serving import roster
from serving.audit import record_change
from serving.auth import Principal, Role, utc
from serving.bodies import ThreadedBodyRoute
from serving.db import api_tokens, audit_log
from serving.deps import EngineDep, require
from serving.errors import responses
from serving.schemas import AuditEntry, Roster, RosterOut, TokenIn, TokenList, TokenOut
from serving.tokens import create_token, list_tokens, revoke_token

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=ThreadedBodyRoute)
Admin = Annotated[Principal, Depends(require())]


@router.post(
    "/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="create an API token",
    responses=responses(401, 403, 422),
)
def new_token(body: TokenIn, request: Request, principal: Admin, engine: EngineDep) -> dict:
    """The token is returned once; only its SHA-256 is stored. It expires after ``expires_in_days`` (the
    service's ``token_days`` by default); with ``region`` it sees only that region's entities. The token
    and its audit row are written in one transaction."""
    days = body.expires_in_days or request.app.state.settings.token_days
    with engine.begin() as conn:
        token_id, token = create_token(
            conn, body.role, body.name, region=body.region, expires_in_days=days, by=principal, benefits=body.benefits
        )
        expires_at = conn.execute(select(api_tokens.c.expires_at).where(api_tokens.c.id == token_id)).scalar()
    return {
        "token_id": token_id,
        "name": body.name,
        "role": body.role,
        "region": body.region,
        "benefits": body.benefits,
        "expires_at": utc(expires_at),
        "token": token,
    }


@router.get("/tokens", response_model=TokenList, summary="API tokens", responses=responses(401, 403))
def tokens(
    _: Admin,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict:
    """Every token newest first (paged in the database): role, region, creation, expiry, last use (to the
    minute), revocation. Never a token or its hash."""
    with engine.connect() as conn:
        total, page = list_tokens(conn, limit=limit, offset=offset)
    return {"total": total, "tokens": page}


@router.delete("/tokens/{token_id}", status_code=204, summary="revoke a token", responses=responses(401, 403, 404))
def delete_token(token_id: int, request: Request, principal: Admin, engine: EngineDep) -> None:
    """Revokes the token (with its audit row, in one transaction); it stops working within seconds."""
    if not revoke_token(engine, token_id, by=principal):
        raise NotFound(f"no active token {token_id}")
    request.app.state.tokens.forget()


@router.put(
    "/inspectors", response_model=RosterOut, summary="load the inspector roster", responses=responses(401, 403, 422)
)
def put_roster(body: Roster, principal: Admin, engine: EngineDep) -> dict:
    """Inserts or updates inspectors (id, name, home region, recorded conflicts of interest);
    with ``replace`` everyone not listed is deactivated. Draws use the active inspectors."""
    people = [p.model_dump() for p in body.inspectors]
    with engine.begin() as conn:
        active = roster.save_roster(conn, people, replace=body.replace)
        record_change(conn, principal, "roster.load", "inspectors", {"listed": len(people), "replace": body.replace})
        rows = roster.roster_rows(conn, limit=len(people) + 10_000)
    return {"active": active, "inspectors": rows}


@router.get("/inspectors", response_model=RosterOut, summary="the inspector roster", responses=responses(401, 403))
def get_roster(
    _: Annotated[Principal, Depends(require(Role.SUPERVISOR))],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict:
    """The inspectors by id, paged in the database; ``active`` counts every active inspector."""
    with engine.connect() as conn:
        rows = roster.roster_rows(conn, limit=limit, offset=offset)
        active = roster.active_count(conn)
    return {"active": active, "inspectors": rows}


@router.get("/audit", response_model=list[AuditEntry], summary="the audit log", responses=responses(401, 403))
def audit(
    request: Request,
    _: Admin,
    engine: EngineDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict]:
    """Who read or changed what, oldest first (``after_id`` pages). Reads are written within a second."""
    request.app.state.auditor.flush()
    stmt = select(audit_log).where(audit_log.c.id > after_id).order_by(audit_log.c.id).limit(limit)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{**dict(r), "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]
