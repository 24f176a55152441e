"""Saving and reading score runs, entities and list entries.

``save_score_run(target, ScoreRunRecord(...))`` is the one way a run gets into the database:
``ipcredit score --store`` calls it, ``POST /v1/score-runs`` calls it, and an objection decision calls it
for the rescored row. A run is an immutable snapshot: every score row keeps its features, contributions,
base value, reasons, fired rules and the model, policy and feature versions, and the run keeps the policy
text and the dataset's fingerprint, so a reviewer sees exactly what produced a tier and a correction can
rescore with the same model and policy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, String, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from features.errors import InvalidInput
from features.schema import ENTITIES, ENTITY_ID_LENGTH, LISTS, REGION_PATTERN, ColumnType
from models.policy import TIERS
from models.scorefile import SCORE_COLUMNS  # CONTRACT section 4: the score file columns
from serving import dates
from serving.audit import record_change
from serving.auth import Principal
from serving.db import bulk_insert, entities, list_entries, long_statements, score_runs, scores
from serving.populations import save_population_records

# What an explanation needs beyond the contract columns (optional: a bare score file has none of them).
EXPLANATION_COLUMNS: tuple[str, ...] = ("base_value", "log_odds", "contributions", "features")
RunKind = Literal["batch", "correction", "repair"]
RUN_KINDS: tuple[RunKind, ...] = ("batch", "correction", "repair")
_CHUNK = 20_000


class StoreError(InvalidInput):
    """The run handed to the store does not have what a score run needs (its frames, as a whole)."""


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


def _ints(column: pd.Series) -> list[int | None]:
    return [None if v is None else int(v) for v in _floats(column)]


def _strs(column: pd.Series) -> list[str]:
    return column.astype(str).tolist()


# A contract column's values as the database columns take them.
_CONVERT = {
    ColumnType.STR: _strs,
    ColumnType.DATE: _dates,
    ColumnType.FLOAT: _floats,
    ColumnType.BOOL: _bools,
    ColumnType.INT: _ints,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection):
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StoreError(f"{what} must have columns {list(columns)}; missing {missing}")


@dataclass(frozen=True)
class ScoreRunRecord:
    """One scoring run as it is saved: the scored rows, the dataset they came from, and the versions.

    ``scores`` has the CONTRACT score columns and, for explanations, ``base_value``, ``log_odds``,
    ``contributions`` and ``features`` (JSON text or dicts); its ``policy_version`` and
    ``feature_version`` columns, when present, must agree with the fields. ``entities`` is the dataset's
    entities table: the store keeps each entity's attributes (for sampling filters and public names) and
    points it at its latest score. ``lists``, when given, is the dataset's lists table, kept for the
    public lists. An objection decision saves a ``correction`` or ``repair`` run linked to its
    ``parent_run_id`` and ``objection_id``, whose rows ``supersedes`` (entity id -> score row id) replace.
    """

    scores: pd.DataFrame
    entities: pd.DataFrame
    as_of: date
    dataset_fingerprint: str
    data_source: str
    policy_text: str
    policy_version: str
    model_version: str
    feature_version: str
    lists: pd.DataFrame | None = None
    kind: RunKind = "batch"
    created_by: str | None = None
    parent_run_id: int | None = None
    objection_id: int | None = None
    supersedes: Mapping[str, int] = field(default_factory=dict)
    ledger_seq: int | None = None  # the ledger decisions the features applied (seq <= this); None: none read
    ledger_conflicts: str | None = None  # JSON: where the delivery and the ledger disagreed
    data_end: date | None = None  # the delivery's last record (``Dataset.data_end``)


def save_score_run(target: Engine | Session | Connection, run: ScoreRunRecord) -> int:
    """Save one scoring run and return its id; ``StoreError`` when ``run`` lacks what a run needs.

    With an ``Engine`` the run is written in its own transaction; with a ``Session`` or ``Connection``
    the caller's transaction is used and the caller commits.
    """
    _check(run)
    if isinstance(target, Engine):
        with target.begin() as conn:
            return _save(conn, run)
    if isinstance(target, Session):
        return _save(target.connection(), run)
    return _save(target, run)


def save_audited(
    engine: Engine, run: ScoreRunRecord, principal: Principal | None, *, statement_timeout_ms: int = 0, **detail: Any
) -> int:
    """Save ``run`` and its audit row (``score_run.create`` by ``principal``) in one transaction; its id.
    ``statement_timeout_ms`` lifts the service's statement timeout for this (long) transaction."""
    _check(run)
    with engine.begin() as conn:
        long_statements(conn, statement_timeout_ms)
        run_id = _save(conn, run)
        facts = {"dataset": run.data_source, "as_of": run.as_of.isoformat(), "rows": len(run.scores), **detail}
        record_change(conn, principal, "score_run.create", f"score-run/{run_id}", facts)
    return run_id


