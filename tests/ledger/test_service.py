"""The double-entry ledger: balanced, idempotent on key, set-based, append-only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.orm import Session

from clearline.ledger import service as ledger
from clearline.models import LedgerAccount, LedgerEntry, LedgerPosting

BRAND = 9_001


def acct(
    owner_id: int, kind: str, currency: str = "USD", owner_type: str = "creator", brand: int = BRAND
) -> ledger.Account:
    return ledger.Account(brand, owner_type, owner_id, kind, currency)


EXPENSE = acct(BRAND, ledger.EXPENSE, owner_type="brand")


def accrue(key: str, creator: int, amount: int, currency: str = "USD", line: int | None = None) -> ledger.Transfer:
    return ledger.Transfer(
        key=key,
        kind="commission.accrued",
        debit=acct(BRAND, ledger.EXPENSE, currency, owner_type="brand"),
        credit=acct(creator, ledger.PENDING, currency),
        amount=amount,
        commission_line_id=line,
    )


def counts(db: Session) -> tuple[int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(LedgerAccount)) or 0,
        db.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        db.scalar(select(func.count()).select_from(LedgerPosting)) or 0,
    )


@contextmanager
def statements(db: Session) -> Iterator[list[str]]:
    """Every statement sent: through SQLAlchemy, and through the driver's own cursors that the PostgreSQL path
    of the ledger uses for binary array parameters."""
    seen: list[str] = []
    connection = db.connection()

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    class CountingCursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(str(statement))
            return self._cursor.execute(statement, *args, **kwargs)

        def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(str(statement))
            return self._cursor.copy(statement, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

        def __enter__(self) -> CountingCursor:
            self._cursor.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self._cursor.__exit__(*exc)

    class CountingConnection:
        def __init__(self, raw: Any) -> None:
            self._raw = raw

        def cursor(self, *args: Any, **kwargs: Any) -> CountingCursor:
            return CountingCursor(self._raw.cursor(*args, **kwargs))

        def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(str(statement))
            return self._raw.execute(statement, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._raw, name)

    real = ledger._driver_connection
    event.listen(connection, "before_cursor_execute", count)
    try:
        with mock.patch.object(ledger, "_driver_connection", lambda session: CountingConnection(real(session))):
            yield seen
    finally:
        event.remove(connection, "before_cursor_execute", count)


class TestPost:
    def test_a_transfer_is_one_entry_whose_two_postings_sum_to_zero(self, db: Session) -> None:
        result = ledger.post(db, [accrue("t:1", 1, 1999, line=77)])
        assert (result.posted, result.skipped, result.keys) == (1, 0, ["t:1"])
        entry = db.scalar(select(LedgerEntry).where(LedgerEntry.key == "t:1"))
        assert entry is not None and (entry.kind, entry.brand_id, entry.commission_line_id) == (
            "commission.accrued",
            BRAND,
            77,
        )
        postings = sorted(db.scalars(select(LedgerPosting.amount).where(LedgerPosting.entry_id == entry.id)))
        assert postings == [-1999, 1999]
        assert ledger.imbalances(db) == []

    def test_the_same_key_posted_again_changes_nothing(self, db: Session) -> None:
        batch = [accrue(f"t:{i}", i % 3, 100 + i) for i in range(10)]
        ledger.post(db, batch)
        before = (counts(db), ledger.balances(db, brand_id=BRAND))
        again = ledger.post(db, batch)
        assert (again.posted, again.skipped) == (0, 10)
        assert (counts(db), ledger.balances(db, brand_id=BRAND)) == before

    def test_a_key_repeated_inside_one_batch_is_posted_once(self, db: Session) -> None:
        result = ledger.post(db, [accrue("t:dup", 1, 500), accrue("t:dup", 1, 500), accrue("t:other", 1, 1)])
        assert (result.posted, result.skipped) == (2, 1)
        assert ledger.balance(db, acct(1, ledger.PENDING)) == 501

    def test_the_first_transfer_under_a_key_wins_inside_a_batch_as_across_calls(self, db: Session) -> None:
        ledger.post(db, [accrue("k:1", 1, 100), accrue("k:1", 2, 999)])
        ledger.post(db, [accrue("k:1", 3, 555)])
        nonzero = {code: total for code, total in ledger.balances(db, owner_type="creator").items() if total}
        assert nonzero == {acct(1, ledger.PENDING).code: 100}

    def test_a_zero_transfer_posts_nothing(self, db: Session) -> None:
        result = ledger.post(db, [accrue("t:zero", 1, 0)])
        assert result.posted == 0 and counts(db)[1] == 0

    @pytest.mark.parametrize(
        ("debit", "credit", "amount", "message"),
        [
            (acct(1, ledger.PENDING, "EUR"), acct(1, ledger.AVAILABLE, "USD"), 5, "different currencies"),
            (acct(1, ledger.PENDING), acct(1, ledger.AVAILABLE), -5, "negative transfer"),
            (acct(1, ledger.PENDING), acct(1, ledger.PENDING), 5, "same account"),
        ],
    )
    def test_an_unbalanceable_transfer_refuses_the_whole_batch(
        self, db: Session, debit: ledger.Account, credit: ledger.Account, amount: int, message: str
    ) -> None:
        bad = ledger.Transfer("t:bad", "test", debit, credit, amount)
        with pytest.raises(ledger.UnbalancedEntryError, match=message):
            ledger.post(db, [accrue("t:good", 1, 100), bad])
        assert counts(db) == (0, 0, 0)

    def test_a_naive_effective_time_refuses_the_whole_batch(self, db: Session) -> None:
        naive = ledger.Transfer(
            "t:naive", "test", EXPENSE, acct(1, ledger.PENDING), 5, effective_at=dt.datetime(2026, 11, 1)
        )
        with pytest.raises(ValueError, match="naive datetime"):
            ledger.post(db, [accrue("t:good", 1, 100), naive])
        assert counts(db) == (0, 0, 0)

    def test_a_large_batch_takes_a_handful_of_statements_not_one_per_transfer(self, db: Session) -> None:
        with statements(db) as small:
            ledger.post(db, [accrue(f"s:{i}", i % 50, 100) for i in range(20)])
        with statements(db) as large:
            ledger.post(db, [accrue(f"l:{i}", i % 50, 100) for i in range(3000)])
        assert len(small) <= 8
        assert len(large) <= len(small) + 6  # insert batches grow with size, statements per transfer do not
        assert sum("ledger_entries" in statement.lower() for statement in large) >= 1  # the writes were counted
        assert counts(db)[1:] == (3020, 6040)

    def test_a_batch_larger_than_a_chunk_is_posted_whole(self, db: Session) -> None:
        result = ledger.post(db, [accrue(f"c:{i}", 1, 10) for i in range(7)], chunk=3)
        assert (result.posted, ledger.balance(db, acct(1, ledger.PENDING))) == (7, 70)

    def test_an_account_is_created_once_however_many_transfers_touch_it(self, db: Session) -> None:
        ledger.post(db, [accrue(f"h:{i}", 1, 1) for i in range(100)])
        ledger.post(db, [accrue(f"h2:{i}", 1, 1) for i in range(100)])
        assert counts(db)[0] == 2
        assert ledger.balance(db, acct(1, ledger.PENDING)) == 200
        assert ledger.balance(db, EXPENSE) == -200

    def test_currencies_balance_separately(self, db: Session) -> None:
        ledger.post(db, [accrue("x:usd", 1, 100, "USD"), accrue("x:eur", 1, 70, "EUR"), accrue("x:jpy", 1, 15, "JPY")])
        assert ledger.balances(db, owner_type="creator") == {
            acct(1, ledger.PENDING, "USD").code: 100,
            acct(1, ledger.PENDING, "EUR").code: 70,
            acct(1, ledger.PENDING, "JPY").code: 15,
        }
        assert ledger.imbalances(db) == []


def postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


@pytest.fixture(params=["copy", "statement"])
def path(request: pytest.FixtureRequest, db: Session) -> Iterator[str]:
    """Run a test through PostgreSQL's COPY path and through its one-statement path (SQLite has one path)."""
    if request.param == "copy" and not postgresql(db):
        pytest.skip("COPY is the PostgreSQL path")
    with mock.patch.object(ledger, "_COPY_FROM", 1 if request.param == "copy" else 10**9):
        yield request.param


