"""Stored draws: make one (read the population and roster, derive the seed, run ``sampling.draw``, store it
in the register), read it back, and export its population snapshot.

A draw is written in one transaction, under the draws' lock, with its population snapshot, its selected
rows, its register record (``serving/register.py``: sequence, seed inputs, record hash, the commitment to
the next draw's secret) and its audit row, in bulk (COPY on PostgreSQL, executemany on SQLite): no per-row
objects, so a million-entity draw takes about a second. The seed is never the caller's: it is derived
from inputs fixed before the draw. A stored draw is never changed or deleted (database triggers);
inspection results are kept beside it (``serving/inspections.py``).

A region-scoped supervisor draws within the token's region (a filter without a region gets it, a filter
outside it is refused) and sees only draws within it.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from features.errors import InvalidInput, NotFound
from models.policy import Policy
from serving import register, sampling
from serving.audit import record_change
from serving.auth import Principal
from serving.db import bulk_insert, compiled, draw_selections, draws, lock
from serving.populations import PopulationCache, population, snapshot, store_snapshot
from serving.roster import load_roster
from serving.schemas import DrawRequest


def scoped_filter(filter_: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """The population filter a caller may draw with: a region-scoped caller's region is imposed, and a
    filter reaching beyond it is ``InvalidInput`` at ``("filter", "region")``."""
    scope = principal.scope if principal else None
    if scope is None:
        return filter_
    region = filter_.get("region")
    if region is None:
        return {**filter_, "region": scope}
    if not region.startswith(scope):
        raise InvalidInput.at(
            ("filter", "region"), f"must lie within the token's region (codes starting {scope})", region
        )
    return filter_


def visible(record: dict[str, Any], principal: Principal | None) -> bool:
    """Whether a stored draw exists for ``principal`` (a scoped caller sees draws within its region)."""
    scope = principal.scope if principal else None
    return scope is None or str(json.loads(record["filter"]).get("region") or "").startswith(scope)


def make_draw(
    engine: Engine,
    policy: Policy,
    request: DrawRequest,
    principal: Principal | None,
    cache: PopulationCache | None = None,
) -> dict[str, Any]:
    """Draw, store and return a sample (the ``Draw`` response as a plain dict)."""
    filter_ = scoped_filter(request.filter.model_dump(exclude_none=True), principal)
    per_entity = request.inspectors_per_entity or policy.sampling.inspectors_per_entity
    with engine.begin() as conn:
        lock(conn, "draws")  # one draw at a time: the register is a chain
        sequence, previous_hash = register.head(conn)
        secret, _ = register.commit(conn, sequence)
        chosen_from = population(conn, filter_, cache)
        roster, roster_hash = load_roster(conn)
        inputs = register.seed_inputs(
            sequence=sequence,
            previous_hash=previous_hash,
            secret=secret,
            policy_version=policy.version_tag,
            filter_=filter_,
            mode="budget" if request.budget is not None else "ratios",
            ratios=dict(request.ratios) if request.ratios is not None else None,
            budget=request.budget,
            inspectors_per_entity=per_entity,
            avoid_same_region=request.avoid_same_region,
            roster_hash=roster_hash,
            population_size=len(chosen_from),
        )
        seed = sampling.derive_seed(inputs)
        drawn = sampling.draw(
            chosen_from,
            policy.sampling,
            roster,
            seed=seed,
            ratios=request.ratios,
            budget=request.budget,
            per_entity=per_entity,
            avoid_same_region=request.avoid_same_region,
        )
        return store_draw(
            conn,
            policy,
            principal,
            sequence=sequence,
            seed=seed,
            inputs=inputs,
            drawn=drawn,
            chosen_from=chosen_from,
            filter_=filter_,
            budget=request.budget,
            avoid_same_region=request.avoid_same_region,
            roster_hash=roster_hash,
        )


def store_draw(
    conn: Connection,
    policy: Policy,
    principal: Principal | None,
    *,
    sequence: int,
    seed: int,
    inputs: dict[str, Any],
    drawn: sampling.Draw,
    chosen_from: sampling.Population,
    filter_: dict[str, Any],
    budget: int | None,
    avoid_same_region: bool,
    roster_hash: str,
    probability: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Store a draw made in ``conn``'s transaction (under the draws' lock, ``sequence`` the register's
    head): its population snapshot, selected rows, register record, the commitment to the next secret and
    its audit row; return it as the ``Draw`` response. ``probability`` is each tier's inclusion probability
    (default the allocation's ``n / N``)."""
    _, next_secret_hash = register.commit(conn, sequence + 1)
    salt = secrets.token_hex(32)
    draw_id = uuid.uuid4().hex
    ratios = drawn.ratios if probability is None else {t: round(p, 10) for t, p in probability.items()}
    probability = probability or drawn.allocation.probabilities
    summary = {
        "draw_id": draw_id,
        "sequence": sequence,
        "created_at": datetime.now(UTC),
        "created_by": principal.actor if principal else None,
        "seed": seed,
        "seed_inputs": inputs,
        "policy_version": policy.version_tag,
        "mode": drawn.mode,
        "budget": budget,
        "ratios": ratios,
        "filter": filter_,
        "population": drawn.allocation.population,
        "population_size": len(chosen_from),
        "population_hash": register.population_commitment(salt, chosen_from.ids, chosen_from.tiers),
        "population_salt": salt,
        "inspectors_per_entity": drawn.per_entity,
        "avoid_same_region": avoid_same_region,
        "roster_hash": roster_hash,
        "selected_count": len(drawn.entity_ids),
        "next_secret_hash": next_secret_hash,
    }
    row = _record(summary, store_snapshot(conn, chosen_from.ids, chosen_from.tiers))
    summary["record_hash"] = row["record_hash"] = register.record_hash(
        register.record_of(row, register.selection_hash(drawn.entity_ids))
    )
    conn.execute(draws.insert(), [row])
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
        {
            "sequence": sequence,
            "seed": seed,
            "filter": filter_,
            "mode": drawn.mode,
            "selected": len(drawn.entity_ids),
        },
    )
    selected = [
        {"entity_id": e, "tier": t, "inclusion_probability": probability[t], "inspectors": team, "result": None}
        for e, t, team in zip(drawn.entity_ids, drawn.tiers, drawn.teams, strict=True)
    ]
    return {**summary, "selected": selected}


