"""clicks: index link_id alone instead of (link_id, at)

Every query that reads clicks by link (the links page, the API's and the portal's click counts) filters on
link_id only; none ranges over `at` within a link. The narrower index costs less per stored click, which the
redirect's click writer pays for every click (at many links each insert touches its own leaf page).

Revision ID: 5c2e8a1f7d43
Revises: 4b7e1d9c2a60
Create Date: 2026-11-24 23:45:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5c2e8a1f7d43"
down_revision: str | None = "4b7e1d9c2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_clicks_link_id", "clicks", ["link_id"], unique=False)
    op.drop_index("ix_clicks_link_id_at", table_name="clicks")


def downgrade() -> None:
    op.create_index("ix_clicks_link_id_at", "clicks", ["link_id", "at"], unique=False)
    op.drop_index("ix_clicks_link_id", table_name="clicks")
