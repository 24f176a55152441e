"""Score runs: create one from a dataset (or import a score file), list and read them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from features.errors import NotFound
from serving import runs
from serving.audit import record_change
from serving.auth import Principal, Role
from serving.db import score_runs
from serving.deps import EngineDep, PolicyDep, ScorersDep, require
from serving.errors import responses
from serving.schemas import ScoreRun, ScoreRunRequest
from serving.store import run_row, save_score_run

router = APIRouter(prefix="/v1/score-runs", tags=["score runs"])
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR, Role.REVIEWER))]


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "policy_text")} | {"run_id": row["id"]}


@router.post(
    "",
    response_model=ScoreRun,
    status_code=201,
    summary="create a score run from a dataset (or import a score file)",
    responses=responses(401, 403, 422, 503),
)
def create_run(
    body: ScoreRunRequest,
    request: Request,
    principal: Analyst,
    engine: EngineDep,
    scorers: ScorersDep,
    policy: PolicyDep,
) -> dict:
    """Reads the dataset folder ``dataset`` on the server (CONTRACT section 1), validates it, scores every
    entity as of ``as_of`` with the champion and stores the run (features, contributions, reasons, rules,
    model/policy/feature versions, the dataset's fingerprint), together with the dataset's entities and
    list entries. With ``score_file`` (a file written by ``ipcredit score``) the rows are imported as they
    are instead of being scored; the dataset still supplies entities and lists."""
    state = request.app.state
    folder = runs.dataset_folder(body.dataset, state.settings.dataset_root)
    scorer = None if body.score_file else scorers.require_champion()
    ds = runs.open_dataset(folder)
    if scorer is None:
        run = runs.imported_run(
            ds, body.as_of, Path(body.score_file), policy, state.policy_text, created_by=principal.actor
        )
    else:
        run = runs.scored_run(ds, body.as_of, scorer, policy, state.policy_text, created_by=principal.actor)
    with engine.begin() as conn:
        run_id = save_score_run(conn, run)
        record_change(
            conn,
            principal,
            "score_run.create",
            f"score-run/{run_id}",
            {
                "dataset": ds.source,
                "as_of": body.as_of.isoformat(),
                "rows": len(run.scores),
                "imported": bool(body.score_file),
            },
        )
        return _view(run_row(conn, run_id))


@router.get("", response_model=list[ScoreRun], summary="score runs, newest first", responses=responses(401, 403))
def list_runs(
    _: Reader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[dict]:
    columns = [c for c in score_runs.c if c.name != "policy_text"]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(score_runs.c.id.desc()).limit(limit).offset(offset)).mappings()
        return [_view(dict(r)) for r in rows]


@router.get("/{run_id}", response_model=ScoreRun, summary="one score run", responses=responses(401, 403, 404))
def get_run(run_id: int, _: Reader, engine: EngineDep) -> dict:
    with engine.connect() as conn:
        row = run_row(conn, run_id) if 0 < run_id < 2**63 else None
    if row is None:
        raise NotFound(f"score run {run_id} not found")
    return _view(row)
