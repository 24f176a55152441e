"""The database side of "双随机、一公开": populations, stored draws, the roster, inspection results.

A draw reads its population (entities with a current tier, filtered) in canonical order straight into
numpy arrays, runs ``serving.sampling``, and bulk-writes the draw, its compressed population snapshot
and the selected rows in one transaction (COPY on PostgreSQL, executemany on SQLite): no per-row
objects, so a million-entity draw takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select, update

from models.policy import TIERS, Policy
from serving import sampling
from serving.audit import record_change
from serving.auth import Principal
from serving.db import draw_selections, draws, entities, inspection_results, inspectors, populations, score_runs
from serving.sampling import Allocation, Roster, SamplingError

SNAPSHOT_FORMAT = b"ipcredit-population-v1\n"


class NotFound(LookupError):
    """No such stored object (404)."""


class Conflict(RuntimeError):
    """The request conflicts with what is stored (409)."""


# ---- population ---------------------------------------------------------------------------------------

# One fixed-width record per scored entity: what a draw filters on, packed by the database itself.
RECORD = np.dtype(
    [("entity_id", "S18"), ("tier", "S1"), ("region", "S6"), ("industry", "S1"), ("kind", "S1"), ("online", "S1")]
)
_RECORD_SQL = (
    "entity_id || tier || substr(region || '      ', 1, 6) || substr(industry || ' ', 1, 1)"
    " || substr(kind, 1, 1) || CASE WHEN online_seller THEN '1' ELSE '0' END"
)


def _load_records(conn: Connection) -> np.ndarray:
    """Every scored entity's sampling attributes as a ``RECORD`` array sorted by entity id.

    The database concatenates the fixed-width records into one string (``group_concat`` /
    ``string_agg``), which numpy reads without a Python object per row.
    """
    if conn.dialect.name == "postgresql":
        sql = f"SELECT count(*), string_agg({_RECORD_SQL}, '' ORDER BY entity_id) FROM entities WHERE tier IS NOT NULL"
    else:
        sql = (
            f"SELECT count(*), group_concat(rec, '') FROM (SELECT {_RECORD_SQL} AS rec FROM entities "
            "WHERE tier IS NOT NULL ORDER BY entity_id)"
        )
    count, packed = conn.exec_driver_sql(sql).one()
    data = (packed or "").encode("utf-8")
    if len(data) != count * RECORD.itemsize:  # an id or code of unexpected width: read row by row
        return _load_rows(conn)
    records = np.frombuffer(data, dtype=RECORD).copy()
    if not sampling.is_sorted(records["entity_id"]):
        records = records[np.argsort(records["entity_id"], kind="stable")]
    return records


def _load_rows(conn: Connection) -> np.ndarray:
    stmt = select(
        entities.c.entity_id,
        entities.c.tier,
        entities.c.region,
        entities.c.industry,
        entities.c.kind,
        entities.c.online_seller,
    ).where(entities.c.tier.is_not(None))
    rows = conn.execute(stmt).all()
    records = np.zeros(len(rows), dtype=RECORD)
    if rows:
        ids, tiers, regions, industries, kinds, online = zip(*rows, strict=True)
        records["entity_id"] = [i.encode() for i in ids]
        records["tier"] = [t.encode() for t in tiers]
        records["region"] = [r.encode()[:6] for r in regions]
        records["industry"] = [i.encode()[:1] for i in industries]
        records["kind"] = [k.encode()[:1] for k in kinds]
        records["online"] = [b"1" if o else b"0" for o in online]
    return records[np.argsort(records["entity_id"], kind="stable")]


class PopulationCache:
    """The scored entities' sampling attributes, kept in memory between draws.

    Entities and their tiers only change when a score run is saved (a batch run, an import or an
    objection's rescore), so the cache is keyed by the newest run id and reloaded when it moves; every
    draw checks that key first, across processes too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._records: np.ndarray | None = None

    @staticmethod
    def _version(conn: Connection) -> tuple[Any, ...]:
        return tuple(conn.execute(select(func.max(score_runs.c.id), func.count(score_runs.c.id))).one())

    def records(self, conn: Connection) -> np.ndarray:
        key = self._version(conn)
        if self._records is not None and key == self._key:
            return self._records
        with self._lock:
            if self._records is None or key != self._key:
                self._records = _load_records(conn)
                self._key = key
            return self._records


def population(
    conn: Connection, filter_: dict[str, Any], cache: PopulationCache | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entity ids (``S18``), tiers (``S1``) and regions (``S6``) of the filtered population, sorted by id."""
    records = (cache or PopulationCache()).records(conn)
    mask = np.ones(len(records), dtype=bool)
    if filter_.get("region"):
        prefix = filter_["region"].encode()
        mask &= records["region"].astype(f"S{len(prefix)}") == prefix
    if filter_.get("industry"):
        mask &= records["industry"] == filter_["industry"].encode()
    if filter_.get("kind"):
        mask &= records["kind"] == filter_["kind"].encode()[:1]
    if filter_.get("online_seller") is not None:
        mask &= records["online"] == (b"1" if filter_["online_seller"] else b"0")
    chosen = records[mask]
    return chosen["entity_id"].copy(), chosen["tier"].copy(), chosen["region"].copy()


def _compiled(conn: Connection, stmt) -> tuple[str, Any]:
    """``stmt`` as driver SQL and parameters (skips per-row result processing on big reads)."""
    compiled = stmt.compile(dialect=conn.dialect)
    if conn.dialect.paramstyle in ("qmark", "numeric", "format"):
        return str(compiled), tuple(compiled.params[name] for name in compiled.positiontup or ())
    return str(compiled), dict(compiled.params)


def _payload(ids: np.ndarray, tiers: np.ndarray) -> bytes:
    return ids.astype("S18").tobytes() + tiers.astype("S1").tobytes()


def store_snapshot(conn: Connection, ids: np.ndarray, tiers: np.ndarray) -> str:
    """Store the population (ids then tiers, zlib) unless an identical one is stored; return its sha256."""
    payload = _payload(ids, tiers)
    digest = hashlib.sha256(payload).hexdigest()
    known = conn.execute(select(populations.c.hash).where(populations.c.hash == digest)).scalar()
    if known is None:
        conn.execute(
            populations.insert().values(
                hash=digest,
                size=len(ids),
                snapshot=zlib.compress(SNAPSHOT_FORMAT + payload, 1),
                created_at=datetime.now(UTC),
            )
        )
    return digest


def read_snapshot(blob: bytes) -> tuple[np.ndarray, np.ndarray, str]:
    data = zlib.decompress(blob)
    if not data.startswith(SNAPSHOT_FORMAT):
        raise ValueError("unknown population snapshot format")
    payload = data[len(SNAPSHOT_FORMAT) :]
    n = len(payload) // 19
    ids = np.frombuffer(payload[: 18 * n], dtype="S18")
    tiers = np.frombuffer(payload[18 * n :], dtype="S1")
    return ids, tiers, hashlib.sha256(payload).hexdigest()


def _snapshot_of(conn: Connection, digest: str) -> bytes:
    return conn.execute(select(populations.c.snapshot).where(populations.c.hash == digest)).scalar_one()


# ---- roster ---------------------------------------------------------------------------------------------


def load_roster(conn: Connection) -> tuple[Roster, str]:
    """The active inspectors in canonical order and a hash of the roster (stored with each draw)."""
    rows = conn.execute(
        select(inspectors.c.inspector_id, inspectors.c.region, inspectors.c.conflicts)
        .where(inspectors.c.active.is_(True))
        .order_by(inspectors.c.inspector_id)
    ).all()
    conflicts = [frozenset(json.loads(r.conflicts or "[]")) for r in rows]
    roster = Roster(ids=[r.inspector_id for r in rows], regions=[r.region for r in rows], conflicts=conflicts)
    canonical = json.dumps([[i, r, sorted(c)] for i, r, c in zip(roster.ids, roster.regions, conflicts, strict=True)])
    return roster, hashlib.sha256(canonical.encode()).hexdigest()


def save_roster(conn: Connection, people: Sequence[dict[str, Any]], *, replace: bool) -> int:
    """Insert or update inspectors; with ``replace`` deactivate everyone not listed. Returns active count."""
    now = datetime.now(UTC)
    listed = [p["inspector_id"] for p in people]
    if len(listed) != len(set(listed)):
        raise SamplingError("inspectors must have unique inspector_id values", ("body", "inspectors"))
    existing = set(conn.execute(select(inspectors.c.inspector_id)).scalars())
    for person in people:
        values = {
            "name": person["name"],
            "region": person.get("region"),
            "active": bool(person.get("active", True)),
            "conflicts": json.dumps(sorted(set(person.get("conflicts") or []))),
            "updated_at": now,
        }
        if person["inspector_id"] in existing:
            conn.execute(update(inspectors).where(inspectors.c.inspector_id == person["inspector_id"]).values(values))
        else:
            conn.execute(inspectors.insert().values(inspector_id=person["inspector_id"], **values))
    if replace:
        conn.execute(
            update(inspectors)
            .where(inspectors.c.inspector_id.not_in(listed), inspectors.c.active.is_(True))
            .values(active=False, updated_at=now)
        )
    return conn.execute(select(func.count()).select_from(inspectors).where(inspectors.c.active.is_(True))).scalar_one()


def roster_rows(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(inspectors).order_by(inspectors.c.inspector_id)).mappings().all()
    return [
        {
            "inspector_id": r["inspector_id"],
            "name": r["name"],
            "region": r["region"],
            "active": r["active"],
            "conflicts": json.loads(r["conflicts"] or "[]"),
        }
        for r in rows
    ]


# ---- draws ----------------------------------------------------------------------------------------------


def _tier_strs(tiers: np.ndarray) -> list[str]:
    return [t.decode() for t in tiers.tolist()]


def make_draw(
    engine: Engine,
    policy: Policy,
    *,
    seed: int | None,
    ratios: dict[str, float] | None,
    budget: int | None,
    filter_: dict[str, Any],
    inspectors_per_entity: int | None,
    avoid_same_region: bool,
    principal: Principal | None,
    cache: PopulationCache | None = None,
) -> dict[str, Any]:
    """Draw, store and return a sample (the ``Draw`` response as a plain dict)."""
    rules = policy.sampling
    seed = secrets.randbelow(2**53) if seed is None else int(seed)
    per_entity = inspectors_per_entity or rules.inspectors_per_entity
    if per_entity < rules.inspectors_per_entity:
        raise SamplingError(
            f"inspectors_per_entity must be at least the policy's {rules.inspectors_per_entity}; got {per_entity}",
            ("body", "inspectors_per_entity"),
        )
    with engine.connect() as conn:
        ids, tiers, regions = population(conn, filter_, cache)
        roster, roster_hash = load_roster(conn)
    counts = sampling.population_counts(tiers)
    if budget is not None:
        allocation = sampling.allocate_budget(counts, rules, budget)
        mode = "budget"
    else:
        allocation = sampling.allocate_ratios(counts, sampling.resolve_ratios(rules, ratios))
        mode = "ratios"
    picked = sampling.select(ids, tiers, allocation, seed)
    if len(picked) and len(roster) < per_entity:
        raise Conflict(
            f"the inspector roster has {len(roster)} active inspectors and each entity needs {per_entity}: "
            "load a roster first (PUT /v1/admin/inspectors or `ipcredit inspectors load`)"
        )
    chosen_ids = [i.decode() for i in ids[picked].tolist()]
    chosen_tiers = _tier_strs(tiers[picked])
    chosen_regions = [r.decode() for r in regions[picked].tolist()]
    team = sampling.assign_inspectors(
        roster,
        chosen_ids,
        chosen_regions,
        per_entity=per_entity,
        seed=seed,
        avoid_same_region=avoid_same_region,
    )
    probability = allocation.probabilities
    draw_id = uuid.uuid4().hex
    created_at = datetime.now(UTC)
    applied = {t: round(probability[t], 10) if counts[t] else round(allocation.targets[t], 10) for t in TIERS}
    inspector_ids = np.asarray(roster.ids, dtype=object)
    teams = inspector_ids[team].tolist() if len(team) else []
    selection_rows = [
        (draw_id, position, entity_id, tier, probability[tier], ";".join(teams[position]))
        for position, (entity_id, tier) in enumerate(zip(chosen_ids, chosen_tiers, strict=True))
    ]
    record = {
        "id": draw_id,
        "created_at": created_at,
        "created_by": principal.actor if principal else None,
        "seed": seed,
        "policy_version": policy.version_tag,
        "mode": mode,
        "budget": budget,
        "ratios": json.dumps(applied),
        "filter": json.dumps(filter_, ensure_ascii=False),
        "population": json.dumps(counts),
        "population_size": len(ids),
        "population_hash": None,
        "inspectors_per_entity": per_entity,
        "avoid_same_region": avoid_same_region,
        "roster_hash": roster_hash,
        "selected_count": len(selection_rows),
    }
    with engine.begin() as conn:
        population_hash = record["population_hash"] = store_snapshot(conn, ids, tiers)
        conn.execute(draws.insert(), [record])
        _bulk_insert(
            conn,
            draw_selections,
            ("draw_id", "position", "entity_id", "tier", "inclusion_probability", "inspectors"),
            selection_rows,
        )
        record_change(
            conn,
            principal,
            "draw.create",
            f"draw/{draw_id}",
            {"seed": seed, "filter": filter_, "mode": mode, "selected": len(selection_rows)},
        )
    return {
        "draw_id": draw_id,
        "created_at": created_at,
        "created_by": record["created_by"],
        "seed": seed,
        "policy_version": policy.version_tag,
        "mode": mode,
        "budget": budget,
        "ratios": applied,
        "filter": filter_,
        "population": counts,
        "population_size": len(ids),
        "population_hash": population_hash,
        "inspectors_per_entity": per_entity,
        "avoid_same_region": avoid_same_region,
        "roster_hash": roster_hash,
        "selected_count": len(selection_rows),
        "selected": [
            {
                "entity_id": row[2],
                "tier": row[3],
                "inclusion_probability": row[4],
                "inspectors": teams[row[1]],
                "result": None,
            }
            for row in selection_rows
        ],
    }


def _bulk_insert(conn: Connection, table, columns: Sequence[str], rows: list[tuple]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def _draw_record(conn: Connection, draw_id: str) -> dict[str, Any]:
    row = conn.execute(select(draws).where(draws.c.id == draw_id)).mappings().first()
    if row is None:
        raise NotFound(f"draw {draw_id} not found")
    return dict(row)


def _results(conn: Connection, draw_id: str) -> dict[str, str]:
    rows = conn.execute(
        select(inspection_results.c.entity_id, inspection_results.c.event_type).where(
            inspection_results.c.draw_id == draw_id
        )
    ).all()
    return {r.entity_id: r.event_type.removeprefix("inspection_") for r in rows}


def get_draw(conn: Connection, draw_id: str, *, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
    """A stored draw with its selected entities (``offset``/``limit`` page through them)."""
    record = _draw_record(conn, draw_id)
    stmt = (
        select(
            draw_selections.c.entity_id,
            draw_selections.c.tier,
            draw_selections.c.inclusion_probability,
            draw_selections.c.inspectors,
        )
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.position)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    results = _results(conn, draw_id)
    selected = [
        {
            "entity_id": e,
            "tier": t,
            "inclusion_probability": p,
            "inspectors": team.split(";") if team else [],
            "result": results.get(e),
        }
        for e, t, p, team in conn.exec_driver_sql(*_compiled(conn, stmt)).fetchall()
    ]
    return {**_summary(record), "selected": selected}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "draw_id": record["id"],
        "created_at": record["created_at"],
        "created_by": record["created_by"],
        "seed": record["seed"],
        "policy_version": record["policy_version"],
        "mode": record["mode"],
        "budget": record["budget"],
        "ratios": json.loads(record["ratios"]),
        "filter": json.loads(record["filter"]),
        "population": json.loads(record["population"]),
        "population_size": record["population_size"],
        "population_hash": record["population_hash"],
        "inspectors_per_entity": record["inspectors_per_entity"],
        "avoid_same_region": record["avoid_same_region"],
        "roster_hash": record["roster_hash"],
        "selected_count": record["selected_count"],
    }


def public_draw(conn: Connection, draw_id: str) -> dict[str, Any]:
    """The publishable draw: seed, population size, selected ids and names, results; no score or tier."""
    record = _draw_record(conn, draw_id)
    results = _results(conn, draw_id)
    rows = conn.execute(
        select(draw_selections.c.entity_id, entities.c.name)
        .select_from(draw_selections.outerjoin(entities, entities.c.entity_id == draw_selections.c.entity_id))
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.entity_id)
    ).all()
    return {
        "draw_id": record["id"],
        "created_at": record["created_at"],
        "seed": record["seed"],
        "policy_version": record["policy_version"],
        "filter": json.loads(record["filter"]),
        "population_size": record["population_size"],
        "population_hash": record["population_hash"],
        "selected_count": record["selected_count"],
        "selected": [{"entity_id": e, "name": name or "", "result": results.get(e)} for e, name in rows],
    }


def population_csv(conn: Connection, draw_id: str) -> str:
    """The draw's stored population as CSV (entity_id, tier): enough for anyone to re-run the draw."""
    record = _draw_record(conn, draw_id)
    ids, tiers, _ = read_snapshot(_snapshot_of(conn, record["population_hash"]))
    frame = pd.DataFrame({"entity_id": ids.astype(str), "tier": tiers.astype(str)})
    return frame.to_csv(index=False)


def verify_draw(conn: Connection, draw_id: str) -> dict[str, Any]:
    """Re-run the stored draw's selection from its snapshot and seed; report whether it matches."""
    record = _draw_record(conn, draw_id)
    ids, tiers, digest = read_snapshot(_snapshot_of(conn, record["population_hash"]))
    stored = conn.execute(
        select(draw_selections.c.entity_id, draw_selections.c.tier)
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.position)
    ).all()
    counts = {t: 0 for t in TIERS}
    for _, tier in stored:
        counts[tier] += 1
    allocation = Allocation(sampling.population_counts(tiers), counts, {})
    picked = sampling.select(ids, tiers, allocation, int(record["seed"]))
    rerun = [i.decode() for i in ids[picked].tolist()]
    return {
        "draw_id": draw_id,
        "reproduced": rerun == [e for e, _ in stored],
        "population_hash_matches": digest == record["population_hash"],
        "selected_count": len(stored),
    }


# ---- inspection results -> events ---------------------------------------------------------------------


def record_results(
    engine: Engine, draw_id: str, results: Sequence[dict[str, Any]], principal: Principal | None
) -> list[dict[str, Any]]:
    """Store inspection outcomes of a draw as ``inspection_passed``/``inspection_failed`` events."""
    today = datetime.now(UTC).date()
    with engine.begin() as conn:
        _draw_record(conn, draw_id)
        wanted = [r["entity_id"] for r in results]
        if len(wanted) != len(set(wanted)):
            raise SamplingError("results must name each entity once", ("body", "results"))
        selected = (
            set(
                conn.execute(
                    select(draw_selections.c.entity_id).where(
                        draw_selections.c.draw_id == draw_id, draw_selections.c.entity_id.in_(wanted)
                    )
                ).scalars()
            )
            if len(wanted) <= 30_000
            else set(
                conn.execute(select(draw_selections.c.entity_id).where(draw_selections.c.draw_id == draw_id)).scalars()
            )
        )
        for i, r in enumerate(results):
            if r["entity_id"] not in selected:
                raise SamplingError(
                    f"entity {r['entity_id']} was not selected in draw {draw_id}",
                    ("body", "results", i, "entity_id"),
                )
            recorded = r.get("recorded_on") or today
            if recorded < r["inspected_on"]:
                raise SamplingError(
                    "recorded_on must be on or after inspected_on", ("body", "results", i, "recorded_on")
                )
        done = set(_results(conn, draw_id))
        again = [e for e in wanted if e in done]
        if again:
            raise Conflict(f"results for {again[:5]} in draw {draw_id} are already recorded")
        now = datetime.now(UTC)
        events = []
        for r in results:
            event = {
                "event_id": f"INS-{draw_id[:12]}-{r['entity_id']}",
                "entity_id": r["entity_id"],
                "event_type": f"inspection_{r['outcome']}",
                "occurred_on": r["inspected_on"],
                "recorded_on": r.get("recorded_on") or today,
                "amount": r.get("amount"),
            }
            events.append(event)
            conn.execute(
                inspection_results.insert().values(
                    **event,
                    draw_id=draw_id,
                    findings=r.get("findings"),
                    recorded_by=principal.actor if principal else None,
                    recorded_at=now,
                )
            )
        record_change(conn, principal, "draw.results", f"draw/{draw_id}", {"results": len(events)})
    return [{**e, "quantity": 1, "repaired_on": None} for e in events]


EVENT_COLUMNS = (
    "event_id",
    "entity_id",
    "event_type",
    "occurred_on",
    "recorded_on",
    "quantity",
    "amount",
    "repaired_on",
)


def export_events(conn: Connection, *, since: date | None = None) -> pd.DataFrame:
    """Inspection results as an events table following CONTRACT section 1 (for the next scoring run)."""
    stmt = select(
        inspection_results.c.event_id,
        inspection_results.c.entity_id,
        inspection_results.c.event_type,
        inspection_results.c.occurred_on,
        inspection_results.c.recorded_on,
        inspection_results.c.amount,
    ).order_by(inspection_results.c.recorded_on, inspection_results.c.event_id)
    if since is not None:
        stmt = stmt.where(inspection_results.c.recorded_on >= since)
    rows = conn.execute(stmt).mappings().all()
    frame = pd.DataFrame(
        [dict(r) for r in rows], columns=[c for c in EVENT_COLUMNS if c not in ("quantity", "repaired_on")]
    )
    frame["quantity"] = 1
    frame["repaired_on"] = None
    return frame[list(EVENT_COLUMNS)]
