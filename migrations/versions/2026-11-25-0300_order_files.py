"""order_files: the order CSVs accepted whole, by the SHA-256 of their bytes per brand

The same bytes imported again for the same brand are the same orders again (the same inbox bodies, all
duplicates): one look-up answers for the whole file instead of one per order. A row is written only when every
order of the file was accepted (no row rejected), in the unit of work that stores them. ``size`` is looked up
first, so a file of a size never seen is checked without waiting for its digest (computed meanwhile).

Revision ID: 3f8a61c0d2e9
Revises: 5d7d7058b3c7
Create Date: 2026-11-25 03:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clearline.kit.db

revision: str = "3f8a61c0d2e9"
down_revision: str | None = "5d7d7058b3c7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column(
            "accepted_at",
            clearline.kit.db.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], name=op.f("fk_order_files_brand_id_brands")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_files")),
        sa.UniqueConstraint("brand_id", "sha256", name=op.f("uq_order_files_brand_id_sha256")),
    )


def downgrade() -> None:
    op.drop_table("order_files")
