"""Sampling populations read from the store: filters, canonical order, the cache and stored snapshots."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from serving.db import population_records
from serving.populations import (
    PopulationCache,
    _load_records,
    _stored_records,
    population,
    snapshot,
    store_snapshot,
)
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


def _stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(population_records.c.run_id, population_records.c.size)).all()


def test_a_large_run_stores_the_population_it_leaves_and_a_starting_service_reads_it(engine):
    first = store_run(engine, make_entities(120, seed=11))
    assert _stored(engine) == [(first, 120)]
    second = store_run(engine, make_entities(130, seed=12), seed=3)  # 130 rows of 250 scored: large
    assert _stored(engine) == [(second, 250)], "only the latest is kept"
    cache = PopulationCache()
    with engine.connect() as conn:
        key = cache._version(conn)
        stored = _stored_records(conn, key)
        read = _load_records(conn)
        assert stored is not None and stored.tobytes() == read.tobytes()
        assert cache.records(conn).tobytes() == read.tobytes()
        runs = key[1]
        assert _stored_records(conn, (second, runs + 1)) is None, "a run committed since: not this value"
        assert _stored_records(conn, (first, runs)) is None


def test_a_small_run_stores_nothing_and_the_population_it_leaves_is_read_from_the_entities(engine):
    entities = make_entities(100, seed=13)
    large = store_run(engine, entities)
    cache = PopulationCache()
    with engine.connect() as conn:
        before = cache.records(conn)
    rescore = entities.iloc[[7]].reset_index(drop=True)  # an objection's one-row rescore
    store_run(engine, rescore, seed=9)
    assert _stored(engine) == [(large, 100)]
    with engine.connect() as conn:
        after = cache.records(conn)
        assert after.tobytes() == _load_records(conn).tobytes()
        assert _stored_records(conn, cache._version(conn)) is None
    changed = after["tier"] != before["tier"]
    assert set(after["entity_id"][changed].tolist()) <= {rescore.entity_id[0].encode()}
