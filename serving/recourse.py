"""Recourse (信用修复路径): the fewest records whose repair or lapse would lower a stored row's tier.

For a stored row the candidates are the records that fed it (``serving/traces.py``) and that the policy
lets go: an event a repair rule covers, from the day the rule allows (``possible_from`` its publication,
``recorded_on``); a list entry a removal rule covers, from the day early removal is allowed, or from the
day it lapses if that comes first (``features.pointintime.lapses_on``). Records no rule covers (and those
``[[unrepairable]]``) are not candidates.

The answer is exact: every set of candidates is tried, smallest first, each rescored with the row's own
model version and the policy stored with its run, as of the day its last step becomes possible (or the
row's own date, if later) — which is what a repair decision dated that way rescores. Of the smallest sets
that lower the tier, the one reached soonest wins (then the lower tier, the lower score, the ids). The
candidates are few per entity; past ``MAX_CANDIDATES`` the service says so instead of guessing.

When each step becomes possible comes from the current policy's repair rules (``[[repairs]]``): they are
what a decision is checked against today. The tier comes from the row's own policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features.build import build_features_from_frames
from features.errors import Conflict, NotFound
from features.evidence import EntityHistory, parse_list_entry_id
from features.pointintime import lapses_on
from models.policy import TIERS, Policy, RepairRule
from models.scorer import Scorer
from serving.auth import Principal
from serving.scorers import Scorers
from serving.store import entity_row, score_row
from serving.traces import Trace, trace_row
from serving.versions import run_policy

MAX_CANDIDATES = 16
MAX_EVALUATIONS = 20_000
# Up to this many sets are rescored in one round, each day's variants built together.
ONE_ROUND = 4_096


@dataclass(frozen=True)
class Step:
    """One record that can be let go: how (``repair``, ``remove`` early, ``lapse``) and from when."""

    table: str  # "events" or "lists"
    id: str
    kind: str  # the event type or the list
    action: str
    possible_from: date
    rule: str | None
    basis: str | None
    features: tuple[str, ...]

    def view(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "id": self.id,
            "kind": self.kind,
            "action": self.action,
            "possible_from": self.possible_from,
            "rule": self.rule,
            "basis": self.basis,
            "features": list(self.features),
        }


def candidates(trace: Trace, rules: Policy) -> list[Step]:
    """The records that fed the row and that ``rules`` (the repair rules) let go, soonest first."""
    assert trace.found is not None and trace.history is not None
    counted_by: dict[tuple[str, str], list[str]] = {}
    for name, found in trace.found.items():
        for record_id in found.ids:
            counted_by.setdefault((found.table, record_id), []).append(name)
    steps = []
    events = trace.history.events
    for (table, record_id), names in counted_by.items():
        if table == "events":
            step = _event_step(events[events["event_id"].astype(str) == record_id], record_id, names, rules)
        elif table == "lists":
            step = _list_step(record_id, names, rules)
        else:
            step = None
        if step is not None:
            steps.append(step)
    return sorted(steps, key=lambda s: (s.possible_from, s.table, s.id))


def _event_step(rows: pd.DataFrame, event_id: str, names: list[str], rules: Policy) -> Step | None:
    if rows.empty:
        return None
    event_type = str(rows["event_type"].iloc[-1])
    rule = rules.repair_rule(event_type=event_type)
    if not isinstance(rule, RepairRule):
        return None
    published = pd.to_datetime(rows["recorded_on"]).min().date()
    return Step(
        "events", event_id, event_type, "repair", rule.possible_from(published), rule.code, rule.basis, tuple(names)
    )


def _list_step(entry_id: str, names: list[str], rules: Policy) -> Step | None:
    list_name, entered = parse_list_entry_id(entry_id)
    rule = rules.repair_rule(list_name=list_name)
    removal = rule.possible_from(entered) if isinstance(rule, RepairRule) else None
    lapse = lapses_on(list_name, entered)
    if removal is None and lapse is None:
        return None
    if removal is not None and (lapse is None or removal <= lapse):
        return Step("lists", entry_id, list_name, "remove", removal, rule.code, rule.basis, tuple(names))
    return Step("lists", entry_id, list_name, "lapse", lapse, None, None, tuple(names))


def _positions(history: EntityHistory, step: Step) -> tuple[str, np.ndarray]:
    """Which table a step changes and the positions of its rows there (every version of an event)."""
    if step.table == "events":
        return "events", np.flatnonzero(history.events["event_id"].astype(str).to_numpy() == step.id)
    name, on = parse_list_entry_id(step.id)
    lists = history.lists
    hit = (lists["list"] == name).to_numpy() & (pd.to_datetime(lists["entered_on"]) == pd.Timestamp(on)).to_numpy()
    return "lists", np.flatnonzero(hit)


_ENDS = {"events": "repaired_on", "lists": "removed_on"}


def _variants(history: EntityHistory, sets: Sequence[Sequence[Step]]) -> tuple[list[str], EntityHistory]:
    """One history holding a variant of ``history`` per set of steps, each under an id of its own
    (``V000…``): its events repaired and its entries removed on each step's ``possible_from`` (an earlier
    delivered repair or removal holds) — what a decision dated that way lays over it — and its links
    re-pointed at it; the related entities' rows once. Built column-wise: thousands of variants are cheap."""
    n = len(sets)
    keys = [f"V{i:017d}" for i in range(n)]
    own = {"events": history.events, "lists": history.lists}
    frames = {}
    for table, frame in own.items():
        tiled = frame.iloc[np.tile(np.arange(len(frame)), n)].reset_index(drop=True)
        tiled["entity_id"] = np.repeat(np.asarray(keys, dtype=object), len(frame))
        ends = pd.to_datetime(tiled[_ENDS[table]]).to_numpy(dtype="datetime64[s]").copy()
        width = len(frame)
        where = {}
        for v, chosen in enumerate(sets):
            for step in chosen:
                if step.id not in where:
                    where[step.id] = _positions(history, step)
                target, positions = where[step.id]
                if target != table or not len(positions):
                    continue
                at = positions + v * width
                day = np.datetime64(step.possible_from, "s")
                current = ends[at]
                ends[at] = np.where(np.isnat(current) | (current > day), day, current)
        tiled[_ENDS[table]] = ends
        frames[table] = tiled
    entity = history.entity.iloc[np.zeros(n, dtype=int)].reset_index(drop=True).assign(entity_id=keys)
    links = None
    if history.relations is not None and len(history.relations):
        own_id = str(history.entity["entity_id"].iloc[0])
        links = pd.concat(
            [history.relations.replace({"entity_id": {own_id: k}, "related_id": {own_id: k}}) for k in keys],
            ignore_index=True,
        )
    return keys, EntityHistory(entity, frames["events"], frames["lists"], links, history.related)


