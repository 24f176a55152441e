"""The "双随机" draw: which entities are inspected, and by whom.

Pure functions on numpy arrays (the database side lives in ``serving/draws.py``):

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.policy import TIERS, SamplingPolicy

_EPS = 1e-9


class SamplingError(ValueError):
    """A draw request the policy or the roster cannot satisfy; ``loc`` names the offending field."""

    def __init__(self, message: str, loc: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.loc = tuple(loc)


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
            raise SamplingError(f"ratios keys must be tiers {list(TIERS)}; got {tier!r}", ("body", "ratios", tier))
        low, high = policy.bounds[tier]
        if not low - _EPS <= value <= high + _EPS:
            raise SamplingError(
                f"ratios.{tier} must lie within the policy bounds [{low}, {high}] for tier {tier}; got {value}",
                ("body", "ratios", tier),
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
            ("body", "budget"),
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


def is_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or np.all(values[1:] >= values[:-1]))


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
        raise SamplingError(f"the inspector roster must have at least {k} active inspectors; it has {n}", ("roster",))
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
                    ("roster",),
                )
            order = np.lexsort((rng.random(len(candidates)), load[candidates]))
            chosen = candidates[order[:k]]
            dealt[i] = chosen
            load[chosen] += 1
    return dealt
