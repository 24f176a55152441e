"""The inspector roster: who may be dealt out to inspect, their home regions and conflicts of interest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from features.errors import InvalidInput
from serving.db import inspectors
from serving.sampling import Roster


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
        raise InvalidInput.at("inspectors", "inspectors must have unique inspector_id values")
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
    return active_count(conn)


def active_count(conn: Connection) -> int:
    """How many inspectors are active."""
    return conn.execute(select(func.count()).select_from(inspectors).where(inspectors.c.active.is_(True))).scalar_one()


def roster_rows(conn: Connection, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """The inspectors, active or not, by id (a page of them with ``limit``/``offset``)."""
    stmt = select(inspectors).order_by(inspectors.c.inspector_id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = conn.execute(stmt).mappings().all()
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
