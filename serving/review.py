"""The review queue (待复核): everything that waits for a reviewer's decision, oldest first, one page at a time.

Three reasons put something in the queue:

- ``objection``: an objection is open (since it was filed);
- ``disagreement``: the rules moved the row's tier two or more tiers away from the model's;
- ``policy_review``: the policy flags the row for a person to look at (``review``: the rules moved the
  tier by the policy's ``review_gap`` or more).

An item is an open objection (with the reasons of the row it is about), or an entity's current row that
is flagged and has no objection. An item leaves the queue only when it is decided: an objection by its
decision; a flagged row when a reviewer decides an objection about it (file one, another reviewer decides
it: ``uphold`` confirms the tier), or when a newer row of the entity no longer needs review. A flagged
row's "since" is when the entity's unbroken series of flagged, undecided rows began (a later monthly run
that is flagged again does not make the wait look shorter). Rows in storage order; times in UTC.

The queue is filtered and paged in the database: by region (a division code: a province's covers its
cities), for a region-scoped token within its region only, and by reason.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import (
    Connection,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from features.errors import Forbidden
from models.policy import TIERS
from serving.auth import Principal, region_prefix
from serving.db import entities, objections, score_runs, scores

Reason = Literal["objection", "disagreement", "policy_review"]
REASONS: tuple[str, ...] = ("objection", "disagreement", "policy_review")
# Tiers apart (rules against model) that make a disagreement, as the issue states it.
DISAGREEMENT_GAP = 2


def _level(column: ColumnElement[str]) -> ColumnElement[int]:
    return case({tier: i for i, tier in enumerate(TIERS)}, value=column, else_=0)


def _gap(table) -> ColumnElement[int]:
    return func.abs(_level(table.c.tier) - _level(table.c.model_tier))


def _flagged(table) -> ColumnElement[bool]:
    return or_(table.c.review == True, _gap(table) >= DISAGREEMENT_GAP)  # noqa: E712 (SQL, not Python)


def _series(entity_ids) -> object:
    """Per score row of the entities ``entity_ids`` (a selectable of ids): ``id`` and ``series_since``, when
    the unbroken series of flagged, undecided rows it belongs to began (NULL for a row that is not flagged
    or was decided). One pass over those entities' rows with window functions: a row that is not flagged
    or has a decided objection starts a new series; a series began at its earliest row's run time."""
    row = scores.alias("series_row")
    runs = score_runs.alias("series_runs")
    decided = (
        select(objections.c.score_id).where(objections.c.status != "open").group_by(objections.c.score_id)
    ).subquery("decided")
    breaks = case((or_(not_(_flagged(row)), decided.c.score_id.is_not(None)), 1), else_=0)
    marked = (
        select(
            row.c.id,
            row.c.entity_id,
            runs.c.created_at,
            breaks.label("breaks"),
            func.sum(breaks).over(partition_by=row.c.entity_id, order_by=row.c.id).label("series"),
        )
        .select_from(row.join(runs, runs.c.id == row.c.run_id).outerjoin(decided, decided.c.score_id == row.c.id))
        .where(row.c.entity_id.in_(entity_ids))
    ).subquery("marked")
    since = func.min(case((marked.c.breaks == 0, marked.c.created_at), else_=null())).over(
        partition_by=(marked.c.entity_id, marked.c.series)
    )
    # A common table expression: both halves of the queue read it, and the database computes it once.
    return select(marked.c.id, case((marked.c.breaks == 0, since), else_=null()).label("series_since")).cte("series")


