"""The store: migrations match the tables, runs are immutable, latest-row bookkeeping, migration 0002."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from serving.db import alembic_config, entities, make_engine, metadata, open_store, upgrade
from serving.store import ScoreRunRecord, StoreError, latest_score, save_score_run
from tests.serving.conftest import make_entities, make_scores, store_run


def test_the_migrations_create_exactly_the_tables_in_code(db_url):
    upgrade(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_and_upgrade_round_trip(db_url):
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "base")
    engine = create_engine(db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(db_url)


def test_migration_0002_carries_draws_over(db_url):
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO draws (id, created_at, seed, policy_version, mode, ratios, filter, population, "
                "population_size, population_hash, population_snapshot, inspectors_per_entity, "
                "avoid_same_region, roster_hash, selected_count) VALUES ('d1', :now, 1, 'p', 'ratios', '{}', "
                "'{}', '{}', 2, 'h1', :blob, 2, false, 'r', 1)"
            ),
            {"now": now, "blob": b"snapshot"},
        )
        conn.execute(
            text(
                "INSERT INTO draw_selections (draw_id, entity_id, position, tier, inclusion_probability, "
                "inspectors) VALUES ('d1', 'E1', 0, 'A', 0.5, 'I1;I2')"
            )
        )
    upgrade(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT hash, size, snapshot FROM populations")).one() == ("h1", 2, b"snapshot")
        assert conn.execute(text("SELECT draw_id, position, entity_id FROM draw_selections")).one() == ("d1", 0, "E1")
    engine.dispose()


def test_score_rows_are_immutable_and_the_latest_row_wins(db_url):
    engine = open_store(db_url)
    frame = make_entities(30, seed=2)
    first = store_run(engine, frame, seed=1)
    second = store_run(engine, frame, seed=2)
    older = store_run(engine, frame, seed=3, as_of=date(2023, 12, 31))
    with engine.connect() as conn:
        row = latest_score(conn, frame.entity_id[0], full=True)
        assert row["run_id"] == second and first < second < older
        assert json.loads(row["contributions"]) and json.loads(row["features"])
        tier = conn.execute(select(entities.c.tier).where(entities.c.entity_id == frame.entity_id[0])).scalar()
        assert tier == row["tier"]
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM score_runs"))
    engine.dispose()


def test_save_score_run_refuses_frames_it_cannot_store(db_url):
    engine = open_store(db_url)
    frame = make_entities(5)
    scores = make_scores(frame)
    run = ScoreRunRecord(
        scores=scores,
        entities=frame,
        dataset_fingerprint="x",
        data_source="x",
        as_of=date(2025, 12, 31),
        policy_text="",
        policy_version=scores.policy_version[0],
        model_version="1",
        feature_version="test",
    )
    with pytest.raises(StoreError, match="missing"):
        save_score_run(engine, replace(run, scores=scores.drop(columns=["tier"])))
    with pytest.raises(StoreError, match="missing from the entities table"):
        save_score_run(engine, replace(run, entities=frame.iloc[1:]))
    with pytest.raises(StoreError, match="policy_version"):
        save_score_run(engine, replace(run, policy_version="other"))
    with pytest.raises(StoreError, match="one row per entity_id"):
        save_score_run(engine, replace(run, scores=pd.concat([scores, scores.iloc[:1]])))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM score_runs")).scalar() == 0
    engine.dispose()
