"""``POST /v1/score``: what-if scoring of one history; stores nothing."""

from __future__ import annotations

from typing import Annotated

import anyio
import pandas as pd
from fastapi import APIRouter, Depends, Request

from models.gate import gate_caveat
from models.policy import Policy
from models.scorer import Scorer
from serving import explanations, ledger, scoring, traces
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import ScoreRequest, ScoreResponse
from serving.versions import named_policy, named_scorer

router = APIRouter(tags=["scoring"], route_class=ThreadedBodyRoute)


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
    current policy — or with ``model_version`` / ``policy_version``, those of a stored row, to check what
    its recourse promises — returning the score row and its explanation, each contribution and fired rule
    naming the posted records behind it. The decision ledger's decisions about the posted entity are laid
    over the history first, as every run lays them over its dataset (a repaired record counts for nothing
    from its repair on). Nothing is stored or audited as a change: this is how a reviewer sees the effect
    of a correction before deciding."""
    if body.model_version is None and body.policy_version is None:
        scorer = scorers.require_champion()
    else:
        with engine.connect() as conn:
            scorer = named_scorer(conn, scorers, body.model_version)
            policy = named_policy(conn, policy, body.policy_version)
    # The ledger's decisions about this entity hold in a what-if as in every run (a repaired record of the
    # posted history counts for nothing from its repair on).
    with engine.connect() as conn:
        decisions = ledger.ledger_frame(conn, entity_id=body.entity.entity_id)
    # CPU-bound work, one request at a time per process (scoring.SCORINGS_AT_ONCE), in turn; the queue is
    # bounded (Settings.whatif_queue): past it a request gets 503 with Retry-After at once.
    turn = request.app.state.scoring_turn
    async with request.app.state.whatif.admit():
        if decisions.empty and len(body.events) + len(body.lists) <= scoring.INLINE_RECORDS:
            # A history of a few records takes about 2 ms: scored on the event loop, with a turn back to it
            # between the score and the records behind it, so nothing else waits longer than a step.
            async with turn:
                columns = scoring.score_history(scorer, policy, body, body.as_of, decisions)
                await anyio.sleep(0)
                trace = traces.trace_posted(body, body.as_of, decisions)
            await anyio.sleep(0)  # the next in turn starts before this answer is written
        else:
            # A long history, or one the ledger's decisions reshape (through frames): in a thread, so the
            # event loop keeps serving while it is scored.
            columns, trace = await anyio.to_thread.run_sync(
                _score_and_trace, scorer, policy, body, decisions, limiter=turn
            )
    return {
        **explanations.what_if_row(columns, policy, trace),
        "model_caveat": gate_caveat(scorer.metadata, str(scorer.model_version)),  # no registry call
    }


def _score_and_trace(
    scorer: Scorer, policy: Policy, body: ScoreRequest, decisions: pd.DataFrame
) -> tuple[dict, traces.Trace]:
    columns = scoring.score_history(scorer, policy, body, body.as_of, decisions)
    return columns, traces.trace_posted(body, body.as_of, decisions)
