"""ledger_postings without foreign keys (integrity verified by ledger.integrity instead)

The two per-row foreign-key checks on ledger_postings (-> ledger_entries, -> ledger_accounts) took about half
of PostgreSQL's time when posting a batch. Postings are only ever written by ledger.post's set-based statement,
which derives them from the entries it inserts and the accounts it looks up in the same unit of work;
ledger.integrity (run by `clearline ledger check`) finds any posting without its entry or account.

Revision ID: 9a4d2e7c1b30
Revises: 5e1f0c2a9b7d
Create Date: 2026-11-24 21:10:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9a4d2e7c1b30"
down_revision: str | None = "5e1f0c2a9b7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ledger_postings_account_id_ledger_accounts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_ledger_postings_entry_id_ledger_entries"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_ledger_postings_entry_id_ledger_entries"), "ledger_entries", ["entry_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ledger_postings_account_id_ledger_accounts"), "ledger_accounts", ["account_id"], ["id"]
        )
