"""The records behind a feature: which events, list entries or entity fields a feature counted at D.

A reviewer who reads "近12个月非正常专利申请 3次" must be able to point at the three records, to object to
one or to have it repaired. The records are derived from the catalogue's own definitions
(``features/catalogue.py``) under the point-in-time rule of ``features/pointintime.py`` — the same
conditions the feature build applies — so there is no second, hand-written list of what a feature counts:

- an ``Aggregate`` counts the events of its types that count at D and occurred in its window (for
  ``amount``, those with an amount; for ``years_since``, every one of them, the latest first: repairing it
  makes the next one the latest);
- a ``Ratio`` counts the records of its numerator and of its denominator;
- ``OnList`` counts the entries of its list in force at D, ``ListEntries`` those entered by D;
- an ``Attribute`` is a field of the entity's own row;
- a ``Related`` feature counts links: the ``relations`` rows behind its value, as
  ``features.relations.counted_links`` finds them (ids ``relation:entity_id>related_id@from_on``).

A feature family of another source registers its own provider for its spec type (``register``): the
provider receives the spec and an ``AtDate`` (the entity's ``EntityHistory`` at D, with what every provider
reads worked out once) and returns an ``Evidence``. Record ids
are the tables' own: an ``event_id``; a list entry as ``list@entered_on`` (``list_entry_id``), the key
the ledger's early removals use; the entity's id for its own row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd

from features import pointintime, relations, single
from features.catalogue import FEATURES, Aggregate, Attribute, ListEntries, Measure, OnList, Ratio, Related
from features.pointintime import ago_bounds, as_date, in_window
from features.schema import ENTITIES, EVENT_CODES, EVENTS, LISTS, Table

# How many ids an answer shows per feature or rule (the count says how many there are in all).
SHOWN = 5


@dataclass(frozen=True)
class EntityHistory:
    """One entity's records as the contract's tables (pandas frames, dates as datetimes or ISO text).

    ``entity``, ``events`` and ``lists`` are the entity's own rows. ``relations`` (optional) are the links
    touching it and ``related`` the ``(entities, events, lists)`` rows of the entities at their other ends,
    which its relationship features read; ``None``: no links.
    """

    entity: pd.DataFrame
    events: pd.DataFrame
    lists: pd.DataFrame
    relations: pd.DataFrame | None = None
    related: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
        """``(entities, events, lists, relations)`` with the related entities' rows: what
        ``features.build.build_features_from_frames`` needs to build this entity's features."""
        if self.related is None:
            return self.entity, self.events, self.lists, self.relations
        own = (self.entity, self.events, self.lists)
        joined = [pd.concat([a, b], ignore_index=True) if len(b) else a for a, b in zip(own, self.related, strict=True)]
        return joined[0], joined[1], joined[2], self.relations

    def replace(self, **changes: pd.DataFrame) -> EntityHistory:
        """The same history with some of the entity's own tables replaced."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Evidence:
    """The records one feature (or rule) counted: the table they are in and their ids, most recent first."""

    table: str
    ids: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.ids)

    def shown(self, first: int = SHOWN) -> dict[str, Any]:
        """What an answer carries: the table, the first ``first`` ids and how many there are."""
        return {"table": self.table, "ids": list(self.ids[:first]), "count": self.count}


class AtDate:
    """One history at one date, as the providers read it: the events that count at D (most recent first)
    and the list entries in force at D, each worked out once for every feature."""

    def __init__(self, history: EntityHistory, as_of: date) -> None:
        self.history = history
        self.as_of = as_of

    @cached_property
    def _events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, type codes, age in days, amount)`` of the events that count at D, most recent first."""
        events = self.history.events
        if events is None or events.empty:
            return (np.empty(0, dtype=object), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
        counted = events[pointintime.mask(pointintime.RULES["events"], events, self.as_of)]
        ago = (pd.Timestamp(self.as_of) - pd.to_datetime(counted["occurred_on"])).dt.days.to_numpy(dtype=np.int64)
        ids = counted["event_id"].astype(str).to_numpy(dtype=object)
        order = np.lexsort((ids, ago))
        codes = counted["event_type"].map(_CODE).fillna(-1).to_numpy(dtype=np.int64)
        amount = pd.to_numeric(counted["amount"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
        return ids[order], codes[order], ago[order], amount[order]

    def selected(self, agg: Aggregate) -> np.ndarray:
        """A mask over the counted events: the ones ``agg`` reads (its types, in its window), as
        ``features/build.py`` selects them; for ``amount``, only those with an amount."""
        _, codes, ago, amount = self._events
        keep = _wanted(agg.types)[codes]
        keep &= in_window(ago, ago_bounds(self.as_of, agg.months, agg.skip_months, agg.calendar_year))
        if agg.measure is Measure.AMOUNT:
            keep &= amount != 0
        return keep

    def event_ids(self, keep: np.ndarray) -> tuple[str, ...]:
        """The ids of the counted events under ``keep``, most recent first, each once."""
        return _unique(self._events[0][keep].tolist())

    @property
    def links(self) -> tuple[pd.DataFrame | None, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None]:
        """``(relations, related)`` of the history (``EntityHistory``): what its relationship features read."""
        return self.history.relations, self.history.related

    @cached_property
    def entity(self) -> tuple[str, str] | None:
        """``(entity_id, region)`` of the entity's own row, read once for every feature; None without one."""
        entity = self.history.entity
        if entity.empty:
            return None
        return str(entity["entity_id"].iloc[0]), str(entity["region"].iloc[0])

    @cached_property
    def entries(self) -> list[tuple[str, date]]:
        """``(list, entered_on)`` of the entries in force at D, the latest entered first."""
        return self._entries(pointintime.LIST_IN_FORCE)

    @cached_property
    def entered(self) -> list[tuple[str, date]]:
        """``(list, entered_on)`` of the entries made by D, in force or ended, the latest entered first."""
        return self._entries(pointintime.LIST_ENTERED)

    def _entries(self, rule: tuple[pointintime.Condition, ...]) -> list[tuple[str, date]]:
        lists = self.history.lists
        if lists is None or lists.empty:
            return []
        held = lists[pointintime.mask(rule, lists, self.as_of)]
        pairs = zip(held["list"].astype(str), pd.to_datetime(held["entered_on"]), strict=True)
        return sorted(((name, day.date()) for name, day in pairs), key=lambda p: p[1], reverse=True)


class RecordsAtDate(AtDate):
    """One posted history at one date read from its records themselves, without pandas (the what-if path):
    objects with the contract's columns as attributes, as ``features.single`` reads them, and the same
    point-in-time conditions on day numbers. It finds what ``AtDate`` finds through frames, in the same
    order (``tests/features/test_evidence.py`` checks it on random histories); a posted history has no
    links. ``history`` (frames) is built only if a provider asks for it."""

    def __init__(self, entity: Any, events: Sequence[Any], lists: Sequence[Any], as_of: date) -> None:
        self.as_of = as_of
        self._entity = entity
        entity_id = str(entity.entity_id)
        self._own_events = single.own_rows(events, entity_id)
        self._own_lists = single.own_rows(lists, entity_id)

    @cached_property
    def history(self) -> EntityHistory:  # type: ignore[override]
        def frame(rows: Sequence[Any], table: Table) -> pd.DataFrame:
            return pd.DataFrame([{c.name: getattr(r, c.name, None) for c in table.columns} for r in rows])

        return EntityHistory(
            frame([self._entity], ENTITIES), frame(self._own_events, EVENTS), frame(self._own_lists, LISTS)
        )

    @property
    def links(self) -> tuple[None, None]:
        return None, None

    @cached_property
    def entity(self) -> tuple[str, str] | None:
        return str(self._entity.entity_id), str(self._entity.region)

    @cached_property
    def _events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = single.counted_events(self._own_events, self.as_of)
        day = self.as_of.toordinal()
        ids = np.array([str(e.event_id) for e in rows], dtype=object)
        ago = np.array([day - int(single.day_number(e.occurred_on)) for e in rows], dtype=np.int64)
        codes = np.array([_CODE.get(e.event_type, -1) for e in rows], dtype=np.int64)
        amount = np.array([0.0 if single.missing(e.amount) else float(e.amount) for e in rows], dtype=np.float64)
        order = np.lexsort((ids, ago))
        return ids[order], codes[order], ago[order], amount[order]

    def _entries(self, rule: tuple[pointintime.Condition, ...]) -> list[tuple[str, date]]:
        held = single.entries_holding(rule, self._own_lists, self.as_of)
        pairs = ((str(row.list), as_date(row.entered_on)) for row in held)
        return sorted(pairs, key=lambda p: p[1], reverse=True)


_CODE = {code: i for i, code in enumerate(EVENT_CODES)}


@lru_cache(maxsize=256)
def _wanted(types: tuple[str, ...]) -> np.ndarray:
    """A lookup by type code: True for ``types`` (the last slot, a type outside the catalogue, False)."""
    wanted = np.zeros(len(EVENT_CODES) + 1, dtype=bool)
    wanted[[_CODE[t] for t in types]] = True
    wanted.flags.writeable = False
    return wanted


Provider = Callable[[Any, AtDate], Evidence]
_PROVIDERS: dict[type, Provider] = {}


def register(spec_type: type) -> Callable[[Provider], Provider]:
    """Register the evidence provider of a catalogue spec type (``Aggregate``, ``OnList``, …): a function
    ``(spec, at) -> Evidence`` reading ``at`` at ``at.as_of`` (``AtDate``: the events that count, the entries
    in force, the entity and its links, computed once; ``at.history`` as frames where a provider needs more).
    A new feature family registers one for its own spec."""

    def decorator(provider: Provider) -> Provider:
        _PROVIDERS[spec_type] = provider
        return provider

    return decorator


def _provide(name: str, at: AtDate) -> Evidence:
    feature = FEATURES.get(name)
    if feature is None:
        raise KeyError(f"feature must be one of the feature catalogue; got {name!r}")
    provider = _PROVIDERS.get(type(feature.spec))
    if provider is None:
        raise TypeError(f"no evidence provider is registered for {type(feature.spec).__name__} (feature {name})")
    return provider(feature.spec, at)


def records(name: str, history: EntityHistory, as_of: date | str) -> Evidence:
    """The records catalogue feature ``name`` counted for this entity at ``as_of``."""
    return _provide(name, AtDate(history, as_date(as_of)))


def evidence(history: EntityHistory, as_of: date | str, names: Iterable[str] | None = None) -> dict[str, Evidence]:
    """The records of every catalogue feature (or of ``names``) at ``as_of``, by feature name. Without
    ``names``, a feature whose spec type has no provider registered is left out (its family has not said
    what it counts yet; ``unprovided`` lists them and a test requires none)."""
    return evidence_at(AtDate(history, as_date(as_of)), names)


def records_evidence(
    entity: Any, events: Sequence[Any], lists: Sequence[Any], as_of: date | str, names: Iterable[str] | None = None
) -> dict[str, Evidence]:
    """``evidence`` of one posted history given as its records (``RecordsAtDate``), without frames."""
    return evidence_at(RecordsAtDate(entity, events, lists, as_date(as_of)), names)


def evidence_at(at: AtDate, names: Iterable[str] | None = None) -> dict[str, Evidence]:
    """``evidence`` of a history at its date."""
    if names is None:
        names = [f.name for f in FEATURES.values() if type(f.spec) in _PROVIDERS]
    return {name: _provide(name, at) for name in names}


def unprovided() -> list[str]:
    """The catalogue features whose spec type has no evidence provider."""
    return [f.name for f in FEATURES.values() if type(f.spec) not in _PROVIDERS]


def fed(found: Mapping[str, Evidence], table: str = "events") -> set[str]:
    """Every id of ``table`` that fed at least one of the features in ``found``."""
    return {i for e in found.values() if e.table == table for i in e.ids}


def union(table: str, parts: Iterable[Evidence]) -> Evidence:
    """The records of several features as one ``Evidence`` of ``table`` (order kept, each id once)."""
    seen: dict[str, None] = {}
    for part in parts:
        if part.table == table:
            seen.update(dict.fromkeys(part.ids))
    return Evidence(table, tuple(seen))


def list_entry_id(list_name: str, entered_on: date | str | pd.Timestamp) -> str:
    """The id of a list entry in evidence: ``list@YYYY-MM-DD`` (its key for the entity)."""
    return f"{list_name}@{pd.Timestamp(entered_on).date().isoformat()}"


def parse_list_entry_id(text: str) -> tuple[str, date]:
    """``(list, entered_on)`` of an id made by ``list_entry_id``; ``ValueError`` when it is not one."""
    name, sep, day = text.partition("@")
    if not sep or not name:
        raise ValueError(f"a list entry id must be written list@YYYY-MM-DD; got {text!r}")
    return name, date.fromisoformat(day)


# ---- the providers of the catalogue's own spec types --------------------------------------------------


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


@register(Aggregate)
def _aggregate(spec: Aggregate, at: AtDate) -> Evidence:
    return Evidence("events", at.event_ids(at.selected(spec)))


@register(Ratio)
def _ratio(spec: Ratio, at: AtDate) -> Evidence:
    return Evidence("events", at.event_ids(at.selected(spec.numerator) | at.selected(spec.denominator)))


@register(OnList)
def _on_list(spec: OnList, at: AtDate) -> Evidence:
    return Evidence("lists", _unique(list_entry_id(name, day) for name, day in at.entries if name == spec.list_name))


@register(ListEntries)
def _list_entries(spec: ListEntries, at: AtDate) -> Evidence:
    return Evidence("lists", _unique(list_entry_id(name, day) for name, day in at.entered if name == spec.list_name))


@register(Attribute)
def _attribute(spec: Attribute, at: AtDate) -> Evidence:
    return Evidence("entities", () if at.entity is None else (at.entity[0],))


@register(Related)
def _related(spec: Related, at: AtDate) -> Evidence:
    """The links behind the value; a link to an entity of another region than this one's does not show
    that entity's id (need to know: whoever may read this entity learns only that the link exists)."""
    if at.entity is None:
        return Evidence(relations.LINK_TABLE)
    entity_id, region = at.entity
    links, related = at.links
    found = relations.counted_links(spec, entity_id, links, related, at.as_of)
    regions = relations.regions_of(related[0] if related is not None else None)
    return Evidence(relations.LINK_TABLE, tuple(relations.visible_links(found, entity_id, regions, region)))
