"""Relationships in explanations: the links a relationship feature counted at D, and what a reader may see.

A reason such as "2 related entities are on the serious-violation list (shared legal representative)"
must cite the links behind it, and nothing else about the entities at their other ends: never their
score or tier (those are not features and never enter here), and to a reader whose token is scoped to a
region, not even the id of an entity outside that region.

- ``counted_links``: the links (``relations`` rows) behind a relationship feature's value for one entity
  at D, most recent first, under the rules the SQL applies (``features/sql.py``: links in force by
  ``RELATION_IN_FORCE``, or known by ``RELATION_KNOWN`` for an agency's clients; related records by
  ``EVENT_COUNTS`` and list entries by ``LIST_IN_FORCE``). ``features/evidence.py`` registers it as the
  evidence provider of ``Related`` features.
- ``link_id`` / ``parse_link_id``: a link as an evidence id, ``relation:entity_id>related_id@from_on``.
- ``visible_links``: the ids a reader may see: a link whose other end is outside the reader's region
  keeps its relation and date but not that entity's id. The evidence provider applies it with the
  entity's own region, so whoever may read the entity (a token scoped to its region, or an unscoped one)
  learns of links into other regions only that they exist.
- ``relation_reason``: the reason sentence with the links counted by relation.

Only frames and dates: no database, no HTTP; the serving layer passes the reader's region.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features import pointintime
from features.catalogue import FEATURES, Related, RelatedMeasure, Side, format_value
from features.pointintime import EVENT_COUNTS, LIST_IN_FORCE, RELATION_IN_FORCE, RELATION_KNOWN, window_days
from features.schema import CONTROL_RELATIONS, RELATION_LABELS

LINK_TABLE = "relations"
# What a link to an entity of another region shows in place of that entity's id.
HIDDEN = "(another region)"


@dataclass(frozen=True)
class Link:
    """One link as an evidence id names it."""

    relation: str
    entity_id: str
    related_id: str
    from_on: date

    def other(self, entity_id: str) -> str:
        """The entity at the other end from ``entity_id``."""
        return self.related_id if self.entity_id == entity_id else self.entity_id


def link_id(relation: str, entity_id: str, related_id: str, from_on: date | str | pd.Timestamp) -> str:
    """A link as an evidence id: ``relation:entity_id>related_id@YYYY-MM-DD`` (a link of one relation
    between two entities is in force once at a time, so its start names it)."""
    return f"{relation}:{entity_id}>{related_id}@{pd.Timestamp(from_on).date().isoformat()}"


def parse_link_id(text: str) -> Link:
    """The ``Link`` of an id made by ``link_id``; ``ValueError`` when it is not one."""
    relation, sep, rest = text.partition(":")
    pair, at, day = rest.rpartition("@")
    entity_id, arrow, related_id = pair.partition(">")
    if not (sep and at and arrow and relation and entity_id and related_id):
        raise ValueError(f"a link id must be written relation:entity_id>related_id@YYYY-MM-DD; got {text!r}")
    return Link(relation, entity_id, related_id, date.fromisoformat(day))


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def _links_on_side(spec: Related, entity_id: str, links: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, pd.Series]:
    """The links of ``spec.side`` for ``entity_id`` at D and the entity at the other end of each."""
    known = pointintime.mask(RELATION_KNOWN, links, as_of) & (links["entity_id"] != links["related_id"]).to_numpy()
    in_force = pointintime.mask(RELATION_IN_FORCE, links, as_of)
    relation = links["relation"].astype(str)
    if spec.side is Side.TIES:
        ends = ((links["entity_id"] == entity_id) | (links["related_id"] == entity_id)).to_numpy()
        keep = in_force & ends & relation.isin(CONTROL_RELATIONS).to_numpy()
    elif spec.side is Side.AGENCIES:
        keep = in_force & (links["related_id"] == entity_id).to_numpy() & (relation == "agency_client").to_numpy()
    else:
        to_on = pd.to_datetime(links["to_on"])
        ended_ago = (pd.Timestamp(as_of) - to_on).dt.days
        recent = (to_on.isna() | (ended_ago < window_days(as_of, spec.months))).to_numpy()
        keep = known & recent & (links["entity_id"] == entity_id).to_numpy() & (relation == "agency_client").to_numpy()
    chosen = links[keep]
    other = chosen["related_id"].where(chosen["entity_id"] == entity_id, chosen["entity_id"]).astype(str)
    return chosen, other


def _counted_events(events: pd.DataFrame | None, spec: Related, as_of: date) -> pd.DataFrame:
    """The related entities' events that count at D, of the spec's types, in its window."""
    if _empty(events) or not spec.types:
        return pd.DataFrame(columns=["entity_id", "occurred_on"])
    counted = events[pointintime.mask(EVENT_COUNTS, events, as_of)]
    counted = counted[counted["event_type"].astype(str).isin(spec.types)]
    if spec.months is not None:
        ago = (pd.Timestamp(as_of) - pd.to_datetime(counted["occurred_on"])).dt.days
        counted = counted[(ago < window_days(as_of, spec.months)).to_numpy()]
    return counted.assign(
        entity_id=counted["entity_id"].astype(str), occurred_on=pd.to_datetime(counted["occurred_on"])
    )


def counted_links(
    spec: Related,
    entity_id: str,
    relations: pd.DataFrame | None,
    related: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None,
    as_of: date | str,
) -> tuple[str, ...]:
    """The ids (``link_id``) of the links behind ``spec``'s value for ``entity_id`` at ``as_of``, the
    latest begun first: for a count of entities, every link of the side; for entities on a list or with
    records, the links to those that are; for an agency's clients' findings, the links they came through.

    ``relations``: the links touching the entity; ``related``: the ``(entities, events, lists)`` rows of
    the entities at their other ends (what ``features.evidence.EntityHistory`` carries)."""
    as_of = pointintime.as_date(as_of)
    if _empty(relations):
        return ()
    links, other = _links_on_side(spec, str(entity_id), relations, as_of)
    _, events, lists = related if related is not None else (None, None, None)
    if spec.measure is RelatedMeasure.ON_LIST:
        if _empty(lists):
            return ()
        in_force = lists[pointintime.mask(LIST_IN_FORCE, lists, as_of)]
        listed = set(in_force.loc[in_force["list"].astype(str) == spec.list_name, "entity_id"].astype(str))
        keep = other.isin(listed).to_numpy()
    elif spec.measure is RelatedMeasure.ENTITIES:
        keep = np.ones(len(links), dtype=bool)
    elif not spec.through:
        keep = other.isin(set(_counted_events(events, spec, as_of)["entity_id"])).to_numpy()
    else:
        found = _counted_events(events, spec, as_of)
        start = pd.to_datetime(links["from_on"]).to_numpy()
        stop = pd.to_datetime(links["to_on"]).to_numpy()
        keep = np.zeros(len(links), dtype=bool)
        for i, client in enumerate(other.tolist()):
            days = found.loc[found["entity_id"] == client, "occurred_on"].to_numpy()
            inside = (days >= start[i]) & (pd.isna(stop[i]) | (days < stop[i]))
            keep[i] = bool(inside.any())
    chosen = links[keep]
    chosen = chosen.assign(start=pd.to_datetime(chosen["from_on"])).sort_values(
        ["start", "relation", "related_id"], ascending=[False, True, True], kind="stable"
    )
    ids = (link_id(r.relation, r.entity_id, r.related_id, r.start) for r in chosen.itertuples(index=False))
    return tuple(dict.fromkeys(ids))


def visible_links(ids: Iterable[str], entity_id: str, region_of: Mapping[str, str], region: str | None) -> list[str]:
    """``ids`` as a reader scoped to ``region`` may see them (``None``: every region): a link whose other
    end is not known to be in ``region`` shows ``HIDDEN`` in place of that entity's id (the id of a unified
    social credit code carries its region too), keeping the relation and the date it began."""
    shown = []
    for text in ids:
        link = parse_link_id(text)
        other = link.other(entity_id)
        if region is None or region_of.get(other) == region:
            shown.append(text)
            continue
        masked = Link(
            link.relation,
            HIDDEN if link.entity_id == other else link.entity_id,
            HIDDEN if link.related_id == other else link.related_id,
            link.from_on,
        )
        shown.append(f"{masked.relation}:{masked.entity_id}>{masked.related_id}@{masked.from_on.isoformat()}")
    return shown


def regions_of(entities: pd.DataFrame | None) -> dict[str, str]:
    """``entity_id -> region`` of an entities frame (empty for none)."""
    if _empty(entities):
        return {}
    return dict(zip(entities["entity_id"].astype(str), entities["region"].astype(str), strict=True))


def relation_reason(name: str, value: object, ids: Iterable[str], entity_id: str) -> tuple[str, str]:
    """The reason sentence of relationship feature ``name`` at ``value``, with the entities at the other
    ends of the cited links counted by relation, in Chinese and English: "关联主体在严重违法失信名单 2个
    （同一法定代表人2个）" / "related entities on the serious-violation list: 2 (shared legal representative 2)".
    Only counts and relation names: nothing of the other entities themselves."""
    feature = FEATURES[name]
    if not isinstance(feature.spec, Related):
        raise ValueError(f"{name} is not a relationship feature")
    ends: dict[str, set[str]] = {}
    for text in ids:
        link = parse_link_id(text)
        ends.setdefault(link.relation, set()).add(link.other(entity_id))
    counts = Counter({relation: len(others) for relation, others in ends.items()})
    shown = format_value(value, feature.dtype)
    zh, en = f"{feature.label_zh} {shown}{feature.unit_zh}", f"{feature.label_en}: {shown}"
    if counts:
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        zh += "（" + "、".join(f"{RELATION_LABELS[r][0]}{n}个" for r, n in ordered) + "）"
        en += " (" + ", ".join(f"{RELATION_LABELS[r][1]} {n}" for r, n in ordered) + ")"
    return zh, en


__all__ = [
    "HIDDEN",
    "LINK_TABLE",
    "Link",
    "counted_links",
    "link_id",
    "parse_link_id",
    "regions_of",
    "relation_reason",
    "visible_links",
]
