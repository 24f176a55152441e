"""The supervisor's plan page: the region's yearly inspection plans and their progress, a new plan, and
the plan's next draw — ``serving.plans`` as ``/v1/plans`` calls it, with the same roles and scope."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from models.policy import TIERS
from serving import dates, plans
from serving.auth import Principal, Role
from serving.deps import EngineDep, PolicyDep, require
from serving.schemas import PlanIn
from serving.ui import csrf
from serving.ui.forms import form_of, invalid
from serving.ui.render import render

router = APIRouter(prefix="/ui", include_in_schema=False)
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
PROGRESS = (
    ("planned", "计划", "planned"),
    ("drawn", "已抽取", "drawn"),
    ("inspected", "已检查", "inspected"),
    ("findings", "发现问题", "findings"),
    ("not_inspected", "未能检查", "could not inspect"),
    ("overdue", "逾期", "overdue"),
)


@router.get("/plans")
def plans_page(request: Request, principal: Supervisor, engine: EngineDep):
    """Every plan the token may see, newest year first, with its draws and progress per tier."""
    with engine.connect() as conn:
        shown = plans.list_plans(conn, principal)
    return render(
        request,
        "plans.html",
        plans=shown,
        tiers=TIERS,
        progress=PROGRESS,
        year=dates.today().year,
        scope=principal.region,
    )


@router.post("/plans")
async def create_plan(request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """A yearly plan for a region, as ``POST /v1/plans`` makes it."""
    form = await form_of(request)
    csrf.check(request, form)
    try:
        body: dict[str, Any] = PlanIn.model_validate(
            {k: form.get(k) for k in ("region", "year", "period") if form.get(k)}
        ).model_dump()
    except ValidationError as exc:
        raise invalid(exc) from exc
    await anyio.to_thread.run_sync(plans.create_plan, engine, policy, body, principal)
    return RedirectResponse("/ui/plans", status_code=303)


@router.post("/plans/{plan_id}/draws")
async def next_draw(plan_id: str, request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """The plan's next draw (``POST /v1/plans/{id}/draws``), then the draw's page."""
    form = await form_of(request)
    csrf.check(request, form)
    made = await anyio.to_thread.run_sync(
        plans.next_draw, engine, policy, plan_id, principal, request.app.state.population_cache
    )
    return RedirectResponse(f"/ui/draws/{made['draw']['draw_id']}", status_code=303)
