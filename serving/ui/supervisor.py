"""The supervisor's pages: find an entity and read its page; make a draw, read it, record its inspections'
outcomes, download it as CSV. Each calls what the API's routes call (``serving/store.py``, ``explanations``,
``draws``, ``inspections``) with the same roles and region scope, and reads are audited the same way."""

from __future__ import annotations

import csv
import io
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, or_, select

from features.dataset import stale_days
from features.errors import NotFound
from features.schema import EVENT_TYPE_BY_CODE, INDUSTRIES, KINDS
from serving import dates, draws, explanations, inspections, register, scoring
from serving import objections as objections_
from serving.auth import Principal, Role
from serving.db import entities, inspection_outcomes, inspection_results, list_entries, objections
from serving.deps import AuditorDep, EngineDep, PolicyDep, ScorersDep, check_entity_id, require
from serving.ledger import withdrawals
from serving.schemas import DrawRequest, ObjectionIn, OutcomesIn
from serving.store import entity_row, latest_score, run_row
from serving.ui import csrf
from serving.ui.forms import form_of, invalid
from serving.ui.history import event_rows
from serving.ui.render import render

router = APIRouter(prefix="/ui", include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ANALYST, Role.REVIEWER))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
SEARCH_LIMIT = 50
QUERY_MAX = 100
# Rows of a draw shown per page (the CSV has them all).
DRAW_PAGE = 200
CSV_COLUMNS = (
    "entity_id",
    "name",
    "tier",
    "inclusion_probability",
    "inspectors",
    "result",
    "outcome",
    "finding_kind",
    "inspected_by",
    "inspected_on",
)
LIST_NAMES_ZH = {
    "red": "守信红名单",
    "untrustworthy": "失信名单",
    "serious_violation": "严重违法失信名单",
    "abnormal_operation": "经营异常名录",
}


# ---- entities -------------------------------------------------------------------------------------------


