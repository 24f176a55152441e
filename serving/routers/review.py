"""``GET /v1/review-queue``: what waits for a reviewer's decision, oldest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serving import review
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, require
from serving.errors import responses
from serving.schemas import QueueReason, Region, ReviewQueue

router = APIRouter(tags=["objections"], route_class=ThreadedBodyRoute)
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]


@router.get(
    "/v1/review-queue",
    response_model=ReviewQueue,
    summary="the review queue: open objections and rows flagged for review",
    responses=responses(401, 403, 422),
)
def queue(
    principal: Reviewer,
    engine: EngineDep,
    auditor: AuditorDep,
    region: Annotated[Region | None, Query(description="a division code: a province's covers its cities")] = None,
    reason: Annotated[QueueReason | None, Query(description="only items there for this reason")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """Open objections; entities' current rows whose rules and model disagree by two tiers or more; rows
    the policy flags for review. Each item says why it is there and since when; oldest first. An item
    leaves only when decided (an objection's decision; for a flagged row, a decided objection about it).
    A region-scoped token sees its region's items only (another region: 403)."""
    with engine.connect() as conn:
        page = review.review_queue(conn, principal, region=region, reason=reason, limit=limit, offset=offset)
    auditor.record(
        principal, "review_queue.read", "review-queue", {"region": region, "reason": reason, "offset": offset}
    )
    return page
