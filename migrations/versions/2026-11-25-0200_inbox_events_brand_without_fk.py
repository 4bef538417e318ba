"""inbox_events without the foreign key to brands (integrity verified by ingest.integrity instead)

The per-row foreign-key trigger on inbox_events.brand_id was a third of PostgreSQL's time storing a bulk order
file (80,000 rows by COPY: 0.72 s with it, 0.47 s without; the three indexes stay). Every writer of the inbox
takes the brand id from a brand it has just looked up or holds in memory from the brands table, and brands are
never deleted; ingest.integrity finds any inbox event whose brand does not exist.

Revision ID: 7d3b9e4a2c15
Revises: 5c2e8a1f7d43
Create Date: 2026-11-25 02:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d3b9e4a2c15"
down_revision: str | None = "5c2e8a1f7d43"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_inbox_events_brand_id_brands"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f("fk_inbox_events_brand_id_brands"), "brands", ["brand_id"], ["id"])