def _check(run: ScoreRunRecord) -> None:
    frame, entity_frame = run.scores, run.entities
    if run.kind not in RUN_KINDS:
        raise StoreError(f"kind must be one of {list(RUN_KINDS)}; got {run.kind!r}")
    _require(frame, SCORE_COLUMNS, "scores")
    _require(entity_frame, [c.name for c in ENTITIES.columns if not c.nullable], "entities")
    for column, expected in (("policy_version", run.policy_version), ("feature_version", run.feature_version)):
        if column in frame.columns and len(frame):
            found = set(frame[column].astype(str))
            if found != {expected}:
                raise StoreError(f"scores.{column} must be {expected!r} throughout; got {sorted(found)[:3]}")
    for part, what in ((frame, "scores"), (entity_frame, "entities")):
        widths = part["entity_id"].astype(str).str.len()
        if len(part) and (widths != ENTITY_ID_LENGTH).any():
            raise StoreError(
                f"{what}.entity_id must be {ENTITY_ID_LENGTH}-character codes; "
                f"got {part['entity_id'][widths != ENTITY_ID_LENGTH].iloc[0]!r}"
            )
    regions = entity_frame["region"].astype(str)
    well_formed = regions.str.fullmatch(REGION_PATTERN)
    if len(entity_frame) and not well_formed.all():
        raise StoreError(f"entities.region must be 6-digit codes; got {regions[~well_formed].iloc[0]!r}")
    if frame["entity_id"].duplicated().any():
        raise StoreError("scores must have one row per entity_id")
    # What every caller's rows must satisfy, whatever checked them before (an import checks row by row:
    # serving/runs.py): a tier outside A-D would exempt an entity from every draw, a date after today
    # would make its run the latest for ever.
    for column in ("model_tier", "tier"):
        odd = ~frame[column].astype(str).isin(TIERS)
        if odd.any():
            raise StoreError(f"scores.{column} must be one of {list(TIERS)}; got {frame[column][odd].iloc[0]!r}")
    score = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    if len(frame) and not (np.isfinite(score) & (score >= 0) & (score <= 1)).all():
        raise StoreError("scores.score must lie in [0, 1] throughout")
    if problem := dates.problem(run.as_of):
        raise StoreError(f"as_of {problem}")
    if "as_of" in frame.columns and len(frame):
        try:
            latest = max((d for d in _dates(frame["as_of"]) if d is not None), default=None)
        except (ValueError, OverflowError):  # not dates, or dates beyond what pandas can hold (2999)
            raise StoreError("scores.as_of must be dates written YYYY-MM-DD, none after today") from None
        if latest is not None and (problem := dates.problem(latest)):
            raise StoreError(f"scores.as_of {problem}")
    unknown = set(frame["entity_id"]) - set(entity_frame["entity_id"])
    if unknown:
        raise StoreError(f"scores name entities missing from the entities table, e.g. {sorted(unknown)[:3]}")


