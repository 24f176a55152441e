"""The sampling population stored by a large score run (``serving/populations.py``), so that a service
starting after the run reads it as one value instead of packing and sorting every scored entity.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "population_records",
        sa.Column("run_id", Id, autoincrement=False, nullable=False),
        sa.Column("runs_seen", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("records", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["score_runs.id"], name=op.f("fk_population_records_run_id_score_runs")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_population_records")),
    )


def downgrade() -> None:
    op.drop_table("population_records")
