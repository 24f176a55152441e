"""The pages' sign-in sessions in the database: ``ui_sessions``, so that every worker process and a restart
know a session (they lived in one process's memory before).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_ui_sessions")),
    )
    with op.batch_alter_table("ui_sessions") as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_sessions_token_hash"), ["token_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_ui_sessions_ends_at"), ["ends_at"], unique=False)


def downgrade() -> None:
    op.drop_table("ui_sessions")
