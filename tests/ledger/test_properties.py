"""Ledger properties under hypothesis: random batches of transfers, repeated keys and replays."""

from __future__ import annotations

from collections import defaultdict
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.ledger import service as ledger
from clearline.models import LedgerEntry, LedgerPosting

BRAND = 7_007
ACCOUNTS = [
    ledger.Account(BRAND, owner_type, owner_id, kind, currency)
    for owner_type, owner_id in (("creator", 1), ("creator", 2), ("agency", 3), ("brand", BRAND))
    for kind in (ledger.PENDING, ledger.AVAILABLE, ledger.EXPENSE)
    for currency in ("USD", "JPY")
]

transfers = st.lists(
    st.tuples(
        st.integers(0, 25),  # key from a small pool, so keys repeat within and across batches
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        st.integers(0, 10**9),
    ).filter(lambda t: t[1] != t[2] and t[1].currency == t[2].currency),
    max_size=40,
)


class TestPostProperties:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        batches=st.lists(transfers, min_size=1, max_size=4),
        chunk=st.integers(1, 50),
        copy_from=st.integers(1, 45),
    )
    def test_any_sequence_of_batches_balances_and_replays_change_nothing(
        self,
        db: Session,
        batches: list[list[tuple[int, ledger.Account, ledger.Account, int]]],
        chunk: int,
        copy_from: int,
    ) -> None:
        # copy_from: the batch size from which PostgreSQL posts by COPY rather than by one statement per chunk,
        # drawn so that both paths meet every situation (SQLite has one path).
        savepoint = db.begin_nested()
        patch = mock.patch.object(ledger, "_COPY_FROM", copy_from)
        patch.start()
        try:
            expected: dict[str, int] = defaultdict(int)
            posted: set[str] = set()
            sent = []
            for batch in batches:
                items = [
                    ledger.Transfer(f"p:{key}", "test", debit, credit, amount) for key, debit, credit, amount in batch
                ]
                ledger.post(db, items, chunk=chunk)
                sent.append(items)
                for item in items:
                    if item.amount == 0 or item.key in posted:
                        continue
                    posted.add(item.key)  # the first transfer under a key is the one that counts
                    expected[item.debit.code] -= item.amount
                    expected[item.credit.code] += item.amount
            assert ledger.imbalances(db) == []
            assert ledger.integrity(db).problems == []
            balances = ledger.balances(db, brand_id=BRAND)
            assert {code: total for code, total in balances.items() if total} == {
                code: total for code, total in expected.items() if total
            }
            for currency in ("USD", "JPY"):
                assert sum(total for code, total in balances.items() if code.endswith(currency)) == 0
            counts = (
                db.scalar(select(func.count()).select_from(LedgerEntry)),
                db.scalar(select(func.count()).select_from(LedgerPosting)),
            )
            assert counts == (len(posted), 2 * len(posted))
            for items in sent:
                assert ledger.post(db, items, chunk=chunk).posted == 0
            assert ledger.balances(db, brand_id=BRAND) == balances
        finally:
            patch.stop()
            savepoint.rollback()
