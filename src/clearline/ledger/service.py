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
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from clearline.kit.clock import utcnow
from clearline.kit.db import insert_ignore
from clearline.kit.errors import ClearlineError
from clearline.models import LedgerAccount, LedgerEntry, LedgerPosting

if TYPE_CHECKING:
    import psycopg

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
        if transfer.effective_at is not None and transfer.effective_at.tzinfo is None:
            # The PostgreSQL path sends the arrays past SQLAlchemy's UTCDateTime, which refuses naive times.
            raise ValueError(f"{transfer.key}: naive datetime given as effective_at")


_ACCOUNT_IDS_POSTGRESQL = "SELECT code, id FROM ledger_accounts WHERE code = ANY(%(codes)b::text[])"


def _driver_connection(session: Session) -> psycopg.Connection[tuple[object, ...]]:
    """The psycopg connection under the session's (same transaction), for binary array parameters."""
    return cast("psycopg.Connection[tuple[object, ...]]", session.connection().connection.driver_connection)


def _account_ids(session: Session, accounts: Iterable[Account]) -> dict[str, int]:
    wanted = {account.code: account for account in accounts}
    postgresql = session.get_bind().dialect.name == "postgresql"

    def lookup(codes: list[str]) -> dict[str, int]:
        if postgresql:
            # One binary array parameter through the driver (as in `_write_postgresql`) instead of thousands of
            # IN (...) placeholders; a batch names thousands of accounts.
            connection = _driver_connection(session)
            with connection.cursor() as cursor:
                cursor.execute(_ACCOUNT_IDS_POSTGRESQL, {"codes": codes})
                return {cast(str, code): cast(int, account_id) for code, account_id in cursor.fetchall()}
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
# decides, so a replayed key adds nothing even under concurrent posting. This statement is the only writer of
# ledger_postings, which has no foreign keys (their per-row checks were half the cost): an entry id comes from the
# entry inserted here, an account id from `_account_ids` in the same transaction; `integrity` verifies both.
# The arrays go in psycopg's binary format (%(name)b): text-format arrays cost the client four times as much CPU
# to build and the server more to parse.
_POST_POSTGRESQL = """
WITH input AS (
    SELECT *
    FROM unnest(%(keys)b::text[], %(kinds)b::text[], %(brand_ids)b::bigint[], %(line_ids)b::bigint[],
                %(memos)b::text[], %(effective_ats)b::timestamptz[], %(debits)b::bigint[], %(credits)b::bigint[],
                %(amounts)b::bigint[], %(currencies)b::text[])
         WITH ORDINALITY AS e(key, kind, brand_id, commission_line_id, memo, effective_at, debit, credit, amount,
                              currency, n)
), new AS (
    INSERT INTO ledger_entries (key, kind, brand_id, commission_line_id, memo, effective_at, created_at)
    SELECT key, kind, brand_id, commission_line_id, memo, effective_at, %(now)b::timestamptz
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
"""


def _params(batch: list[Transfer], accounts: dict[str, int], now: dt.datetime) -> dict[str, object]:
    return {
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
    }


def _write_postgresql(
    session: Session, batches: list[list[Transfer]], accounts: dict[str, int], now: dt.datetime
) -> list[set[str]]:
    # The driver's own cursor on the session's connection (same transaction), because SQLAlchemy sends text
    # parameters. In pipeline mode the chunks' statements are queued without waiting for each other's results,
    # so the client builds chunk k + 1 while the server inserts chunk k; they still run one after the other, in
    # order, in this transaction, so a key repeated in a later chunk meets the earlier chunk's entry.
    connection = _driver_connection(session)
    with connection.pipeline():
        cursors = []
        for batch in batches:
            cursor = connection.cursor()
            cursor.execute(_POST_POSTGRESQL, _params(batch, accounts, now))
            cursors.append(cursor)
        new_keys = []
        for cursor in cursors:
            with cursor:
                new_keys.append({cast(str, key) for (key,) in cursor.fetchall()})
    return new_keys


def _write_portable(
    session: Session, batches: list[list[Transfer]], accounts: dict[str, int], now: dt.datetime
) -> list[set[str]]:
    return [_write_portable_batch(session, batch, accounts, now) for batch in batches]


