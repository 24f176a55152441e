""" "双随机" draws (``/v1/sampling/draws``), their inspection results and the events export."""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from serving import draws, inspections
from serving.auth import Principal, Role
from serving.deps import EngineDep, PolicyDep, require
from serving.errors import responses
from serving.schemas import Draw, DrawRequest, InspectionResults, RecordedEvent, Verification

router = APIRouter(tags=["sampling"])
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
DrawId = Annotated[str, "draw id"]


def _json(payload: dict, status_code: int = 200) -> JSONResponse:
    # Large draws are built as plain dicts and serialised once (no per-row model validation).
    from fastapi.encoders import jsonable_encoder

    return JSONResponse(
        jsonable_encoder(payload) if len(payload.get("selected", ())) < 1000 else _encode(payload), status_code
    )


def _encode(payload: dict) -> dict:
    out = dict(payload)
    out["created_at"] = payload["created_at"].isoformat()
    return out


@router.post(
    "/v1/sampling/draws",
    response_model=Draw,
    status_code=201,
    summary="draw a 双随机 inspection sample",
    responses=responses(401, 403, 409, 422, 503),
)
def create_draw(body: DrawRequest, request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """Selects entities of the population (entities with a current tier, narrowed by ``filter``) at random
    within each tier, at the policy's ratios (``ratios`` may override them within the policy's bounds) or
    sharing a total ``budget`` across tiers by risk. Every entity keeps at least the policy's minimum
    inclusion probability (不免抽). At least two inspectors per selected entity are drawn from the roster,
    avoiding recorded conflicts of interest (and the entity's region with ``avoid_same_region``) and
    balancing load. The seed, policy version, population snapshot and roster hash are stored: the same
    seed, population and ratios always select the same entities (``GET .../verify`` re-runs it)."""
    started = time.perf_counter()
    result = draws.make_draw(engine, policy, body, principal, request.app.state.population_cache)
    request.app.state.metrics.draw_seconds.observe(time.perf_counter() - started)
    return _json(result, 201)


@router.get(
    "/v1/sampling/draws/{draw_id}",
    response_model=Draw,
    summary="a stored draw",
    responses=responses(401, 403, 404),
)
def get_draw(
    draw_id: DrawId,
    _: Supervisor,
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10**7)] = None,
):
    """The draw as stored, with its selected entities in draw order (``offset``/``limit`` to page) and
    the inspection results recorded so far."""
    with engine.connect() as conn:
        return _json(draws.get_draw(conn, draw_id, offset=offset, limit=limit))


@router.get(
    "/v1/sampling/draws/{draw_id}/population",
    summary="the draw's population snapshot as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403, 404)},
)
def get_population(draw_id: DrawId, _: Supervisor, engine: EngineDep) -> Response:
    """``entity_id,tier`` for every entity of the population, in canonical order: with the seed and the
    per-tier counts anyone can re-run the selection."""
    with engine.connect() as conn:
        return Response(draws.population_csv(conn, draw_id), media_type="text/csv")


@router.get(
    "/v1/sampling/draws/{draw_id}/verify",
    response_model=Verification,
    summary="re-run a stored draw and compare",
    responses=responses(401, 403, 404),
)
def verify(draw_id: DrawId, _: Supervisor, engine: EngineDep) -> dict:
    with engine.connect() as conn:
        return draws.verify_draw(conn, draw_id)


@router.post(
    "/v1/sampling/draws/{draw_id}/results",
    response_model=list[RecordedEvent],
    status_code=201,
    summary="post inspection results back",
    responses=responses(401, 403, 404, 409, 422),
)
def post_results(draw_id: DrawId, body: InspectionResults, principal: Supervisor, engine: EngineDep) -> list[dict]:
    """Each result becomes an ``inspection_passed`` or ``inspection_failed`` event (CONTRACT section 1)
    for the next scoring run; see ``GET /v1/events``. One result per selected entity."""
    return inspections.record_results(engine, draw_id, [r.model_dump() for r in body.results], principal)


@router.get(
    "/v1/events",
    summary="export recorded inspection events",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **responses(401, 403)},
)
def export_events(
    _: Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR))],
    engine: EngineDep,
    since: Annotated[date | None, Query(description="recorded on or after")] = None,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> Response:
    """The inspection results as an events table following CONTRACT section 1: add the rows to the
    dataset's ``events`` table before the next ``ipcredit score``."""
    with engine.connect() as conn:
        frame = inspections.export_events(conn, since=since)
    if format == "json":
        return Response(frame.to_json(orient="records", date_format="iso"), media_type="application/json")
    return Response(frame.to_csv(index=False), media_type="text/csv")