class TestPostPaths:
    def test_every_field_is_stored_as_given_and_ids_follow_the_callers_order(self, db: Session, path: str) -> None:
        tokyo = dt.timezone(dt.timedelta(hours=9))
        memo = "é" * 150 + "日本" * 80  # 310 characters, more bytes than characters
        transfers = [
            ledger.Transfer(
                'k:"quoted", {braced} \\ back',
                "commission.accrued",
                EXPENSE,
                acct(1, ledger.PENDING),
                1,
                commission_line_id=41,
                memo=memo,
                effective_at=dt.datetime(2026, 11, 2, 9, 30, tzinfo=tokyo),
            ),
            ledger.Transfer("k:ключ", "payout.paid", acct(2, ledger.AVAILABLE), acct(2, ledger.PAID), 2**62),
            ledger.Transfer(
                "k:yen",
                "commission.reversed",
                acct(3, ledger.PENDING, "JPY"),
                acct(BRAND, ledger.EXPENSE, "JPY", owner_type="brand"),
                700,
                commission_line_id=0,
                memo="",
                effective_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC) - dt.timedelta(microseconds=1),
            ),
        ]
        result = ledger.post(db, transfers)
        assert (result.posted, result.skipped, result.keys) == (3, 0, [t.key for t in transfers])
        entries = db.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        assert [e.key for e in entries] == [t.key for t in transfers]
        assert [(e.kind, e.brand_id, e.commission_line_id) for e in entries] == [
            ("commission.accrued", BRAND, 41),
            ("payout.paid", BRAND, None),
            ("commission.reversed", BRAND, 0),
        ]
        assert [e.memo for e in entries] == [memo[:300], "", ""]
        assert entries[0].effective_at == dt.datetime(2026, 11, 2, 0, 30, tzinfo=dt.UTC)
        assert entries[1].effective_at == entries[1].created_at  # no effective time: when it was posted
        assert entries[2].effective_at == dt.datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
        assert entries[0].created_at == entries[2].created_at
        postings = db.execute(
            select(LedgerPosting.entry_id, LedgerAccount.code, LedgerPosting.amount, LedgerPosting.currency)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .order_by(LedgerPosting.id)
        ).all()
        assert [tuple(p) for p in postings] == [
            (entries[0].id, EXPENSE.code, -1, "USD"),
            (entries[0].id, acct(1, ledger.PENDING).code, 1, "USD"),
            (entries[1].id, acct(2, ledger.AVAILABLE).code, -(2**62), "USD"),
            (entries[1].id, acct(2, ledger.PAID).code, 2**62, "USD"),
            (entries[2].id, acct(3, ledger.PENDING, "JPY").code, -700, "JPY"),
            (entries[2].id, acct(BRAND, ledger.EXPENSE, "JPY", owner_type="brand").code, 700, "JPY"),
        ]
        assert ledger.integrity(db).ok

    def test_a_batch_of_old_and_new_keys_posts_only_the_new_ones(self, db: Session, path: str) -> None:
        ledger.post(db, [accrue(f"m:{i}", i % 4, 10 + i) for i in range(0, 300, 2)])
        before = ledger.balances(db, brand_id=BRAND)
        result = ledger.post(db, [accrue(f"m:{i}", i % 4, 10**6) for i in range(300)], chunk=7)
        assert (result.posted, result.skipped) == (150, 150)
        assert result.keys == [f"m:{i}" for i in range(1, 300, 2)]
        after = ledger.balances(db, brand_id=BRAND)
        assert after[EXPENSE.code] == before[EXPENSE.code] - 150 * 10**6
        assert counts(db)[1:] == (300, 600)
        assert ledger.integrity(db).ok

    def test_a_key_committed_elsewhere_after_the_check_is_skipped_not_doubled(self, db: Session) -> None:
        if not postgresql(db):
            pytest.skip("the check before COPY is the PostgreSQL path")
        ledger.post(db, [accrue(f"r:{i}", 1, 100) for i in range(5)])
        # The check sees none of the keys, as if another transaction had committed r:2 just after it.
        blind = "SELECT key FROM ledger_entries WHERE false AND key = ANY(%(keys)b::text[])"
        with (
            mock.patch.object(ledger, "_COPY_FROM", 1),
            mock.patch.object(ledger, "_EXISTING_KEYS", blind),
            mock.patch.object(ledger, "_post_statement", wraps=ledger._post_statement) as fallback,
        ):
            result = ledger.post(db, [accrue("r:2", 2, 999), accrue("r:5", 3, 50), accrue("r:6", 3, 50)])
        assert fallback.call_count == 1
        assert (result.posted, result.skipped, result.keys) == (2, 1, ["r:5", "r:6"])
        assert counts(db) == (4, 7, 14)  # the expense account and creators 1 to 3; the failed COPY left no row
        assert ledger.balance(db, acct(1, ledger.PENDING)) == 500
        assert ledger.balance(db, acct(2, ledger.PENDING)) == 0
        assert ledger.balance(db, acct(3, ledger.PENDING)) == 100
        assert ledger.integrity(db).ok


