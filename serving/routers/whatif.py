"""``POST /v1/score``: what-if scoring of one history; stores nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving import scoring
from serving.auth import Principal, Role
from serving.deps import ModelsDep, PolicyDep, require, responses
from serving.schemas import ScoreRequest, ScoreResponse

router = APIRouter(tags=["scoring"])


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    summary="score one history (what-if)",
    responses=responses(401, 403, 422, 503),
)
def score(
    body: ScoreRequest,
    _: Annotated[Principal, Depends(require(Role.ANALYST, Role.REVIEWER, Role.SUPERVISOR))],
    models: ModelsDep,
    policy: PolicyDep,
) -> dict:
    """Scores the posted entity, events and lists as of ``as_of`` with the champion model and the
    current policy, returning the score row and its explanation. Nothing is stored or audited as a
    change: this is how a reviewer sees the effect of a correction before deciding."""
    scorer = models.require_champion()
    frame = scoring.score_history(scorer, policy, body, body.as_of)
    return scoring.what_if_row(frame, policy)
