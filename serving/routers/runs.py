"""Score runs: make one from a dataset (or import a score file) as a background job, follow the job, list
and read runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select

from features.errors import Forbidden, NotFound
from serving import jobs, runs
from serving.auth import Principal, Role
from serving.bodies import ThreadedBodyRoute
from serving.db import score_runs
from serving.deps import EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import ScoreRun, ScoreRunJob, ScoreRunRequest
from serving.scorers import Scorers
from serving.store import run_row

router = APIRouter(prefix="/v1/score-runs", tags=["score runs"], route_class=ThreadedBodyRoute)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR, Role.REVIEWER))]


def _view(row: dict[str, Any], scorers: Scorers) -> dict[str, Any]:
    """A stored run as the API's ``ScoreRun``, with the caveat of its model version if that failed its gate."""
    shown = {k: v for k, v in row.items() if k not in ("id", "policy_text")}
    return shown | {"run_id": row["id"], "model_caveat": scorers.caveat_of(str(row["model_version"]))}


@router.post(
    "",
    response_model=ScoreRunJob,
    status_code=202,
    summary="make a score run from a dataset (or import a score file) in the background",
    responses=responses(401, 403, 422, 503),
)
def create_run(
    body: ScoreRunRequest,
    request: Request,
    response: Response,
    principal: Analyst,
    engine: EngineDep,
    scorers: ScorersDep,
    policy: PolicyDep,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the job to end")] = 0,
) -> dict:
    """Answers **202** at once with the job and its ``Location``: the job reads the dataset folder
    ``dataset`` on the server (CONTRACT section 1), validates it, scores every entity as of ``as_of`` with
    the champion and stores the run (features, contributions, reasons, rules, model/policy/feature
    versions, the dataset's fingerprint) with the dataset's entities and list entries. With ``score_file``
    (written by ``ipcredit score``) the file is validated row by row and imported instead of scored; the
    dataset still supplies entities and lists. Paths must lie under the service's import root (422
    otherwise, naming no path). A failed job carries the problem details a request would have got."""
    if principal.scope is not None:
        raise Forbidden("a region-scoped token cannot make score runs: a run sets the tiers of every region")
    state = request.app.state
    settings = state.settings
    root = settings.import_root
    folder = runs.dataset_folder(body.dataset, root)
    score_file = runs.confined(body.score_file, root, "score_file", folder=False) if body.score_file else None
    scorer = None if score_file else scorers.require_champion()
    job = runs.RunRequest(folder=folder, root=root, as_of=body.as_of, score_file=score_file)
    policy_text = state.policy_text

    def work() -> int:
        return runs.make_run(
            engine,
            job,
            scorer,
            policy,
            policy_text,
            principal,
            statement_timeout_ms=settings.job_statement_timeout_ms,
        )

    job_id = state.jobs.submit("score_run", body.model_dump(mode="json"), principal, work)
    response.headers["Location"] = f"/v1/score-runs/jobs/{job_id}"
    return _job(engine, scorers, job_id, wait)


@router.get(
    "/jobs/{job_id}",
    response_model=ScoreRunJob,
    summary="a score-run job: queued, running, done (with the run) or failed (with the problem)",
    responses=responses(401, 403, 404),
)
def get_job(
    job_id: Annotated[str, Path(max_length=32)],
    _: Reader,
    engine: EngineDep,
    scorers: ScorersDep,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the job to end")] = 0,
) -> dict:
    """The job as it is now, or once it has ended when ``wait`` seconds are given."""
    return _job(engine, scorers, job_id, wait)


def _job(engine, scorers: Scorers, job_id: str, wait: float) -> dict:
    row = jobs.wait(engine, job_id, wait, kind="score_run")
    if row["run_id"] is not None:
        with engine.connect() as conn:
            run = run_row(conn, row["run_id"])
        row["run"] = _view(run, scorers) if run else None
    return row


@router.get("", response_model=list[ScoreRun], summary="score runs, newest first", responses=responses(401, 403))
def list_runs(
    _: Reader,
    engine: EngineDep,
    scorers: ScorersDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[dict]:
    columns = [c for c in score_runs.c if c.name != "policy_text"]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(score_runs.c.id.desc()).limit(limit).offset(offset)).mappings()
        return [_view(dict(r), scorers) for r in rows]


@router.get("/{run_id}", response_model=ScoreRun, summary="one score run", responses=responses(401, 403, 404))
def get_run(run_id: int, _: Reader, engine: EngineDep, scorers: ScorersDep) -> dict:
    with engine.connect() as conn:
        row = run_row(conn, run_id) if 0 < run_id < 2**63 else None
    if row is None:
        raise NotFound(f"score run {run_id} not found")
    return _view(row, scorers)
