"""Saving and reading score runs, entities and list entries.

``save_score_run`` is the one way a run gets into the database: ``ipcredit score --store`` calls it,
``POST /v1/score-runs`` calls it, and an objection decision calls it for the rescored row. A run is an
immutable snapshot: every score row keeps its features, contributions, base value, reasons, fired rules
and the model, policy and feature versions, and the run keeps the policy text and the dataset's
fingerprint, so a reviewer sees exactly what produced a tier and a correction can rescore with the same
model and policy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.scorefile import SCORE_COLUMNS  # CONTRACT section 4: the score file columns
from serving.db import entities, list_entries, score_runs, scores

# What an explanation needs beyond the contract columns (optional: a bare score file has none of them).
EXPLANATION_COLUMNS: tuple[str, ...] = ("base_value", "log_odds", "contributions", "features")
RUN_KINDS: tuple[str, ...] = ("batch", "correction", "repair")
_ENTITY_COLUMNS = (
    "entity_id",
    "name",
    "kind",
    "industry",
    "region",
    "registered_on",
    "registered_capital",
    "online_seller",
)
_LIST_COLUMNS = ("entity_id", "list", "entered_on", "removed_on", "basis")
_CHUNK = 20_000


class StoreError(ValueError):
    """The frame handed to the store does not have what a score run needs."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, date | datetime | pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def to_json(value: Any) -> str | None:
    """``value`` as JSON text; strings are taken to be JSON already (as in the score file)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(_clean(value), ensure_ascii=False, default=_json_default)


def _clean(value: Any) -> Any:
    """Replace NaN by None inside plain containers (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _dates(column: pd.Series) -> list[date | None]:
    parsed = pd.to_datetime(column, errors="raise")
    return [None if pd.isna(v) else v.date() for v in parsed]


def _floats(column: pd.Series) -> list[float | None]:
    values = pd.to_numeric(column, errors="raise").astype(float)
    return [None if math.isnan(v) else float(v) for v in values]


def _bools(column: pd.Series) -> list[bool]:
    if column.dtype == object:
        return [str(v).strip().lower() in ("true", "1", "yes") if isinstance(v, str) else bool(v) for v in column]
    return [bool(v) for v in column]


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StoreError(f"{what} must have columns {list(columns)}; missing {missing}")


def save_score_run(
    engine_or_session: Engine | Session | Connection,
    scores_frame: pd.DataFrame,
    *,
    dataset_fingerprint: str,
    data_source: str,
    as_of: date,
    policy_text: str,
    policy_version: str,
    model_version: str,
    feature_version: str,
    entities: pd.DataFrame,
    lists: pd.DataFrame | None = None,
    kind: str = "batch",
    created_by: str | None = None,
    parent_run_id: int | None = None,
    objection_id: int | None = None,
    supersedes: dict[str, int] | None = None,
) -> int:
    """Save one scoring run and return its id.

    ``scores_frame`` has the CONTRACT score columns and, for explanations, ``base_value``, ``log_odds``,
    ``contributions`` and ``features`` (JSON text or dicts); ``policy_version`` and ``feature_version``
    columns, when present, must agree with the arguments. ``entities`` is the dataset's entities table:
    the store keeps each entity's attributes (for sampling filters and public names) and points it at its
    latest score. ``lists``, when given, is the dataset's lists table, kept for the public lists.
    ``supersedes`` maps entity ids to the score rows the new rows replace (objection decisions).

    With an ``Engine`` the run is written in its own transaction; with a ``Session`` or ``Connection``
    the caller's transaction is used and the caller commits.
    """
    if kind not in RUN_KINDS:
        raise StoreError(f"kind must be one of {list(RUN_KINDS)}; got {kind!r}")
    _require(scores_frame, SCORE_COLUMNS, "scores")
    _require(entities, _ENTITY_COLUMNS, "entities")
    for column, expected in (("policy_version", policy_version), ("feature_version", feature_version)):
        if column in scores_frame.columns and len(scores_frame):
            found = set(scores_frame[column].astype(str))
            if found != {expected}:
                raise StoreError(f"scores.{column} must be {expected!r} throughout; got {sorted(found)[:3]}")
    for frame, what in ((scores_frame, "scores"), (entities, "entities")):
        widths = frame["entity_id"].astype(str).str.len()
        if len(frame) and (widths != 18).any():
            raise StoreError(
                f"{what}.entity_id must be 18-character codes; got {frame['entity_id'][widths != 18].iloc[0]!r}"
            )
    regions = entities["region"].astype(str)
    if len(entities) and not regions.str.fullmatch(r"[0-9]{6}").all():
        raise StoreError(
            f"entities.region must be 6-digit codes; got {regions[~regions.str.fullmatch(r'[0-9]{6}')].iloc[0]!r}"
        )
    if scores_frame["entity_id"].duplicated().any():
        raise StoreError("scores must have one row per entity_id")
    unknown = set(scores_frame["entity_id"]) - set(entities["entity_id"])
    if unknown:
        raise StoreError(f"scores name entities missing from the entities table, e.g. {sorted(unknown)[:3]}")

    params = {
        "scores_frame": scores_frame,
        "dataset_fingerprint": dataset_fingerprint,
        "data_source": data_source,
        "as_of": as_of,
        "policy_text": policy_text,
        "policy_version": policy_version,
        "model_version": model_version,
        "feature_version": feature_version,
        "entities": entities,
        "lists": lists,
        "kind": kind,
        "created_by": created_by,
        "parent_run_id": parent_run_id,
        "objection_id": objection_id,
        "supersedes": supersedes,
    }
    if isinstance(engine_or_session, Engine):
        with engine_or_session.begin() as conn:
            return _save(conn, **params)
    if isinstance(engine_or_session, Session):
        return _save(engine_or_session.connection(), **params)
    return _save(engine_or_session, **params)


def _save(
    conn: Connection,
    *,
    scores_frame: pd.DataFrame,
    dataset_fingerprint: str,
    data_source: str,
    as_of: date,
    policy_text: str,
    policy_version: str,
    model_version: str,
    feature_version: str,
    entities: pd.DataFrame,
    lists: pd.DataFrame | None,
    kind: str,
    created_by: str | None,
    parent_run_id: int | None,
    objection_id: int | None,
    supersedes: dict[str, int] | None,
) -> int:
    run_id = conn.execute(
        score_runs.insert()
        .values(
            created_at=_now(),
            created_by=created_by,
            kind=kind,
            as_of=as_of,
            dataset_fingerprint=dataset_fingerprint,
            data_source=data_source,
            policy_version=policy_version,
            policy_text=policy_text,
            model_version=str(model_version),
            feature_version=feature_version,
            row_count=len(scores_frame),
            parent_run_id=parent_run_id,
            objection_id=objection_id,
        )
        .returning(score_runs.c.id)
    ).scalar_one()

    frame = scores_frame
    n = len(frame)
    row_as_of = _dates(frame["as_of"]) if "as_of" in frame.columns else [as_of] * n
    columns: dict[str, list] = {
        "entity_id": frame["entity_id"].astype(str).tolist(),
        "as_of": row_as_of,
        "score": _floats(frame["score"]),
        "model_tier": frame["model_tier"].astype(str).tolist(),
        "tier": frame["tier"].astype(str).tolist(),
        "rules": frame["rules"].fillna("").astype(str).tolist(),
        "review": _bools(frame["review"]),
        "model_version": frame["model_version"].astype(str).tolist(),
        "reasons": [to_json(v) or "[]" for v in frame["reasons"]],
    }
    for name in ("base_value", "log_odds"):
        columns[name] = _floats(frame[name]) if name in frame.columns else [None] * n
    for name in ("contributions", "features"):
        columns[name] = [to_json(v) for v in frame[name]] if name in frame.columns else [None] * n
    supersedes = supersedes or {}
    columns["supersedes_id"] = [supersedes.get(e) for e in columns["entity_id"]]
    columns["run_id"] = [run_id] * n
    columns["policy_version"] = [policy_version] * n
    columns["feature_version"] = [feature_version] * n
    bulk_insert(conn, scores.name, columns)

    _upsert_entities(conn, entities, run_id)
    if lists is not None:
        save_list_entries(conn, lists, run_id=run_id)
    return run_id


def _driver_values(conn: Connection, values: list) -> list:
    """Values as the driver takes them: SQLite gets dates as ISO text and booleans as 0/1, the way
    SQLAlchemy's own types store them, so rows written in bulk read back like any other."""
    if conn.dialect.name != "sqlite":
        return values
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return [None if v is None else int(v) for v in values]
    if isinstance(sample, datetime):
        return [None if v is None else v.isoformat(sep=" ") for v in values]
    if isinstance(sample, date):
        return [None if v is None else v.isoformat() for v in values]
    return values


def bulk_insert(conn: Connection, table: str, columns: dict[str, list], *, on_conflict: str = "") -> None:
    """Insert many rows given column-wise, below SQLAlchemy's per-row parameter processing.

    PostgreSQL: COPY (into a temporary table first when ``on_conflict`` needs an INSERT ... SELECT);
    SQLite: one executemany. ``on_conflict`` is an ``ON CONFLICT ...`` clause, the same on both.
    """
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    rows = list(zip(*(_driver_values(conn, columns[c]) for c in names), strict=True))
    listed = ", ".join(names)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        target = table
        with raw.cursor() as cursor:
            if on_conflict:
                target = f"_load_{table}"
                cursor.execute(f"CREATE TEMP TABLE {target} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
            with cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if on_conflict:
                cursor.execute(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {target} {on_conflict}")
                cursor.execute(f"DROP TABLE {target}")
        return
    marks = ", ".join("?" for _ in names)
    for start in range(0, len(rows), _CHUNK * 5):
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({listed}) VALUES ({marks}) {on_conflict}", rows[start : start + _CHUNK * 5]
        )


# A newer score (later as_of, or the same as_of and a later row) takes over; an older run imported later
# leaves the entity's latest score alone. Entity attributes always take the newest import.
_TAKES_OVER = (
    "excluded.score_id IS NOT NULL AND (entities.score_as_of IS NULL OR excluded.score_as_of > entities.score_as_of"
    " OR (excluded.score_as_of = entities.score_as_of AND excluded.score_id > entities.score_id))"
)
_ENTITY_UPSERT = "ON CONFLICT (entity_id) DO UPDATE SET " + ", ".join(
    [
        f"{c} = excluded.{c}"
        for c in ("name", "kind", "industry", "region", "registered_on", "registered_capital", "online_seller")
    ]
    + [f"{c} = CASE WHEN {_TAKES_OVER} THEN excluded.{c} ELSE entities.{c} END" for c in ("tier", "score_as_of")]
    + [f"score_id = CASE WHEN {_TAKES_OVER} THEN excluded.score_id ELSE entities.score_id END"]
)


def _upsert_entities(conn: Connection, frame: pd.DataFrame, run_id: int) -> None:
    """Insert or update the entities and point each scored one at its latest score row."""
    latest = {
        entity_id: (score_id, tier, as_of)
        for score_id, entity_id, tier, as_of in conn.execute(
            select(scores.c.id, scores.c.entity_id, scores.c.tier, scores.c.as_of).where(scores.c.run_id == run_id)
        )
    }
    ids = frame["entity_id"].astype(str).tolist()
    found = [latest.get(e, (None, None, None)) for e in ids]
    columns = {
        "entity_id": ids,
        "name": frame["name"].astype(str).tolist(),
        "kind": frame["kind"].astype(str).tolist(),
        "industry": frame["industry"].astype(str).tolist(),
        "region": frame["region"].astype(str).tolist(),
        "registered_on": _dates(frame["registered_on"]),
        "registered_capital": _floats(frame["registered_capital"]),
        "online_seller": _bools(frame["online_seller"]),
        "score_id": [f[0] for f in found],
        "tier": [f[1] for f in found],
        "score_as_of": [f[2] for f in found],
    }
    bulk_insert(conn, entities.name, columns, on_conflict=_ENTITY_UPSERT)


def save_list_entries(conn: Connection, frame: pd.DataFrame, *, run_id: int | None = None) -> int:
    """Insert or update list entries (key: entity, list, entered_on); return how many were given."""
    _require(frame, _LIST_COLUMNS, "lists")
    if frame.empty:
        return 0
    entered = _dates(frame["entered_on"])
    removed = _dates(frame["removed_on"])
    basis = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in frame["basis"]]
    rows = [
        {
            "entity_id": str(e),
            "list": str(name),
            "entered_on": entered[i],
            "removed_on": removed[i],
            "basis": basis[i],
            "run_id": run_id,
        }
        for i, (e, name) in enumerate(zip(frame["entity_id"], frame["list"], strict=True))
    ]
    stmt = _insert(conn)(list_entries)
    stmt = stmt.on_conflict_do_update(
        index_elements=[list_entries.c.entity_id, list_entries.c.list, list_entries.c.entered_on],
        set_={"removed_on": stmt.excluded.removed_on, "basis": stmt.excluded.basis, "run_id": stmt.excluded.run_id},
    )
    for start in range(0, len(rows), _CHUNK):
        conn.execute(stmt, rows[start : start + _CHUNK])
    return len(rows)


# ---- reading -------------------------------------------------------------------------------------------

_SCORE_FIELDS = [c for c in scores.c if c.name not in ("contributions", "features")]


def score_row(conn: Connection, score_id: int, *, full: bool = False) -> dict[str, Any] | None:
    """One stored score row (with contributions and features when ``full``)."""
    columns = list(scores.c) if full else _SCORE_FIELDS
    row = conn.execute(select(*columns).where(scores.c.id == score_id)).mappings().first()
    return dict(row) if row else None


def _latest_statement(full: bool):
    columns = list(scores.c) if full else _SCORE_FIELDS
    return (
        select(*columns)
        .select_from(entities.join(scores, scores.c.id == entities.c.score_id))
        .where(entities.c.entity_id == bindparam("entity_id"))
    )


_LATEST = {False: _latest_statement(False), True: _latest_statement(True)}


def latest_score(conn: Connection, entity_id: str, *, full: bool = False) -> dict[str, Any] | None:
    """The entity's latest score row, or ``None`` when the entity has never been scored.

    The statement is built once; per call SQLAlchemy only looks up its compiled form (the risk lookup is
    the service's hottest path).
    """
    row = conn.execute(_LATEST[full], {"entity_id": entity_id}).mappings().first()
    return dict(row) if row else None


# PostgreSQL: one statement for any number of ids (an array parameter), so the server prepares it once
# per connection instead of planning a new IN list for every batch size.
_LATEST_ANY = (
    select(*_SCORE_FIELDS)
    .select_from(entities.join(scores, scores.c.id == entities.c.score_id))
    .where(entities.c.entity_id == any_(bindparam("entity_ids", type_=postgresql.ARRAY(String))))
)


def latest_scores(conn: Connection, entity_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest score rows of many entities, keyed by entity id (unknown ids are left out); each row
    is what ``latest_score`` gives for that id."""
    found: dict[str, dict[str, Any]] = {}
    postgres = conn.dialect.name == "postgresql"
    size = 10_000 if postgres else 500
    for start in range(0, len(entity_ids), size):
        chunk = list(entity_ids[start : start + size])
        if postgres:
            result = conn.execute(_LATEST_ANY, {"entity_ids": chunk}).mappings()
        else:
            result = conn.execute(
                select(*_SCORE_FIELDS)
                .select_from(entities.join(scores, scores.c.id == entities.c.score_id))
                .where(entities.c.entity_id.in_(chunk))
            ).mappings()
        for row in result:
            found[row["entity_id"]] = dict(row)
    return found


def run_row(conn: Connection, run_id: int, *, with_policy: bool = False) -> dict[str, Any] | None:
    """One score run's metadata (and its policy text when ``with_policy``)."""
    columns = list(score_runs.c) if with_policy else [c for c in score_runs.c if c.name != "policy_text"]
    row = conn.execute(select(*columns).where(score_runs.c.id == run_id)).mappings().first()
    return dict(row) if row else None


def entity_row(conn: Connection, entity_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(entities).where(entities.c.entity_id == entity_id)).mappings().first()
    return dict(row) if row else None
