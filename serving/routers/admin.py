"""Administration: tokens, the inspector roster, the audit log."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from features.errors import NotFound
from serving import roster
from serving.audit import record_change
from serving.auth import Principal, Role, create_token, revoke_token
from serving.db import audit_log
from serving.deps import EngineDep, require
from serving.errors import responses
from serving.schemas import AuditEntry, Roster, RosterOut, TokenIn, TokenOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require())]


@router.post(
    "/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="create an API token",
    responses=responses(401, 403, 422),
)
def new_token(body: TokenIn, principal: Admin, engine: EngineDep) -> dict:
    """The token is returned once; only its SHA-256 is stored."""
    token_id, token = create_token(engine, body.role, body.name)
    with engine.begin() as conn:
        record_change(conn, principal, "token.create", f"token/{token_id}", {"role": body.role, "name": body.name})
    return {"token_id": token_id, "name": body.name, "role": body.role, "token": token}


@router.delete("/tokens/{token_id}", status_code=204, summary="revoke a token", responses=responses(401, 403, 404))
def delete_token(token_id: int, request: Request, principal: Admin, engine: EngineDep) -> None:
    if not (0 < token_id < 2**63 and revoke_token(engine, token_id)):
        raise NotFound(f"no active token {token_id}")
    request.app.state.tokens.forget()
    with engine.begin() as conn:
        record_change(conn, principal, "token.revoke", f"token/{token_id}")


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
        rows = roster.roster_rows(conn)
    return {"active": active, "inspectors": rows}


@router.get("/inspectors", response_model=RosterOut, summary="the inspector roster", responses=responses(401, 403))
def get_roster(_: Annotated[Principal, Depends(require(Role.SUPERVISOR))], engine: EngineDep) -> dict:
    with engine.connect() as conn:
        rows = roster.roster_rows(conn)
    return {"active": sum(1 for r in rows if r["active"]), "inspectors": rows}


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
