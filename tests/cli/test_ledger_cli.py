"""`clearline ledger check`: the ledger's integrity from the command line (exit 1 with a one-line reason)."""

from __future__ import annotations

from sqlalchemy import select, update
from typer.testing import CliRunner

from clearline.cli.main import app as cli
from clearline.kit.db import unit_of_work
from clearline.ledger import service as ledger
from clearline.models import LedgerPosting

runner = CliRunner()

BRAND = 4_242


def post_some(count: int) -> None:
    with unit_of_work() as session:
        ledger.post(
            session,
            [
                ledger.Transfer(
                    key=f"cli:{i}",
                    kind="commission.accrued",
                    debit=ledger.Account(BRAND, "brand", BRAND, ledger.EXPENSE, "USD"),
                    credit=ledger.Account(BRAND, "creator", i, ledger.PENDING, "USD"),
                    amount=100 * i,
                )
                for i in range(1, count + 1)
            ],
        )


class TestLedgerCheck:
    def test_a_ledger_posted_through_the_service_is_intact(self, committed: str) -> None:
        post_some(3)
        result = runner.invoke(cli, ["ledger", "check"])
        assert result.exit_code == 0, result.output
        assert "ledger intact: 3 entries, 6 postings checked" in result.stdout

    def test_a_posting_pointing_at_a_missing_entry_fails_naming_it(self, committed: str) -> None:
        post_some(2)
        with unit_of_work() as session:
            posting_id = session.scalar(select(LedgerPosting.id).order_by(LedgerPosting.id).limit(1))
            session.execute(update(LedgerPosting).where(LedgerPosting.id == posting_id).values(entry_id=987_654_321))
        result = runner.invoke(cli, ["ledger", "check"])
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0].startswith(
            f"error: ledger broken: posting {posting_id}: entry 987654321 does not exist ("
        )