# The draw's columns stored as JSON text (the seed inputs in their canonical form).
_JSON_FIELDS = ("ratios", "filter", "population", "seed_inputs")


def _record(summary: dict[str, Any], snapshot_key: str) -> dict[str, Any]:
    """A draw's summary as its ``draws`` row: there ``population_hash`` is the snapshot's (internal) key
    and ``population_commitment`` the salted hash the summary publishes."""
    row = {k: v for k, v in summary.items() if k not in ("draw_id", "population_hash")}
    row |= {"id": summary["draw_id"], "population_hash": snapshot_key}
    row["population_commitment"] = summary["population_hash"]
    for name in ("ratios", "filter", "population"):
        row[name] = json.dumps(summary[name], ensure_ascii=False)
    row["seed_inputs"] = sampling.canonical_json(summary["seed_inputs"]).decode("utf-8")
    return row


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """A ``draws`` row as the draw's summary (the ``Draw`` response without ``selected``)."""
    out = {k: v for k, v in record.items() if k not in ("id", "population_hash", "population_commitment")}
    out |= {"draw_id": record["id"], "population_hash": record["population_commitment"]}
    out["created_at"] = register.in_utc(record["created_at"])
    for name in _JSON_FIELDS:
        out[name] = json.loads(record[name]) if record[name] else None
    return out


def draw_record(conn: Connection, draw_id: str, principal: Principal | None = None) -> dict[str, Any]:
    """The stored ``draws`` row; ``NotFound`` when there is no such draw, or none ``principal`` may see."""
    record = register.draw_row(conn, draw_id)
    if not visible(record, principal):
        raise NotFound(f"draw {draw_id} not found")
    return record


def get_draw(
    conn: Connection,
    draw_id: str,
    principal: Principal | None = None,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """A stored draw with its selected entities (``offset``/``limit`` page through them)."""
    record = draw_record(conn, draw_id, principal)
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
    rows = conn.exec_driver_sql(*compiled(conn, stmt)).fetchall()
    results = register.results_of(conn, draw_id, [r[0] for r in rows] if len(rows) <= 10_000 else None)
    selected = [
        {
            "entity_id": e,
            "tier": t,
            "inclusion_probability": p,
            "inspectors": team.split(";") if team else [],
            "result": results.get(e),
        }
        for e, t, p, team in rows
    ]
    return {**_summary(record), "selected": selected}


def population_csv(conn: Connection, draw_id: str, principal: Principal | None = None) -> tuple[str, str | None]:
    """The draw's stored population as CSV (entity_id, tier) and the salt of its published commitment:
    enough to re-run the draw and to check the commitment."""
    record = draw_record(conn, draw_id, principal)
    ids, tiers, _ = snapshot(conn, record["population_hash"])
    frame = pd.DataFrame({"entity_id": ids.astype(str), "tier": tiers.astype(str)})
    return frame.to_csv(index=False), record["population_salt"]


def verify_draw(conn: Connection, draw_id: str, principal: Principal | None = None) -> dict[str, Any]:
    """``register.verify`` for a draw ``principal`` may see."""
    draw_record(conn, draw_id, principal)
    return register.verify(conn, draw_id)
