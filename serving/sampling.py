"""Sampling for "双随机": the pure algorithm of a draw — which entities are inspected, and by whom.

``draw(population, policy, roster, seed=…)`` is the whole algorithm, a function of its arguments: no
database, no clock, no randomness but the seed's. Reading the population (``serving/populations.py``) and
the roster (``serving/roster.py``), and storing the draw (``serving/draws.py``), happen elsewhere.

1. **How many per tier.** Either the policy's per-tier ratios, each overridable within the policy's
   bounds, or a total budget shared across tiers in proportion to the policy ratios (a common factor
   ``λ`` found by bisection, each tier's share kept within its bounds). Every tier's probability is at
   least ``min_inclusion_probability`` (不免抽), and counts are rounded up so no tier gets less than its
   ratio; in budget mode the largest-remainder rounding makes the counts add up to the budget exactly.
2. **Which entities.** Stratified simple random sampling without replacement: the population is put in
   canonical order (entity ids, bytewise), a ``numpy.random.Generator`` seeded with the draw's seed gives
   every entity a uniform key, and in each tier the ``n`` entities with the smallest keys are selected.
   Every entity of tier ``t`` has inclusion probability ``n_t / N_t``. The same seed, population and
   ratios give the same selection, whatever the database returned first and whatever the roster is.
3. **Who inspects.** A second generator stream (``[seed, 1]``) deals the active roster out in fresh
   random permutations, ``k`` inspectors per selected entity, which balances load to within one
   inspection; entities whose dealt inspectors repeat or conflict (a recorded conflict of interest, or
   the same region when ``avoid_same_region``) are re-dealt the least-loaded eligible inspectors, ties
   broken at random.

**Where the seed comes from.** Nobody chooses it: ``derive_seed(inputs)`` is the first 63 bits of the
SHA-256 of the canonical JSON (``canonical_json``) of the draw's published inputs — its place in the
register and the previous record's hash, a secret committed by the previous draw and revealed by this
one, the policy version, the filter, ratios or budget, the roster's hash and the population's size
(``serving/register.py`` assembles them). Anyone can recompute it from the public register.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from features.errors import Conflict, InvalidInput, Problem
from models.policy import TIERS, SamplingPolicy

_EPS = 1e-9
# "plan": a draw of a yearly inspection plan (serving/plans.py), its counts set by the plan.
Mode = Literal["ratios", "budget", "plan"]
MODES: tuple[Mode, ...] = ("ratios", "budget", "plan")


class SamplingError(InvalidInput):
    """A draw request the policy or the roster cannot satisfy.

    ``loc`` is the path of the offending field in the draw request (``("ratios", "D")``, ``("budget",)``);
    a problem of the stored roster rather than of the request has no path and ``where="roster"``.
    """

    def __init__(self, message: str, loc: Sequence[str | int] = (), *, where: str = "body") -> None:
        super().__init__(Problem(tuple(loc), message), where=where)


@dataclass(frozen=True)
class Population:
    """The entities a draw chooses from, in canonical order (ids bytewise ascending).

    ``ids`` are ``S18``, ``tiers`` ``S1`` and ``regions`` ``S6`` numpy arrays of equal length.
    """

    ids: np.ndarray
    tiers: np.ndarray
    regions: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Allocation:
    """How many entities each tier gives, with the resulting inclusion probabilities."""

    population: dict[str, int]
    counts: dict[str, int]
    targets: dict[str, float]  # the ratio asked of each tier (after floors and bounds)

    @property
    def probabilities(self) -> dict[str, float]:
        return {t: (self.counts[t] / n if n else 0.0) for t, n in self.population.items()}


def population_counts(tiers: np.ndarray) -> dict[str, int]:
    """Entities per tier, for every tier."""
    values, counts = np.unique(tiers, return_counts=True)
    found = {str(v.decode() if isinstance(v, bytes) else v): int(c) for v, c in zip(values, counts, strict=True)}
    return {t: found.get(t, 0) for t in TIERS}


def resolve_ratios(policy: SamplingPolicy, overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The policy ratios with ``overrides`` applied; each override must lie within the policy bounds."""
    merged = dict(policy.ratios)
    for tier, value in (overrides or {}).items():
        if tier not in TIERS:
            raise SamplingError(f"ratios keys must be tiers {list(TIERS)}; got {tier!r}", ("ratios", tier))
        low, high = policy.bounds[tier]
        if not low - _EPS <= value <= high + _EPS:
            raise SamplingError(
                f"ratios.{tier} must lie within the policy bounds [{low}, {high}] for tier {tier}; got {value}",
                ("ratios", tier),
            )
        merged[tier] = float(value)
    return {t: max(merged[t], policy.min_inclusion_probability) for t in TIERS}


