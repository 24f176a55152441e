"""Stored risk rows: ``GET /v1/entities/{id}/risk``, ``/explanation`` and the batch lookup."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Request, Response

from features.errors import NotFound
from serving import explanations, scoring, traces
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, ScorersDep, check_entity_id, require
from serving.errors import responses
from serving.schemas import EXAMPLE_ID, BatchRiskRequest, BatchRiskResponse, Explanation, RiskRow
from serving.store import latest_score, latest_scores, run_row

router = APIRouter(prefix="/v1/entities", tags=["entities"], route_class=ThreadedBodyRoute)
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ANALYST, Role.REVIEWER))]
EntityPath = Annotated[
    str,
    Path(min_length=18, max_length=18, description="unified social credit code", examples=[EXAMPLE_ID]),
]


def _not_scored(entity_id: str) -> NotFound:
    return NotFound(f"entity {entity_id} has no stored score")


@router.get(
    "/{entity_id}/risk",
    response_model=RiskRow,
    summary="the latest stored score row",
    responses=responses(401, 403, 404, 422, 503),
)
async def risk(entity_id: EntityPath, principal: Reader, request: Request) -> Response:
    """The entity's latest stored score row (CONTRACT section 4): the latest ``as_of``, then the latest row."""
    check_entity_id(entity_id)
    state = request.app.state
    row = await state.lookups.get(entity_id)
    if row is None or not principal.sees(row["entity_region"]):  # another region's entity does not exist here
        raise _not_scored(entity_id)
    state.auditor.record(principal, "risk.read", f"entity/{entity_id}", {"score_id": row["id"]})
    version = str(row["model_version"])
    known, caveat = state.scorers.known_caveat(version)
    if not known:  # another version's registry tags, read once, off the event loop
        caveat = await anyio.to_thread.run_sync(state.scorers.caveat_of, version)
    # The hottest route: validate and serialise in one pass (pydantic-core), skipping the generic encoder.
    body = RiskRow.model_validate({**explanations.risk_row(row), "model_caveat": caveat})
    return Response(body.model_dump_json(), media_type="application/json")


@router.get(
    "/{entity_id}/explanation",
    response_model=Explanation,
    summary="why the entity has its tier",
    responses=responses(401, 403, 404, 422, 503),
)
def explanation(
    entity_id: EntityPath, principal: Reader, engine: EngineDep, auditor: AuditorDep, scorers: ScorersDep
) -> dict:
    """``base_value`` plus every feature's contribution gives ``log_odds``; the fired rules come with
    their legal basis from the policy the row was scored with. Each contribution and fired rule names the
    records behind it (the first few ids and how many), traced from the row's dataset and ledger at its
    date; ``trace`` says whether they could be (a changed dataset is said, not papered over)."""
    check_entity_id(entity_id)
    with engine.connect() as conn:
        row = latest_score(conn, entity_id, full=True)
        if row is None or not principal.sees(row["entity_region"]):
            raise _not_scored(entity_id)
        run = run_row(conn, row["run_id"], with_policy=True)
        trace = traces.trace_row(conn, row)
    auditor.record(principal, "explanation.read", f"entity/{entity_id}", {"score_id": row["id"]})
    return {
        **explanations.explanation(row, scoring.policy_from_text(run["policy_text"]), trace),
        "model_caveat": scorers.caveat_of(str(row["model_version"])),
    }


@router.post(
    "/risk",
    response_model=BatchRiskResponse,
    summary="latest score rows of many entities",
    responses=responses(401, 403, 422, 503),
)
def batch_risk(
    body: BatchRiskRequest, principal: Reader, engine: EngineDep, auditor: AuditorDep, scorers: ScorersDep
) -> dict:
    """Up to 1,000 ids; unknown ones (and, for a region-scoped token, other regions' entities) are listed
    in ``missing``. Each id is audited as a read of its own."""
    ids = list(dict.fromkeys(body.entity_ids))
    with engine.connect() as conn:
        found = {k: v for k, v in latest_scores(conn, ids).items() if principal.sees(v["entity_region"])}
    auditor.record_many(
        principal,
        "risk.read",
        [(f"entity/{i}", {"score_id": found[i]["id"] if i in found else None, "batch": True}) for i in ids],
    )
    caveats = {v: scorers.caveat_of(v) for v in {str(row["model_version"]) for row in found.values()}}
    return {
        "found": [
            {**explanations.risk_row(found[i]), "model_caveat": caveats[str(found[i]["model_version"])]}
            for i in ids
            if i in found
        ],
        "missing": [i for i in ids if i not in found],
    }
