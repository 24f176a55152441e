"""Score runs: create one from a dataset (or import a score file), list and read them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select

from serving import scoring
from serving.audit import record_change
from serving.auth import Principal, Role
from serving.db import score_runs
from serving.deps import EngineDep, ModelsDep, PolicyDep, require, responses
from serving.schemas import ScoreRun, ScoreRunRequest
from serving.scoring import InputProblems
from serving.store import SCORE_COLUMNS, run_row, save_score_run

router = APIRouter(prefix="/v1/score-runs", tags=["score runs"])
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.SUPERVISOR, Role.REVIEWER))]


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "policy_text")} | {"run_id": row["id"]}


def _problem(field: str, message: str, value: Any = None) -> InputProblems:
    return InputProblems([{"loc": ["body", field], "msg": message, "type": "value_error", "input": value}])


def _read_score_file(path: Path) -> pd.DataFrame:
    try:
        exists = path.is_file()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise _problem("score_file", "must be a score file on the server", str(path))
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"rules": str})
    except Exception as exc:
        raise _problem("score_file", f"cannot read the score file: {exc.__class__.__name__}: {exc}", str(path)) from exc
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise _problem("score_file", f"must have the score columns of CONTRACT section 4; missing {missing}", str(path))
    return frame


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
    models: ModelsDep,
    policy: PolicyDep,
) -> dict:
    """Reads the dataset folder ``dataset`` on the server (CONTRACT section 1), validates it, scores every
    entity as of ``as_of`` with the champion and stores the run (features, contributions, reasons, rules,
    model/policy/feature versions, the dataset's fingerprint), together with the dataset's entities and
    list entries. With ``score_file`` (a file written by ``ipcredit score``) the rows are imported as they
    are instead of being scored; the dataset still supplies entities and lists."""
    from features.dataset import DatasetError
    from features.validate import load_valid_dataset

    settings = request.app.state.settings
    try:
        folder = Path(body.dataset).expanduser().resolve()
        readable = folder.is_dir()
    except (OSError, ValueError, RuntimeError):
        readable = False
    if not readable:
        raise _problem("dataset", "must be a dataset folder on the server", body.dataset)
    if settings.dataset_root is not None and not folder.is_relative_to(Path(settings.dataset_root).resolve()):
        raise _problem("dataset", f"must be under {settings.dataset_root}", body.dataset)
    scorer = None if body.score_file else models.require_champion()
    try:
        ds = load_valid_dataset(folder, threads=2)
    except DatasetError as exc:
        problems = [
            {
                "loc": [
                    "body",
                    "dataset",
                    *(str(p[k]) for k in ("table", "row", "column") if p.get(k) is not None and not pd.isna(p[k])),
                ],
                "msg": str(p["message"]),
                "type": "value_error",
                "input": None if p.get("value") is None or pd.isna(p.get("value")) else str(p["value"]),
            }
            for p in exc.problems.to_dict("records")
        ] or [{"loc": ["body", "dataset"], "msg": str(exc), "type": "value_error", "input": body.dataset}]
        raise InputProblems(problems) from exc
    if body.score_file:
        frame = _read_score_file(Path(body.score_file))
        versions = set(frame["model_version"].astype(str))
        if len(versions) != 1:
            raise _problem("score_file", f"must hold one model_version; got {sorted(versions)[:5]}")
        if "policy_version" in frame.columns and set(frame["policy_version"].astype(str)) != {policy.version_tag}:
            raise _problem(
                "score_file",
                f"was scored under policy {sorted(set(frame['policy_version'].astype(str)))[:3]}; "
                f"the service runs policy {policy.version_tag}",
            )
        model_version = versions.pop()
        feature_version = (
            str(frame["feature_version"].iloc[0]) if "feature_version" in frame.columns else scoring.feature_version()
        )
    else:
        frame = scoring.score_dataset(scorer, policy, ds, body.as_of)
        model_version = str(scorer.model_version)
        feature_version = (
            str(frame["feature_version"].iloc[0]) if "feature_version" in frame.columns else scoring.feature_version()
        )
    with engine.begin() as conn:
        run_id = save_score_run(
            conn,
            frame,
            dataset_fingerprint=ds.fingerprint,
            data_source=ds.source,
            as_of=body.as_of,
            policy_text=request.app.state.policy_text,
            policy_version=policy.version_tag,
            model_version=model_version,
            feature_version=feature_version,
            entities=ds.entities,
            lists=ds.table("lists"),
            created_by=principal.actor,
        )
        record_change(
            conn,
            principal,
            "score_run.create",
            f"score-run/{run_id}",
            {
                "dataset": ds.source,
                "as_of": body.as_of.isoformat(),
                "rows": len(frame),
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
        raise HTTPException(404, f"score run {run_id} not found")
    return _view(row)
