"""``GET /v1/scores/{score_id}/recourse``: what would lower a stored row's tier, and from when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from features.errors import NotFound
from serving import recourse
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import Recourse

router = APIRouter(tags=["objections"], route_class=ThreadedBodyRoute)
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
ScoreId = Annotated[int, Path(description="a stored score row")]


@router.get(
    "/v1/scores/{score_id}/recourse",
    response_model=Recourse,
    summary="recourse: the fewest records whose repair or lapse lowers the tier",
    responses=responses(401, 403, 404, 409, 503),
)
def score_recourse(
    score_id: ScoreId,
    principal: Reviewer,
    engine: EngineDep,
    scorers: ScorersDep,
    policy: PolicyDep,
    auditor: AuditorDep,
) -> dict:
    """Exact, by rescoring every set of candidate records (those that fed the row and that a repair or
    removal rule lets go, or that lapse) with the row's own model version and the policy stored with its
    run, each set as of the day its last step becomes possible. The smallest set that lowers the tier,
    the tier it reaches and the earliest day of each step; 409 when the row's records cannot be traced or
    it has too many candidates to try them all."""
    answer = recourse.recourse(engine, scorers, checked(score_id), principal, policy)
    auditor.record(principal, "recourse.read", f"score/{score_id}", {"plan": answer["plan"] is not None})
    return answer


def checked(score_id: int) -> int:
    """``score_id`` when it can name a row; ``NotFound`` otherwise (ids past the database's range)."""
    if not 0 < score_id < 2**63:
        raise NotFound(f"score row {score_id} not found")
    return score_id
