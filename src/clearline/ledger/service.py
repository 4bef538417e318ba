"""The double-entry ledger. It imports no other domain; everything that moves money calls it.

Accounts are named ``b<brand>:<owner_type>:<owner_id>:<kind>:<currency>``. Postings are signed minor
units, credit positive; every entry sums to zero per currency. Entries are keyed by the business event
(``commission.accrued:<line id>``) under a unique index, so posting the same event twice changes nothing.
Posting is set-based: a batch of transfers is a handful of statements, not one transaction per transfer; on
PostgreSQL a large batch is checked against the posted keys and then written by binary COPY (see `_post_copy`).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
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
        return _code((self.brand_id, self.owner_type, self.owner_id, self.kind, self.currency))


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


# An account as the posting path handles it: its five fields. A tuple is built, hashed and compared in C; an
# `Account`'s dataclass __eq__/__hash__ and its code string cost several times as much, twice per transfer.
_AccountKey = tuple[int, str, int, str, str]
# A transfer to post, with the positions of its debit and credit accounts in the call's list of accounts.
_Row = tuple[Transfer, int, int]


def _code(account: _AccountKey) -> str:
    brand_id, owner_type, owner_id, kind, currency = account
    return f"b{brand_id}:{owner_type}:{owner_id}:{kind}:{currency}"


def _prepare(transfers: Sequence[Transfer]) -> tuple[list[_Row], list[_AccountKey], int]:
    """Check every transfer (one bad transfer refuses the whole call); keep the first non-zero transfer under each
    key, in the caller's order. Also the accounts those name, and how many transfers repeated a kept key."""
    rows: dict[str, _Row] = {}
    accounts: dict[_AccountKey, int] = {}
    repeated = 0
    for transfer in transfers:
        d, c = transfer.debit, transfer.credit
        debit = (d.brand_id, d.owner_type, d.owner_id, d.kind, d.currency)
        credit = (c.brand_id, c.owner_type, c.owner_id, c.kind, c.currency)
        amount = transfer.amount
        if debit[4] != credit[4]:
            raise UnbalancedEntryError(f"{transfer.key}: debit and credit in different currencies")
        if amount < 0:
            raise UnbalancedEntryError(f"{transfer.key}: negative transfer; swap debit and credit")
        if debit == credit:
            raise UnbalancedEntryError(f"{transfer.key}: debit and credit are the same account")
        at = transfer.effective_at
        if at is not None and at.tzinfo is None:
            # The PostgreSQL path encodes times itself, past SQLAlchemy's UTCDateTime, which refuses naive times.
            raise ValueError(f"{transfer.key}: naive datetime given as effective_at")
        if amount == 0:
            continue
        if transfer.key in rows:
            repeated += 1
            continue
        debit_at = accounts.get(debit)
        if debit_at is None:
            debit_at = accounts[debit] = len(accounts)
        credit_at = accounts.get(credit)
        if credit_at is None:
            credit_at = accounts[credit] = len(accounts)
        rows[transfer.key] = (transfer, debit_at, credit_at)
    return list(rows.values()), list(accounts), repeated


_ACCOUNT_IDS_POSTGRESQL = "SELECT code, id FROM ledger_accounts WHERE code = ANY(%(codes)b::text[])"
_CREATE_ACCOUNTS_POSTGRESQL = """
INSERT INTO ledger_accounts (code, brand_id, owner_type, owner_id, kind, currency)
SELECT * FROM unnest(%(codes)b::text[], %(brand_ids)b::bigint[], %(owner_types)b::text[], %(owner_ids)b::bigint[],
                     %(kinds)b::text[], %(currencies)b::text[])
ON CONFLICT (code) DO NOTHING
"""


def _driver_connection(session: Session) -> psycopg.Connection[tuple[object, ...]]:
    """The psycopg connection under the session's (same transaction), for binary parameters and COPY."""
    return cast("psycopg.Connection[tuple[object, ...]]", session.connection().connection.driver_connection)


