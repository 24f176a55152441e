"""What a tier changes: inspection plans, inspection outcomes, credit commitments, department tokens.

- ``plans``: a yearly inspection plan per region (one per region and year), with the policy's ``[plans]``
  section it follows; ``plan_draws``: each of its monthly or quarterly draws (a draw of the register) with
  the per-tier counts and probabilities and the entities left out in their rest period.
- ``plan_tasks``: inspections triggered by a complaint, data alert or referral, kept beside the random
  ones and never counted as random.
- ``inspection_outcomes``: every inspection's outcome (no findings, findings of a kind, could not inspect)
  by entity and inspector, with the ledger record it made.
- ``commitments``: credit commitments signed, kept or broken, with the ledger record they made.
- ``api_tokens`` gains ``benefits``: the benefits a department token may ask about.

``plan_draws``, ``inspection_outcomes`` and ``commitments`` are append-only (triggers reject UPDATE and
DELETE, as for the draws).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("plan_draws", "inspection_outcomes", "commitments")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("benefits", sa.Text(), nullable=True))
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("region", "year", name=op.f("uq_plans_region_year")),
    )
    op.create_table(
        "plan_draws",
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("draw_id", sa.String(length=32), nullable=False),
        sa.Column("draw_on", sa.Date(), nullable=False),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column("resting", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_draws_plan_id_plans")),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"], name=op.f("fk_plan_draws_draw_id_draws")),
        sa.PrimaryKeyConstraint("plan_id", "period", name=op.f("pk_plan_draws")),
        sa.UniqueConstraint("draw_id", name=op.f("uq_plan_draws_draw_id")),
    )
    op.create_table(
        "plan_tasks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=18), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("inspectors", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_tasks_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_tasks")),
    )
    op.create_index(op.f("ix_plan_tasks_entity_id"), "plan_tasks", ["entity_id"], unique=False)
    op.create_index(op.f("ix_plan_tasks_plan_id"), "plan_tasks", ["plan_id"], unique=False)
    op.create_table(
        "inspection_outcomes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("draw_id", sa.String(length=32), nullable=True),
        sa.Column("task_id", Id, nullable=True),
        sa.Column("entity_id", sa.String(length=18), nullable=False),
        sa.Column("inspector_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("finding_kind", sa.String(length=40), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=True),
        sa.Column("ledger_seq", Id, nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"], name=op.f("fk_inspection_outcomes_draw_id_draws")),
        sa.ForeignKeyConstraint(["task_id"], ["plan_tasks.id"], name=op.f("fk_inspection_outcomes_task_id_plan_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_outcomes")),
        sa.UniqueConstraint("draw_id", "entity_id", name=op.f("uq_inspection_outcomes_draw_id_entity_id")),
        sa.UniqueConstraint("task_id", name=op.f("uq_inspection_outcomes_task_id")),
    )
    op.create_index(op.f("ix_inspection_outcomes_entity_id"), "inspection_outcomes", ["entity_id"], unique=False)
    op.create_table(
        "commitments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("commitment_id", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("benefit", sa.String(length=32), nullable=True),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=True),
        sa.Column("ledger_seq", Id, nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitments")),
        sa.UniqueConstraint("commitment_id", "status", name=op.f("uq_commitments_commitment_id_status")),
    )
    op.create_index(op.f("ix_commitments_entity_id"), "commitments", ["entity_id"], unique=False)

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


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for verb in ("update", "delete"):
            if dialect == "sqlite":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
            elif dialect == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb} ON {table}")
    op.drop_index(op.f("ix_commitments_entity_id"), table_name="commitments")
    op.drop_table("commitments")
    op.drop_index(op.f("ix_inspection_outcomes_entity_id"), table_name="inspection_outcomes")
    op.drop_table("inspection_outcomes")
    op.drop_index(op.f("ix_plan_tasks_plan_id"), table_name="plan_tasks")
    op.drop_index(op.f("ix_plan_tasks_entity_id"), table_name="plan_tasks")
    op.drop_table("plan_tasks")
    op.drop_table("plan_draws")
    op.drop_table("plans")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("benefits")