def _items(region: str | None, reason: Reason | None):
    """The queue as one selectable: ``kind``, ``objection_id``, ``score_id``, ``entity_id``, ``region``,
    ``since`` (the item's), ``flag_since`` (the row's series, when flagged)."""
    row = scores.alias("row")
    flagged = _flagged(row)
    in_region = entities.c.region.startswith(region, autoescape=True) if region is not None else None
    open_rows = select(objections.c.entity_id).where(objections.c.status == "open")
    current = (
        select(entities.c.entity_id)
        .select_from(entities.join(row, row.c.id == entities.c.score_id))
        .where(flagged, *([in_region] if in_region is not None else []))
    )
    series = _series(union_all(open_rows, current))
    flag_since = series.c.series_since
    objection_items = (
        select(
            literal("objection").label("kind"),
            objections.c.id.label("objection_id"),
            row.c.id.label("score_id"),
            row.c.entity_id,
            entities.c.region,
            case(
                (and_(flag_since.is_not(None), flag_since < objections.c.filed_at), flag_since),
                else_=objections.c.filed_at,
            ).label("since"),
            flag_since.label("flag_since"),
            row.c.review,
            _gap(row).label("gap"),
        )
        .select_from(
            objections.join(row, row.c.id == objections.c.score_id)
            .join(entities, entities.c.entity_id == objections.c.entity_id)
            .outerjoin(series, series.c.id == row.c.id)
        )
        .where(objections.c.status == "open")
    )
    row_items = (
        select(
            literal("row").label("kind"),
            null().label("objection_id"),
            row.c.id.label("score_id"),
            row.c.entity_id,
            entities.c.region,
            flag_since.label("since"),
            flag_since.label("flag_since"),
            row.c.review,
            _gap(row).label("gap"),
        )
        # Joined by the entity's key as well: SQLite then finds each flagged row's entity by its primary key
        # instead of scanning every entity per row (entities.score_id has no index of its own).
        .select_from(
            series.join(row, row.c.id == series.c.id).join(
                entities, and_(entities.c.entity_id == row.c.entity_id, entities.c.score_id == row.c.id)
            )
        )
        .where(flagged, not_(exists().where(objections.c.score_id == row.c.id)))
    )
    if in_region is not None:
        objection_items = objection_items.where(in_region)
        row_items = row_items.where(in_region)
    if reason == "objection":
        return objection_items.subquery("queue")
    if reason == "disagreement":
        objection_items = objection_items.where(_gap(row) >= DISAGREEMENT_GAP)
        row_items = row_items.where(_gap(row) >= DISAGREEMENT_GAP)
    elif reason == "policy_review":
        objection_items = objection_items.where(row.c.review == True)  # noqa: E712
        row_items = row_items.where(row.c.review == True)  # noqa: E712
    return union_all(objection_items, row_items).subquery("queue")


def scope_region(principal: Principal, region: str | None) -> str | None:
    """The region prefix the queue is filtered by: the filter's, within the caller's scope; ``Forbidden``
    naming ``region`` when a region-scoped token asks for another region."""
    scope = principal.scope
    if region is None:
        return scope
    wanted = region_prefix(region)
    if scope is not None and not wanted.startswith(scope):
        raise Forbidden(
            f"region {region} is outside this token's region {principal.region}: filter by a region within it"
        )
    return wanted


def review_queue(
    conn: Connection,
    principal: Principal,
    *,
    region: str | None = None,
    reason: Reason | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of the queue, oldest first (see the module docstring), with the total."""
    prefix = scope_region(principal, region)
    queue = _items(prefix, reason)
    page = conn.execute(
        select(
            queue,
            func.count().over().label("total"),  # the queue is computed once for the page and its size
            objections.c.grounds,
            objections.c.filed_by,
            objections.c.filed_at,
            scores.c.tier,
            scores.c.model_tier,
            scores.c.as_of,
        )
        .select_from(
            queue.join(scores, scores.c.id == queue.c.score_id).outerjoin(
                objections, objections.c.id == queue.c.objection_id
            )
        )
        .order_by(queue.c.since, queue.c.score_id, queue.c.objection_id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    found = [dict(r) for r in page]
    # Past the end (or an empty queue) the page holds no size: count alone.
    total = found[0]["total"] if found else conn.execute(select(func.count()).select_from(queue)).scalar_one()
    items = [_item(r) for r in found]
    return {"total": total, "limit": limit, "offset": offset, "region": region, "reason": reason, "items": items}


def _item(row: dict[str, Any]) -> dict[str, Any]:
    reasons = []
    if row["kind"] == "objection":
        reasons.append(
            {
                "reason": "objection",
                "since": row["filed_at"],
                "detail": f"objection {row['objection_id']} filed by {row['filed_by']}: {row['grounds'][:200]}",
            }
        )
    if row["gap"] >= DISAGREEMENT_GAP:
        reasons.append(
            {
                "reason": "disagreement",
                "since": row["flag_since"],
                "detail": f"the rules put tier {row['tier']}, the model tier {row['model_tier']}: "
                f"{row['gap']} tiers apart",
            }
        )
    if row["review"]:
        reasons.append(
            {
                "reason": "policy_review",
                "since": row["flag_since"],
                "detail": "the policy flags the row for review (its rules moved the tier by the review gap or more)",
            }
        )
    return {
        "kind": row["kind"],
        "objection_id": row["objection_id"],
        "score_id": row["score_id"],
        "entity_id": row["entity_id"],
        "region": row["region"],
        "as_of": row["as_of"],
        "tier": row["tier"],
        "model_tier": row["model_tier"],
        "since": row["since"],
        "reasons": reasons,
    }
