"""The analyst's pages: score runs and model versions with their metrics and gate decisions, promoting a
version with a reason, and the monthly monitoring report.

Versions come from ``models.registry.list_versions`` and a promotion is ``models.registry.promote`` (what
``ipcredit models`` and ``ipcredit promote`` call), audited in the service's log, after which the service
serves the new champion. The report is ``serving.reports.month_inputs`` → ``models.report.build_report``
→ ``render_html``, as ``ipcredit report`` makes it.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from features.errors import InvalidInput
from models import registry
from models.report import build_report, render_html
from serving import dates
from serving.audit import record_change
from serving.auth import Principal, Role
from serving.db import score_runs
from serving.deps import EngineDep, require
from serving.reports import month_inputs
from serving.ui import csrf
from serving.ui.forms import form_of
from serving.ui.render import render

router = APIRouter(prefix="/ui", include_in_schema=False)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
RUNS_SHOWN = 50
REASON_MAX = 5000
# The registry's listing is kept this long (a promotion here clears it; one by the command line shows
# within this time): MLflow reads every version's run, a hundred milliseconds the page cannot spend.
VERSIONS_SECONDS = 10.0
_versions: dict[str, tuple[float, list[dict]]] = {}


def versions(tracking_uri: str) -> list[dict]:
    """``registry.list_versions`` as records, kept ``VERSIONS_SECONDS``."""
    now = time.monotonic()
    kept = _versions.get(tracking_uri)
    if kept is None or kept[0] <= now:
        kept = (now + VERSIONS_SECONDS, registry.list_versions(tracking_uri=tracking_uri).to_dict(orient="records"))
        _versions[tracking_uri] = kept
    return kept[1]


@router.get("/models")
async def models_page(request: Request, principal: Analyst, engine: EngineDep):
    """Score runs (newest first) and every registered version with its metrics, gate and aliases."""

    def read():
        columns = [c for c in score_runs.c if c.name != "policy_text"]
        with engine.connect() as conn:
            runs = [
                dict(r)
                for r in conn.execute(select(*columns).order_by(score_runs.c.id.desc()).limit(RUNS_SHOWN)).mappings()
            ]
        return runs, versions(request.app.state.settings.tracking_uri)

    runs, listed = await anyio.to_thread.run_sync(read)
    scorers = request.app.state.scorers
    return render(
        request, "models.html", runs=runs, versions=listed, serving=scorers.model_version, model_caveat=scorers.caveat
    )


@router.post("/models/promote")
async def promote(request: Request, principal: Analyst, engine: EngineDep):
    """Make a version the champion with a reason (``models.registry.promote``), audit it, serve it."""
    if principal.scope is not None:
        raise InvalidInput.at(
            "version", "a region-scoped token cannot promote a model: it scores every region", where="form"
        )
    form = await form_of(request)
    csrf.check(request, form)
    version = str(form.get("version") or "")
    reason = str(form.get("reason") or "").strip()
    if not version.isdigit() or len(version) > 9:
        raise InvalidInput.at("version", f"version must be a registered version number; got {version!r}", where="form")
    if not reason or len(reason) > REASON_MAX:
        raise InvalidInput.at("reason", f"reason must be 1 to {REASON_MAX} characters", where="form")
    settings = request.app.state.settings

    def run() -> None:
        previous = registry.promote(version, reason, tracking_uri=settings.tracking_uri)
        with engine.begin() as conn:
            record_change(
                conn, principal, "model.promote", f"model/{version}", {"reason": reason, "replaced": previous}
            )
        request.app.state.scorers.load_champion()
        _versions.pop(settings.tracking_uri, None)

    await anyio.to_thread.run_sync(run)
    return RedirectResponse("/ui/models#versions", status_code=303)


@router.get("/report")
async def report_page(
    request: Request, principal: Analyst, engine: EngineDep, as_of: Annotated[date | None, Query()] = None
):
    """The monthly monitoring report of the stored run at or before ``as_of`` (default today)."""
    day = dates.check_query(as_of, "as_of") or dates.today()
    scorers = request.app.state.scorers

    def build() -> str:
        inputs = month_inputs(engine, day, scorers.version)
        return render_html(build_report(inputs))

    html = await anyio.to_thread.run_sync(build)
    return render(request, "report.html", as_of=day, report_html=html)
