"""The score run's ``data_end``: the delivery's last record (events' ``recorded_on``, lists' ``entered_on``),
so that a run as of long after it says its windows since were empty for want of records. Unknown (NULL) for
runs stored before it.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("score_runs") as batch_op:
        batch_op.add_column(sa.Column("data_end", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("score_runs") as batch_op:
        batch_op.drop_column("data_end")
