"""Measures in force and eligibility checks (信用联合奖惩), answered from the service database.

``entity_state`` reads what the policy's ``[[measures]]`` look at for one entity on a date — its list
entries (``list_entries``, with the ones a broken commitment made), its broken credit commitments
(``commitments``) and the tier of its latest score row as of the date — and ``models/measures.py``
decides. ``measures`` lists the measures in force with their basis, trigger records and end dates;
``check`` answers a department's "may X receive benefit M on D?" with yes/no, the basis and the records,
for one entity or a bounded batch. A department token asks only about the benefits it administers, sees
only its region's entities, and never gets a score or a tier: a tier that triggers a measure is named
as a trigger without its value. Every check is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select

from features.errors import Forbidden, InvalidInput, NotFound
from models.measures import EntityState, eligibility, measures_in_force
from models.policy import Policy
from serving.auth import Principal, Role
from serving.db import commitments, entities, list_entries, scores

# How many entities one batch check may name.
MAX_BATCH = 1000


def _regions(conn: Connection, entity_ids: Sequence[str]) -> dict[str, str]:
    stmt = select(entities.c.entity_id, entities.c.region).where(entities.c.entity_id.in_(list(entity_ids)))
    return dict(conn.execute(stmt).all())


def entity_state(conn: Connection, entity_id: str, on: date) -> EntityState:
    """What the measures read about ``entity_id`` on ``on`` (records known by then)."""
    lists = pd.DataFrame(
        [
            dict(r._mapping)
            for r in conn.execute(
                select(list_entries.c.list, list_entries.c.entered_on, list_entries.c.removed_on, list_entries.c.basis)
                .where(list_entries.c.entity_id == entity_id, list_entries.c.entered_on <= on)
                .order_by(list_entries.c.entered_on)
            )
        ],
        columns=["list", "entered_on", "removed_on", "basis"],
    )
    broken = pd.DataFrame(
        [
            {"event_id": r.event_id or f"commitment/{r.commitment_id}", "recorded_on": r.on}
            for r in conn.execute(
                select(commitments.c.commitment_id, commitments.c.event_id, commitments.c.on).where(
                    commitments.c.entity_id == entity_id, commitments.c.status == "broken", commitments.c.on <= on
                )
            )
        ],
        columns=["event_id", "recorded_on"],
    )
    tier = conn.execute(
        select(scores.c.tier)
        .where(scores.c.entity_id == entity_id, scores.c.as_of <= on)
        .order_by(scores.c.as_of.desc(), scores.c.id.desc())
        .limit(1)
    ).scalar()
    return EntityState(entity_id=entity_id, lists=lists, broken_commitments=broken, tier=tier)


def _visible(conn: Connection, entity_id: str, principal: Principal | None) -> None:
    region = _regions(conn, [entity_id]).get(entity_id)
    if region is None or (principal is not None and not principal.sees(region)):
        raise NotFound(f"entity {entity_id} not found")


def _without_tiers(answer: dict[str, Any]) -> dict[str, Any]:
    for measure in answer.get("because", answer.get("measures", [])):
        measure["records"] = [{"kind": "tier"} if r.get("kind") == "tier" else r for r in measure["records"]]
    return answer


def measures(conn: Connection, policy: Policy, entity_id: str, on: date, principal: Principal | None) -> dict[str, Any]:
    """The measures of the policy in force for the entity on ``on``, in policy order, each with its
    basis, the records that trigger it and the day it ends (``None``: while the trigger lasts)."""
    _visible(conn, entity_id, principal)
    found = measures_in_force(policy, entity_state(conn, entity_id, on), on)
    return {
        "entity_id": entity_id,
        "on": on,
        "policy_version": policy.version_tag,
        "measures": [m.as_dict() for m in found],
    }


def _allowed_benefit(principal: Principal | None, benefit: str) -> None:
    if principal is not None and principal.role == Role.DEPARTMENT and benefit not in principal.benefits:
        raise Forbidden(
            f"this token may ask only about the benefits it administers ({', '.join(principal.benefits)}); "
            f"got {benefit!r}"
        )


def check(
    conn: Connection, policy: Policy, entity_ids: Sequence[str], benefit: str, on: date, principal: Principal | None
) -> list[dict[str, Any]]:
    """May each entity receive ``benefit`` on ``on``? ``allowed``, ``priority`` and the measures behind
    the answer with their basis and records (``models.measures.eligibility``), in the order asked.

    ``Forbidden`` for a benefit the department's token does not administer; ``InvalidInput`` for more
    than ``MAX_BATCH`` ids or an id named twice; ``NotFound`` for an entity unknown or outside the token's
    region (at ``entity_ids[i]`` in a batch)."""
    _allowed_benefit(principal, benefit)
    if len(entity_ids) > MAX_BATCH:
        raise InvalidInput.at("entity_ids", f"a batch names at most {MAX_BATCH} entities; got {len(entity_ids)}")
    if len(set(entity_ids)) != len(entity_ids):
        raise InvalidInput.at("entity_ids", "a batch must name each entity once")
    regions = _regions(conn, entity_ids)
    for entity_id in entity_ids:
        region = regions.get(entity_id)
        if region is None or (principal is not None and not principal.sees(region)):
            raise NotFound(f"entity {entity_id} not found")
    answers = []
    for entity_id in entity_ids:
        answer = eligibility(policy, entity_state(conn, entity_id, on), benefit, on)
        answer["policy_version"] = policy.version_tag
        answers.append(_without_tiers(answer))
    return answers
