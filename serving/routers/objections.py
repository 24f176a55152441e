"""Objections (异议) and credit repair (信用修复)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from features.errors import NotFound
from serving import objections, recourse
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import DecisionIn, Objection, ObjectionDetail, ObjectionIn, ObjectionStatus, Recourse

router = APIRouter(prefix="/v1/objections", tags=["objections"], route_class=ThreadedBodyRoute)
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
ObjectionId = Annotated[int, "objection id"]


@router.post(
    "",
    response_model=Objection,
    status_code=201,
    summary="file an objection against a score row",
    responses=responses(401, 403, 404, 409, 422),
)
def file(
    body: ObjectionIn,
    principal: Annotated[Principal, Depends(require(Role.REVIEWER, Role.ANALYST, Role.SUPERVISOR))],
    engine: EngineDep,
) -> dict:
    """Records an entity's objection to a stored score row with its grounds: one open objection per row,
    and only against the entity's current row (a superseded row gives 409 naming the newer one)."""
    return objections.file_objection(engine, body.score_id, body.grounds, principal)


@router.get("", response_model=list[Objection], summary="objections", responses=responses(401, 403))
def list_(
    principal: Reviewer,
    engine: EngineDep,
    status: Annotated[ObjectionStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[dict]:
    """Objections oldest first, paged in the database; a region-scoped token sees its region's."""
    with engine.connect() as conn:
        return objections.list_objections(conn, status=status, limit=limit, offset=offset, region=principal.scope)


@router.get(
    "/{objection_id}",
    response_model=ObjectionDetail,
    summary="an objection with the explanation snapshot it is about",
    responses=responses(401, 403, 404),
)
def read(objection_id: ObjectionId, principal: Reviewer, engine: EngineDep, auditor: AuditorDep) -> dict:
    """The objection, the full explanation snapshot of the score row (features, contributions, base value,
    fired rules with their legal basis, model and policy versions), the run it came from and, once
    decided, the new row. Send its ``version`` with the decision."""
    with engine.connect() as conn:
        detail = objections.objection_detail(conn, _existing(objection_id), principal)
    auditor.record(principal, "objection.read", f"objection/{objection_id}", {"score_id": detail["score_id"]})
    return detail


@router.get(
    "/{objection_id}/recourse",
    response_model=Recourse,
    summary="recourse for the row an objection is about",
    responses=responses(401, 403, 404, 409, 503),
)
def recourse_(
    objection_id: ObjectionId,
    principal: Reviewer,
    engine: EngineDep,
    scorers: ScorersDep,
    policy: PolicyDep,
    auditor: AuditorDep,
) -> dict:
    """``GET /v1/scores/{score_id}/recourse`` for the score row the objection is about: the fewest
    records whose repair or lapse lowers its tier, with the row's own model and policy."""
    with engine.connect() as conn:
        score_id = objections.get_objection(conn, _existing(objection_id), principal)["score_id"]
    answer = recourse.recourse(engine, scorers, score_id, principal, policy)
    auditor.record(principal, "recourse.read", f"objection/{objection_id}", {"score_id": score_id})
    return answer


@router.post(
    "/{objection_id}/decision",
    response_model=Objection,
    summary="decide an objection: uphold, correct or repair",
    responses=responses(401, 403, 404, 409, 422, 503),
)
def decide(
    objection_id: ObjectionId,
    body: DecisionIn,
    principal: Reviewer,
    engine: EngineDep,
    scorers: ScorersDep,
    policy: PolicyDep,
) -> dict:
    """``uphold`` keeps the row. ``correct`` rescores the corrected ``history`` as of the row's date with
    the same model version and the policy text stored with its run; ``repair`` marks the named records
    repaired and rescores as of the repair date. The new row is linked to the objection and supersedes the
    old one. ``version`` must be the version read: a decision made meanwhile by someone else gives 409, as
    does a row superseded since it was objected to (naming the newer row). Whoever filed the objection may
    not decide it (403). A ``repair`` or ``correct`` decision is also written to the decision ledger, so
    every later run keeps it; a repair is checked against the policy's repair rules (422 naming the rule
    and the first day it becomes possible)."""
    return objections.decide(engine, scorers, _existing(objection_id), body, principal, policy=policy)


def _existing(objection_id: int) -> int:
    if not 0 < objection_id < 2**63:
        raise NotFound(f"objection {objection_id} not found")
    return objection_id