def allocate_ratios(population: Mapping[str, int], ratios: Mapping[str, float]) -> Allocation:
    """Counts for fixed ratios: ``ceil(ratio × N)`` per tier, so nobody gets less than the ratio."""
    counts = {t: min(population[t], math.ceil(ratios[t] * population[t] - _EPS)) for t in TIERS}
    return Allocation(dict(population), counts, dict(ratios))


def allocate_budget(population: Mapping[str, int], policy: SamplingPolicy, budget: int) -> Allocation:
    """Share ``budget`` inspections across tiers in proportion to the policy's ratios, within bounds."""
    floor = policy.min_inclusion_probability
    low = {t: max(policy.bounds[t][0], floor) for t in TIERS}
    high = {t: max(policy.bounds[t][1], low[t]) for t in TIERS}
    lower = {t: min(population[t], math.ceil(low[t] * population[t] - _EPS)) for t in TIERS}
    upper = {t: max(lower[t], min(population[t], math.floor(high[t] * population[t] + _EPS))) for t in TIERS}
    least, most = sum(lower.values()), sum(upper.values())
    if not least <= budget <= most:
        raise SamplingError(
            f"budget must lie between {least} and {most} for this population of {sum(population.values())} "
            f"(the policy's per-tier bounds, with every entity at least {floor:g} likely to be drawn); "
            f"got {budget}",
            ("budget",),
        )
    weights = {t: policy.ratios[t] for t in TIERS}

    def share(scale: float) -> dict[str, float]:
        return {t: min(high[t], max(low[t], scale * weights[t])) for t in TIERS}

    def total(scale: float) -> float:
        return sum(p * population[t] for t, p in share(scale).items())

    lo, hi = 0.0, 1.0
    while total(hi) < budget and hi < 1e9:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if total(mid) < budget:
            lo = mid
        else:
            hi = mid
    targets = share(hi)
    exact = {t: targets[t] * population[t] for t in TIERS}
    counts = {t: min(upper[t], max(lower[t], math.floor(exact[t] + _EPS))) for t in TIERS}
    # Largest remainder: hand out (or take back) single inspections until the budget is met exactly.
    while (gap := budget - sum(counts.values())) != 0:
        if gap > 0:
            open_ = [t for t in TIERS if counts[t] < upper[t]]
            tier = max(open_, key=lambda t: (exact[t] - counts[t], t))
            counts[tier] += 1
        else:
            open_ = [t for t in TIERS if counts[t] > lower[t]]
            tier = max(open_, key=lambda t: (counts[t] - exact[t], t))
            counts[tier] -= 1
    return Allocation(dict(population), counts, targets)


