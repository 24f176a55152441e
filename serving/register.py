"""The public register of draws (一公开): draws nobody can steer, every one of them public, each checkable.

**Nobody chooses a seed.** A draw's seed is ``sampling.derive_seed`` of its published inputs
(``seed_inputs``): its sequence number in the register and the previous record's hash, the secret this
draw reveals, the policy version, the filter, the requested ratios or budget, the inspectors per entity,
``avoid_same_region``, the roster's hash and the population's size. The secret is 32 random bytes drawn
when the *previous* draw was made, and its SHA-256 was published then (``next_secret_hash``; before the
first draw, at service start): so the seed is fixed before anyone asks for the draw, the caller cannot
compute it in advance (the secret is unknown until revealed), and the service cannot grind for a seed it
likes (the secret was committed before). A request carrying a ``seed`` is refused.

**Every draw is in the register.** A draw is written in one transaction with its record and the
commitment to the next secret, under a lock (PostgreSQL advisory lock, SQLite's write lock), so sequence
numbers have no gaps and each record hashes the one before it (``record_hash`` over the canonical JSON
of ``record_of``). The tables are append-only (database triggers). A draw made and disliked cannot be
discarded: it stays in ``GET /v1/public/draws``, newest first, paged in the database.

**Anyone can check a draw.** ``verify`` recomputes the seed from the published inputs, the secret against
its commitment, the chain link, the population commitment from the stored snapshot, the selection by
re-running it (``sampling.reselect``) and the record's hash. The population commitment is
``sha256(salt ‖ ids ‖ tiers)`` with a salt drawn per draw: two draws over the same population publish
different commitments and a published commitment cannot be tested against guessed tiers. The salt goes
with the population snapshot to those who may see tiers (supervisors), never to the public register.
Nothing published names a score or a tier.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from features.errors import NotFound
from serving import sampling
from serving.db import draw_secrets, draw_selections, draws, entities, inspection_outcomes, inspection_results, lock
from serving.populations import payload, snapshot

# The previous hash of the first record in the chain.
GENESIS = "0" * 64


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def head(conn: Connection) -> tuple[int, str]:
    """The next draw's sequence number and the hash of the record before it (``GENESIS`` for none)."""
    last = conn.execute(
        select(draws.c.sequence, draws.c.record_hash).order_by(draws.c.sequence.desc()).limit(1)
    ).first()
    if last is None:
        return 1, GENESIS
    return last.sequence + 1, last.record_hash or GENESIS


def commit(conn: Connection, sequence: int) -> tuple[str, str]:
    """The secret of draw ``sequence`` and its published hash, drawn and committed now if not yet."""
    row = conn.execute(
        select(draw_secrets.c.secret, draw_secrets.c.secret_hash).where(draw_secrets.c.sequence == sequence)
    ).first()
    if row is not None:
        return row.secret, row.secret_hash
    secret = secrets.token_hex(32)
    digest = sha256_hex(bytes.fromhex(secret))
    conn.execute(
        draw_secrets.insert().values(sequence=sequence, secret=secret, secret_hash=digest, created_at=datetime.now(UTC))
    )
    return secret, digest


def commit_next(conn: Connection) -> str:
    """Publish (create if needed) the commitment to the next draw's secret; return its hash. Must be the
    first statement of ``conn``'s transaction (it takes the draws' lock)."""
    lock(conn, "draws")
    sequence, _ = head(conn)
    return commit(conn, sequence)[1]


def seed_inputs(
    *,
    sequence: int,
    previous_hash: str,
    secret: str,
    policy_version: str,
    filter_: dict[str, Any],
    mode: str,
    ratios: dict[str, float] | None,
    budget: int | None,
    inspectors_per_entity: int,
    avoid_same_region: bool,
    roster_hash: str,
    population_size: int,
) -> dict[str, Any]:
    """Everything a draw's seed is derived from, as published."""
    return {
        "sequence": sequence,
        "previous_hash": previous_hash,
        "secret": secret,
        "policy_version": policy_version,
        "filter": filter_,
        "mode": mode,
        "ratios": ratios,
        "budget": budget,
        "inspectors_per_entity": inspectors_per_entity,
        "avoid_same_region": avoid_same_region,
        "roster_hash": roster_hash,
        "population_size": population_size,
    }