def applied(history: EntityHistory, steps: Sequence[Step]) -> EntityHistory:
    """``history`` with ``steps`` done (see ``_variants``), under its own id."""
    _, variant = _variants(history, [steps])
    own_id = history.entity["entity_id"].iloc[0]
    return history.replace(events=variant.events.assign(entity_id=own_id), lists=variant.lists.assign(entity_id=own_id))


def on_date(row_as_of: date, steps: Sequence[Step]) -> date:
    """The day a set of steps is rescored: its last step's, or the row's own date if later."""
    return max([row_as_of, *(s.possible_from for s in steps)])


def _tiers(
    scorer: Scorer, policy: Policy, history: EntityHistory, sets: Sequence[Sequence[Step]], as_of: date
) -> tuple[np.ndarray, np.ndarray]:
    """The tiers and scores at ``as_of`` of ``history`` with each set of steps done, scored as one batch."""
    keys, variants = _variants(history, sets)
    entities, events, lists, relations = variants.tables()
    features = build_features_from_frames(entities, events, lists, as_of, relations)
    features = features.set_index("entity_id").loc[keys].reset_index()  # the variants, in the order given
    columns = scorer.score_columns(features, policy, top_k=0, details=False)
    return np.asarray(columns["tier"]), np.asarray(columns["score"], dtype=np.float64)