def _save(conn: Connection, run: ScoreRunRecord) -> int:
    run_id = conn.execute(
        score_runs.insert()
        .values(
            created_at=_now(),
            created_by=run.created_by,
            kind=run.kind,
            as_of=run.as_of,
            dataset_fingerprint=run.dataset_fingerprint,
            data_source=run.data_source,
            policy_version=run.policy_version,
            policy_text=run.policy_text,
            model_version=str(run.model_version),
            feature_version=run.feature_version,
            row_count=len(run.scores),
            parent_run_id=run.parent_run_id,
            objection_id=run.objection_id,
            ledger_seq=run.ledger_seq,
            ledger_conflicts=run.ledger_conflicts,
            data_end=run.data_end,
        )
        .returning(score_runs.c.id)
    ).scalar_one()

    frame = run.scores
    n = len(frame)
    row_as_of = _dates(frame["as_of"]) if "as_of" in frame.columns else [run.as_of] * n
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
    columns["supersedes_id"] = [run.supersedes.get(e) for e in columns["entity_id"]]
    columns["ledger_seq"] = [run.ledger_seq] * n
    columns["run_id"] = [run_id] * n
    columns["policy_version"] = [run.policy_version] * n
    columns["feature_version"] = [run.feature_version] * n
    bulk_insert(conn, scores.name, columns)

    _upsert_entities(conn, run.entities, run_id)
    if run.lists is not None:
        save_list_entries(conn, run.lists, run_id=run_id)
    save_population_records(conn, run_id, len(frame))
    return run_id


# A newer score (later as_of, or the same as_of and a later row) takes over; an older run imported later
# leaves the entity's latest score alone. Entity attributes always take the newest import.
_TAKES_OVER = (
    "excluded.score_id IS NOT NULL AND (entities.score_as_of IS NULL OR excluded.score_as_of > entities.score_as_of"
    " OR (excluded.score_as_of = entities.score_as_of AND excluded.score_id > entities.score_id))"
)
# The entity's attributes: every contract column of the entities table but its key.
_ATTRIBUTES = tuple(c for c in ENTITIES.columns if c.name != ENTITIES.key)
_ENTITY_UPSERT = "ON CONFLICT (entity_id) DO UPDATE SET " + ", ".join(
    [f"{c.name} = excluded.{c.name}" for c in _ATTRIBUTES]
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
        # A nullable column the frame leaves out (an optional one such as locations) is unknown.
        **{c.name: _CONVERT[c.type](frame[c.name]) if c.name in frame else [None] * len(frame) for c in _ATTRIBUTES},
        "score_id": [f[0] for f in found],
        "tier": [f[1] for f in found],
        "score_as_of": [f[2] for f in found],
    }
    bulk_insert(conn, entities.name, columns, on_conflict=_ENTITY_UPSERT)


def save_list_entries(conn: Connection, frame: pd.DataFrame, *, run_id: int | None = None) -> int:
    """Insert or update list entries (key: entity, list, entered_on); return how many were given."""
    _require(frame, LISTS.column_names, "lists")
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
    # A removal, once stored (by a delivery or a ledger decision), stays as it is: a later import of an
    # older delivery never resurrects the entry nor moves its removal date.
    stmt = stmt.on_conflict_do_update(
        index_elements=[list_entries.c.entity_id, list_entries.c.list, list_entries.c.entered_on],
        set_={
            "removed_on": func.coalesce(list_entries.c.removed_on, stmt.excluded.removed_on),
            "basis": stmt.excluded.basis,
            "run_id": stmt.excluded.run_id,
        },
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


# The entity's region comes with its latest row: what a region-scoped caller's check needs.
_REGION = entities.c.region.label("entity_region")


def _latest_statement(full: bool):
    columns = list(scores.c) if full else _SCORE_FIELDS
    return (
        select(*columns, _REGION)
        .select_from(entities.join(scores, scores.c.id == entities.c.score_id))
        .where(entities.c.entity_id == bindparam("entity_id"))
    )


_LATEST = {False: _latest_statement(False), True: _latest_statement(True)}


def latest_score(conn: Connection, entity_id: str, *, full: bool = False) -> dict[str, Any] | None:
    """The entity's latest score row (with its ``entity_region``), or ``None`` when the entity has never
    been scored.

    The statement is built once; per call SQLAlchemy only looks up its compiled form (the risk lookup is
    the service's hottest path).
    """
    row = conn.execute(_LATEST[full], {"entity_id": entity_id}).mappings().first()
    return dict(row) if row else None


# PostgreSQL: one statement for any number of ids (an array parameter), so the server prepares it once
# per connection instead of planning a new IN list for every batch size.
_LATEST_ANY = (
    select(*_SCORE_FIELDS, _REGION)
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
                select(*_SCORE_FIELDS, _REGION)
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