def select(entity_ids: np.ndarray, tiers: np.ndarray, allocation: Allocation, seed: int) -> np.ndarray:
    """Indices into ``entity_ids`` of the selected entities, in draw order.

    ``entity_ids`` must be sorted (bytewise); the selection then depends only on the seed, the set of
    (entity, tier) pairs and the counts.
    """
    rng = np.random.default_rng([seed, 0])
    keys = rng.random(len(entity_ids))
    chosen: list[np.ndarray] = []
    for tier in TIERS:
        count = allocation.counts[tier]
        if count == 0:
            continue
        members = np.flatnonzero(tiers == (tier.encode() if tiers.dtype.kind == "S" else tier))
        if count >= len(members):
            chosen.append(members)
        else:
            chosen.append(members[np.argpartition(keys[members], count - 1)[:count]])
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    picked = np.concatenate(chosen)
    return picked[np.argsort(keys[picked], kind="stable")]


@dataclass(frozen=True)
class Roster:
    """The active inspectors in canonical order (by id), their regions and recorded conflicts."""

    ids: list[str]
    regions: list[str | None]
    conflicts: list[frozenset[str]]

    def __len__(self) -> int:
        return len(self.ids)


def assign_inspectors(
    roster: Roster,
    entity_ids: Sequence[str],
    entity_regions: Sequence[str],
    *,
    per_entity: int,
    seed: int,
    avoid_same_region: bool = False,
) -> np.ndarray:
    """An ``(m, per_entity)`` array of roster indices: the inspectors of each selected entity."""
    m, n, k = len(entity_ids), len(roster), per_entity
    if m == 0:
        return np.zeros((0, k), dtype=np.int64)
    if n < k:
        raise SamplingError(
            f"the inspector roster must have at least {k} active inspectors; it has {n}", where="roster"
        )
    rng = np.random.default_rng([seed, 1])
    rounds = math.ceil(m * k / n) + 1
    stream = np.argsort(rng.random((rounds, n)), axis=1).ravel()
    dealt = stream[: m * k].reshape(m, k)

    ordered = np.sort(dealt, axis=1)
    bad = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    position = {e: i for i, e in enumerate(entity_ids)}
    conflict_rows: list[int] = []
    conflict_cols: list[int] = []
    for j, entities_ in enumerate(roster.conflicts):
        for e in entities_:
            i = position.get(e)
            if i is not None:
                conflict_rows.append(i)
                conflict_cols.append(j)
    if conflict_rows:
        codes = np.asarray(conflict_rows, dtype=np.int64) * n + np.asarray(conflict_cols, dtype=np.int64)
        dealt_codes = np.arange(m, dtype=np.int64)[:, None] * n + dealt
        bad |= np.isin(dealt_codes, codes).any(axis=1)
    region_codes: np.ndarray | None = None
    entity_codes: np.ndarray | None = None
    if avoid_same_region:
        vocabulary = {r: i for i, r in enumerate(sorted({*entity_regions, *(r for r in roster.regions if r)}))}
        region_codes = np.asarray([vocabulary[r] if r else -1 for r in roster.regions], dtype=np.int64)
        entity_codes = np.asarray([vocabulary[r] for r in entity_regions], dtype=np.int64)
        bad |= (region_codes[dealt] == entity_codes[:, None]).any(axis=1)

    if bad.any():
        load = np.bincount(dealt[~bad].ravel(), minlength=n)
        by_entity: dict[int, list[int]] = {}
        for i, j in zip(conflict_rows, conflict_cols, strict=True):
            by_entity.setdefault(i, []).append(j)
        for i in np.flatnonzero(bad):
            eligible = np.ones(n, dtype=bool)
            eligible[by_entity.get(int(i), [])] = False
            if region_codes is not None and entity_codes is not None:
                eligible &= region_codes != entity_codes[i]
            candidates = np.flatnonzero(eligible)
            if len(candidates) < k:
                raise SamplingError(
                    f"entity {entity_ids[i]} needs {k} inspectors free of conflicts of interest; "
                    f"the roster has {len(candidates)}",
                    where="roster",
                )
            order = np.lexsort((rng.random(len(candidates)), load[candidates]))
            chosen = candidates[order[:k]]
            dealt[i] = chosen
            load[chosen] += 1
    return dealt


