"""The reviewer's pages: the queue of open objections, and an objection with its explanation snapshot
as a waterfall, a what-if of repairing records, and the decision form.

The page reads ``objections.objection_detail`` (what ``GET /v1/objections/{id}`` answers) and decides
with ``objections.decide`` (``POST /v1/objections/{id}/decision``). The what-if rescores the entity's
history from the run's dataset with the ticked records repaired, through ``serving.scoring`` with the
model version that produced the row and the policy text stored with its run; it stores nothing and is
queued like ``POST /v1/score``. A decision made
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
from serving import dates, explanations, objections, scoring
from serving.auth import Principal, Role
from serving.deps import AuditorDep, EngineDep, ScorersDep, require
from serving.errors import invalid_input_detail
from serving.schemas import DecisionIn, ObjectionStatus
from serving.store import run_row, score_row
from serving.ui import csrf
from serving.ui.forms import form_of, invalid
from serving.ui.history import history_of, repaired
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
    status: Annotated[ObjectionStatus | None, Query()] = "open",
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
):
    """Objections of the token's region, oldest first (the open ones by default)."""
    with engine.connect() as conn:
        rows = objections.list_objections(conn, status=status, limit=QUEUE_PAGE, offset=offset, region=principal.scope)
    return render(request, "objections.html", rows=rows, shown=status, offset=offset, page=QUEUE_PAGE)


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
    defaults = {"what_if": None, "conflict": None, "problems": [], "kept": {}}
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
    """Rescore the entity's history with the ticked records repaired, as a repair decision would: the
    model version that produced the row, the policy text stored with its run, the contract's validation
    and the feature code of every scoring (``serving.scoring``); nothing is stored."""
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
        frames = history_of(run["data_source"], detail["entity_id"])
        if frames is None:
            raise InvalidInput.at("repair", "the run's dataset cannot be read: nothing to rescore", where="form")
        entity, events, lists = frames
        events, as_of = repaired(events, repairs, row["as_of"])
        ds = scoring.dataset_from_history(entity, events, lists, source=f"what-if/objection/{objection_id}")
        policy = scoring.policy_from_text(run["policy_text"])
        scored = scoring.score_dataset(scorers.version(str(row["model_version"])), policy, ds, as_of)
        answer = explanations.what_if_row({k: scored[k].to_numpy() for k in scored.columns}, policy)
        return {"answer": answer, "previous": row, "chart": waterfall(answer, ident="wf-what-if")}

    try:
        async with request.app.state.whatif.admit():
            result = await anyio.to_thread.run_sync(rescore, limiter=request.app.state.scoring_threads)
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
