"""The draw algorithm on its own, without a database: allocation, reproducible selection, inspector
assignment, and the whole draw as one pure function."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from features.errors import Conflict, InvalidInput
from models.policy import load_policy
from serving import sampling
from serving.sampling import Roster, SamplingError
from tests.serving.conftest import POLICY_PATH

POLICY = load_policy(POLICY_PATH).sampling


def population(n: int, seed: int = 0, shares=(0.6, 0.25, 0.1, 0.05)):
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(f"91{i:016d}" for i in rng.choice(10**12, n, replace=False)), dtype="S18")
    tiers = rng.choice(np.array(list("ABCD"), dtype="S1"), n, p=shares)
    return ids, tiers


def test_ratio_overrides_must_lie_within_the_policy_bounds_and_name_the_tier():
    with pytest.raises(SamplingError, match=r"ratios\.D .*\[0\.6, 1\.0\].*tier D") as info:
        sampling.resolve_ratios(POLICY, {"D": 0.3})
    assert [p.loc for p in info.value.problems] == [("ratios", "D")]
    assert sampling.resolve_ratios(POLICY, {"D": 0.9})["D"] == 0.9


def test_every_tier_keeps_the_minimum_inclusion_probability():
    _, tiers = population(5000)
    counts = sampling.population_counts(tiers)
    ratios = sampling.resolve_ratios(POLICY, {"A": POLICY.bounds["A"][0]})
    allocation = sampling.allocate_ratios(counts, ratios)
    for tier, p in allocation.probabilities.items():
        assert p >= POLICY.min_inclusion_probability
        assert p >= ratios[tier] - 1e-12


def test_a_budget_is_met_exactly_and_riskier_tiers_get_higher_probabilities():
    _, tiers = population(20_000)
    counts = sampling.population_counts(tiers)
    allocation = sampling.allocate_budget(counts, POLICY, 2500)
    assert sum(allocation.counts.values()) == 2500
    p = allocation.probabilities
    assert p["A"] <= p["B"] <= p["C"] <= p["D"]
    for tier in "ABCD":
        low, high = POLICY.bounds[tier]
        assert max(low, POLICY.min_inclusion_probability) - 1e-3 <= p[tier] <= high + 1e-3


def test_an_infeasible_budget_says_what_range_is_possible():
    _, tiers = population(1000)
    with pytest.raises(SamplingError, match="budget must lie between"):
        sampling.allocate_budget(sampling.population_counts(tiers), POLICY, 1)


def test_the_same_seed_population_and_ratios_select_the_same_entities():
    ids, tiers = population(10_000)
    allocation = sampling.allocate_ratios(sampling.population_counts(tiers), dict(POLICY.ratios))
    first = sampling.select(ids, tiers, allocation, seed=42)
    again = sampling.select(ids.copy(), tiers.copy(), allocation, seed=42)
    other = sampling.select(ids, tiers, allocation, seed=43)
    assert np.array_equal(first, again)
    assert set(first.tolist()) != set(other.tolist())
    picked_tiers = tiers[first]
    for tier in "ABCD":
        assert (picked_tiers == tier.encode()).sum() == allocation.counts[tier]


def test_selection_is_uniform_within_a_tier():
    ids, tiers = population(400, shares=(1.0, 0, 0, 0))
    allocation = sampling.allocate_ratios(sampling.population_counts(tiers), {"A": 0.1, "B": 0.1, "C": 0.1, "D": 0.1})
    hits = np.zeros(len(ids))
    for seed in range(2000):
        hits[sampling.select(ids, tiers, allocation, seed)] += 1
    rate = hits / 2000
    assert abs(rate.mean() - 0.1) < 1e-9
    assert rate.min() > 0.05 and rate.max() < 0.15


def test_inspectors_are_distinct_free_of_conflicts_and_load_is_balanced():
    entities = [f"E{i:05d}" for i in range(1000)]
    regions = ["210600" if i % 2 else "410100" for i in range(1000)]
    conflicts = [frozenset(entities[:50]) if j == 0 else frozenset() for j in range(10)]
    roster = Roster(ids=[f"I{j}" for j in range(10)], regions=["210600"] * 5 + ["410100"] * 5, conflicts=conflicts)
    teams = sampling.assign_inspectors(roster, entities, regions, per_entity=2, seed=1, avoid_same_region=True)
    assert teams.shape == (1000, 2)
    assert (teams[:, 0] != teams[:, 1]).all()
    assert not (teams[:50] == 0).any(), "inspector 0 has a conflict with the first 50 entities"
    region_of = np.array(roster.regions)
    assert (region_of[teams] != np.array(regions)[:, None]).all()
    load = np.bincount(teams.ravel(), minlength=10)
    assert load.max() - load.min() <= 0.1 * load.mean()
    again = sampling.assign_inspectors(roster, entities, regions, per_entity=2, seed=1, avoid_same_region=True)
    assert np.array_equal(teams, again)


def test_a_roster_too_small_for_an_entity_is_an_error():
    roster = Roster(ids=["I1", "I2"], regions=[None, None], conflicts=[frozenset({"E1"}), frozenset()])
    with pytest.raises(SamplingError, match="E1 needs 2 inspectors"):
        sampling.assign_inspectors(roster, ["E0", "E1"], ["1", "1"], per_entity=2, seed=0)


# ---- the whole draw, as one pure function ---------------------------------------------------------------


def draw_population(n: int, seed: int = 0) -> sampling.Population:
    ids, tiers = population(n, seed)
    regions = np.where(np.arange(n) % 2 == 0, b"210600", b"410100").astype("S6")
    return sampling.Population(ids, tiers, regions)


def staff(n: int = 12) -> Roster:
    return Roster(
        ids=[f"I{j:02d}" for j in range(n)],
        regions=["210600" if j % 2 else "410100" for j in range(n)],
        conflicts=[frozenset()] * n,
    )


def test_a_draw_is_a_function_of_population_policy_roster_and_seed():
    people = draw_population(3000)
    first = sampling.draw(people, POLICY, staff(), seed=7)
    again = sampling.draw(
        sampling.Population(people.ids.copy(), people.tiers.copy(), people.regions.copy()), POLICY, staff(), seed=7
    )
    assert first.entity_ids == again.entity_ids and first.teams == again.teams
    assert first.mode == "ratios" and first.per_entity == POLICY.inspectors_per_entity
    assert first.entity_ids == [i.decode() for i in people.ids[first.picked]]
    assert first.tiers == [t.decode() for t in people.tiers[first.picked]]
    for team in first.teams:
        assert len(set(team)) == len(team) == POLICY.inspectors_per_entity
    assert sampling.draw(people, POLICY, staff(), seed=8).entity_ids != first.entity_ids


def test_the_roster_changes_who_inspects_but_never_who_is_selected():
    people = draw_population(2000)
    small, large = sampling.draw(people, POLICY, staff(4), seed=3), sampling.draw(people, POLICY, staff(30), seed=3)
    assert small.entity_ids == large.entity_ids
    assert small.teams != large.teams


def test_the_applied_ratios_are_the_inclusion_probabilities_and_a_stored_draw_can_be_reselected():
    people = draw_population(5000)
    drawn = sampling.draw(people, POLICY, staff(), seed=11, ratios={"D": 0.9})
    counts = {t: drawn.tiers.count(t) for t in "ABCD"}
    for tier, ratio in drawn.ratios.items():
        assert ratio == pytest.approx(counts[tier] / drawn.allocation.population[tier])
    assert drawn.ratios["D"] >= 0.9
    assert sampling.reselect(people.ids, people.tiers, counts, 11) == drawn.entity_ids
    assert sampling.reselect(people.ids, people.tiers, counts, 12) != drawn.entity_ids


def test_a_budget_draw_selects_exactly_the_budget():
    drawn = sampling.draw(draw_population(8000), POLICY, staff(), seed=1, budget=600)
    assert drawn.mode == "budget" and len(drawn.entity_ids) == 600 == len(drawn.teams)


def test_draw_errors_are_typed_with_paths_relative_to_the_request():
    people = draw_population(500)
    with pytest.raises(SamplingError) as info:
        sampling.draw(people, POLICY, staff(), seed=1, per_entity=POLICY.inspectors_per_entity - 1)
    assert isinstance(info.value, InvalidInput) and info.value.where == "body"
    assert [p.loc for p in info.value.problems] == [("inspectors_per_entity",)]
    with pytest.raises(SamplingError) as info:
        sampling.draw(people, POLICY, staff(), seed=1, budget=1)
    assert [p.loc for p in info.value.problems] == [("budget",)]
    with pytest.raises(Conflict, match="load a roster"):
        sampling.draw(people, POLICY, staff(1), seed=1)
    crowded = Roster(ids=["I1", "I2"], regions=["210600", "210600"], conflicts=[frozenset(), frozenset()])
    with pytest.raises(SamplingError, match="free of conflicts") as info:
        sampling.draw(people, POLICY, crowded, seed=1, avoid_same_region=True)
    assert info.value.where == "roster" and info.value.problems[0].loc == ()


def test_an_empty_population_draws_nobody_and_needs_no_roster():
    empty = sampling.Population(np.zeros(0, "S18"), np.zeros(0, "S1"), np.zeros(0, "S6"))
    drawn = sampling.draw(empty, POLICY, staff(0), seed=1)
    assert drawn.entity_ids == [] and drawn.teams == []
    assert set(drawn.ratios) == set("ABCD")


def test_the_algorithm_needs_no_database():
    tree = ast.parse(Path(sampling.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "serving")}, imported