def recourse(engine: Engine, scorers: Scorers, score_id: int, principal: Principal, rules: Policy) -> dict[str, Any]:
    """The recourse of stored row ``score_id`` (see the module docstring). ``rules``: the current policy,
    whose repair rules say when each step becomes possible. ``NotFound`` for a row the caller may not see;
    ``Conflict`` when its records cannot be traced, it cannot be reproduced, or it has too many candidates.
    The database is read first and released before the rescoring."""
    with engine.connect() as conn:
        row = score_row(conn, score_id, full=True)
        entity = entity_row(conn, row["entity_id"]) if row else None
        if row is None or entity is None or not principal.sees(entity["region"]):
            raise NotFound(f"score row {score_id} not found")
        trace = trace_row(conn, row)
        policy = run_policy(conn, row["run_id"])
    if trace.found is None:
        raise Conflict(f"no recourse for score row {score_id}: {trace.note}")
    scorer = scorers.version(str(row["model_version"]))
    steps = candidates(trace, rules)
    answer: dict[str, Any] = {
        "score_id": score_id,
        "entity_id": row["entity_id"],
        "as_of": row["as_of"],
        "tier": row["tier"],
        "score": row["score"],
        "model_version": str(row["model_version"]),
        "policy_version": policy.version_tag,
        "candidates": [s.view() for s in steps],
        "trace": trace.view(),
    }
    [tier], [score] = _tiers(scorer, policy, trace.history, [()], row["as_of"])
    if tier != row["tier"] or not np.isclose(score, row["score"], rtol=1e-9, atol=1e-12):
        raise Conflict(
            f"score row {score_id} cannot be reproduced with model version {row['model_version']} and policy "
            f"{policy.version_tag} (tier {tier}, score {score:.6g} now; {row['tier']}, {row['score']:.6g} stored): "
            "recourse computed on it would promise nothing"
        )
    if row["tier"] == TIERS[0]:
        return {**answer, "evaluated": 1, "plan": None, "note": f"tier {TIERS[0]} is the lowest tier"}
    if len(steps) > MAX_CANDIDATES:
        raise Conflict(
            f"score row {score_id} has {len(steps)} candidate records; recourse tries every set of at most "
            f"{MAX_CANDIDATES} exactly and will not guess: decide on the records one by one"
        )
    plan, evaluated = _smallest(scorer, policy, trace.history, row, steps)
    note = None if plan is not None else "no set of the candidate records lowers the tier"
    return {**answer, "evaluated": evaluated, "plan": plan, "note": note}


def _rounds(steps: list[Step]) -> list[list[tuple[Step, ...]]]:
    """The sets of ``steps`` to try, smallest first, in rounds: every non-empty set in one round when
    there are at most ``ONE_ROUND`` of them (each day is then built once for all sizes), else one round per
    size (a round stops the search once a size lowers the tier)."""
    sizes = range(1, len(steps) + 1)
    if 2 ** len(steps) - 1 <= ONE_ROUND:
        return [[chosen for size in sizes for chosen in combinations(steps, size)]]
    return [list(combinations(steps, size)) for size in sizes]


def _smallest(
    scorer: Scorer, policy: Policy, history: EntityHistory, row: dict[str, Any], steps: list[Step]
) -> tuple[dict[str, Any] | None, int]:
    """The best of the smallest sets of ``steps`` that lower the row's tier, and how many sets were tried."""
    level = TIERS.index(row["tier"])
    evaluated = 1
    for sets in _rounds(steps):
        if evaluated + len(sets) > MAX_EVALUATIONS:
            raise Conflict(
                f"score row {row['id']}: trying every set of {len(sets[0])} of {len(steps)} candidates would take "
                f"more than {MAX_EVALUATIONS} rescorings; decide on the records one by one"
            )
        by_date: dict[date, list[tuple[Step, ...]]] = {}
        for chosen in sets:
            by_date.setdefault(on_date(row["as_of"], chosen), []).append(chosen)
        found = []
        for day, group in by_date.items():
            tiers, scores = _tiers(scorer, policy, history, group, day)
            for chosen, tier, score in zip(group, tiers, scores, strict=True):
                if TIERS.index(tier) < level:
                    rank = (len(chosen), day, TIERS.index(tier), float(score), [s.id for s in chosen])
                    found.append((rank, chosen, tier))
        evaluated += len(sets)
        if found:
            (_, day, _, score, _), chosen, tier = min(found, key=lambda f: f[0])
            [alone], _ = _tiers(scorer, policy, history, [()], day)
            return {
                "steps": [s.view() for s in chosen],
                "on": day,
                "tier": str(tier),
                "score": score,
                "tier_without_steps": str(alone),
            }, evaluated
    return None, evaluated
