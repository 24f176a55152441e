"""``/health`` and ``/metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import require
from serving.errors import responses
from serving.schemas import Health

router = APIRouter(tags=["health"], route_class=ThreadedBodyRoute)


@router.get("/health", response_model=Health, summary="ok or degraded, with the reasons")
def health(request: Request) -> dict:
    """``ok`` when a model is loaded and the database answers; otherwise ``degraded`` with the reasons."""
    state = request.app.state
    reasons = []
    if state.scorers.champion is None:
        reasons.append(state.scorers.reason or "no model loaded")
    database = "ok"
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        database = "unavailable"
        reasons.append(f"database unavailable: {exc.__class__.__name__}")
    return {
        "status": "degraded" if reasons else "ok",
        "model_version": state.scorers.model_version,
        "policy_version": state.policy.version_tag,
        "database": database,
        "reasons": reasons,
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(401, 403)},
)
def metrics(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ANALYST, Role.REVIEWER))],
) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
