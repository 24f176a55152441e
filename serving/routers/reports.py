"""Monthly monitoring reports: issue one from the stored runs (a background job), list them, read one's
figures or its page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from features.errors import Forbidden
from models.report import build_report
from serving import jobs, reports, runs
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.deps import EngineDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import ReportJob, ReportRequest, ReportSummary

router = APIRouter(prefix="/v1/reports", tags=["monitoring"], route_class=ThreadedBodyRoute)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR))]
ReportId = Annotated[int, Path(ge=1, le=2**53, description="a report's id")]
# The page is ours and has no script: nothing else may run or load in it.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def _national(principal: Principal) -> None:
    if principal.scope is not None:
        raise Forbidden("a region-scoped token cannot read monitoring reports: a report covers every region")


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in reports.REPORT_SUMMARY if k != "id"} | {"report_id": row["id"]}


@router.post(
    "",
    response_model=ReportJob,
    status_code=202,
    summary="issue the monthly report of the newest stored run at or before a date, in the background",
    responses=responses(401, 403, 422, 503),
)
def create_report(
    body: ReportRequest,
    request: Request,
    response: Response,
    principal: Analyst,
    engine: EngineDep,
    scorers: ScorersDep,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the job to end")] = 0,
) -> dict:
    """Answers **202** with the job and its ``Location``. The job computes what ``ipcredit report`` computes
    (drift against the run's model's reference, expected and, with ``dataset``, realised performance,
    random-draw violation rates, fairness, the provincial summary) and keeps the report; the same figures
    are kept once. A month without a stored run fails the job with 404 in its problem."""
    _national(principal)
    settings = request.app.state.settings
    folder = runs.dataset_folder(body.dataset, settings.import_root) if body.dataset else None

    def work() -> int:
        dataset = runs.open_dataset(folder, settings.import_root) if folder is not None else None
        inputs = reports.month_inputs(engine, body.as_of, scorers.version, dataset=dataset)
        return reports.store_report(engine, build_report(inputs), principal.actor)

    job_id = request.app.state.jobs.submit("report", body.model_dump(mode="json"), principal, work)
    response.headers["Location"] = f"/v1/reports/jobs/{job_id}"
    return _job(engine, job_id, wait)


@router.get(
    "/jobs/{job_id}",
    response_model=ReportJob,
    summary="a report job: queued, running, done (with the report) or failed (with the problem)",
    responses=responses(401, 403, 404),
)
def get_job(
    job_id: Annotated[str, Path(max_length=32)],
    principal: Reader,
    engine: EngineDep,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the job to end")] = 0,
) -> dict:
    _national(principal)
    return _job(engine, job_id, wait)


def _job(engine, job_id: str, wait: float) -> dict:
    row = jobs.wait(engine, job_id, wait, kind="report")
    row["report_id"] = row.pop("run_id")
    if row["report_id"] is not None:
        with engine.connect() as conn:
            row["report"] = _summary(reports.report_row(conn, row["report_id"]))
    return row


@router.get(
    "",
    response_model=list[ReportSummary],
    summary="reports as issued, newest month first",
    responses=responses(401, 403, 422),
)
def list_reports(
    principal: Reader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict]:
    _national(principal)
    with engine.connect() as conn:
        return [_summary(row) for row in reports.list_reports(conn, limit=limit, offset=offset)]


@router.get(
    "/{report_id}",
    summary="a report's figures (report.json as issued)",
    responses={200: {"content": {"application/json": {}}}} | responses(401, 403, 404, 422),
)
def get_report(report_id: ReportId, principal: Reader, engine: EngineDep) -> Response:
    """Every figure of the report, byte for byte the ``report.json`` that ``ipcredit report`` writes."""
    _national(principal)
    with engine.connect() as conn:
        row = reports.report_row(conn, report_id)
    return Response(row["figures"], media_type="application/json", headers={"ETag": f'"{row["sha256"]}"'})


@router.get(
    "/{report_id}/html",
    response_class=HTMLResponse,
    summary="a report's page (report.html as issued)",
    responses=responses(401, 403, 404, 422),
)
def get_report_page(report_id: ReportId, principal: Reader, engine: EngineDep) -> HTMLResponse:
    """The report as one self-contained page: inline SVG plots, no script, no external asset."""
    _national(principal)
    with engine.connect() as conn:
        row = reports.report_row(conn, report_id)
    return HTMLResponse(row["html"], headers={"Content-Security-Policy": PAGE_POLICY})
