"""commission lines by contract and period (the period cap's sum at every accrual)

Revision ID: 5e1f0c2a9b7d
Revises: d3daa57e3844
Create Date: 2026-11-24 20:35:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e1f0c2a9b7d"
down_revision: str | None = "d3daa57e3844"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_commission_lines_contract_id_period", "commission_lines", ["contract_id", "period"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_commission_lines_contract_id_period", table_name="commission_lines")