def population_commitment(salt: str, ids: np.ndarray, tiers: np.ndarray) -> str:
    """The published hash of a population: ``sha256(salt ‖ ids ‖ tiers)``."""
    return sha256_hex(bytes.fromhex(salt) + payload(ids, tiers))


def selection_hash(entity_ids: list[str]) -> str:
    """The hash of a selection as published: its entity ids sorted, one per line."""
    return sha256_hex("\n".join(sorted(entity_ids)).encode("utf-8"))


def record_of(row: dict[str, Any], selection: str) -> dict[str, Any]:
    """The public record of a ``draws`` row whose selection hashes to ``selection``: what
    ``record_hash`` is over (no score, no tier, no per-tier count)."""
    return {
        "draw_id": row["id"],
        "sequence": row["sequence"],
        "created_at": _iso(row["created_at"]),
        "seed_inputs": json.loads(row["seed_inputs"]) if row["seed_inputs"] else None,
        "seed": int(row["seed"]),
        "population_size": row["population_size"],
        "population_hash": row["population_commitment"],
        "selected_count": row["selected_count"],
        "selection_hash": selection,
        "next_secret_hash": row["next_secret_hash"],
    }


def record_hash(record: dict[str, Any]) -> str:
    return sha256_hex(sampling.canonical_json(record))


def in_utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives it back without a zone, PostgreSQL in the session's)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def _iso(value: datetime) -> str:
    return in_utc(value).isoformat()


# ---- reading the register -----------------------------------------------------------------------------


def draw_row(conn: Connection, draw_id: str) -> dict[str, Any]:
    """The stored ``draws`` row; ``NotFound`` when there is no such draw."""
    row = conn.execute(select(draws).where(draws.c.id == draw_id)).mappings().first()
    if row is None:
        raise NotFound(f"draw {draw_id} not found")
    return dict(row)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "draw_id": row["id"],
        "sequence": row["sequence"],
        "created_at": in_utc(row["created_at"]),
        "policy_version": row["policy_version"],
        "filter": json.loads(row["filter"]),
        "mode": row["mode"],
        "seed": int(row["seed"]),
        "seed_inputs": json.loads(row["seed_inputs"]) if row["seed_inputs"] else None,
        "population_size": row["population_size"],
        "population_hash": row["population_commitment"],
        "selected_count": row["selected_count"],
        "record_hash": row["record_hash"],
        "next_secret_hash": row["next_secret_hash"],
        "chained": row["record_hash"] is not None,
    }


def public_register(conn: Connection, *, limit: int, offset: int) -> dict[str, Any]:
    """A page of the register, newest first, with the commitment to the next draw's secret."""
    total = conn.execute(select(func.count()).select_from(draws)).scalar_one()
    columns = [c for c in draws.c if c.name not in ("population_salt", "population_hash", "roster_hash")]
    rows = conn.execute(select(*columns).order_by(draws.c.sequence.desc()).limit(limit).offset(offset)).mappings()
    sequence, _ = head(conn)
    pending = conn.execute(select(draw_secrets.c.secret_hash).where(draw_secrets.c.sequence == sequence)).scalar()
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_sequence": sequence,
        "next_secret_hash": pending,
        "draws": [_summary(dict(r)) for r in rows],
    }


def results_of(conn: Connection, draw_id: str, entity_ids: list[str] | None = None) -> dict[str, str]:
    """The inspection outcome recorded so far for each entity of the draw (``passed`` / ``failed``)."""
    stmt = select(inspection_results.c.entity_id, inspection_results.c.event_type).where(
        inspection_results.c.draw_id == draw_id
    )
    if entity_ids is not None:
        stmt = stmt.where(inspection_results.c.entity_id.in_(entity_ids))
    return {r.entity_id: r.event_type.removeprefix("inspection_") for r in conn.execute(stmt)}


