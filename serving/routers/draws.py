""" "双随机" draws (``/v1/sampling/draws``), their inspection results and the events export."""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from serving import dates, draws, inspections
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, require
from serving.errors import responses
from serving.schemas import Draw, DrawRequest, InspectionResults, RecordedEvent, Verification

router = APIRouter(tags=["sampling"], route_class=ThreadedBodyRoute)
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
    balancing load.

    No ``seed`` may be sent (422): the seed is derived from inputs fixed before the draw — the register's
    previous record, a secret committed by the previous draw, the policy version, the filter, the ratios
    or budget, the roster and the population size — and the draw is entered in the public register
    (``GET /v1/public/draws``), where it stays. The same seed, population and ratios always select the same
    entities: ``GET /v1/public/draws/{id}/verify`` re-runs it. A region-scoped token draws within its region."""
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
    principal: Supervisor,
    engine: EngineDep,
    auditor: AuditorDep,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10**7)] = None,
):
    """The draw as stored, with its selected entities in draw order (``offset``/``limit`` to page, in the
    database) and the inspection results recorded so far."""
    with engine.connect() as conn:
        drawn = draws.get_draw(conn, draw_id, principal, offset=offset, limit=limit)
    auditor.record(principal, "draw.read", f"draw/{draw_id}", {"offset": offset, "rows": len(drawn["selected"])})
    return _json(drawn)


@router.get(
    "/v1/sampling/draws/{draw_id}/population",
    summary="the draw's population snapshot as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403, 404)},
)
def get_population(draw_id: DrawId, principal: Supervisor, engine: EngineDep, auditor: AuditorDep) -> Response:
    """``entity_id,tier`` for every entity of the population, in canonical order: with the seed and the
    per-tier counts anyone holding it can re-run the selection. The ``X-Population-Salt`` header is the
    salt of the draw's published commitment: ``sha256(salt ‖ ids ‖ tiers)`` (18-byte ids, then 1-byte
    tiers) is the ``population_hash`` of the register."""
    with engine.connect() as conn:
        text, salt = draws.population_csv(conn, draw_id, principal)
    auditor.record(principal, "draw.population.read", f"draw/{draw_id}")
    return Response(text, media_type="text/csv", headers={"X-Population-Salt": salt or ""})


@router.get(
    "/v1/sampling/draws/{draw_id}/verify",
    response_model=Verification,
    summary="re-run a stored draw and compare",
    responses=responses(401, 403, 404, 503),
)
async def verify(draw_id: DrawId, request: Request, principal: Supervisor, engine: EngineDep) -> dict:
    """The checks of ``GET /v1/public/draws/{id}/verify``, for a draw this token may see (sharing its
    bound on verifications at once)."""

    def run() -> dict:
        with engine.connect() as conn:
            return draws.verify_draw(conn, draw_id, principal)

    async with request.app.state.verifications.admit():
        return await anyio.to_thread.run_sync(run)


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
    principal: Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR))],
    engine: EngineDep,
    auditor: AuditorDep,
    since: Annotated[date | None, Query(description="recorded on or after")] = None,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    """The inspection results as an events table following CONTRACT section 1: add the rows to the
    dataset's ``events`` table before the next ``ipcredit score``. Paged in the database (``limit``,
    ``offset``, in recorded order); a region-scoped token gets its region's events."""
    dates.check_query(since, "since")
    with engine.connect() as conn:
        frame = inspections.export_events(conn, since=since, region=principal.scope, limit=limit, offset=offset)
    auditor.record(
        principal, "events.export", "events", {"since": since, "offset": offset, "rows": len(frame), "format": format}
    )
    if format == "json":
        return Response(frame.to_json(orient="records", date_format="iso"), media_type="application/json")
    return Response(frame.to_csv(index=False), media_type="text/csv")