def _lookup_accounts(session: Session, codes: list[str]) -> dict[str, int]:
    if session.get_bind().dialect.name == "postgresql":
        # One binary array parameter through the driver instead of thousands of IN (...) placeholders.
        with _driver_connection(session).cursor() as cursor:
            cursor.execute(_ACCOUNT_IDS_POSTGRESQL, {"codes": codes})
            return dict(cast("list[tuple[str, int]]", cursor.fetchall()))
    match = LedgerAccount.code.in_(codes)
    return {
        code: account_id
        for code, account_id in session.execute(select(LedgerAccount.code, LedgerAccount.id).where(match))
    }


def _create_accounts(session: Session, accounts: list[tuple[str, _AccountKey]]) -> dict[str, int]:
    """Insert the accounts (code and fields) unless they exist; the ids of all of them, by code."""
    codes = [code for code, _ in accounts]
    if session.get_bind().dialect.name == "postgresql":
        # One statement of arrays, and the lookup after it in the same round trip (the first batch of a new
        # brand names thousands of accounts).
        connection = _driver_connection(session)
        with connection.pipeline(), connection.cursor() as cursor:
            cursor.execute(
                _CREATE_ACCOUNTS_POSTGRESQL,
                {
                    "codes": codes,
                    "brand_ids": [account[0] for _, account in accounts],
                    "owner_types": [account[1] for _, account in accounts],
                    "owner_ids": [account[2] for _, account in accounts],
                    "kinds": [account[3] for _, account in accounts],
                    "currencies": [account[4] for _, account in accounts],
                },
            )
            cursor.execute(_ACCOUNT_IDS_POSTGRESQL, {"codes": codes})
            return dict(cast("list[tuple[str, int]]", cursor.fetchall()))
    statement = insert_ignore(LedgerAccount.__table__, session.get_bind().dialect.name, conflict=["code"])
    session.execute(
        statement,
        [
            {
                "code": code,
                "brand_id": brand_id,
                "owner_type": owner_type,
                "owner_id": owner_id,
                "kind": kind,
                "currency": currency,
            }
            for code, (brand_id, owner_type, owner_id, kind, currency) in accounts
        ],
    )
    return _lookup_accounts(session, codes)


def _account_ids(
    session: Session, accounts: list[_AccountKey], codes: list[str], found: dict[str, int] | None = None
) -> list[int]:
    """The ids of ``accounts`` (whose codes are ``codes``), creating those that do not exist yet; ``found``: the
    ids already looked up, by code."""
    if found is None:
        found = _lookup_accounts(session, codes)
    missing = [(code, account) for code, account in zip(codes, accounts, strict=True) if code not in found]
    if missing:
        found = {**found, **_create_accounts(session, missing)}
    return [found[code] for code in codes]