@dataclass(frozen=True)
class Draw:
    """What a draw selected, in draw order: the entities, their tiers and inspectors, and how many per tier."""

    mode: Mode
    allocation: Allocation
    picked: np.ndarray  # indices into the population
    entity_ids: list[str]
    tiers: list[str]
    teams: list[list[str]]  # the inspector ids of each selected entity
    per_entity: int

    @property
    def ratios(self) -> dict[str, float]:
        """The inclusion probability applied to each tier (the asked ratio for a tier without entities)."""
        allocation = self.allocation
        applied = allocation.probabilities
        return {t: round(applied[t] if allocation.population[t] else allocation.targets[t], 10) for t in TIERS}


def draw(
    population: Population,
    policy: SamplingPolicy,
    roster: Roster,
    *,
    seed: int,
    ratios: Mapping[str, float] | None = None,
    budget: int | None = None,
    per_entity: int | None = None,
    avoid_same_region: bool = False,
    allocation: Allocation | None = None,
) -> Draw:
    """The whole draw: how many entities per tier (``ratios`` overriding the policy's, a ``budget``
    shared across tiers, or an ``allocation`` a plan fixed), which entities, and who inspects them
    (``per_entity`` inspectors each, at least the policy's). The same arguments always give the same draw.

    ``SamplingError`` when the request breaks the policy or the roster cannot staff an entity;
    ``Conflict`` when entities are selected and the roster is too small for even one of them.
    """
    per_entity = per_entity or policy.inspectors_per_entity
    if per_entity < policy.inspectors_per_entity:
        raise SamplingError(
            f"inspectors_per_entity must be at least the policy's {policy.inspectors_per_entity}; got {per_entity}",
            ("inspectors_per_entity",),
        )
    counts = population_counts(population.tiers)
    mode: Mode
    if allocation is not None:
        mode = "plan"
    elif budget is not None:
        allocation, mode = allocate_budget(counts, policy, budget), "budget"
    else:
        allocation, mode = allocate_ratios(counts, resolve_ratios(policy, ratios)), "ratios"
    picked = select(population.ids, population.tiers, allocation, seed)
    if len(picked) and len(roster) < per_entity:
        raise Conflict(
            f"the inspector roster has {len(roster)} active inspectors and each entity needs {per_entity}: "
            "load a roster first (PUT /v1/admin/inspectors or `ipcredit inspectors load`)"
        )
    entity_ids = [i.decode() for i in population.ids[picked].tolist()]
    regions = [r.decode() for r in population.regions[picked].tolist()]
    team = assign_inspectors(
        roster, entity_ids, regions, per_entity=per_entity, seed=seed, avoid_same_region=avoid_same_region
    )
    teams = np.asarray(roster.ids, dtype=object)[team].tolist() if len(team) else []
    tiers = [t.decode() for t in population.tiers[picked].tolist()]
    return Draw(mode, allocation, picked, entity_ids, tiers, teams, per_entity)


def canonical_json(value: object) -> bytes:
    """``value`` as canonical JSON: keys sorted, no spaces, UTF-8 (what the register's hashes are over)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def derive_seed(inputs: Mapping[str, object]) -> int:
    """The seed of a draw with these published ``inputs``: the first 63 bits of their SHA-256."""
    return int.from_bytes(hashlib.sha256(canonical_json(dict(inputs))).digest()[:8], "big") >> 1


def reselect(ids: np.ndarray, tiers: np.ndarray, counts: Mapping[str, int], seed: int) -> list[str]:
    """The entity ids a draw of ``counts`` per tier with ``seed`` selects from this population, in draw
    order: what a stored draw must have selected (verification)."""
    allocation = Allocation(population_counts(tiers), {t: counts.get(t, 0) for t in TIERS}, {})
    return [i.decode() for i in ids[select(ids, tiers, allocation, seed)].tolist()]
