"""Integrity: the public draw register, scoped and expiring tokens, jobs, one open objection per row.

- ``draws`` gains its place in the register's hash chain (``sequence``, ``seed_inputs``, ``record_hash``,
  ``next_secret_hash``) and a salted population commitment; ``draw_secrets`` keeps the secret each draw's
  seed is derived from, committed by the draw before it. Draws made before this revision keep their
  order as sequence numbers and have no chain fields (the register shows them as made before it).
- ``api_tokens`` gains ``created_by``, ``expires_at``, ``last_used_at`` and a ``region`` scope.
- ``jobs`` records background work (``POST /v1/score-runs``).
- A partial unique index allows one open objection per score row.
- Draws, their selections, secrets and population snapshots, and inspection results become append-only
  (triggers reject UPDATE and DELETE, as for score runs, scores and the audit log).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("draws", "draw_selections", "draw_secrets", "populations", "inspection_results")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=6), nullable=True))

    with op.batch_alter_table("draws") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("seed_inputs", sa.Text(), nullable=True))
        batch.add_column(sa.Column("record_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_secret_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("population_salt", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("population_commitment", sa.String(length=64), nullable=True))
    # Draws made before the register keep their order.
    op.execute(
        "UPDATE draws SET sequence = (SELECT count(*) FROM draws AS d WHERE d.created_at < draws.created_at "
        "OR (d.created_at = draws.created_at AND d.id <= draws.id))"
    )
    with op.batch_alter_table("draws") as batch:
        batch.alter_column("sequence", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint(op.f("uq_draws_sequence"), ["sequence"])

    op.create_table(
        "draw_secrets",
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_draw_secrets")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("run_id", Id, nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(
        "uq_objections_open_score_id",
        "objections",
        ["score_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    _append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index("uq_objections_open_score_id", table_name="objections")
    op.drop_table("jobs")
    op.drop_table("draw_secrets")
    with op.batch_alter_table("draws") as batch:
        batch.drop_constraint(op.f("uq_draws_sequence"), type_="unique")
        for column in (
            "population_commitment",
            "population_salt",
            "next_secret_hash",
            "record_hash",
            "seed_inputs",
            "sequence",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("api_tokens") as batch:
        for column in ("region", "last_used_at", "expires_at", "created_by"):
            batch.drop_column(column)


def _append_only_triggers() -> None:
    # The function ipcredit_append_only() (PostgreSQL) was created by revision 0001.
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            name = f"{table}_no_{verb.lower()}"
            if dialect == "sqlite":
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows cannot be changed or deleted'); END"
                )
            elif dialect == "postgresql":
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION ipcredit_append_only()"
                )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for verb in ("update", "delete"):
            if dialect == "sqlite":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
            elif dialect == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb} ON {table}")
