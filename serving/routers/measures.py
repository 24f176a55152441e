"""What follows from a tier or a list: measures in force, eligibility checks for other departments
(信用联合奖惩), credit commitments."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from features.errors import Forbidden, InvalidInput
from serving import commitments, dates, eligibility
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, check_entity_id, require
from serving.errors import responses
from serving.routers.entities import EntityPath
from serving.schemas import (
    Commitment,
    CommitmentIn,
    Eligibility,
    EligibilityBatch,
    EligibilityBatchIn,
    EligibilityIn,
    Measures,
    entity_id_problem,
)

router = APIRouter(tags=["measures"], route_class=ThreadedBodyRoute)
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ANALYST, Role.REVIEWER))]
Department = Annotated[Principal, Depends(require(Role.DEPARTMENT))]
Recorder = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.DEPARTMENT))]
Benefit = Annotated[
    str,
    Query(
        pattern="^(funding|fee_reduction|fast_track|award_recommendation|commitment_procedure)$",
        description="funding, fee_reduction, fast_track, award_recommendation or commitment_procedure",
    ),
]


@router.get(
    "/v1/entities/{entity_id}/measures",
    response_model=Measures,
    summary="the incentives and restrictions in force",
    responses=responses(401, 403, 404, 422),
)
def measures(
    entity_id: EntityPath,
    principal: Reader,
    engine: EngineDep,
    policy: PolicyDep,
    auditor: AuditorDep,
    on: Annotated[date | None, Query(description="the day (default today)")] = None,
) -> dict:
    """Every measure of the policy's catalogue (``[[measures]]``) in force for the entity on ``on``: its
    effect (an incentive's priority, a restriction's blocked benefits), its legal basis, the records that
    trigger it (list entries in force with their end dates, broken commitments, the tier) and the last day
    it is in force. A region-scoped token sees its region's entities only."""
    check_entity_id(entity_id)
    day = dates.check_query(on, "on") or dates.today()
    with engine.connect() as conn:
        answer = eligibility.measures(conn, policy, entity_id, day, principal)
    auditor.record(principal, "measures.read", f"entity/{entity_id}", {"on": day})
    return answer


def _check(engine, policy, auditor, principal, entity_ids: list[str], benefit: str, on: date | None) -> list[dict]:
    day = on or dates.today()
    with engine.connect() as conn:
        answers = eligibility.check(conn, policy, entity_ids, benefit, day, principal)
    for answer in answers:
        auditor.record(
            principal,
            "eligibility.check",
            f"entity/{answer['entity_id']}",
            {"benefit": benefit, "on": day, "allowed": answer["allowed"], "priority": answer["priority"]},
        )
    return answers


_CHECK_DOC = """May the entity receive ``benefit`` on ``on`` (default today)? ``allowed`` is false when a
restriction in force blocks it (the serious-violation or untrustworthy list, a broken credit commitment);
``priority`` is true when an incentive gives priority for it (the red list's green channel). ``because``
lists the measures behind the answer with their legal basis, their records and end dates — never a score
or a tier. A department token asks only about the benefits it administers (403 otherwise) and about its
region's entities; every check is audited."""


@router.get(
    "/v1/eligibility",
    response_model=Eligibility,
    summary="may an entity receive a benefit on a date?",
    description=_CHECK_DOC,
    responses=responses(401, 403, 404, 422),
)
def check_get(
    principal: Department,
    engine: EngineDep,
    policy: PolicyDep,
    auditor: AuditorDep,
    entity_id: Annotated[str, Query(min_length=18, max_length=18, description="unified social credit code")],
    benefit: Benefit,
    on: Annotated[date | None, Query(description="the day (default today)")] = None,
) -> dict:
    if problem := entity_id_problem(entity_id):
        raise InvalidInput.at("entity_id", problem, entity_id, where="query")
    return _check(engine, policy, auditor, principal, [entity_id], benefit, dates.check_query(on, "on"))[0]


@router.post(
    "/v1/eligibility",
    response_model=Eligibility,
    summary="may an entity receive a benefit on a date? (body)",
    description=_CHECK_DOC,
    responses=responses(401, 403, 404, 422),
)
def check_post(body: EligibilityIn, principal: Department, engine: EngineDep, policy: PolicyDep, auditor: AuditorDep):
    return _check(engine, policy, auditor, principal, [body.entity_id], body.benefit, body.on)[0]


@router.post(
    "/v1/eligibility/batch",
    response_model=EligibilityBatch,
    summary="the same question for up to 1000 entities",
    description=_CHECK_DOC + " The answers come in the order asked; an unknown id fails the batch (404).",
    responses=responses(401, 403, 404, 422),
)
def check_batch(
    body: EligibilityBatchIn, principal: Department, engine: EngineDep, policy: PolicyDep, auditor: AuditorDep
) -> dict:
    return {"answers": _check(engine, policy, auditor, principal, body.entity_ids, body.benefit, body.on)}


@router.post(
    "/v1/commitments",
    response_model=Commitment,
    status_code=201,
    summary="record a credit commitment signed, kept or broken",
    responses=responses(401, 403, 404, 409, 422),
)
def record_commitment(body: CommitmentIn, principal: Recorder, engine: EngineDep, policy: PolicyDep) -> dict:
    """``signed`` starts a commitment (its id is returned); ``kept`` or ``broken`` settles it, once.
    Signing and breaking are new records in the decision ledger (``commitment_signed``,
    ``commitment_breach``) for the next score run. A broken commitment applies the policy at once: the
    COMMITMENT_BROKEN measure (no credit-commitment procedure for its period) and, as the policy's
    ``[commitments]`` says, an untrustworthy-list entry with its basis; the eligibility checks answer for
    both. A department token records commitments only if it administers ``commitment_procedure``."""
    if principal.role == Role.DEPARTMENT and "commitment_procedure" not in principal.benefits:
        raise Forbidden("this token does not administer the credit-commitment procedure")
    return commitments.record(engine, policy, body.model_dump(), principal)
