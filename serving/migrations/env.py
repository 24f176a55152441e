"""Alembic environment for the service database (online migrations only)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from serving.db import LOCKS, metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from serving.settings import load_settings

        url = os.environ.get("IPCREDIT_DATABASE_URL") or load_settings().db_url
    return url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together migrate one after another: the others wait here, then find the
            # schema at head (the current revision is read after the lock is held) and do nothing.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCKS['migrations']})")
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
