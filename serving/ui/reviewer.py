"""The reviewer's pages: the queue of open objections, and an objection with its explanation snapshot
as a waterfall, a what-if of repairing records, and the decision form.

The page reads ``objections.objection_detail`` (what ``GET /v1/objections/{id}`` answers) and decides
with ``objections.decide`` (``POST /v1/objections/{id}/decision``). The what-if rescores the entity's
history the row was scored from (``serving.traces``) with the ticked records repaired — only records that
fed the row — with the model version that produced the row and the policy text stored with its run; it
stores nothing and is queued like ``POST /v1/score``. A decision made
meanwhile by someone else (409) is shown as such on the page, with what the reviewer typed kept.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import Connection

from features import evidence
from features.errors import Conflict, InvalidInput, NotFound
from features.evidence import EntityHistory
from features.schema import ADVERSE_CODES
from serving import dates, explanations, objections, recourse, review, scoring, traces
from serving.auth import Principal, Role
from serving.deps import AuditorDep, EngineDep, ScorersDep, require
from serving.errors import invalid_input_detail
from serving.schemas import DecisionIn, ObjectionStatus, QueueReason
from serving.store import run_row, score_row
from serving.ui import csrf
from serving.ui.forms import form_of, invalid
from serving.ui.history import history_of, repair_day
from serving.ui.render import render
from serving.ui.svg import waterfall

router = APIRouter(prefix="/ui", include_in_schema=False)
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
QUEUE_PAGE = 100


@router.get("/objections")
def queue(
    request: Request,
    principal: Reviewer,
    engine: EngineDep,
    auditor: AuditorDep,
    reason: Annotated[QueueReason | None, Query()] = None,
    status: Annotated[ObjectionStatus | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
):
    """The review queue (``GET /v1/review-queue``: open objections and flagged rows, oldest first, the
    token's region); with ``status``, the objections in that state (``GET /v1/objections``)."""
    with engine.connect() as conn:
        if status is None:
            page = review.review_queue(conn, principal, reason=reason, limit=QUEUE_PAGE, offset=offset)
            rows = None
        else:
            page = None
            rows = objections.list_objections(
                conn, status=status, limit=QUEUE_PAGE, offset=offset, region=principal.scope
            )
    if page is not None:
        auditor.record(
            principal, "review_queue.read", "review-queue", {"reason": reason, "offset": offset, "page": True}
        )
    return render(
        request,
        "objections.html",
        queue=page,
        rows=rows,
        reason=reason,
        shown=status,
        reasons=review.REASONS,
        offset=offset,
        page=QUEUE_PAGE,
    )


def _objected(conn: Connection, objection_id: int, principal: Principal) -> dict[str, Any]:
    if not 0 < objection_id < 2**63:
        raise NotFound(f"objection {objection_id} not found")
    return objections.objection_detail(conn, objection_id, principal)


def _history(detail: dict[str, Any]) -> list | None:
    """The objected entity's ``(entity, events, lists)`` in the run's dataset, or ``None``."""
    return history_of(detail["run"]["data_source"], detail["entity_id"])


def _events(frames: list | None) -> tuple[list[dict[str, Any]], str | None]:
    """The adverse events of the history (what a repair names), or why there are none."""
    if frames is None:
        return [], "the run's dataset cannot be read: send the corrected history with a 'correct' decision"
    events = frames[1]
    out = []
    adverse = events[events["event_type"].isin(ADVERSE_CODES)]
    for e in adverse.sort_values("recorded_on", ascending=False).itertuples(index=False):
        out.append(
            {
                "event_id": str(e.event_id),
                "event_type": e.event_type,
                "recorded_on": e.recorded_on.date() if hasattr(e.recorded_on, "date") else e.recorded_on,
                "quantity": e.quantity,
                "repaired": e.repaired_on == e.repaired_on and e.repaired_on is not None,
            }
        )
    return out, None


def _behind(frames: list | None, as_of: Any) -> dict[str, dict[str, Any]]:
    """The records behind each feature at the row's date (``features.evidence``: the catalogue's own
    definitions under the point-in-time rule), as ``{feature: {table, ids, count}}``."""
    if frames is None:
        return {}
    entity, events, lists = frames
    found = evidence.evidence(EntityHistory(entity, events, lists), as_of)
    return {name: e.shown() for name, e in found.items()}


def _page(request: Request, detail: dict[str, Any], *, status: int = 200, **values: Any):
    explanation = detail["explanation"]
    frames = _history(detail)
    events, events_note = _events(frames)
    defaults = {"what_if": None, "conflict": None, "problems": [], "kept": {}, "recourse": None}
    caveat = request.app.state.scorers.caveat_of(str(explanation["model_version"]))  # the row's model
    return render(
        request,
        "objection.html",
        status=status,
        objection=detail,
        explanation=explanation,
        chart=waterfall(explanation, href_of=lambda f: f"#feature-{f}"),
        events=events,
        events_note=events_note,
        # The explanation names the records itself once the service traces rows; until then, derive them.
        behind={}
        if any(c.get("records") for c in explanation["contributions"])
        else _behind(frames, explanation["as_of"]),
        today=dates.today(),
        model_caveat=caveat,
        **(defaults | values),
    )


@router.get("/objections/{objection_id}")
def objection_page(objection_id: int, request: Request, principal: Reviewer, engine: EngineDep, auditor: AuditorDep):
    with engine.connect() as conn:
        detail = _objected(conn, objection_id, principal)
    auditor.record(
        principal, "objection.read", f"objection/{objection_id}", {"score_id": detail["score_id"], "page": True}
    )
    return _page(request, detail)


@router.get("/objections/{objection_id}/recourse")
async def recourse_page(
    objection_id: int,
    request: Request,
    principal: Reviewer,
    engine: EngineDep,
    scorers: ScorersDep,
    auditor: AuditorDep,
):
    """The objection's page with the recourse of its row (``GET /v1/scores/{id}/recourse``): the fewest
    records whose repair or lapse lowers the tier, each from the day it becomes possible."""
    with engine.connect() as conn:
        detail = _objected(conn, objection_id, principal)
    policy = request.app.state.policy
    score_id = detail["score_id"]
    try:
        answer = await anyio.to_thread.run_sync(recourse.recourse, engine, scorers, score_id, principal, policy)
    except Conflict as exc:
        return _page(request, detail, recourse={"none": str(exc)})
    auditor.record(principal, "recourse.read", f"score/{score_id}", {"plan": answer["plan"] is not None, "page": True})
    return _page(request, detail, recourse=answer)


def _repairs(form) -> list[dict[str, str]]:
    day = form.get("repaired_on") or ""
    return [{"event_id": str(v), "repaired_on": str(day)} for v in form.getlist("repair")]


def _decision(form) -> DecisionIn:
    body: dict[str, Any] = {"decision": form.get("decision"), "version": form.get("version")}
    if form.get("note"):
        body["note"] = form.get("note")
    if body["decision"] == "repair":
        body["repairs"] = _repairs(form)
    if form.get("history"):
        try:
            body["history"] = json.loads(str(form.get("history")))
        except json.JSONDecodeError as exc:
            raise InvalidInput.at("history", f"history must be JSON (a History object): {exc}", where="form") from exc
    try:
        return DecisionIn.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc


@router.post("/objections/{objection_id}/what-if")
async def what_if(objection_id: int, request: Request, principal: Reviewer, engine: EngineDep, scorers: ScorersDep):
    """Rescore the row's history with the ticked records repaired, as a repair decision would: the history
    the row was scored from (``traces.row_history``: its dataset with the ledger laid over), only records
    that fed the row (``traces.check_repairs``), the model version that produced the row and the policy
    text stored with its run; nothing is stored."""
    form = await form_of(request)
    csrf.check(request, form)
    with engine.connect() as conn:
        detail = _objected(conn, objection_id, principal)
        row = score_row(conn, detail["score_id"], full=True)
        run = run_row(conn, row["run_id"], with_policy=True)
    kept = {"repair": form.getlist("repair"), "repaired_on": form.get("repaired_on") or ""}
    repairs = _repairs(form)
    if not repairs:
        problem = InvalidInput.at("repair", "tick at least one record to repair", where="form")
        return _page(request, detail, status=422, problems=invalid_input_detail(problem), kept=kept)

    def rescore() -> dict[str, Any]:
        with engine.connect() as conn:
            try:
                history = traces.row_history(conn, row)
            except traces.TraceUnavailable as exc:
                raise InvalidInput.at("repair", f"the row's history cannot be read back: {exc}", where="form") from exc
        trace = traces.trace_history(history, row["as_of"], json.loads(row["features"] or "{}"))
        traces.check_repairs(trace, [r["event_id"] for r in repairs], row["id"])
        as_of = repair_day(history.events, repairs, row["as_of"])
        features = traces.features_of(traces.with_repairs(history, repairs), as_of)
        policy = scoring.policy_from_text(run["policy_text"])
        scored = scorers.version(str(row["model_version"])).score(features, policy)
        answer = explanations.what_if_row({k: scored[k].to_numpy() for k in scored.columns}, policy)
        return {"answer": answer, "previous": row, "chart": waterfall(answer, ident="wf-what-if")}

    try:
        async with request.app.state.whatif.admit():
            result = await anyio.to_thread.run_sync(rescore, limiter=request.app.state.scoring_turn)
    except InvalidInput as exc:
        return _page(request, detail, status=422, problems=invalid_input_detail(exc), kept=kept)
    return _page(request, detail, what_if=result, kept=kept)


@router.post("/objections/{objection_id}/decision")
async def decide(objection_id: int, request: Request, principal: Reviewer, engine: EngineDep, scorers: ScorersDep):
    """Decide as ``POST /v1/objections/{id}/decision`` does; a decision made meanwhile comes back as the
    page with "decided meanwhile by …" and the form as it was sent."""
    form = await form_of(request)
    csrf.check(request, form)
    kept = {
        "decision": form.get("decision") or "",
        "note": form.get("note") or "",
        "repair": form.getlist("repair"),
        "repaired_on": form.get("repaired_on") or "",
        "history": form.get("history") or "",
        "version": form.get("version") or "",
    }

    def reread() -> dict[str, Any]:
        with engine.connect() as conn:
            return _objected(conn, objection_id, principal)

    try:
        body = _decision(form)
        await anyio.to_thread.run_sync(objections.decide, engine, scorers, objection_id, body, principal)
    except Conflict as exc:
        detail = await anyio.to_thread.run_sync(reread)
        return _page(request, detail, status=409, conflict={"message": str(exc), "now": detail}, kept=kept)
    except InvalidInput as exc:
        detail = await anyio.to_thread.run_sync(reread)
        return _page(request, detail, status=422, problems=invalid_input_detail(exc), kept=kept)
    return RedirectResponse(f"/ui/objections/{objection_id}#decision", status_code=303)
