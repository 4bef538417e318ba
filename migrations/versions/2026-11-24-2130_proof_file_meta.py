"""proofs_of_posting keep their file's name, content type and size (to serve it as it was uploaded)

Existing proofs with a file get the content type their key's extension stands for (the storage derives the
extension from the accepted type), a name made from the proof's id, and size 0 (unknown until read).

Revision ID: 4b7e1d9c2a60
Revises: 9a4d2e7c1b30
Create Date: 2026-11-24 21:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b7e1d9c2a60"
down_revision: str | None = "9a4d2e7c1b30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The storage's extension for each accepted type, as it was when this migration was written.
TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
}


def upgrade() -> None:
    with op.batch_alter_table("proofs_of_posting", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_name", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("content_type", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("size_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    proofs = sa.table(
        "proofs_of_posting",
        sa.column("id", sa.BigInteger()),
        sa.column("file_key", sa.String()),
        sa.column("file_name", sa.String()),
        sa.column("content_type", sa.String()),
    )
    for extension, content_type in TYPES.items():
        op.execute(
            proofs.update()
            .where(proofs.c.file_key.like(f"%{extension}"))
            .values(
                content_type=content_type,
                file_name=sa.literal("proof-") + sa.cast(proofs.c.id, sa.String()) + sa.literal(extension),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("proofs_of_posting", schema=None) as batch_op:
        batch_op.drop_column("size_bytes")
        batch_op.drop_column("content_type")
        batch_op.drop_column("file_name")