class TestBalance:
    def test_credits_are_positive_and_debits_negative(self, db: Session) -> None:
        ledger.post(
            db,
            [
                accrue("b:1", 1, 1000),
                ledger.Transfer("b:2", "commission.cleared", acct(1, ledger.PENDING), acct(1, ledger.AVAILABLE), 600),
                ledger.Transfer("b:3", "commission.clawed_back", acct(1, ledger.AVAILABLE), EXPENSE, 900),
            ],
        )
        assert ledger.balance(db, acct(1, ledger.PENDING)) == 400
        assert ledger.balance(db, acct(1, ledger.AVAILABLE)) == -300  # a clawback may leave it negative
        assert ledger.balance(db, EXPENSE) == -100

    def test_an_account_never_posted_to_has_zero_balance(self, db: Session) -> None:
        assert ledger.balance(db, acct(404, ledger.PAID)) == 0


class TestBalances:
    def test_balances_are_per_account_and_filterable(self, db: Session) -> None:
        ledger.post(
            db,
            [
                accrue("f:1", 1, 100),
                accrue("f:2", 2, 250),
                ledger.Transfer(
                    "f:3",
                    "commission.accrued",
                    acct(BRAND + 1, ledger.EXPENSE, owner_type="brand", brand=BRAND + 1),
                    acct(1, ledger.PENDING, owner_type="agency", brand=BRAND + 1),
                    40,
                ),
            ],
        )
        assert ledger.balances(db, brand_id=BRAND) == {
            EXPENSE.code: -350,
            acct(1, ledger.PENDING).code: 100,
            acct(2, ledger.PENDING).code: 250,
        }
        assert ledger.balances(db, owner_type="creator", owner_id=2) == {acct(2, ledger.PENDING).code: 250}
        assert ledger.balances(db, owner_type="agency") == {
            acct(1, ledger.PENDING, owner_type="agency", brand=BRAND + 1).code: 40
        }
        assert sum(ledger.balances(db).values()) == 0


