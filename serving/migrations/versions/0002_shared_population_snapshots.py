"""Shared population snapshots; draw selections clustered by (draw, position).

Draws over the same population (same ids and tiers) now share one stored snapshot in ``populations``,
keyed by its sha256, instead of each draw carrying a copy; ``draw_selections`` is keyed by
(draw_id, position) so a draw's rows are appended in order. Existing rows are carried over.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "populations",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_populations")),
    )
    op.execute(
        "INSERT INTO populations (hash, size, snapshot, created_at) "
        "SELECT d.population_hash, d.population_size, d.population_snapshot, d.created_at FROM draws d "
        "WHERE d.id = (SELECT min(e.id) FROM draws e WHERE e.population_hash = d.population_hash)"
    )
    with op.batch_alter_table("draws") as batch:
        batch.drop_column("population_snapshot")
        batch.create_foreign_key(
            op.f("fk_draws_population_hash_populations"), "populations", ["population_hash"], ["hash"]
        )

    # Copy aside, recreate with the new key (constraint names stay those of the naming convention).
    op.execute("CREATE TABLE draw_selections_copy AS SELECT * FROM draw_selections")
    op.drop_table("draw_selections")
    op.create_table(
        "draw_selections",
        sa.Column("draw_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.String(length=18), nullable=False),
        sa.Column("tier", sa.String(length=1), nullable=False),
        sa.Column("inclusion_probability", sa.Float(), nullable=False),
        sa.Column("inspectors", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"], name=op.f("fk_draw_selections_draw_id_draws")),
        sa.PrimaryKeyConstraint("draw_id", "position", name=op.f("pk_draw_selections")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO draw_selections (draw_id, position, entity_id, tier, inclusion_probability, inspectors) "
        "SELECT draw_id, position, entity_id, tier, inclusion_probability, inspectors FROM draw_selections_copy"
    )
    op.drop_table("draw_selections_copy")


def downgrade() -> None:
    op.execute("CREATE TABLE draw_selections_copy AS SELECT * FROM draw_selections")
    op.drop_table("draw_selections")
    op.create_table(
        "draw_selections",
        sa.Column("draw_id", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=18), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=1), nullable=False),
        sa.Column("inclusion_probability", sa.Float(), nullable=False),
        sa.Column("inspectors", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draws.id"], name=op.f("fk_draw_selections_draw_id_draws")),
        sa.PrimaryKeyConstraint("draw_id", "entity_id", name=op.f("pk_draw_selections")),
    )
    op.execute(
        "INSERT INTO draw_selections (draw_id, entity_id, position, tier, inclusion_probability, inspectors) "
        "SELECT draw_id, entity_id, position, tier, inclusion_probability, inspectors FROM draw_selections_copy"
    )
    op.drop_table("draw_selections_copy")
    with op.batch_alter_table("draws") as batch:
        batch.drop_constraint(op.f("fk_draws_population_hash_populations"), type_="foreignkey")
        batch.add_column(sa.Column("population_snapshot", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE draws SET population_snapshot = "
        "(SELECT snapshot FROM populations WHERE populations.hash = draws.population_hash)"
    )
    op.drop_table("populations")