# --- PostgreSQL, large batches: COPY --------------------------------------------------------------------------
# One round trip looks up the accounts and reserves an entry id per transfer from the entries' sequence
# (ascending, so ids follow the caller's order); then the entries and their postings go in by binary COPY, which
# the client encodes itself in one pass (no per-value adapter calls) and the server inserts in multi-row batches:
# one WAL record per page instead of per row, no ON CONFLICT speculation, no join. The unique key is the guard:
# a batch with a key posted before fails its COPY, a savepoint undoes it, and the keys posted before are looked
# up and the others COPYed. Looking up first would cost every batch a probe per key (a tenth of the server's
# work) for what is the exception; a replayed batch fails at its first row. If the retry fails too, another
# transaction committed a key in between: the ON CONFLICT statement posts the batch instead.
# ledger_postings has no foreign keys (their per-row checks were half the cost): an entry id comes from the
# entry inserted here, an account id from the lookup in the same transaction; `integrity` verifies both.
_EXISTING_KEYS = "SELECT key FROM ledger_entries WHERE key = ANY(%(keys)b::text[])"
_RESERVE_ENTRY_IDS = (
    "SELECT array_agg(id ORDER BY id) FROM"
    " (SELECT nextval('ledger_entries_id_seq') AS id FROM generate_series(1, %(count)b::integer)) AS reserved"
)
_COPY_ENTRIES = (
    "COPY ledger_entries (id, brand_id, commission_line_id, key, kind, memo, effective_at, created_at)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_POSTINGS = "COPY ledger_postings (entry_id, account_id, amount, currency) FROM STDIN (FORMAT BINARY)"
_SAVEPOINT = "ledger_post"

# Binary COPY: a signature, then per row a 16-bit field count and per field a 32-bit length (-1: NULL) and the
# value in network byte order (bigint: 8 bytes; text: UTF-8; timestamptz: microseconds since 2000-01-01 UTC);
# a field count of -1 ends the data. A binary array: dimensions, a has-NULL flag, the element type, then per
# dimension its length and lower bound, then the elements as length and value.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_END = b"\xff\xff"
_LENGTH = struct.Struct(">i")
_BIGINT = struct.Struct(">iq")
_ENTRY_START = struct.Struct(">hiqiqiq")  # 8 fields: id, brand_id, commission_line_id
_ENTRY_START_NO_LINE = struct.Struct(">hiqiqi")  # the same with a NULL commission_line_id (length -1)
_ARRAY_START = struct.Struct(">iiIii")
_TEXT_OID, _TEXT_ARRAY_OID = 25, 1009
_POSTGRES_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _text(value: str) -> bytes:
    data = value.encode()
    return _LENGTH.pack(len(data)) + data


def _time(value: dt.datetime) -> bytes:
    return _BIGINT.pack(8, (value - _POSTGRES_EPOCH) // _MICROSECOND)


_Ends = tuple[str, str, dt.datetime | None]


class _EntryEnds(dict[_Ends, bytes]):
    """An entry row's last four fields (kind, memo, effective_at, created_at), encoded once per distinct
    (kind, memo, effective_at): they repeat across a batch."""

    def __init__(self, now: dt.datetime) -> None:
        super().__init__()
        self.created = _time(now)

    def __missing__(self, ends: _Ends) -> bytes:
        kind, memo, at = ends
        encoded = self[ends] = (
            _text(kind) + _text(memo[:300]) + (self.created if at is None else _time(at)) + self.created
        )
        return encoded


class _PostingPairs(dict[str, tuple[struct.Struct, bytes]]):
    """Per currency: the packer of a transfer's two posting rows (4 fields each) and the currency's bytes."""

    def __missing__(self, currency: str) -> tuple[struct.Struct, bytes]:
        data = currency.encode()
        row = f"hiqiqiqi{len(data)}s"
        pair = self[currency] = (struct.Struct(f">{row}{row}"), data)
        return pair


def _entry_rows(rows: list[_Row], keys: list[bytes], ids: list[int], now: dt.datetime) -> bytes:
    parts: list[bytes] = []
    add = parts.append
    ends = _EntryEnds(now)
    for (transfer, _, _), key, entry_id in zip(rows, keys, ids, strict=True):
        line = transfer.commission_line_id
        if line is None:
            add(_ENTRY_START_NO_LINE.pack(8, 8, entry_id, 8, transfer.debit.brand_id, -1))
        else:
            add(_ENTRY_START.pack(8, 8, entry_id, 8, transfer.debit.brand_id, 8, line))
        add(key)
        add(ends[transfer.kind, transfer.memo, transfer.effective_at])
    return b"".join(parts)


def _posting_rows(rows: list[_Row], ids: list[int], accounts: list[int]) -> bytes:
    parts: list[bytes] = []
    add = parts.append
    pairs = _PostingPairs()
    for (transfer, debit, credit), entry_id in zip(rows, ids, strict=True):
        pair, currency = pairs[transfer.debit.currency]
        size, amount = len(currency), transfer.amount
        add(
            pair.pack(
                4, 8, entry_id, 8, accounts[debit], 8, -amount, size, currency,
                4, 8, entry_id, 8, accounts[credit], 8, amount, size, currency,
            )
        )  # fmt: skip
    return b"".join(parts)


@cache
def _binary_text_array() -> type[psycopg.adapt.Dumper]:
    """A dumper that sends a `_TextArray` as it is (it is already a binary text[])."""
    from psycopg import adapt, pq

    class Dumper(adapt.Dumper):
        format = pq.Format.BINARY
        oid = _TEXT_ARRAY_OID

        def dump(self, obj: object) -> bytes:
            return cast(bytes, obj)

    return Dumper


class _TextArray(bytes):
    """A text[] parameter in PostgreSQL's binary array format, built from already encoded elements."""

    @classmethod
    def of(cls, elements: list[bytes]) -> _TextArray:
        """From elements already encoded as a text field (length, then UTF-8)."""
        return cls(_ARRAY_START.pack(1, 0, _TEXT_OID, len(elements), 1) + b"".join(elements))

    @classmethod
    def of_strings(cls, values: list[str]) -> _TextArray:
        return cls.of([_LENGTH.pack(len(data)) + data for data in [value.encode() for value in values]])


def _copy(cursor: psycopg.Cursor[tuple[object, ...]], statement: str, chunks: Iterator[bytes]) -> None:
    """COPY the rows that ``chunks`` encodes: the server inserts one chunk while the client encodes the next."""
    with cursor.copy(statement) as copy:
        copy.write(_COPY_SIGNATURE)
        for data in chunks:
            copy.write(data)
        copy.write(_COPY_END)


def _post_copy(
    session: Session, rows: list[_Row], accounts: list[_AccountKey], now: dt.datetime, chunk: int
) -> list[str]:
    from psycopg import errors

    connection = _driver_connection(session)
    codes = [_code(account) for account in accounts]
    # Each key encoded once, as COPY and a binary array both want it: length, then UTF-8.
    keys = [_LENGTH.pack(len(key)) + key for key in [transfer.key.encode() for transfer, _, _ in rows]]
    with connection.pipeline(), connection.cursor() as found, connection.cursor() as reserve:
        found.adapters.register_dumper(_TextArray, _binary_text_array())
        found.execute(_ACCOUNT_IDS_POSTGRESQL, {"codes": _TextArray.of_strings(codes)})
        reserve.execute(_RESERVE_ENTRY_IDS, {"count": len(rows)}, binary=True)
        connection.execute(f"SAVEPOINT {_SAVEPOINT}")
        account_found = dict(cast("list[tuple[str, int]]", found.fetchall()))
        ids = cast("tuple[list[int]]", reserve.fetchone())[0]
    created = len(account_found) < len(codes)
    account_ids = _account_ids(session, accounts, codes, account_found)
    if created:
        # Accounts were created after the savepoint; move it past them, or undoing a COPY would undo them too.
        with connection.pipeline():
            connection.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            connection.execute(f"SAVEPOINT {_SAVEPOINT}")
    checked = False
    while True:
        try:
            if rows:
                with connection.cursor() as cursor:
                    spans = [(start, start + chunk) for start in range(0, len(rows), chunk)]
                    entries = (_entry_rows(rows[a:b], keys[a:b], ids[a:b], now) for a, b in spans)
                    _copy(cursor, _COPY_ENTRIES, entries)
                    postings = (_posting_rows(rows[a:b], ids[a:b], account_ids) for a, b in spans)
                    _copy(cursor, _COPY_POSTINGS, postings)
        except errors.UniqueViolation:
            connection.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            if checked:
                # Another transaction committed one of these keys since the check: the ON CONFLICT statement
                # decides key by key.
                connection.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                return _post_statement(session, rows, accounts, now, chunk)
            # Some keys were posted before: find them and COPY the others.
            with connection.cursor() as existing:
                existing.adapters.register_dumper(_TextArray, _binary_text_array())
                existing.execute(_EXISTING_KEYS, {"keys": _TextArray.of(keys)})
                posted = {cast(str, key) for (key,) in existing.fetchall()}
            new = [at for at, (transfer, _, _) in enumerate(rows) if transfer.key not in posted]
            rows, keys, ids = [rows[at] for at in new], [keys[at] for at in new], ids[: len(new)]
            checked = True
            continue
        connection.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return [transfer.key for transfer, _, _ in rows]


# --- PostgreSQL, small batches (and the fallback of COPY): one statement per chunk -----------------------------
# A chunk is one statement. The entries arrive as arrays, one element per transfer, and are inserted in the
# caller's order (ORDER BY ordinality, so ids follow it); each new entry's two postings are made from the same
# arrays (debit then credit), only for the entries that were new, which the ON CONFLICT on the unique key decides,
# so a replayed key adds nothing even under concurrent posting. Fewer round trips than COPY, more work per row.
# The arrays go in psycopg's binary format (%(name)b).
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


def _params(rows: list[_Row], accounts: list[int], now: dt.datetime) -> dict[str, object]:
    return {
        "keys": [t.key for t, _, _ in rows],
        "kinds": [t.kind for t, _, _ in rows],
        "brand_ids": [t.debit.brand_id for t, _, _ in rows],
        "line_ids": [t.commission_line_id for t, _, _ in rows],
        "memos": [t.memo[:300] for t, _, _ in rows],
        "effective_ats": [t.effective_at or now for t, _, _ in rows],
        "now": now,
        "debits": [accounts[debit] for _, debit, _ in rows],
        "credits": [accounts[credit] for _, _, credit in rows],
        "amounts": [t.amount for t, _, _ in rows],
        "currencies": [t.debit.currency for t, _, _ in rows],
    }


def _post_statement(
    session: Session, rows: list[_Row], accounts: list[_AccountKey], now: dt.datetime, chunk: int
) -> list[str]:
    # In pipeline mode the chunks' statements are queued without waiting for each other's results; they still
    # run one after the other, in order, in this transaction.
    account_ids = _account_ids(session, accounts, [_code(account) for account in accounts])
    connection = _driver_connection(session)
    with connection.pipeline():
        cursors = []
        for start in range(0, len(rows), chunk):
            cursor = connection.cursor()
            cursor.execute(_POST_POSTGRESQL, _params(rows[start : start + chunk], account_ids, now))
            cursors.append(cursor)
        new_keys: set[str] = set()
        for cursor in cursors:
            with cursor:
                new_keys.update(cast(str, key) for (key,) in cursor.fetchall())
    return [transfer.key for transfer, _, _ in rows if transfer.key in new_keys]


# --- SQLite (any size) ----------------------------------------------------------------------------------------
def _post_portable(
    session: Session, rows: list[_Row], accounts: list[_AccountKey], now: dt.datetime, chunk: int
) -> list[str]:
    account_ids = _account_ids(session, accounts, [_code(account) for account in accounts])
    new_keys: set[str] = set()
    for start in range(0, len(rows), chunk):
        new_keys.update(_post_portable_chunk(session, rows[start : start + chunk], account_ids, now))
    return [transfer.key for transfer, _, _ in rows if transfer.key in new_keys]


def _post_portable_chunk(session: Session, rows: list[_Row], accounts: list[int], now: dt.datetime) -> set[str]:
    statement = insert_ignore(LedgerEntry.__table__, session.get_bind().dialect.name, conflict=["key"]).returning(
        LedgerEntry.__table__.c.id, LedgerEntry.__table__.c.key
    )
    inserted = session.execute(
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
            for t, _, _ in rows
        ],
    ).all()
    new_ids = {key: entry_id for entry_id, key in inserted}
    postings = []
    for t, debit, credit in rows:
        entry_id = new_ids.get(t.key)
        if entry_id is None:
            continue
        currency = t.debit.currency
        postings.append(
            {"entry_id": entry_id, "account_id": accounts[debit], "amount": -t.amount, "currency": currency}
        )
        postings.append(
            {"entry_id": entry_id, "account_id": accounts[credit], "amount": t.amount, "currency": currency}
        )
    if postings:
        session.execute(insert(cast(Table, LedgerPosting.__table__)), postings)
    return set(new_ids)


# Below this many transfers the one-statement path's fewer round trips beat COPY's cheaper rows.
_COPY_FROM = 100


def post(session: Session, transfers: Sequence[Transfer], *, chunk: int = 2500) -> PostResult:
    """Post transfers set-based; a transfer whose key was already posted (or repeats an earlier key of the same
    call) is skipped. Every transfer is checked before anything is written.

    On PostgreSQL a batch of at least ``_COPY_FROM`` transfers takes a few round trips whatever its size (the new
    entries and postings by COPY, encoded ``chunk`` transfers at a time); a smaller one is one statement per
    ``chunk`` transfers. SQLite: two statements per ``chunk``.
    """
    rows, accounts, repeated = _prepare(transfers)
    if not rows:
        return PostResult(skipped=repeated)
    if session.get_bind().dialect.name != "postgresql":
        write = _post_portable
    elif len(rows) >= _COPY_FROM:
        write = _post_copy
    else:
        write = _post_statement
    keys = write(session, rows, accounts, utcnow(), max(chunk, 1))
    return PostResult(posted=len(keys), skipped=repeated + len(rows) - len(keys), keys=keys)


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
