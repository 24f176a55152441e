"""The decision ledger: record a decision, list and read decisions."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request

from serving import decisions, ledger
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import AuditorDep, EngineDep, PolicyDep, require
from serving.errors import responses
from serving.schemas import EntityId, LedgerDecision, LedgerDecisionIn, LedgerKind, LedgerPage

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], route_class=ThreadedBodyRoute)
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
Reader = Annotated[Principal, Depends(require(Role.REVIEWER, Role.ANALYST))]


@router.post(
    "/decisions",
    response_model=LedgerDecision,
    status_code=201,
    summary="record a decision in the ledger",
    responses=responses(401, 403, 404, 409, 422),
)
async def record(
    body: LedgerDecisionIn, request: Request, principal: Reviewer, engine: EngineDep, policy: PolicyDep
) -> dict:
    """Appends one decision — ``correct`` (amended fields of a record), ``withdraw``, ``repair``,
    ``remove_listing`` (early removal), ``withdraw_listing`` (an entry annulled on review or entered in
    error: no repair rule, its basis is the review decision), ``add_event`` — to the append-only ledger,
    audited, with the next
    ``seq``; every later run (``POST /v1/score-runs``, ``ipcredit score``, ``train``, ``features``) lays
    it over its dataset. Checked first: no date after today, none before the record it is about; a repair
    or removal only as the policy's repair rules allow (422 naming the rule, its legal basis and the first
    day it becomes possible, or the evidence it still needs); ``basis`` required. The record is found in
    ``dataset`` (under the import root), else in the dataset of the entity's latest stored run. A
    region-scoped token decides only for its region's entities (404 otherwise); an analyst or supervisor
    token may not decide (403)."""
    root = request.app.state.settings.import_root
    return await anyio.to_thread.run_sync(
        decisions.record_decision, engine, body.model_dump(exclude_none=True), principal, policy, root
    )


@router.get(
    "/decisions", response_model=LedgerPage, summary="decisions in the ledger", responses=responses(401, 403, 422)
)
def list_(
    principal: Reader,
    engine: EngineDep,
    auditor: AuditorDep,
    entity_id: Annotated[EntityId | None, Query()] = None,
    event_id: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    kind: Annotated[LedgerKind | None, Query()] = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62, description="decisions after this seq (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """The decisions in seq order after ``after_seq`` (page on with the last seq shown), filtered by entity,
    record or kind; a region-scoped token sees those about its region's entities. ``seq`` is the ledger's
    latest: a run that records it applied every decision listed up to it."""
    with engine.connect() as conn:
        page = ledger.list_decisions(
            conn,
            principal=principal,
            entity_id=entity_id,
            event_id=event_id,
            kind=kind,
            after_seq=after_seq,
            limit=limit,
        )
        latest = ledger.current_seq(conn)
    auditor.record(principal, "ledger.read", "ledger", {"entity_id": entity_id, "after_seq": after_seq})
    return {"seq": latest, "decisions": page}


@router.get(
    "/decisions/{seq}", response_model=LedgerDecision, summary="one decision", responses=responses(401, 403, 404, 422)
)
def read(seq: Annotated[int, Path(ge=1, le=2**62)], principal: Reader, engine: EngineDep, auditor: AuditorDep) -> dict:
    """One decision with who decided it, when, on what basis and evidence, under which repair rule."""
    with engine.connect() as conn:
        decision = ledger.get_decision(conn, seq, principal)
    auditor.record(principal, "ledger.read", f"ledger/{seq}")
    return decision