def _write_portable_batch(
    session: Session, batch: list[Transfer], accounts: dict[str, int], now: dt.datetime
) -> set[str]:
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


def post(session: Session, transfers: Sequence[Transfer], *, chunk: int = 2500) -> PostResult:
    """Post transfers in set-based batches; transfers whose key was already posted are skipped.

    Every account the transfers name is looked up (and created if new) once; then each chunk of ``chunk``
    transfers is one statement that inserts its new entries and their postings.
    """
    _check(transfers)
    result = PostResult()
    transfers = [t for t in transfers if t.amount != 0]
    if not transfers:
        return result
    now = utcnow()
    write = _write_postgresql if session.get_bind().dialect.name == "postgresql" else _write_portable
    batches = []
    for start in range(0, len(transfers), chunk):
        # The first transfer under a key wins, inside a batch exactly as across batches and calls.
        unique: dict[str, Transfer] = {}
        for transfer in transfers[start : start + chunk]:
            unique.setdefault(transfer.key, transfer)
        batches.append(list(unique.values()))
        result.skipped += len(transfers[start : start + chunk]) - len(unique)
    accounts = _account_ids(session, [a for t in transfers for a in (t.debit, t.credit)])
    for batch, new_keys in zip(batches, write(session, batches, accounts, now), strict=True):
        for transfer in batch:
            if transfer.key in new_keys:
                result.posted += 1
                result.keys.append(transfer.key)
            else:
                result.skipped += 1
    return result


def balance(session: Session, account: Account) -> int:
    """Credit-positive balance of one account (a payee's liability accounts are >= 0 unless clawed back)."""
    stmt = (
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
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


@dataclass
class Integrity:
    """What ``integrity`` found: counts checked and one line per problem (empty when the ledger is sound)."""

    entries: int = 0
    postings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def integrity(session: Session, *, limit: int = 20) -> Integrity:
    """Check what the database no longer enforces by foreign key, and the double-entry rule itself.

    ``ledger_postings`` has no foreign keys (their per-row checks were half the cost of posting); postings are
    written only by ``post``, from the entries and accounts of the same statement. This finds the exceptions:
    postings whose entry or account does not exist, postings in another currency than their account, entries
    with fewer than two postings and entries whose postings do not sum to zero per currency. At most ``limit``
    problems of each kind are listed.
    """
    report = Integrity(
        entries=session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        postings=session.scalar(select(func.count()).select_from(LedgerPosting)) or 0,
    )
    for what, reference, target in (
        ("entry", LedgerPosting.entry_id, LedgerEntry),
        ("account", LedgerPosting.account_id, LedgerAccount),
    ):
        orphans = (
            select(LedgerPosting.id, reference)
            .outerjoin(target, target.id == reference)
            .where(target.id.is_(None))
            .order_by(LedgerPosting.id)
            .limit(limit)
        )
        for posting_id, missing_id in session.execute(orphans):
            report.problems.append(f"posting {posting_id}: {what} {missing_id} does not exist")
    wrong_currency = (
        select(LedgerPosting.id, LedgerPosting.currency, LedgerAccount.code)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.currency != LedgerPosting.currency)
        .order_by(LedgerPosting.id)
        .limit(limit)
    )
    for posting_id, currency, code in session.execute(wrong_currency):
        report.problems.append(f"posting {posting_id}: {currency} on account {code}")
    short = (
        select(LedgerEntry.id, LedgerEntry.key, func.count(LedgerPosting.id))
        .outerjoin(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .group_by(LedgerEntry.id, LedgerEntry.key)
        .having(func.count(LedgerPosting.id) < 2)
        .order_by(LedgerEntry.id)
        .limit(limit)
    )
    for entry_id, key, count in session.execute(short):
        report.problems.append(f"entry {entry_id} ({key}): {count} posting(s), needs at least two")
    for entry_id, currency, total in imbalances(session)[:limit]:
        report.problems.append(f"entry {entry_id}: postings sum to {total} {currency}, not zero")
    return report


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
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
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
