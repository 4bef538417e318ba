"""The double-entry ledger. It imports no other domain; everything that moves money calls it.

Accounts are named ``b<brand>:<owner_type>:<owner_id>:<kind>:<currency>``. Postings are signed minor
units, credit positive; every entry sums to zero per currency. Entries are keyed by the business event
(``commission.accrued:<line id>``), inserted with insert-or-ignore, so posting the same event twice
changes nothing. Posting is set-based: a batch of transfers is a handful of statements, not one
transaction per transfer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from clearline.kit.clock import utcnow
from clearline.kit.db import insert_ignore
from clearline.kit.errors import ClearlineError
from clearline.models import LedgerAccount, LedgerEntry, LedgerPosting

# Account kinds. Payee liabilities move pending → available → paid; reserve holds back a share.
PENDING, AVAILABLE, RESERVE, PAID = "pending", "available", "reserve", "paid"
EXPENSE, PAYOUTS = "expense", "payouts"


class UnbalancedEntryError(ClearlineError):
    status_code = 500
    code = "unbalanced_entry"


@dataclass(frozen=True)
class Account:
    brand_id: int
    owner_type: str  # creator, agency or brand
    owner_id: int
    kind: str
    currency: str

    @property
    def code(self) -> str:
        return f"b{self.brand_id}:{self.owner_type}:{self.owner_id}:{self.kind}:{self.currency}"


@dataclass(frozen=True)
class Transfer:
    """Move ``amount`` from ``debit`` to ``credit`` (one entry, two postings)."""

    key: str
    kind: str
    debit: Account
    credit: Account
    amount: int
    commission_line_id: int | None = None
    memo: str = ""
    effective_at: dt.datetime | None = None


@dataclass
class PostResult:
    posted: int = 0
    skipped: int = 0
    keys: list[str] = field(default_factory=list)


def _check(transfers: Sequence[Transfer]) -> None:
    for transfer in transfers:
        if transfer.debit.currency != transfer.credit.currency:
            raise UnbalancedEntryError(f"{transfer.key}: debit and credit in different currencies")
        if transfer.amount < 0:
            raise UnbalancedEntryError(f"{transfer.key}: negative transfer; swap debit and credit")
        if transfer.debit == transfer.credit:
            raise UnbalancedEntryError(f"{transfer.key}: debit and credit are the same account")


def _account_ids(session: Session, accounts: Iterable[Account]) -> dict[str, int]:
    wanted = {account.code: account for account in accounts}
    found = dict(
        session.execute(select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(list(wanted))))
        .tuples()
        .all()
    )
    missing = [a for code, a in wanted.items() if code not in found]
    if missing:
        statement = insert_ignore(LedgerAccount.__table__, session.get_bind().dialect.name, conflict=["code"])
        session.execute(
            statement,
            [
                {
                    "code": a.code,
                    "brand_id": a.brand_id,
                    "owner_type": a.owner_type,
                    "owner_id": a.owner_id,
                    "kind": a.kind,
                    "currency": a.currency,
                }
                for a in missing
            ],
        )
        found.update(
            session.execute(
                select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_([a.code for a in missing]))
            )
            .tuples()
            .all()
        )
    return found


def post(session: Session, transfers: Sequence[Transfer], *, chunk: int = 5000) -> PostResult:
    """Post transfers in set-based batches; transfers whose key was already posted are skipped."""
    _check(transfers)
    result = PostResult()
    transfers = [t for t in transfers if t.amount != 0]
    now = utcnow()
    dialect = session.get_bind().dialect.name
    for start in range(0, len(transfers), chunk):
        # The first transfer under a key wins, inside a batch exactly as across batches and calls.
        unique: dict[str, Transfer] = {}
        for transfer in transfers[start : start + chunk]:
            unique.setdefault(transfer.key, transfer)
        batch = list(unique.values())
        accounts = _account_ids(session, [a for t in batch for a in (t.debit, t.credit)])
        statement = insert_ignore(LedgerEntry.__table__, dialect, conflict=["key"]).returning(
            LedgerEntry.__table__.c.id, LedgerEntry.__table__.c.key
        )
        rows = session.execute(
            statement,
            [
                {
                    "key": t.key,
                    "kind": t.kind,
                    "brand_id": t.debit.brand_id,
                    "commission_line_id": t.commission_line_id,
                    "memo": t.memo[:300],
                    "effective_at": t.effective_at or now,
                    "created_at": now,
                }
                for t in batch
            ],
        ).all()
        new_ids = {key: entry_id for entry_id, key in rows}
        postings = []
        for transfer in batch:
            entry_id = new_ids.get(transfer.key)
            if entry_id is None:
                result.skipped += 1
                continue
            postings.append(
                {
                    "entry_id": entry_id,
                    "account_id": accounts[transfer.debit.code],
                    "amount": -transfer.amount,
                    "currency": transfer.debit.currency,
                }
            )
            postings.append(
                {
                    "entry_id": entry_id,
                    "account_id": accounts[transfer.credit.code],
                    "amount": transfer.amount,
                    "currency": transfer.credit.currency,
                }
            )
            result.posted += 1
            result.keys.append(transfer.key)
        if postings:
            session.execute(insert(LedgerPosting.__table__), postings)
        result.skipped += len(transfers[start : start + chunk]) - len(batch)
    return result


def balance(session: Session, account: Account) -> int:
    """Credit-positive balance of one account (a payee's liability accounts are >= 0 unless clawed back)."""
    stmt = (
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerAccount)
        .where(LedgerAccount.code == account.code)
    )
    return int(session.scalar(stmt) or 0)


