"""The decision ledger; score runs and rows record the ledger seq they applied.

- ``ledger``: the regulator's decisions (correct, withdraw, repair, remove a listing, add a record), one
  row per decision with a gapless ``seq`` (assigned under a lock by ``serving/ledger.py``) and a
  ``decision_id`` kept across export and import. Append-only (triggers reject UPDATE and DELETE).
- ``score_runs`` gains ``ledger_seq`` and ``ledger_conflicts``; ``scores`` gains ``ledger_seq``. Rows
  stored before this revision keep NULL: they read no ledger.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("seq", Id, autoincrement=False, nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=True),
        sa.Column("entity_id", sa.String(length=18), nullable=True),
        sa.Column("list", sa.String(length=32), nullable=True),
        sa.Column("entered_on", sa.Date(), nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("recorded_on", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("repaired_on", sa.Date(), nullable=True),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("basis", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_ledger_decision_id")),
    )
    op.create_index(op.f("ix_ledger_event_id"), "ledger", ["event_id"], unique=False)
    op.create_index(op.f("ix_ledger_entity_id"), "ledger", ["entity_id"], unique=False)
    op.add_column("score_runs", sa.Column("ledger_seq", Id, nullable=True))
    op.add_column("score_runs", sa.Column("ledger_conflicts", sa.Text(), nullable=True))
    op.add_column("scores", sa.Column("ledger_seq", Id, nullable=True))

    # The function ipcredit_append_only() (PostgreSQL) was created by revision 0001.
    dialect = op.get_bind().dialect.name
    for verb in ("UPDATE", "DELETE"):
        name = f"ledger_no_{verb.lower()}"
        if dialect == "sqlite":
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {verb} ON ledger "
                "BEGIN SELECT RAISE(ABORT, 'ledger is append-only: rows cannot be changed or deleted'); END"
            )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {verb} ON ledger FOR EACH ROW EXECUTE FUNCTION ipcredit_append_only()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for verb in ("update", "delete"):
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS ledger_no_{verb}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS ledger_no_{verb} ON ledger")
    # SQLite: dropping a column of a table with triggers needs the table rebuilt (batch mode).
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("ledger_seq")
    with op.batch_alter_table("score_runs") as batch:
        batch.drop_column("ledger_conflicts")
        batch.drop_column("ledger_seq")
    op.drop_index(op.f("ix_ledger_entity_id"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_event_id"), table_name="ledger")
    op.drop_table("ledger")
