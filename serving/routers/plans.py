"""Yearly inspection plans (``/v1/plans``), their draws and targeted tasks, and inspection outcomes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from features.errors import NotFound
from serving import inspections, plans
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, require
from serving.errors import responses
from serving.routers.draws import _json
from serving.schemas import Coverage, OutcomesIn, Plan, PlanDraw, PlanIn, PlanList, RecordedOutcome, Task, TaskIn

router = APIRouter(tags=["plans"], route_class=ThreadedBodyRoute)
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
PlanId = Annotated[str, "plan id"]


@router.post(
    "/v1/plans",
    response_model=Plan,
    status_code=201,
    summary="make a region's yearly inspection plan",
    responses=responses(401, 403, 409, 422),
)
def create_plan(body: PlanIn, principal: Supervisor, engine: EngineDep, policy: PolicyDep) -> dict:
    """A yearly plan for ``region`` (one per region and year, at most next year), following the policy's
    ``[plans]``: per tier a ratio and a frequency a year, so a tier expects ``ratio × frequency`` random
    inspections per entity over the year, spread over 12 monthly (``period: month``) or 4 quarterly draws.
    A region-scoped token plans within its region."""
    return plans.create_plan(engine, policy, body.model_dump(), principal)


@router.get("/v1/plans", response_model=PlanList, summary="the plans and their progress", responses=responses(401, 403))
def list_plans(
    principal: Supervisor, engine: EngineDep, year: Annotated[int | None, Query(ge=1900, le=9999)] = None
) -> dict:
    """Every plan the token may see (its region's), newest year first, each with its progress per tier:
    planned, drawn, inspected, findings, could not inspect, overdue; targeted tasks apart."""
    with engine.connect() as conn:
        return {"plans": plans.list_plans(conn, principal, year=year)}


@router.get(
    "/v1/plans/{plan_id}",
    response_model=Plan,
    summary="a plan, its draws and progress",
    responses=responses(401, 403, 404),
)
def get_plan(plan_id: PlanId, principal: Supervisor, engine: EngineDep) -> dict:
    """The plan with each draw made (period, day, per-tier population, resting, eligible, target,
    expected count, count and inclusion probability) and its progress."""
    with engine.connect() as conn:
        return plans.get_plan(conn, plan_id, principal)


@router.post(
    "/v1/plans/{plan_id}/draws",
    response_model=PlanDraw,
    status_code=201,
    summary="make the plan's next draw",
    responses=responses(401, 403, 404, 409),
)
def next_draw(plan_id: PlanId, request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """The draw of the plan's next period, made on or after the period's first day (409 before it, or
    when every period is drawn). Entities inspected within their tier's rest period are left out unless
    their tier is D or a complaint, data alert or referral came in since; each tier's expected count is the
    rest of its yearly target over the remaining draws (never below the policy's minimum inclusion
    probability per year), drawn with exact, stored inclusion probabilities. The draw enters the public
    register (``GET /v1/public/draws/{draw_id}``) like any other."""
    result = plans.next_draw(engine, policy, plan_id, principal, request.app.state.population_cache)
    return _json(result, 201)


@router.get(
    "/v1/plans/{plan_id}/coverage",
    response_model=Coverage,
    summary="did everyone have a chance?",
    responses=responses(401, 403, 404),
)
def coverage(plan_id: PlanId, principal: Supervisor, engine: EngineDep, auditor: AuditorDep) -> dict:
    """不免抽, checked: how many of the region's entities had a positive inclusion probability in some
    draw of the plan, the ones that had none, and the least chance of being drawn at least once."""
    with engine.connect() as conn:
        result = plans.coverage(conn, plan_id, principal)
    auditor.record(principal, "plan.coverage.read", f"plan/{plan_id}")
    return result


@router.post(
    "/v1/plans/{plan_id}/tasks",
    response_model=Task,
    status_code=201,
    summary="record a targeted inspection (complaint, data alert, referral)",
    responses=responses(401, 403, 404, 409, 422),
)
def add_task(plan_id: PlanId, body: TaskIn, principal: Supervisor, engine: EngineDep, policy: PolicyDep) -> dict:
    """An inspection triggered by a complaint, data alert or referral, recorded beside the plan's random
    draws with inspectors dealt from the roster. It is never counted as random, and it lifts the entity's
    rest period for the plan's later draws."""
    return plans.add_task(engine, policy, plan_id, body.model_dump(), principal)


@router.post(
    "/v1/plans/tasks/{task_id}/outcome",
    response_model=list[RecordedOutcome],
    status_code=201,
    summary="record a targeted inspection's outcome",
    responses=responses(401, 403, 404, 409, 422),
)
def task_outcome(task_id: int, body: OutcomesIn, principal: Supervisor, engine: EngineDep) -> list[dict]:
    """The outcome of a targeted task (one), by one of its inspectors."""
    if not 0 < task_id < 2**63:
        raise NotFound(f"task {task_id} not found")
    return inspections.record_outcomes(engine, [o.model_dump() for o in body.outcomes], principal, task_id=task_id)


@router.post(
    "/v1/sampling/draws/{draw_id}/outcomes",
    response_model=list[RecordedOutcome],
    status_code=201,
    summary="record inspection outcomes of a draw",
    responses=responses(401, 403, 404, 409, 422),
)
def draw_outcomes(draw_id: str, body: OutcomesIn, principal: Supervisor, engine: EngineDep) -> list[dict]:
    """One outcome per selected entity, by one of its assigned inspectors: ``no_findings``, ``findings``
    with their ``finding_kind``, or ``not_inspected`` (closed, absent, refused access). An inspection that
    took place becomes an ``inspection_passed`` / ``inspection_failed`` record for the next score run and
    shows on the draw's public page (results, never scores or tiers)."""
    return inspections.record_outcomes(engine, [o.model_dump() for o in body.outcomes], principal, draw_id=draw_id)
