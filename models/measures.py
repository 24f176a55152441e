"""What a tier or a list changes: the incentives and restrictions in force for an entity on a date, and
the yes/no eligibility answers other departments ask for (信用联合奖惩).

The measures are policy data (``[[measures]]`` in ``models/policy.toml``: effect, trigger, the benefits
blocked or prioritised, the legal basis). A measure is in force while its trigger is: a list entry in force
by the point-in-time rule of the features (``features/pointintime.py``: entered, not removed, not lapsed),
the tier of the entity's latest row, or ``period_days`` from a broken credit commitment. Every answer
names the measures behind it, their basis, the records that trigger them and the day they end, so a
department sees why, and never a score or a tier it was not asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from features import pointintime
from features.pointintime import LIST_IN_FORCE
from models.policy import BENEFITS, Measure, Policy

_LIST_TRIGGERS = {"red_list": "red", "untrustworthy": "untrustworthy", "serious_violation": "serious_violation"}


@dataclass(frozen=True)
class EntityState:
    """What the measures read about one entity: its list entries (``list``, ``entered_on``,
    ``removed_on``, ``basis``), its broken credit commitments (``event_id``, ``recorded_on``) and the tier of
    its latest stored row at the date (or None)."""

    entity_id: str
    lists: pd.DataFrame
    broken_commitments: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["event_id", "recorded_on"]))
    tier: str | None = None


@dataclass(frozen=True)
class InForce:
    """One measure in force on a date, with the records that trigger it and the day it ends — the first
    day it no longer applies (None: open)."""

    measure: Measure
    records: list[dict[str, Any]]
    until: date | None

    def as_dict(self) -> dict[str, Any]:
        m = self.measure
        return {
            "code": m.code,
            "name_zh": m.name_zh,
            "name_en": m.name_en,
            "effect": m.effect,
            "blocks": list(m.blocks),
            "priority": list(m.priority),
            "basis": m.basis,
            "records": self.records,
            "until": None if self.until is None else self.until.isoformat(),
        }


def _entries_in_force(state: EntityState, list_name: str, on: date) -> list[dict[str, Any]]:
    entries = state.lists[state.lists["list"] == list_name]
    if entries.empty:
        return []
    active = entries[pointintime.mask(LIST_IN_FORCE, entries, on)]
    out = []
    for row in active.to_dict("records"):
        entered = pd.Timestamp(row["entered_on"]).date()
        removed = None if pd.isna(row.get("removed_on")) else pd.Timestamp(row["removed_on"]).date()
        ends = pointintime.list_entry_ends(list_name, entered, removed)
        out.append(
            {
                "kind": "list_entry",
                "list": list_name,
                "entered_on": entered.isoformat(),
                "basis": row.get("basis"),
                "ends_on": None if ends is None else ends.isoformat(),
            }
        )
    return out


def measures_in_force(policy: Policy, state: EntityState, on: date) -> list[InForce]:
    """Every measure of ``policy`` in force for the entity on ``on``, in policy order."""
    found = []
    for measure in policy.measures:
        if measure.applies_to in _LIST_TRIGGERS:
            records = _entries_in_force(state, _LIST_TRIGGERS[measure.applies_to], on)
            ends = [r["ends_on"] for r in records]
            until = None if not records or None in ends else date.fromisoformat(max(ends))
        elif measure.applies_to == "tier":
            records = [{"kind": "tier", "tier": state.tier}] if state.tier in measure.tiers else []
            until = None
        else:  # a broken commitment counts from its record date for period_days
            period = timedelta(days=measure.period_days or 0)
            broken = state.broken_commitments
            recorded = pd.to_datetime(broken["recorded_on"]).dt.date if len(broken) else pd.Series(dtype=object)
            live = [
                (event_id, day)
                for event_id, day in zip(broken["event_id"], recorded, strict=True)
                if day <= on < day + period
            ]
            records = [{"kind": "event", "event_id": e, "recorded_on": d.isoformat()} for e, d in live]
            until = max(d for _, d in live) + period if live else None
        if records:
            found.append(InForce(measure=measure, records=records, until=until))
    return found


def eligibility(policy: Policy, state: EntityState, benefit: str, on: date) -> dict[str, Any]:
    """May the entity receive ``benefit`` on ``on``? ``allowed`` (no restriction in force blocks it),
    ``priority`` (an incentive in force gives it priority), and the measures behind the answer."""
    if benefit not in BENEFITS:
        raise ValueError(f"benefit must be one of {list(BENEFITS)}; got {benefit!r}")
    active = measures_in_force(policy, state, on)
    blocking = [m for m in active if benefit in m.measure.blocks]
    favouring = [m for m in active if benefit in m.measure.priority]
    return {
        "entity_id": state.entity_id,
        "benefit": benefit,
        "on": on.isoformat(),
        "allowed": not blocking,
        "priority": bool(favouring) and not blocking,
        "because": [m.as_dict() for m in blocking + favouring],
    }