def balances(
    session: Session, *, brand_id: int | None = None, owner_type: str | None = None, owner_id: int | None = None
) -> dict[str, int]:
    """Balances by account code (filtered)."""
    stmt = (
        select(LedgerAccount.code, func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id, isouter=True)
        .group_by(LedgerAccount.code)
    )
    if brand_id is not None:
        stmt = stmt.where(LedgerAccount.brand_id == brand_id)
    if owner_type is not None:
        stmt = stmt.where(LedgerAccount.owner_type == owner_type)
    if owner_id is not None:
        stmt = stmt.where(LedgerAccount.owner_id == owner_id)
    return {code: int(total) for code, total in session.execute(stmt)}


def imbalances(session: Session) -> list[tuple[int, str, int]]:
    """Entries whose postings do not sum to zero per currency (must always be empty)."""
    stmt = (
        select(LedgerPosting.entry_id, LedgerPosting.currency, func.sum(LedgerPosting.amount))
        .group_by(LedgerPosting.entry_id, LedgerPosting.currency)
        .having(func.sum(LedgerPosting.amount) != 0)
    )
    return [(entry_id, currency, int(total)) for entry_id, currency, total in session.execute(stmt)]


def transfers_for_line(session: Session, commission_line_id: int) -> list[dict[str, object]]:
    """The entries posted for one commission line, with their postings, in order (for explain)."""
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.commission_line_id == commission_line_id).order_by(LedgerEntry.id)
    ).all()
    if not entries:
        return []
    postings: dict[int, list[tuple[str, int]]] = defaultdict(list)
    stmt = (
        select(LedgerPosting.entry_id, LedgerAccount.code, LedgerPosting.amount)
        .join(LedgerAccount)
        .where(LedgerPosting.entry_id.in_([e.id for e in entries]))
        .order_by(LedgerPosting.id)
    )
    for entry_id, code, amount in session.execute(stmt):
        postings[entry_id].append((code, int(amount)))
    return [
        {
            "entry_id": e.id,
            "key": e.key,
            "kind": e.kind,
            "effective_at": e.effective_at,
            "memo": e.memo,
            "postings": postings[e.id],
        }
        for e in entries
    ]
