"""brand_secrets: the signing secrets encrypted at rest (secret -> sealed_secret)

Brand signing secrets verify HMACs, so they must be read back and cannot be hashed; they are now stored
AES-256-GCM encrypted under the data key (CLEARLINE_DATA_KEY, or a key derived from CLEARLINE_SECRET_KEY),
bound to their brand and channel (`clearline.ingest.signatures.seal_secret`). Every existing row is
encrypted here with the running configuration's key; the downgrade decrypts them again (and stops, naming
the row, if one does not decrypt under that key). The column becomes Text: a sealed value is about 4/3 of
its secret plus 40 characters.

Revision ID: 5d7d7058b3c7
Revises: 7d3b9e4a2c15
Create Date: 2026-11-25 02:10:00+00:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d7d7058b3c7"
down_revision: str | None = "7d3b9e4a2c15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rewrite(column: str, change: Callable[[int, int, str, str], str]) -> None:
    """Set every row's ``column`` to ``change(id, brand_id, kind, value)``."""
    secrets = sa.table(
        "brand_secrets",
        sa.column("id", sa.BigInteger()),
        sa.column("brand_id", sa.BigInteger()),
        sa.column("kind", sa.String()),
        sa.column(column, sa.Text()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(secrets.c.id, secrets.c.brand_id, secrets.c.kind, secrets.c[column])).all()
    for row_id, brand_id, kind, value in rows:
        bind.execute(
            secrets.update().where(secrets.c.id == row_id).values({column: change(row_id, brand_id, kind, value)})
        )


def upgrade() -> None:
    from clearline.ingest.signatures import seal_secret

    with op.batch_alter_table("brand_secrets", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            new_column_name="sealed_secret",
            existing_type=sa.String(length=200),
            type_=sa.Text(),
            existing_nullable=False,
        )
    _rewrite("sealed_secret", lambda _, brand_id, kind, secret: seal_secret(secret, brand_id=brand_id, kind=kind))


def downgrade() -> None:
    from clearline.ingest.signatures import open_secret
    from clearline.kit.sealing import UnreadableSecretError

    def unseal(row_id: int, brand_id: int, kind: str, sealed: str) -> str:
        try:
            return open_secret(sealed, brand_id=brand_id, kind=kind)
        except UnreadableSecretError as exc:
            raise RuntimeError(f"brand_secrets row {row_id} cannot be decrypted, so not downgraded: {exc}") from None

    _rewrite("sealed_secret", unseal)
    with op.batch_alter_table("brand_secrets", schema=None) as batch_op:
        batch_op.alter_column(
            "sealed_secret",
            new_column_name="secret",
            existing_type=sa.Text(),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