def public_draw(conn: Connection, draw_id: str, *, limit: int, offset: int) -> dict[str, Any]:
    """The publishable draw: its record, and a page of the selected entities' ids, names and results."""
    row = draw_row(conn, draw_id)
    page = conn.execute(
        select(draw_selections.c.entity_id, entities.c.name)
        .select_from(draw_selections.outerjoin(entities, entities.c.entity_id == draw_selections.c.entity_id))
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.entity_id)
        .limit(limit)
        .offset(offset)
    ).all()
    results = results_of(conn, draw_id, [e for e, _ in page])
    outcomes = {
        r.entity_id: r
        for r in conn.execute(
            select(inspection_outcomes.c.entity_id, inspection_outcomes.c.outcome, inspection_outcomes.c.finding_kind)
            .where(inspection_outcomes.c.draw_id == draw_id)
            .where(inspection_outcomes.c.entity_id.in_([e for e, _ in page]))
        )
    }
    return {
        **_summary(row),
        "limit": limit,
        "offset": offset,
        "selected": [
            {
                "entity_id": e,
                "name": name or "",
                "result": results.get(e),
                "outcome": outcomes[e].outcome if e in outcomes else None,
                "finding_kind": outcomes[e].finding_kind if e in outcomes else None,
            }
            for e, name in page
        ],
    }


def verify(conn: Connection, draw_id: str) -> dict[str, Any]:
    """Re-check a stored draw from what is published and the stored snapshot: each check, and whether all
    hold (``verified``). A draw made before the register has only its selection to re-run."""
    row = draw_row(conn, draw_id)
    ids, tiers, digest = snapshot(conn, row["population_hash"])
    stored = conn.execute(
        select(draw_selections.c.entity_id, draw_selections.c.tier)
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.position)
    ).all()
    counts: dict[str, int] = {}
    for _, tier in stored:
        counts[tier] = counts.get(tier, 0) + 1
    selected = [e for e, _ in stored]
    reproduced = sampling.reselect(ids, tiers, counts, int(row["seed"])) == selected
    checks = {
        "selection_reproduced": reproduced,
        "selected_count_matches": len(selected) == row["selected_count"],
        "population_matches": digest == row["population_hash"] and len(ids) == row["population_size"],
    }
    inputs = json.loads(row["seed_inputs"]) if row["seed_inputs"] else None
    if inputs is not None:
        sequence = row["sequence"]
        previous = conn.execute(
            select(draws.c.record_hash, draws.c.next_secret_hash).where(draws.c.sequence == sequence - 1)
        ).first()
        committed = conn.execute(select(draw_secrets.c.secret_hash).where(draw_secrets.c.sequence == sequence)).scalar()
        secret_hash = sha256_hex(bytes.fromhex(inputs["secret"]))
        published = previous.next_secret_hash if previous is not None and previous.next_secret_hash else committed
        checks |= {
            "seed_derived": sampling.derive_seed(inputs) == int(row["seed"]),
            "secret_committed": secret_hash == published == committed,
            "chain_linked": inputs["previous_hash"] == ((previous.record_hash if previous else None) or GENESIS),
            "sequence_matches": inputs["sequence"] == sequence,
            "population_committed": population_commitment(row["population_salt"], ids, tiers)
            == row["population_commitment"],
            "record_intact": record_hash(record_of(row, selection_hash(selected))) == row["record_hash"],
        }
    return {
        "draw_id": draw_id,
        "sequence": row["sequence"],
        "chained": inputs is not None,
        "verified": all(checks.values()) and inputs is not None,
        "checks": checks,
        "seed": int(row["seed"]),
        "seed_inputs": inputs,
        "record_hash": row["record_hash"],
        "selection_hash": selection_hash(selected),
        "selected_count": len(selected),
        # Kept for the supervisors' route as it answered before the register.
        "reproduced": reproduced,
        "population_hash_matches": checks["population_matches"],
    }
