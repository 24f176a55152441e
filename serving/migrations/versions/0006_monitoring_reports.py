"""Monthly monitoring reports as issued: ``monitoring_reports`` keeps each report's figures and page, once
per distinct report (its sha256), append-only like the runs it watches.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitoring_reports",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["score_runs.id"], name=op.f("fk_monitoring_reports_run_id_score_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_reports")),
        sa.UniqueConstraint("sha256", name=op.f("uq_monitoring_reports_sha256")),
    )
    with op.batch_alter_table("monitoring_reports") as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_reports_as_of"), ["as_of"], unique=False)
    dialect = op.get_bind().dialect.name
    for verb in ("UPDATE", "DELETE"):
        name = f"monitoring_reports_no_{verb.lower()}"
        if dialect == "sqlite":
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {verb} ON monitoring_reports BEGIN SELECT "
                "RAISE(ABORT, 'monitoring_reports is append-only: rows cannot be changed or deleted'); END"
            )
        elif dialect == "postgresql":  # ipcredit_append_only() was created by revision 0001
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {verb} ON monitoring_reports "
                "FOR EACH ROW EXECUTE FUNCTION ipcredit_append_only()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for verb in ("update", "delete"):
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS monitoring_reports_no_{verb}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS monitoring_reports_no_{verb} ON monitoring_reports")
    op.drop_table("monitoring_reports")