class TestImbalances:
    def test_nothing_posted_through_the_service_is_ever_unbalanced(self, db: Session) -> None:
        ledger.post(db, [accrue(f"i:{i}", i, i * 7) for i in range(1, 40)])
        assert ledger.imbalances(db) == []

    def test_an_entry_written_around_the_service_is_reported(self, db: Session) -> None:
        ledger.post(db, [accrue("i:ok", 1, 100)])
        entry_id = db.scalar(select(LedgerEntry.id).where(LedgerEntry.key == "i:ok"))
        account_id = db.scalar(select(LedgerAccount.id).where(LedgerAccount.code == acct(1, ledger.PENDING).code))
        db.execute(insert(LedgerPosting).values(entry_id=entry_id, account_id=account_id, amount=5, currency="USD"))
        assert ledger.imbalances(db) == [(entry_id, "USD", 5)]


class TestIntegrity:
    def test_a_ledger_posted_only_through_the_service_is_sound(self, db: Session) -> None:
        ledger.post(db, [accrue(f"g:{i}", i, i * 11, line=i) for i in range(1, 30)])
        report = ledger.integrity(db)
        assert report.ok, report.problems
        assert (report.entries, report.postings) == (29, 58)

    def test_a_posting_whose_entry_does_not_exist_is_reported(self, db: Session) -> None:
        ledger.post(db, [accrue("g:ok", 1, 100)])
        account_id = db.scalar(select(LedgerAccount.id).where(LedgerAccount.code == acct(1, ledger.PENDING).code))
        posting_id = db.scalar(
            insert(LedgerPosting)
            .values(entry_id=987_654_321, account_id=account_id, amount=0, currency="USD")
            .returning(LedgerPosting.id)
        )
        assert ledger.integrity(db).problems == [f"posting {posting_id}: entry 987654321 does not exist"]

    def test_a_posting_whose_account_does_not_exist_is_reported(self, db: Session) -> None:
        ledger.post(db, [accrue("g:ok", 1, 100)])
        entry_id = db.scalar(select(LedgerEntry.id).where(LedgerEntry.key == "g:ok"))
        posting_id = db.scalar(
            insert(LedgerPosting)
            .values(entry_id=entry_id, account_id=987_654_321, amount=0, currency="USD")
            .returning(LedgerPosting.id)
        )
        assert ledger.integrity(db).problems == [f"posting {posting_id}: account 987654321 does not exist"]

    def test_a_posting_in_another_currency_than_its_account_is_reported(self, db: Session) -> None:
        ledger.post(db, [accrue("g:ok", 1, 100)])
        db.execute(update(LedgerPosting).where(LedgerPosting.amount > 0).values(currency="EUR"))
        problems = ledger.integrity(db).problems
        assert any("EUR on account" in problem for problem in problems)

    def test_an_entry_without_postings_and_an_unbalanced_entry_are_reported(self, db: Session) -> None:
        ledger.post(db, [accrue("g:ok", 1, 100)])
        entry_id = db.scalar(select(LedgerEntry.id).where(LedgerEntry.key == "g:ok"))
        lonely = db.scalar(
            insert(LedgerEntry)
            .values(
                key="g:lonely",
                kind="test",
                brand_id=BRAND,
                memo="",
                effective_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            )
            .returning(LedgerEntry.id)
        )
        account_id = db.scalar(select(LedgerAccount.id).where(LedgerAccount.code == acct(1, ledger.PENDING).code))
        db.execute(insert(LedgerPosting).values(entry_id=entry_id, account_id=account_id, amount=5, currency="USD"))
        assert ledger.integrity(db).problems == [
            f"entry {lonely} (g:lonely): 0 posting(s), needs at least two",
            f"entry {entry_id}: postings sum to 5 USD, not zero",
        ]


class TestTransfersForLine:
    def test_a_lines_entries_come_back_in_order_with_their_postings(self, db: Session) -> None:
        ledger.post(db, [accrue("l:acc", 1, 800, line=5), accrue("l:other", 1, 1, line=6)])
        ledger.post(
            db,
            [
                ledger.Transfer(
                    "l:rev", "commission.reversed", acct(1, ledger.PENDING), EXPENSE, 300, commission_line_id=5
                )
            ],
        )
        found = ledger.transfers_for_line(db, 5)
        assert [(t["key"], t["kind"]) for t in found] == [
            ("l:acc", "commission.accrued"),
            ("l:rev", "commission.reversed"),
        ]
        assert found[1]["postings"] == [(acct(1, ledger.PENDING).code, -300), (EXPENSE.code, 300)]
        assert ledger.transfers_for_line(db, 999) == []
