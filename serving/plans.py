"""Yearly inspection plans: a region's year of "双随机" draws, in proportion to risk and with memory.

A plan follows the policy's ``[plans]`` section (``models.policy.PlanPolicy``): per tier a ratio and a
frequency a year, so a tier's random inspections expected over the year are ``ratio × frequency × N``
(``N`` its entities in the region). The year is cut into ``12`` monthly or ``4`` quarterly periods, each
with one draw of the public register (``serving/draws.py``; mode ``plan``), made on or after the
period's first day.

**Each draw remembers.** An entity inspected within its tier's rest period before the draw's day — or
drawn and not yet reported, or inspected by a targeted task — is left out ("无事不扰"), unless its tier
is D or a complaint, data alert or referral (a targeted task) was received after that inspection. The
left-out entities are stored with the draw; the draw's population snapshot is the eligible entities.

**How many.** For draw ``k`` of ``P`` and tier ``t`` with ``E`` eligible entities, ``T`` the year's
target and ``S`` the entities the plan's earlier draws selected, the expected count is
``x = max((T − S) / (P − k + 1), m × E / P)`` (at most ``E``), ``m`` the policy's minimum inclusion
probability: the rest of the target spread over the remaining draws, and never less than ``m / P`` per
draw for anyone eligible, so every entity keeps a positive probability over the year (不免抽; the rest
periods are bounded so everyone is eligible in at least one draw). The count is ``⌊x⌋`` plus one with
probability ``x − ⌊x⌋`` (a generator stream of the draw's seed), so the expected inspections are exactly
``x`` and each eligible entity's inclusion probability, stored with its selection, is exactly ``x / E``
(0 for the ones left out). ``coverage`` checks the year: who had no positive probability in any draw.

Tasks triggered by a complaint, data alert or referral (``add_task``) are recorded beside the random
draws, with their own inspectors, and never counted as random. Progress per plan: planned, drawn,
inspected, findings, could not inspect, overdue (no result ``grace_days`` after the period ended), and
the targeted tasks apart.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from features.errors import Conflict, InvalidInput, NotFound
from models.policy import TIERS, PlanPolicy, Policy
from serving import dates, register, sampling
from serving.audit import record_change
from serving.auth import Principal, region_prefix
from serving.db import (
    draw_selections,
    draws,
    entities,
    inspection_outcomes,
    inspection_results,
    lock,
    plan_draws,
    plan_tasks,
    plans,
)
from serving.draws import store_draw
from serving.populations import PopulationCache, population, snapshot
from serving.roster import load_roster

PERIODS: dict[str, int] = {"month": 12, "quarter": 4}
# How far ahead a plan may be made: this year's and next year's.
YEARS_AHEAD = 1


def _policy_plans(policy: Policy) -> PlanPolicy:
    if policy.plans is None:
        raise Conflict(f"policy {policy.version_tag} has no [plans] section: no inspection plan can be made")
    return policy.plans


def period_days(year: int, period: str, k: int) -> tuple[date, date]:
    """The first and last day of period ``k`` (1-based) of ``year``."""
    months = 12 // PERIODS[period]
    first = date(year, (k - 1) * months + 1, 1)
    after = date(year + 1, 1, 1) if k == PERIODS[period] else date(year, k * months + 1, 1)
    return first, after - timedelta(days=1)


def _check_scope(region: str, principal: Principal | None) -> None:
    if principal is not None and not principal.sees(region):
        raise InvalidInput.at(
            "region", f"must lie within the token's region (codes starting {principal.scope})", region
        )


def create_plan(engine: Engine, policy: Policy, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """Make the yearly plan of ``body["region"]`` for ``body["year"]`` (``period`` month or quarter).

    ``InvalidInput`` for a region outside the caller's or a year past next year; ``Conflict`` when the
    region has a plan for that year or the policy has no ``[plans]``."""
    spec = _policy_plans(policy)
    region, year, period = body["region"], int(body["year"]), body.get("period", "month")
    _check_scope(region, principal)
    latest = dates.today().year + YEARS_AHEAD
    if not dates.EARLIEST.year <= year <= latest:
        raise InvalidInput.at("year", f"year must lie between {dates.EARLIEST.year} and {latest}; got {year}", year)
    if period not in PERIODS:
        raise InvalidInput.at("period", f"period must be one of {list(PERIODS)}; got {period!r}", period)
    plan_id = uuid.uuid4().hex
    row = {
        "id": plan_id,
        "region": region,
        "year": year,
        "period": period,
        "policy_version": policy.version_tag,
        "spec": json.dumps(spec.model_dump(), ensure_ascii=False, sort_keys=True),
        "created_at": datetime.now(UTC),
        "created_by": principal.actor if principal else None,
    }
    try:
        with engine.begin() as conn:
            lock(conn, "draws")  # plans and their draws change together
            prefix = region_prefix(region)
            for other, other_region in conn.execute(select(plans.c.id, plans.c.region).where(plans.c.year == year)):
                theirs = region_prefix(other_region)
                if theirs.startswith(prefix) or prefix.startswith(theirs):
                    raise Conflict(
                        f"region {region} overlaps region {other_region}, which has plan {other} for {year}: "
                        "one plan covers an entity in a year"
                    )
            conn.execute(plans.insert(), [row])
            record_change(conn, principal, "plan.create", f"plan/{plan_id}", {"region": region, "year": year})
    except IntegrityError as exc:
        raise Conflict(f"region {region} already has an inspection plan for {year}") from exc
    with engine.connect() as conn:
        return get_plan(conn, plan_id, principal)


def _plan_row(conn: Connection, plan_id: str, principal: Principal | None) -> dict[str, Any]:
    row = conn.execute(select(plans).where(plans.c.id == plan_id)).mappings().first()
    if row is None or (principal is not None and not principal.sees(row["region"])):
        raise NotFound(f"plan {plan_id} not found")
    out = dict(row)
    out["spec"] = PlanPolicy.model_validate(json.loads(row["spec"]))
    return out


def _plan_draws(conn: Connection, plan_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(plan_draws).where(plan_draws.c.plan_id == plan_id).order_by(plan_draws.c.period))
    return [{**dict(r._mapping), "tiers": json.loads(r.tiers), "resting": json.loads(r.resting)} for r in rows]


# ---- memory: who rests ---------------------------------------------------------------------------------


def _in_region(stmt, column, prefix: str):
    return stmt.join(entities, entities.c.entity_id == column).where(
        entities.c.region.startswith(prefix, autoescape=True)
    )


def last_inspections(conn: Connection, prefix: str, day: date) -> dict[str, date]:
    """Each entity's latest inspection on or before ``day`` in the region: an outcome recorded (but not
    "could not inspect"), a result posted through ``/v1/sampling/draws/{id}/results``, or a selection
    still without a result (counted from its draw's day)."""
    latest: dict[str, date] = {}

    def seen(entity_id: str, on: date) -> None:
        if on <= day and (entity_id not in latest or latest[entity_id] < on):
            latest[entity_id] = on

    reported: set[tuple[str, str]] = set()
    stmt = _in_region(
        select(
            inspection_outcomes.c.entity_id,
            inspection_outcomes.c.draw_id,
            inspection_outcomes.c.outcome,
            inspection_outcomes.c.inspected_on,
        ),
        inspection_outcomes.c.entity_id,
        prefix,
    )
    for entity_id, draw_id, outcome, inspected_on in conn.execute(stmt):
        if draw_id is not None:
            reported.add((draw_id, entity_id))
        if outcome != "not_inspected":
            seen(entity_id, inspected_on)
    stmt = _in_region(
        select(inspection_results.c.entity_id, inspection_results.c.draw_id, inspection_results.c.occurred_on),
        inspection_results.c.entity_id,
        prefix,
    )
    for entity_id, draw_id, occurred_on in conn.execute(stmt):
        reported.add((draw_id, entity_id))
        seen(entity_id, occurred_on)
    drawn_on = func.coalesce(plan_draws.c.draw_on, func.date(draws.c.created_at))
    stmt = _in_region(
        select(draw_selections.c.entity_id, draw_selections.c.draw_id, plan_draws.c.draw_on, draws.c.created_at)
        .select_from(
            draw_selections.join(draws, draws.c.id == draw_selections.c.draw_id).outerjoin(
                plan_draws, plan_draws.c.draw_id == draws.c.id
            )
        )
        .where(drawn_on <= day),
        draw_selections.c.entity_id,
        prefix,
    )
    for entity_id, draw_id, plan_day, created_at in conn.execute(stmt):
        if (draw_id, entity_id) not in reported:
            seen(entity_id, plan_day or register.in_utc(created_at).date())
    return latest


def last_triggers(conn: Connection, prefix: str, day: date, triggers: list[str]) -> dict[str, date]:
    """Each entity's latest complaint, data alert or referral received on or before ``day``."""
    stmt = _in_region(
        select(plan_tasks.c.entity_id, func.max(plan_tasks.c.received_on))
        .where(plan_tasks.c.received_on <= day, plan_tasks.c.trigger.in_(triggers))
        .group_by(plan_tasks.c.entity_id),
        plan_tasks.c.entity_id,
        prefix,
    )
    return {e: d if isinstance(d, date) else date.fromisoformat(d) for e, d in conn.execute(stmt)}


def resting(chosen_from: sampling.Population, spec: PlanPolicy, day: date, conn: Connection, prefix: str) -> np.ndarray:
    """A mask over ``chosen_from``: the entities left out of a draw on ``day`` ("无事不扰")."""
    inspected = last_inspections(conn, prefix, day)
    lifted = last_triggers(conn, prefix, day, list(spec.triggers))
    mask = np.zeros(len(chosen_from), dtype=bool)
    position = {e: i for i, e in enumerate(chosen_from.ids.astype(str).tolist())} if inspected else {}
    for entity_id, on in inspected.items():
        i = position.get(entity_id)
        if i is None:
            continue
        tier = chosen_from.tiers[i].decode()
        rest = spec.rest_days.get(tier, 0)  # type: ignore[call-overload]
        trigger = lifted.get(entity_id)
        mask[i] = tier != "D" and (day - on).days < rest and not (trigger is not None and trigger > on)
    return mask


# ---- the draws ---------------------------------------------------------------------------------------------


def expected_counts(
    spec: PlanPolicy,
    population_: dict[str, int],
    eligible: dict[str, int],
    drawn_before: dict[str, int],
    *,
    k: int,
    periods: int,
    floor: float,
) -> dict[str, dict[str, float]]:
    """Per tier the year's target, the expected count ``x`` of draw ``k`` and the inclusion probability
    ``x / E`` (see the module)."""
    out = {}
    for tier in TIERS:
        target = spec.yearly(tier) * population_[tier]
        e = eligible[tier]
        x = max((target - drawn_before.get(tier, 0)) / (periods - k + 1), floor * e / periods)
        x = min(x, e) if e else 0.0
        out[tier] = {"target": target, "expected": x, "probability": x / e if e else 0.0}
    return out


def draw_counts(expected: dict[str, float], eligible: dict[str, int], seed: int) -> dict[str, int]:
    """Each tier's count: ``⌊x⌋`` plus one with probability ``x − ⌊x⌋`` (the seed's stream 2), so its
    expectation is exactly ``x``; never more than the eligible entities."""
    coins = np.random.default_rng([seed, 2]).random(len(TIERS))
    counts = {t: math.floor(expected[t]) + int(coins[i] < expected[t] % 1) for i, t in enumerate(TIERS)}
    return {t: min(counts[t], eligible[t]) for t in TIERS}


def next_draw(
    engine: Engine, policy: Policy, plan_id: str, principal: Principal | None, cache: PopulationCache | None = None
) -> dict[str, Any]:
    """Make the plan's next draw (a draw of the public register) and return it with its period.

    ``Conflict`` when every period is drawn or the next period has not begun, or the roster is short."""
    with engine.begin() as conn:
        lock(conn, "draws")  # one draw at a time: the register is a chain, and so is a plan
        plan = _plan_row(conn, plan_id, principal)
        spec: PlanPolicy = plan["spec"]
        done = _plan_draws(conn, plan_id)
        periods = PERIODS[plan["period"]]
        k = len(done) + 1
        if k > periods:
            raise Conflict(f"plan {plan_id} has made all its {periods} draws for {plan['year']}")
        day, _ = period_days(plan["year"], plan["period"], k)
        if day > dates.today():
            raise Conflict(f"period {k} of plan {plan_id} begins on {day.isoformat()}; its draw cannot be made before")
        prefix = region_prefix(plan["region"])
        sequence, previous_hash = register.head(conn)
        secret, _ = register.commit(conn, sequence)
        everyone = population(conn, {"region": prefix}, cache)
        left_out = resting(everyone, spec, day, conn, prefix)
        keep = ~left_out
        chosen_from = sampling.Population(everyone.ids[keep], everyone.tiers[keep], everyone.regions[keep])
        counts = sampling.population_counts(everyone.tiers)
        eligible = sampling.population_counts(chosen_from.tiers)
        drawn_before: dict[str, int] = {}
        for d in done:
            for tier, row in d["tiers"].items():
                drawn_before[tier] = drawn_before.get(tier, 0) + row["count"]
        expected = expected_counts(
            spec,
            counts,
            eligible,
            drawn_before,
            k=k,
            periods=periods,
            floor=policy.sampling.min_inclusion_probability,
        )
        probability = {t: expected[t]["probability"] for t in TIERS}
        resting_ids = everyone.ids[left_out].astype(str).tolist()
        roster, roster_hash = load_roster(conn)
        per_entity = policy.sampling.inspectors_per_entity
        filter_ = {"region": prefix}
        inputs = register.seed_inputs(
            sequence=sequence,
            previous_hash=previous_hash,
            secret=secret,
            policy_version=policy.version_tag,
            filter_=filter_,
            mode="plan",
            ratios={t: round(p, 12) for t, p in probability.items()},
            budget=None,
            inspectors_per_entity=per_entity,
            avoid_same_region=False,
            roster_hash=roster_hash,
            population_size=len(chosen_from),
        ) | {
            "plan": {
                "plan_id": plan_id,
                "period": k,
                "draw_on": day.isoformat(),
                "resting_hash": hashlib.sha256("\n".join(resting_ids).encode()).hexdigest(),
            }
        }
        seed = sampling.derive_seed(inputs)
        # ⌊x⌋ plus one with probability x − ⌊x⌋: the expected count is x exactly.
        n = draw_counts({t: expected[t]["expected"] for t in TIERS}, eligible, seed)
        allocation = sampling.Allocation(eligible, n, probability)
        drawn = sampling.draw(
            chosen_from, policy.sampling, roster, seed=seed, per_entity=per_entity, allocation=allocation
        )
        result = store_draw(
            conn,
            policy,
            principal,
            sequence=sequence,
            seed=seed,
            inputs=inputs,
            drawn=drawn,
            chosen_from=chosen_from,
            filter_=filter_,
            budget=None,
            avoid_same_region=False,
            roster_hash=roster_hash,
            probability=probability,
        )
        tiers = {
            t: {
                "population": counts[t],
                "resting": counts[t] - eligible[t],
                "eligible": eligible[t],
                "target": expected[t]["target"],
                "expected": expected[t]["expected"],
                "count": n[t],
                "probability": expected[t]["probability"],
            }
            for t in TIERS
        }
        conn.execute(
            plan_draws.insert(),
            [
                {
                    "plan_id": plan_id,
                    "period": k,
                    "draw_id": result["draw_id"],
                    "draw_on": day,
                    "tiers": json.dumps(tiers),
                    "resting": json.dumps(resting_ids),
                }
            ],
        )
        record_change(conn, principal, "plan.draw", f"plan/{plan_id}", {"period": k, "draw_id": result["draw_id"]})
    return {"plan_id": plan_id, "period": k, "draw_on": day, "tiers": tiers, "draw": result}


# ---- targeted tasks ------------------------------------------------------------------------------------


def add_task(
    engine: Engine, policy: Policy, plan_id: str, body: dict[str, Any], principal: Principal | None
) -> dict[str, Any]:
    """Record an inspection triggered by a complaint, data alert or referral beside the plan's random
    draws, with inspectors dealt from the roster; it is never counted as random, and it lifts the
    entity's rest period for the plan's later draws."""
    spec = _policy_plans(policy)
    if body["trigger"] not in spec.triggers:
        raise InvalidInput.at("trigger", f"trigger must be one of {list(spec.triggers)}; got {body['trigger']!r}")
    with engine.begin() as conn:
        plan = _plan_row(conn, plan_id, principal)
        entity = conn.execute(select(entities.c.region).where(entities.c.entity_id == body["entity_id"])).first()
        prefix = region_prefix(plan["region"])
        if entity is None or not entity.region.startswith(prefix):
            raise InvalidInput.at(
                "entity_id", f"entity {body['entity_id']} is not an entity of region {plan['region']}"
            )
        roster, _ = load_roster(conn)
        per_entity = policy.sampling.inspectors_per_entity
        if len(roster) < per_entity:
            raise Conflict(f"the inspector roster has {len(roster)} active inspectors and a task needs {per_entity}")
        seed = int.from_bytes(
            hashlib.sha256(f"{plan_id}|{body['entity_id']}|{body['reference']}".encode()).digest()[:8], "big"
        )
        team = sampling.assign_inspectors(
            roster, [body["entity_id"]], [entity.region], per_entity=per_entity, seed=seed
        )
        inspectors = [roster.ids[j] for j in team[0]]
        row = {
            "plan_id": plan_id,
            "entity_id": body["entity_id"],
            "trigger": body["trigger"],
            "reference": body["reference"],
            "received_on": body["received_on"],
            "inspectors": ";".join(inspectors),
            "created_at": datetime.now(UTC),
            "created_by": principal.actor if principal else None,
        }
        task_id = conn.execute(plan_tasks.insert().values(**row).returning(plan_tasks.c.id)).scalar_one()
        record_change(conn, principal, "plan.task", f"plan/{plan_id}/task/{task_id}", {"trigger": body["trigger"]})
    return {
        "task_id": task_id,
        **{k: v for k, v in row.items() if k not in ("inspectors", "created_at")},
        "inspectors": inspectors,
    }


def task_row(conn: Connection, task_id: int, principal: Principal | None) -> dict[str, Any]:
    """A targeted task; ``NotFound`` when there is none the caller may see."""
    row = conn.execute(select(plan_tasks).where(plan_tasks.c.id == task_id)).mappings().first()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    _plan_row(conn, row["plan_id"], principal)
    return dict(row)


# ---- progress and coverage --------------------------------------------------------------------------------


def _outcomes_by_draw(conn: Connection, draw_ids: list[str]) -> dict[tuple[str, str], str]:
    if not draw_ids:
        return {}
    stmt = select(inspection_outcomes.c.draw_id, inspection_outcomes.c.entity_id, inspection_outcomes.c.outcome).where(
        inspection_outcomes.c.draw_id.in_(draw_ids)
    )
    found = {(d, e): o for d, e, o in conn.execute(stmt)}
    stmt = select(inspection_results.c.draw_id, inspection_results.c.entity_id, inspection_results.c.event_type).where(
        inspection_results.c.draw_id.in_(draw_ids)
    )
    for d, e, event_type in conn.execute(stmt):
        found.setdefault((d, e), "no_findings" if event_type == "inspection_passed" else "findings")
    return found


def progress(
    conn: Connection, plan: dict[str, Any], done: list[dict[str, Any]], *, on: date | None = None
) -> dict[str, Any]:
    """Planned, drawn, inspected, findings, could not inspect and overdue, per tier and in all, and the
    targeted tasks apart (never counted as random); overdue as of ``on`` (default today)."""
    spec: PlanPolicy = plan["spec"]
    today = on or dates.today()
    counts = done[-1]["tiers"] if done else None
    if counts is None:
        everyone = population(conn, {"region": region_prefix(plan["region"])})
        sizes = sampling.population_counts(everyone.tiers)
    else:
        sizes = {t: counts[t]["population"] for t in TIERS}
    per_tier = {
        t: {
            "planned": round(spec.yearly(t) * sizes[t], 3),
            "drawn": 0,
            "inspected": 0,
            "findings": 0,
            "not_inspected": 0,
            "overdue": 0,
        }
        for t in TIERS
    }
    draw_ids = [d["draw_id"] for d in done]
    outcomes = _outcomes_by_draw(conn, draw_ids)
    ends = {d["draw_id"]: period_days(plan["year"], plan["period"], d["period"])[1] for d in done}
    if draw_ids:
        rows = conn.execute(
            select(draw_selections.c.draw_id, draw_selections.c.entity_id, draw_selections.c.tier).where(
                draw_selections.c.draw_id.in_(draw_ids)
            )
        )
        for draw_id, entity_id, tier in rows:
            cell = per_tier[tier]
            cell["drawn"] += 1
            outcome = outcomes.get((draw_id, entity_id))
            if outcome is None:
                cell["overdue"] += int(ends[draw_id] + timedelta(days=spec.grace_days) < today)
            elif outcome == "not_inspected":
                cell["not_inspected"] += 1
            else:
                cell["inspected"] += 1
                cell["findings"] += int(outcome == "findings")
    total = {key: sum(cell[key] for cell in per_tier.values()) for key in per_tier["A"]}
    total["planned"] = round(total["planned"], 3)
    tasks = conn.execute(
        select(plan_tasks.c.trigger, func.count())
        .where(plan_tasks.c.plan_id == plan["id"])
        .group_by(plan_tasks.c.trigger)
    ).all()
    task_ids = select(plan_tasks.c.id).where(plan_tasks.c.plan_id == plan["id"])
    task_outcomes = conn.execute(
        select(inspection_outcomes.c.outcome, func.count())
        .where(inspection_outcomes.c.task_id.in_(task_ids))
        .group_by(inspection_outcomes.c.outcome)
    ).all()
    return {
        "periods": PERIODS[plan["period"]],
        "periods_drawn": len(done),
        "tiers": per_tier,
        "total": total,
        "targeted": {
            "tasks": {trigger: n for trigger, n in tasks},
            "outcomes": {outcome: n for outcome, n in task_outcomes},
        },
    }


def _public(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_id": plan["id"],
        "region": plan["region"],
        "year": plan["year"],
        "period": plan["period"],
        "policy_version": plan["policy_version"],
        "rules": plan["spec"].model_dump(),
        "created_at": register.in_utc(plan["created_at"]),
        "created_by": plan["created_by"],
    }


def get_plan(conn: Connection, plan_id: str, principal: Principal | None, *, on: date | None = None) -> dict[str, Any]:
    """A plan with its draws (period, day, per-tier counts and probabilities) and its progress (as of
    ``on``, default today: the monthly report asks as of its month, so it reads the same later)."""
    plan = _plan_row(conn, plan_id, principal)
    done = [d for d in _plan_draws(conn, plan_id) if on is None or d["draw_on"] <= on]
    return {
        **_public(plan),
        "draws": [
            {
                "period": d["period"],
                "draw_on": d["draw_on"],
                "draw_id": d["draw_id"],
                "tiers": d["tiers"],
                "resting": len(d["resting"]),
            }
            for d in done
        ],
        "progress": progress(conn, plan, done, on=on),
    }


def list_plans(
    conn: Connection, principal: Principal | None, *, year: int | None = None, on: date | None = None
) -> list[dict[str, Any]]:
    """The plans the caller may see (a region-scoped token: its region's), with their progress."""
    stmt = select(plans.c.id).order_by(plans.c.year.desc(), plans.c.region)
    if year is not None:
        stmt = stmt.where(plans.c.year == year)
    if principal is not None and principal.scope is not None:
        stmt = stmt.where(plans.c.region.startswith(principal.scope, autoescape=True))
    ids = conn.execute(stmt.limit(1000)).scalars().all()
    return [get_plan(conn, plan_id, principal, on=on) for plan_id in ids]


def coverage(conn: Connection, plan_id: str, principal: Principal | None) -> dict[str, Any]:
    """Whether every entity of the region had a positive inclusion probability in some draw of the plan:
    in each draw an entity of its stored population (the eligible ones) has its tier's probability, any
    other 0. Returns how many had one, the ones that had none (``never``, the first 1000), and the least
    chance of being drawn at least once given the draws' history (``1 − Π (1 − p)``)."""
    plan = _plan_row(conn, plan_id, principal)
    done = _plan_draws(conn, plan_id)
    everyone = population(conn, {"region": region_prefix(plan["region"])})
    ids = everyone.ids
    miss = np.ones(len(ids))
    for d in done:
        digest = conn.execute(select(draws.c.population_hash).where(draws.c.id == d["draw_id"])).scalar_one()
        drawn_ids, drawn_tiers, _ = snapshot(conn, digest)
        p = np.zeros(len(ids))
        at = np.searchsorted(drawn_ids, ids)
        inside = at < len(drawn_ids)
        inside[inside] = drawn_ids[at[inside]] == ids[inside]
        by_tier = np.asarray([d["tiers"][t]["probability"] for t in TIERS])
        tier_index = np.searchsorted(np.asarray(TIERS, dtype="S1"), drawn_tiers[at[inside]])
        p[inside] = by_tier[tier_index]
        miss *= 1 - p
    positive = miss < 1
    return {
        "plan_id": plan_id,
        "draws": len(done),
        "entities": len(ids),
        "positive": int(positive.sum()),
        "never": ids[~positive].astype(str).tolist()[:1000],
        "min_probability": float((1 - miss).min()) if len(ids) else None,
    }
