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
from functools import cached_property
from typing import cast

from sqlalchemy import BigInteger, String, Table, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from clearline.kit.clock import utcnow
from clearline.kit.db import UTCDateTime, insert_ignore
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

    @cached_property
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
    postgresql = session.get_bind().dialect.name == "postgresql"

    def lookup(codes: list[str]) -> dict[str, int]:
        # One array parameter on PostgreSQL instead of thousands of IN (...) placeholders.
        if postgresql:
            match = LedgerAccount.code == any_(bindparam("codes", codes, type_=ARRAY(String)))
        else:
            match = LedgerAccount.code.in_(codes)
        return {
            code: account_id
            for code, account_id in session.execute(select(LedgerAccount.code, LedgerAccount.id).where(match))
        }

    found = lookup(list(wanted))
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
        found.update(lookup([a.code for a in missing]))
    return found


# PostgreSQL: a chunk is one statement. The entries arrive as arrays, one element per transfer, and are inserted
# in the caller's order (ORDER BY ordinality, so ids follow it); each new entry's two postings are made from the
# same arrays (debit then credit), only for the entries that were new, which the ON CONFLICT on the unique key
# decides, so a replayed key adds nothing even under concurrent posting.
_POST_POSTGRESQL = text("""
WITH input AS (
    SELECT *
    FROM unnest(:keys, :kinds, :brand_ids, :line_ids, :memos, :effective_ats, :debits, :credits, :amounts,
                :currencies)
         WITH ORDINALITY AS e(key, kind, brand_id, commission_line_id, memo, effective_at, debit, credit, amount,
                              currency, n)
), new AS (
    INSERT INTO ledger_entries (key, kind, brand_id, commission_line_id, memo, effective_at, created_at)
    SELECT key, kind, brand_id, commission_line_id, memo, effective_at, :now
    FROM input
    ORDER BY n
    ON CONFLICT (key) DO NOTHING
    RETURNING id, key
), postings AS (
    INSERT INTO ledger_postings (entry_id, account_id, amount, currency)
    SELECT new.id,
           CASE WHEN side.is_credit THEN input.credit ELSE input.debit END,
           CASE WHEN side.is_credit THEN input.amount ELSE -input.amount END,
           input.currency
    FROM new
    JOIN input ON input.key = new.key
    CROSS JOIN (VALUES (false), (true)) AS side(is_credit)
    ORDER BY input.n, side.is_credit
)
SELECT key FROM new
""").bindparams(
    bindparam("keys", type_=ARRAY(String)),
    bindparam("kinds", type_=ARRAY(String)),
    bindparam("brand_ids", type_=ARRAY(BigInteger)),
    bindparam("line_ids", type_=ARRAY(BigInteger)),
    bindparam("memos", type_=ARRAY(String)),
    bindparam("effective_ats", type_=ARRAY(UTCDateTime())),
    bindparam("now", type_=UTCDateTime()),
    bindparam("debits", type_=ARRAY(BigInteger)),
    bindparam("credits", type_=ARRAY(BigInteger)),
    bindparam("amounts", type_=ARRAY(BigInteger)),
    bindparam("currencies", type_=ARRAY(String)),
)


def _write_postgresql(session: Session, batch: list[Transfer], accounts: dict[str, int], now: dt.datetime) -> set[str]:
    rows = session.execute(
        _POST_POSTGRESQL,
        {
            "keys": [t.key for t in batch],
            "kinds": [t.kind for t in batch],
            "brand_ids": [t.debit.brand_id for t in batch],
            "line_ids": [t.commission_line_id for t in batch],
            "memos": [t.memo[:300] for t in batch],
            "effective_ats": [t.effective_at or now for t in batch],
            "now": now,
            "debits": [accounts[t.debit.code] for t in batch],
            "credits": [accounts[t.credit.code] for t in batch],
            "amounts": [t.amount for t in batch],
            "currencies": [t.debit.currency for t in batch],
        },
    )
    return {key for (key,) in rows}


def _write_portable(session: Session, batch: list[Transfer], accounts: dict[str, int], now: dt.datetime) -> set[str]:
    statement = insert_ignore(LedgerEntry.__table__, session.get_bind().dialect.name, conflict=["key"]).returning(
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
    for t in batch:
        entry_id = new_ids.get(t.key)
        if entry_id is None:
            continue
        postings.append(
            {
                "entry_id": entry_id,
                "account_id": accounts[t.debit.code],
                "amount": -t.amount,
                "currency": t.debit.currency,
            }
        )
        postings.append(
            {
                "entry_id": entry_id,
                "account_id": accounts[t.credit.code],
                "amount": t.amount,
                "currency": t.credit.currency,
            }
        )
    if postings:
        session.execute(insert(cast(Table, LedgerPosting.__table__)), postings)
    return set(new_ids)


def post(session: Session, transfers: Sequence[Transfer], *, chunk: int = 5000) -> PostResult:
    """Post transfers in set-based batches; transfers whose key was already posted are skipped."""
    _check(transfers)
    result = PostResult()
    transfers = [t for t in transfers if t.amount != 0]
    now = utcnow()
    write = _write_postgresql if session.get_bind().dialect.name == "postgresql" else _write_portable
    for start in range(0, len(transfers), chunk):
        # The first transfer under a key wins, inside a batch exactly as across batches and calls.
        unique: dict[str, Transfer] = {}
        for transfer in transfers[start : start + chunk]:
            unique.setdefault(transfer.key, transfer)
        batch = list(unique.values())
        accounts = _account_ids(session, [a for t in batch for a in (t.debit, t.credit)])
        new_keys = write(session, batch, accounts, now)
        for transfer in batch:
            if transfer.key in new_keys:
                result.posted += 1
                result.keys.append(transfer.key)
            else:
                result.skipped += 1
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
