"""Stored draws: make one (read the population and roster, run ``sampling.draw``, store it), read it
back, publish it, and verify it by re-running the selection from its stored population snapshot.

A draw is written in one transaction with its population snapshot and its selected rows, in bulk (COPY on
PostgreSQL, executemany on SQLite): no per-row objects, so a million-entity draw takes about a second.
A stored draw is never changed or deleted; inspection results are kept beside it
(``serving/inspections.py``).
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from features.errors import NotFound
from models.policy import Policy
from serving import sampling
from serving.audit import record_change
from serving.auth import Principal
from serving.db import bulk_insert, compiled, draw_selections, draws, entities, inspection_results
from serving.populations import PopulationCache, population, snapshot, store_snapshot
from serving.roster import load_roster
from serving.schemas import DrawRequest


def make_draw(
    engine: Engine,
    policy: Policy,
    request: DrawRequest,
    principal: Principal | None,
    cache: PopulationCache | None = None,
) -> dict[str, Any]:
    """Draw, store and return a sample (the ``Draw`` response as a plain dict); without a seed in the
    request one is chosen at random."""
    seed = secrets.randbelow(2**53) if request.seed is None else int(request.seed)
    filter_ = request.filter.model_dump(exclude_none=True)
    budget, avoid_same_region = request.budget, request.avoid_same_region
    with engine.connect() as conn:
        chosen_from = population(conn, filter_, cache)
        roster, roster_hash = load_roster(conn)
    drawn = sampling.draw(
        chosen_from,
        policy.sampling,
        roster,
        seed=seed,
        ratios=request.ratios,
        budget=budget,
        per_entity=request.inspectors_per_entity,
        avoid_same_region=avoid_same_region,
    )
    draw_id = uuid.uuid4().hex
    probability = drawn.allocation.probabilities
    counts = drawn.allocation.population
    summary = {
        "draw_id": draw_id,
        "created_at": datetime.now(UTC),
        "created_by": principal.actor if principal else None,
        "seed": seed,
        "policy_version": policy.version_tag,
        "mode": drawn.mode,
        "budget": budget,
        "ratios": drawn.ratios,
        "filter": filter_,
        "population": counts,
        "population_size": len(chosen_from),
        "population_hash": None,
        "inspectors_per_entity": drawn.per_entity,
        "avoid_same_region": avoid_same_region,
        "roster_hash": roster_hash,
        "selected_count": len(drawn.entity_ids),
    }
    with engine.begin() as conn:
        summary["population_hash"] = store_snapshot(conn, chosen_from.ids, chosen_from.tiers)
        conn.execute(draws.insert(), [_record(summary)])
        bulk_insert(
            conn,
            draw_selections.name,
            {
                "draw_id": [draw_id] * len(drawn.entity_ids),
                "position": list(range(len(drawn.entity_ids))),
                "entity_id": drawn.entity_ids,
                "tier": drawn.tiers,
                "inclusion_probability": [probability[t] for t in drawn.tiers],
                "inspectors": [";".join(team) for team in drawn.teams],
            },
        )
        record_change(
            conn,
            principal,
            "draw.create",
            f"draw/{draw_id}",
            {"seed": seed, "filter": filter_, "mode": drawn.mode, "selected": len(drawn.entity_ids)},
        )
    selected = [
        {"entity_id": e, "tier": t, "inclusion_probability": probability[t], "inspectors": team, "result": None}
        for e, t, team in zip(drawn.entity_ids, drawn.tiers, drawn.teams, strict=True)
    ]
    return {**summary, "selected": selected}


# The draw's columns stored as JSON text.
_JSON_FIELDS = ("ratios", "filter", "population")


def _record(summary: dict[str, Any]) -> dict[str, Any]:
    """A draw's summary as its ``draws`` row."""
    row = {k: v for k, v in summary.items() if k != "draw_id"} | {"id": summary["draw_id"]}
    for name in _JSON_FIELDS:
        row[name] = json.dumps(summary[name], ensure_ascii=False)
    return row


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """A ``draws`` row as the draw's summary (the ``Draw`` response without ``selected``)."""
    out = {k: v for k, v in record.items() if k != "id"} | {"draw_id": record["id"]}
    for name in _JSON_FIELDS:
        out[name] = json.loads(record[name])
    return out


def draw_record(conn: Connection, draw_id: str) -> dict[str, Any]:
    """The stored ``draws`` row; ``NotFound`` when there is no such draw."""
    row = conn.execute(select(draws).where(draws.c.id == draw_id)).mappings().first()
    if row is None:
        raise NotFound(f"draw {draw_id} not found")
    return dict(row)


def results_of(conn: Connection, draw_id: str) -> dict[str, str]:
    """The inspection outcome recorded so far for each entity of the draw (``passed`` / ``failed``)."""
    rows = conn.execute(
        select(inspection_results.c.entity_id, inspection_results.c.event_type).where(
            inspection_results.c.draw_id == draw_id
        )
    ).all()
    return {r.entity_id: r.event_type.removeprefix("inspection_") for r in rows}


def get_draw(conn: Connection, draw_id: str, *, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
    """A stored draw with its selected entities (``offset``/``limit`` page through them)."""
    record = draw_record(conn, draw_id)
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
    results = results_of(conn, draw_id)
    selected = [
        {
            "entity_id": e,
            "tier": t,
            "inclusion_probability": p,
            "inspectors": team.split(";") if team else [],
            "result": results.get(e),
        }
        for e, t, p, team in conn.exec_driver_sql(*compiled(conn, stmt)).fetchall()
    ]
    return {**_summary(record), "selected": selected}


def public_draw(conn: Connection, draw_id: str) -> dict[str, Any]:
    """The publishable draw: seed, population size, selected ids and names, results; no score or tier."""
    record = draw_record(conn, draw_id)
    results = results_of(conn, draw_id)
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
    record = draw_record(conn, draw_id)
    ids, tiers, _ = snapshot(conn, record["population_hash"])
    frame = pd.DataFrame({"entity_id": ids.astype(str), "tier": tiers.astype(str)})
    return frame.to_csv(index=False)


def verify_draw(conn: Connection, draw_id: str) -> dict[str, Any]:
    """Re-run the stored draw's selection from its snapshot and seed; report whether it matches."""
    record = draw_record(conn, draw_id)
    ids, tiers, digest = snapshot(conn, record["population_hash"])
    stored = conn.execute(
        select(draw_selections.c.entity_id, draw_selections.c.tier)
        .where(draw_selections.c.draw_id == draw_id)
        .order_by(draw_selections.c.position)
    ).all()
    counts: dict[str, int] = {}
    for _, tier in stored:
        counts[tier] = counts.get(tier, 0) + 1
    return {
        "draw_id": draw_id,
        "reproduced": sampling.reselect(ids, tiers, counts, int(record["seed"])) == [e for e, _ in stored],
        "population_hash_matches": digest == record["population_hash"],
        "selected_count": len(stored),
    }
