"""The store: migrations match the tables, runs are immutable, latest-row bookkeeping, migration 0002."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import OperationalError

from serving.db import alembic_config, entities, long_statements, make_engine, metadata, open_store, upgrade
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


def test_replicas_starting_together_migrate_once(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's")
    # Separate processes, as replicas are (alembic's context is one per process).
    code = "import sys; from serving.db import upgrade; upgrade(sys.argv[1])"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in starts]
    assert [code for code, _ in outcomes] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_a_statement_longer_than_the_timeout_is_ended(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("statement_timeout is PostgreSQL's")
    engine = make_engine(db_url, statement_timeout_ms=200)
    with pytest.raises(OperationalError, match="statement timeout"), engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_sleep(2)")
    with engine.begin() as conn:
        long_statements(conn, 5000)  # a job lifts it for its own transaction
        conn.exec_driver_sql("SELECT pg_sleep(0.4)")
    with engine.connect() as conn:  # the URL's own options (here the test schema's search_path) are kept
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "200ms"
        assert conn.exec_driver_sql("SHOW search_path").scalar() == make_url_schema(db_url)
    engine.dispose()


def make_url_schema(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(db_url).query["options"]).removeprefix("-csearch_path=")


def test_a_fresh_machine_gets_its_sqlite_folder_from_the_first_command(tmp_path, monkeypatch):
    """The default service database lies under var/, which a fresh checkout does not have: the first command
    that opens the store (here `ipcredit db upgrade`) creates the folder instead of failing in the migrations."""
    from typer.testing import CliRunner

    from serving.cli import app

    monkeypatch.setenv("IPCREDIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("IPCREDIT_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'ipcredit.db'}")
    assert "score_runs" in inspect(engine).get_table_names()
    engine.dispose()
