"""``POST /v1/score``: what-if scoring of one history; stores nothing."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from serving import explanations, ledger, scoring
from serving.auth import Principal, Role
from serving.deps import EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import ScoreRequest, ScoreResponse

router = APIRouter(tags=["scoring"])


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    summary="score one history (what-if)",
    responses=responses(401, 403, 422, 503),
)
async def score(
    body: ScoreRequest,
    _: Annotated[Principal, Depends(require(Role.ANALYST, Role.REVIEWER, Role.SUPERVISOR))],
    scorers: ScorersDep,
    policy: PolicyDep,
    engine: EngineDep,
    request: Request,
) -> dict:
    """Scores the posted entity, events and lists as of ``as_of`` with the champion model and the
    current policy, returning the score row and its explanation. The decision ledger's decisions about the
    posted entity are laid over the history first, as every run lays them over its dataset (a repaired
    record counts for nothing from its repair on). Nothing is stored or audited as a change: this is how a
    reviewer sees the effect of a correction before deciding."""
    scorer = scorers.require_champion()
    # CPU-bound work, one request at a time per process (scoring.SCORING_THREADS): threads that each
    # hold the GIL for milliseconds and release it in many short library calls make every one of them
    # wait for the others (8 concurrent requests: 34 instead of 59 requests/s); queued on the event loop,
    # each runs at full speed and the loop stays free for other routes. The queue is bounded
    # (Settings.whatif_queue): past it a request gets 503 with Retry-After at once.
    # The ledger's decisions about this entity hold in a what-if as in every run.
    with engine.connect() as conn:
        decisions = ledger.ledger_frame(conn, entity_id=body.entity.entity_id)
    async with request.app.state.whatif.admit():
        columns = await anyio.to_thread.run_sync(
            scoring.score_history,
            scorer,
            policy,
            body,
            body.as_of,
            decisions,
            limiter=request.app.state.scoring_threads,
        )
    return explanations.what_if_row(columns, policy)