def search_entities(conn: Connection, query: str, scope: str | None, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Entities whose id starts with ``query`` or whose name contains it, within ``scope`` (a region
    prefix; ``None``: every region), by id."""
    text = query.strip()
    stmt = (
        select(entities.c.entity_id, entities.c.name, entities.c.region, entities.c.kind, entities.c.tier)
        .where(
            or_(
                entities.c.entity_id.startswith(text.upper(), autoescape=True),
                entities.c.name.contains(text, autoescape=True),
            )
        )
        .order_by(entities.c.entity_id)
        .limit(limit)
    )
    if scope is not None:
        stmt = stmt.where(entities.c.region.startswith(scope, autoescape=True))
    return [dict(r) for r in conn.execute(stmt).mappings()]


@router.get("/entities")
def find(request: Request, principal: Reader, engine: EngineDep, q: Annotated[str, Query(max_length=QUERY_MAX)] = ""):
    """Search by unified social credit code (or its start) or by name; one exact match opens its page."""
    found: list[dict] = []
    if q.strip():
        with engine.connect() as conn:
            found = search_entities(conn, q, principal.scope)
        if len(found) == 1 and found[0]["entity_id"] == q.strip().upper():
            return RedirectResponse(f"/ui/entities/{found[0]['entity_id']}", status_code=303)
    return render(request, "search.html", q=q, found=found, limit=SEARCH_LIMIT)


def _event_note(event: dict[str, Any], as_of: date) -> str:
    """What an event's dates mean for the score of ``as_of`` (the point-in-time rule, said in words)."""
    recorded, repaired = _day(event["recorded_on"]), _day(event["repaired_on"])
    if recorded and recorded > as_of:
        return f"记录于评分日期之后，未计入本评分 recorded after {as_of}: not in this score"
    if repaired and repaired <= as_of:
        return f"已于 {repaired} 信用修复，不计入 repaired on {repaired}: not counted"
    if repaired:
        return f"将于 {repaired} 修复 repaired on {repaired}, after this score"
    return ""


def _list_note(entry: dict[str, Any], withdrawal: tuple[date, str | None] | None, as_of: date) -> str:
    """What a list entry's end means: removed, or withdrawn (annulled on review: from then on not even among
    the entries ever made), said against the score's date."""
    removed = _day(entry["removed_on"])
    if withdrawal is None:
        return f"移出 removed {removed}" if removed else ""
    day, basis = _day(withdrawal[0]), withdrawal[1] or ""
    counted = "不计入本评分 not in this score" if day <= as_of else "本评分时尚未撤销 withdrawn after this score"
    ended = f"移出 removed {removed}；" if removed and removed < day else ""
    return f"{ended}已于 {day} 撤销 withdrawn on {day}（{basis}）：{counted}"


def _timeline(conn: Connection, entity_id: str, data_source: str, as_of: date) -> tuple[list[dict], str | None]:
    """The entity's history, newest first: the run's dataset events, list entries, inspections recorded
    by the service and objection decisions; and why the dataset's events are missing, if they are."""
    items: list[dict[str, Any]] = []
    note = None
    events = event_rows(data_source, entity_id)
    if events is None:
        note = "评分数据集已不可读，未列出其事件。 The run's dataset cannot be read: its events are not shown."
    if events is not None:
        for event in events:
            code = event["event_type"]
            kind = EVENT_TYPE_BY_CODE.get(code)
            amount = event["amount"]
            items.append(
                {
                    "on": _day(event["recorded_on"]),
                    "kind": "event",
                    "zh": kind.label_zh if kind else code,
                    "en": kind.label_en if kind else code,
                    "what": f"{code} × {event['quantity']}" + (f" · ¥{amount:,.0f}" if amount else ""),
                    "note": _event_note(event, as_of),
                    "ref": str(event["event_id"]),
                }
            )
    withdrawn = withdrawals(conn, entity_id)
    for entry in conn.execute(select(list_entries).where(list_entries.c.entity_id == entity_id)).mappings():
        items.append(
            {
                "on": entry["entered_on"],
                "kind": "list",
                "zh": f"列入{LIST_NAMES_ZH.get(entry['list'], entry['list'])}",
                "en": f"entered the {entry['list']} list",
                "what": entry["basis"] or "",
                "note": _list_note(entry, withdrawn.get((entry["list"], entry["entered_on"])), as_of),
                "ref": "",
            }
        )
    for result in conn.execute(
        select(inspection_results).where(inspection_results.c.entity_id == entity_id)
    ).mappings():
        passed = result["event_type"] == "inspection_passed"
        items.append(
            {
                "on": result["occurred_on"],
                "kind": "inspection",
                "zh": "抽查合格" if passed else "抽查不合格",
                "en": "inspection passed" if passed else "inspection failed",
                "what": result["findings"] or "",
                "note": f"抽查 draw {result['draw_id'][:8]}",
                "ref": result["draw_id"],
            }
        )
    for objection in conn.execute(select(objections).where(objections.c.entity_id == entity_id)).mappings():
        items.append(
            {
                "on": (objection["decided_at"] or objection["filed_at"]).date(),
                "kind": "decision",
                "zh": "异议"
                + (
                    {"open": "待复核", "upheld": "维持", "corrected": "更正", "repaired": "信用修复"}.get(
                        objection["status"], objection["status"]
                    )
                ),
                "en": f"objection {objection['status']}",
                "what": objection["decision_note"] or objection["grounds"] or "",
                "note": f"#{objection['id']}",
                "ref": str(objection["id"]),
            }
        )
    items.sort(key=lambda i: (i["on"] or date.min, i["kind"]), reverse=True)
    return items, note


def _day(value: Any) -> date | None:
    if value is None or value != value:  # None or NaT
        return None
    return value.date() if hasattr(value, "date") else value


@router.get("/entities/{entity_id}")
def entity_page(
    entity_id: str, request: Request, principal: Reader, engine: EngineDep, auditor: AuditorDep, scorers: ScorersDep
):
    """Tier, score, fired rules with their legal basis, the top reasons and the history as a timeline."""
    check_entity_id(entity_id)
    with engine.connect() as conn:
        row = latest_score(conn, entity_id, full=True)
        if row is None or not principal.sees(row["entity_region"]):  # as the API: another region's is unknown
            raise NotFound(f"entity {entity_id} has no stored score")
        run = run_row(conn, row["run_id"], with_policy=True)
        entity = entity_row(conn, entity_id)
        timeline, note = _timeline(conn, entity_id, run["data_source"], row["as_of"])
    auditor.record(principal, "explanation.read", f"entity/{entity_id}", {"score_id": row["id"], "page": True})
    explained = explanations.explanation(row, scoring.policy_from_text(run["policy_text"]))
    return render(
        request,
        "entity.html",
        entity=entity,
        risk=explanations.risk_row(row),
        explanation=explained,
        top=explained["contributions"][:5],
        run=run,
        timeline=timeline,
        timeline_note=note,
        stale_days=stale_days(row["as_of"], run.get("data_end")),  # scored long after the delivery's last record
        model_caveat=scorers.caveat_of(str(row["model_version"])),  # its model failed its promotion gate
    )


@router.post("/entities/{entity_id}/objections")
async def file_objection(entity_id: str, request: Request, principal: Reader, engine: EngineDep):
    """File the entity's objection against its current score row (``POST /v1/objections``: one open
    objection per row, only against the current row; another region's entity does not exist here)."""
    check_entity_id(entity_id)
    form = await form_of(request)
    csrf.check(request, form)
    with engine.connect() as conn:
        row = latest_score(conn, entity_id)
    if row is None or not principal.sees(row["entity_region"]):
        raise NotFound(f"entity {entity_id} has no stored score")
    try:
        body = ObjectionIn.model_validate({"score_id": row["id"], "grounds": form.get("grounds")})
    except ValidationError as exc:
        raise invalid(exc) from exc
    from anyio import to_thread

    await to_thread.run_sync(objections_.file_objection, engine, body.score_id, body.grounds, principal)
    return RedirectResponse(f"/ui/entities/{entity_id}#h-timeline", status_code=303)


# ---- draws ----------------------------------------------------------------------------------------------


@router.get("/draws")
def draws_page(request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """The draw form and the draws this token may see, newest first."""
    with engine.connect() as conn:
        page = register.public_register(conn, limit=50, offset=0)
    scope = principal.scope
    seen = [d for d in page["draws"] if scope is None or str(d["filter"].get("region") or "").startswith(scope)]
    return render(
        request,
        "draws.html",
        draws=seen,
        ratios=policy.sampling,
        industries=INDUSTRIES,
        kinds=KINDS,
        scope=principal.region,
    )


def draw_request(form) -> DrawRequest:
    """The draw form as the API's ``DrawRequest`` (the same validation, field paths under ``form``)."""
    body: dict[str, Any] = {"filter": {}}
    for name in ("region", "industry", "kind"):
        if form.get(name):
            body["filter"][name] = form.get(name)
    if form.get("online_seller") in ("true", "false"):
        body["filter"]["online_seller"] = form.get("online_seller") == "true"
    if form.get("budget"):
        body["budget"] = form.get("budget")
    ratios = {t: form.get(f"ratio_{t}") for t in "ABCD" if form.get(f"ratio_{t}")}
    if ratios:
        body["ratios"] = ratios
    if form.get("inspectors_per_entity"):
        body["inspectors_per_entity"] = form.get("inspectors_per_entity")
    body["avoid_same_region"] = form.get("avoid_same_region") == "on"
    try:
        return DrawRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc


@router.post("/draws")
async def create_draw(request: Request, principal: Supervisor, engine: EngineDep, policy: PolicyDep):
    """Make a draw exactly as ``POST /v1/sampling/draws`` does, then show it."""
    form = await form_of(request)
    csrf.check(request, form)
    body = draw_request(form)
    from anyio import to_thread

    drawn = await to_thread.run_sync(
        draws.make_draw, engine, policy, body, principal, request.app.state.population_cache
    )
    return RedirectResponse(f"/ui/draws/{drawn['draw_id']}", status_code=303)


def _names(conn: Connection, ids: list[str]) -> dict[str, str]:
    """The names of ``ids``, read 500 at a time (SQLite bounds the parameters of one statement)."""
    names: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(select(entities.c.entity_id, entities.c.name).where(entities.c.entity_id.in_(chunk)))
        names.update({r.entity_id: r.name for r in rows})
    return names


@router.get("/draws/{draw_id}")
def draw_page(
    draw_id: str,
    request: Request,
    principal: Supervisor,
    engine: EngineDep,
    auditor: AuditorDep,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
):
    """A draw's selected entities with their inspectors and results, and the form to record results."""
    with engine.connect() as conn:
        drawn = draws.get_draw(conn, draw_id, principal, offset=offset, limit=DRAW_PAGE)
        names = _names(conn, [s["entity_id"] for s in drawn["selected"]])
        outcomes = _outcomes(conn, draw_id)
    auditor.record(principal, "draw.read", f"draw/{draw_id}", {"offset": offset, "rows": len(drawn["selected"])})
    return render(
        request,
        "draw.html",
        draw=drawn,
        names=names,
        outcomes=outcomes,
        finding_kinds=inspections.FINDING_KINDS,
        offset=offset,
        page=DRAW_PAGE,
        today=dates.today(),
    )


def outcomes_of_form(form) -> OutcomesIn:
    """The outcomes form (``outcome_<id>``, ``inspector_<id>``, ``finding_kind_<id>``, ``inspected_on_<id>``,
    ``amount_<id>``, ``findings_<id>``) as the API's ``OutcomesIn``: the rows with an outcome chosen."""
    rows = []
    for key in form:
        if not key.startswith("outcome_") or not form.get(key):
            continue
        entity_id = key.removeprefix("outcome_")
        row: dict[str, Any] = {
            "entity_id": entity_id,
            "outcome": form.get(key),
            "inspector_id": form.get(f"inspector_{entity_id}") or None,
            "inspected_on": form.get(f"inspected_on_{entity_id}") or None,
        }
        for name in ("finding_kind", "amount", "findings"):
            if form.get(f"{name}_{entity_id}"):
                row[name] = form.get(f"{name}_{entity_id}")
        rows.append(row)
    try:
        return OutcomesIn.model_validate({"outcomes": rows})
    except ValidationError as exc:
        raise invalid(exc) from exc


@router.post("/draws/{draw_id}/outcomes")
async def post_outcomes(draw_id: str, request: Request, principal: Supervisor, engine: EngineDep):
    """Record the chosen outcomes as ``POST /v1/sampling/draws/{id}/outcomes`` does (by an assigned
    inspector, into the decision ledger), then show the draw."""
    form = await form_of(request)
    csrf.check(request, form)
    body = outcomes_of_form(form)
    from anyio import to_thread

    await to_thread.run_sync(
        partial(inspections.record_outcomes, draw_id=draw_id),
        engine,
        [o.model_dump() for o in body.outcomes],
        principal,
    )
    return RedirectResponse(f"/ui/draws/{draw_id}#results", status_code=303)


def _outcomes(conn: Connection, draw_id: str) -> dict[str, dict[str, Any]]:
    """The outcomes recorded for the draw's entities (who inspected, what was found, or could not)."""
    stmt = select(inspection_outcomes).where(inspection_outcomes.c.draw_id == draw_id)
    return {r["entity_id"]: dict(r) for r in conn.execute(stmt).mappings()}


@router.get("/draws/{draw_id}/csv")
def draw_csv(draw_id: str, principal: Supervisor, engine: EngineDep, auditor: AuditorDep) -> Response:
    """Every selected entity of the draw as CSV: id, name, tier, inclusion probability, inspectors, the
    result, and the outcome recorded by an inspector (with its kind, who and when)."""
    with engine.connect() as conn:
        drawn = draws.get_draw(conn, draw_id, principal)
        names = _names(conn, [s["entity_id"] for s in drawn["selected"]])
        outcomes = _outcomes(conn, draw_id)
    auditor.record(principal, "draw.read", f"draw/{draw_id}", {"rows": len(drawn["selected"]), "format": "csv"})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for s in drawn["selected"]:
        done = outcomes.get(s["entity_id"], {})
        writer.writerow(
            [
                s["entity_id"],
                names.get(s["entity_id"], ""),
                s["tier"],
                s["inclusion_probability"],
                ";".join(s["inspectors"]),
                s["result"] or "",
                done.get("outcome") or "",
                done.get("finding_kind") or "",
                done.get("inspector_id") or "",
                done.get("inspected_on") or "",
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="draw-{drawn["draw_id"]}.csv"'},
    )
