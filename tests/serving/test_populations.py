"""Sampling populations read from the store: filters, canonical order, the cache and stored snapshots."""

from __future__ import annotations

import numpy as np

from serving.populations import PopulationCache, population, snapshot, store_snapshot
from tests.serving.conftest import make_entities, store_run


def test_the_population_is_the_scored_entities_filtered_in_canonical_order(engine):
    entities = make_entities(200, seed=5)
    store_run(engine, entities)
    with engine.connect() as conn:
        everyone = population(conn, {})
        dandong = population(conn, {"region": "2106", "kind": "enterprise", "online_seller": True})
    assert sorted(everyone.ids.tolist()) == everyone.ids.tolist() == sorted(e.encode() for e in entities.entity_id)
    expected = entities[
        entities.region.str.startswith("2106") & (entities.kind == "enterprise") & entities.online_seller
    ]
    assert dandong.ids.tolist() == sorted(e.encode() for e in expected.entity_id)
    assert all(r.startswith(b"2106") for r in dandong.regions.tolist())
    assert set(everyone.tiers.tolist()) <= {b"A", b"B", b"C", b"D"}


def test_the_cache_reloads_when_a_score_run_is_saved(engine):
    cache = PopulationCache()
    first = make_entities(50, seed=6)
    store_run(engine, first)
    with engine.connect() as conn:
        assert len(population(conn, {}, cache)) == 50
        assert cache.records(conn) is cache.records(conn), "no new run: the same records"
    store_run(engine, make_entities(80, seed=7), seed=1)
    with engine.connect() as conn:
        assert len(population(conn, {}, cache)) == len(set(first.entity_id) | set(make_entities(80, seed=7).entity_id))


def test_a_snapshot_is_stored_once_and_reads_back_with_its_hash(engine):
    store_run(engine, make_entities(40, seed=8))
    with engine.connect() as conn:
        chosen = population(conn, {})
    with engine.begin() as conn:
        digest = store_snapshot(conn, chosen.ids, chosen.tiers)
        assert store_snapshot(conn, chosen.ids, chosen.tiers) == digest
    with engine.connect() as conn:
        ids, tiers, again = snapshot(conn, digest)
    assert again == digest and np.array_equal(ids, chosen.ids) and np.array_equal(tiers, chosen.tiers)
